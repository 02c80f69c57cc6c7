//! CreateTopics, DeleteTopics, CreatePartitions.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, TopicName,
};

use super::str_bytes;
use crate::kafka::context::BrokerContext;
use crate::log::{LogError, TopicMetadata};

/// What else must happen when a topic is deleted (the remote tier, set with
/// `BrokerContext::set_topic_deletion`).
#[async_trait::async_trait]
pub trait TopicDeletion: Send + Sync {
    /// Before the local delete; an error `(kafka code, message)` keeps the topic.
    async fn before_delete(&self, topic: &TopicMetadata) -> Result<(), (i16, String)>;
    /// After the local delete: `deleted` says whether it happened.
    async fn after_delete(&self, topic: &TopicMetadata, deleted: bool);
}

pub fn create_topics(
    ctx: &BrokerContext,
    request: &CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let result = CreatableTopicResult::default().with_name(topic.name.clone());
            match create_one(ctx, topic, request.validate_only) {
                Ok(created) => {
                    let mut result = result;
                    if version >= 5 {
                        result.num_partitions = created.partitions;
                        result.replication_factor = 1;
                        result.configs = Some(describe_for_create(ctx, &topic.name, &created.overrides, request.validate_only));
                    }
                    if version >= 7 && !request.validate_only {
                        result.topic_id = created.topic_id;
                    }
                    tracing::info!(topic = %topic.name.as_str(), partitions = created.partitions,
                        validate_only = request.validate_only, "topic created");
                    result
                }
                Err((error, message)) => {
                    tracing::info!(topic = %topic.name.as_str(), error = %message, "topic creation refused");
                    let result = result.with_error_code(error);
                    if version >= 1 { result.with_error_message(Some(str_bytes(&message))) } else { result }
                }
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

fn create_one(
    ctx: &BrokerContext,
    topic: &kafka_protocol::messages::create_topics_request::CreatableTopic,
    validate_only: bool,
) -> Result<crate::log::TopicMetadata, (i16, String)> {
    if topic.replication_factor > 1 {
        return Err((
            ResponseError::InvalidReplicationFactor.code(),
            format!(
                "replication factor {} is larger than the 1 available broker",
                topic.replication_factor
            ),
        ));
    }
    let partitions = if !topic.assignments.is_empty() {
        topic.assignments.len() as i32
    } else if topic.num_partitions == -1 {
        ctx.default_num_partitions() as i32
    } else {
        topic.num_partitions
    };
    let overrides: BTreeMap<String, String> = topic
        .configs
        .iter()
        .filter_map(|c| {
            c.value
                .as_ref()
                .map(|v| (c.name.to_string(), v.to_string()))
        })
        .collect();
    ctx.log
        .create_topic(&topic.name, partitions, overrides, validate_only)
        .map_err(|e: LogError| (e.kafka_error_code(), e.to_string()))
}

fn describe_for_create(
    ctx: &BrokerContext,
    name: &TopicName,
    overrides: &BTreeMap<String, String>,
    validate_only: bool,
) -> Vec<CreatableTopicConfigs> {
    if validate_only {
        return overrides
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfigs::default()
                    .with_name(str_bytes(k))
                    .with_value(Some(str_bytes(v)))
                    .with_config_source(1)
            })
            .collect();
    }
    ctx.log
        .describe_topic_config(name)
        .unwrap_or_default()
        .into_iter()
        .map(|entry| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(&entry.name))
                .with_value(if entry.sensitive {
                    None
                } else {
                    entry.value.as_deref().map(str_bytes)
                })
                .with_read_only(entry.read_only)
                .with_config_source(entry.source.kafka_code())
                .with_is_sensitive(entry.sensitive)
        })
        .collect()
}

/// Deletes one topic locally, with the hook's steps around it.
async fn delete_one(ctx: &BrokerContext, topic: &TopicMetadata) -> Result<(), (i16, String)> {
    let hook = ctx.topic_deletion();
    if let Some(hook) = &hook {
        hook.before_delete(topic).await?;
    }
    let deleted = ctx
        .log
        .delete_topic(&topic.name)
        .map_err(|e| (e.kafka_error_code(), e.to_string()));
    // After the log: a commit that raced the deletion either sees the topic gone or is
    // journaled before this removal (`OffsetStore::commit_existing`). The topic is gone either
    // way, so a failure here is logged rather than answered.
    if deleted.is_ok()
        && let Err(error) = ctx.groups.delete_topic_offsets(&topic.name).await
    {
        tracing::error!(topic = %topic.name, %error, "removing the deleted topic's committed offsets failed");
    }
    if let Some(hook) = &hook {
        hook.after_delete(topic, deleted.is_ok()).await;
    }
    deleted
}

pub async fn delete_topics(
    ctx: &BrokerContext,
    request: &DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // v6+ names topics by name or id; earlier versions only by name.
    let wanted: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
        request
            .topics
            .iter()
            .map(|t| (t.name.clone(), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.clone()), uuid::Uuid::nil()))
            .collect()
    };
    let mut responses = Vec::with_capacity(wanted.len());
    for (name, topic_id) in wanted {
        responses.push({
            let resolved = match &name {
                Some(name) => ctx.log.topic(name),
                None => ctx.log.topic_by_id(topic_id),
            };
            let outcome = match &resolved {
                Some(topic) => delete_one(ctx, topic).await,
                None if name.is_none() => Err((
                    ResponseError::UnknownTopicId.code(),
                    "unknown topic id".to_owned(),
                )),
                None => Err((
                    ResponseError::UnknownTopicOrPartition.code(),
                    "unknown topic".to_owned(),
                )),
            };
            let name = resolved
                .as_ref()
                .map(|t| TopicName(str_bytes(&t.name)))
                .or(name);
            let mut result =
                DeletableTopicResult::default().with_name(name.or(Some(TopicName::default())));
            if version >= 6 {
                result.topic_id = resolved.as_ref().map_or(topic_id, |t| t.topic_id);
            }
            match outcome {
                Ok(()) => {
                    tracing::info!(topic = ?result.name, "topic deleted");
                    result
                }
                Err((code, message)) => {
                    result.error_code = code;
                    if version >= 5 {
                        result.error_message = Some(str_bytes(&message));
                    }
                    result
                }
            }
        });
    }
    DeleteTopicsResponse::default().with_responses(responses)
}

pub fn create_partitions(
    ctx: &BrokerContext,
    request: &CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = request
        .topics
        .iter()
        .map(|topic| {
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            match ctx.log.create_partitions(&topic.name, topic.count, request.validate_only) {
                Ok(()) => {
                    tracing::info!(topic = %topic.name.as_str(), partitions = topic.count, "partitions created");
                    result
                }
                Err(e) => result.with_error_code(e.kafka_error_code()).with_error_message(Some(str_bytes(&e.to_string()))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
