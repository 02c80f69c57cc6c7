//! Metadata: this broker as the only node, leader of every partition, with the persisted broker
//! epoch as leader epoch (it never goes backwards). Unknown topics are auto-created when
//! `auto.create.topics.enable` and the request allow it, with `num.partitions` partitions.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};

use super::str_bytes;
use crate::kafka::context::BrokerContext;
use crate::log::{LogError, TopicMetadata};

/// Metadata v10+ carries topic ids.
const TOPIC_ID_VERSION: i16 = 10;

pub fn handle(ctx: &BrokerContext, request: &MetadataRequest, version: i16) -> MetadataResponse {
    let all_topics = match &request.topics {
        None => true,
        Some(topics) => version == 0 && topics.is_empty(),
    };
    let allow_auto_create =
        (version < 4 || request.allow_auto_topic_creation) && ctx.auto_create_topics();

    let topics = if all_topics {
        let mut topics = ctx.log.topics();
        topics.sort_by(|a, b| a.name.cmp(&b.name));
        topics
            .iter()
            .map(|t| describe_topic(ctx, t, version))
            .collect()
    } else {
        request
            .topics
            .iter()
            .flatten()
            .map(|wanted| match &wanted.name {
                Some(name) => lookup_or_create(ctx, name, allow_auto_create, version),
                None => match ctx.log.topic_by_id(wanted.topic_id) {
                    Some(topic) => describe_topic(ctx, &topic, version),
                    None => MetadataResponseTopic::default()
                        .with_error_code(ResponseError::UnknownTopicId.code())
                        .with_topic_id(wanted.topic_id),
                },
            })
            .collect()
    };

    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(ctx.node_id()))
        .with_host(str_bytes(&ctx.advertised_host))
        .with_port(ctx.advertised_port);
    let mut response = MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_topics(topics);
    if version >= 1 {
        response.controller_id = BrokerId(ctx.node_id());
    }
    if version >= 2 {
        response.cluster_id = Some(str_bytes(&ctx.identity.cluster_id));
    }
    response
}

fn lookup_or_create(
    ctx: &BrokerContext,
    name: &TopicName,
    allow_auto_create: bool,
    version: i16,
) -> MetadataResponseTopic {
    if let Some(topic) = ctx.log.topic(name) {
        return describe_topic(ctx, &topic, version);
    }
    let unknown = MetadataResponseTopic::default()
        .with_name(Some(name.clone()))
        .with_error_code(ResponseError::UnknownTopicOrPartition.code());
    if !allow_auto_create {
        return unknown;
    }
    let partitions = ctx.default_num_partitions() as i32;
    match ctx
        .log
        .create_topic(name, partitions, Default::default(), false)
    {
        Ok(topic) => {
            tracing::info!(topic = %topic.name, partitions, "topic auto-created");
            describe_topic(ctx, &topic, version)
        }
        Err(LogError::TopicAlreadyExists(_)) => match ctx.log.topic(name) {
            Some(topic) => describe_topic(ctx, &topic, version),
            None => unknown,
        },
        Err(err) => {
            tracing::info!(topic = %name.as_str(), error = %err, "topic auto-creation refused");
            MetadataResponseTopic::default()
                .with_name(Some(name.clone()))
                .with_error_code(err.kafka_error_code())
        }
    }
}

fn describe_topic(
    ctx: &BrokerContext,
    topic: &TopicMetadata,
    version: i16,
) -> MetadataResponseTopic {
    let node = BrokerId(ctx.node_id());
    let partitions = (0..topic.partitions)
        .map(|index| {
            let partition = MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node]);
            if version >= 7 {
                partition.with_leader_epoch(ctx.leader_epoch())
            } else {
                partition
            }
        })
        .collect();
    let response = MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(&topic.name))))
        .with_is_internal(false)
        .with_partitions(partitions);
    if version >= TOPIC_ID_VERSION {
        response.with_topic_id(topic.topic_id)
    } else {
        response
    }
}
