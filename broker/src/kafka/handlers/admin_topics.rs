//! CreateTopics, DeleteTopics, CreatePartitions.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
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
    let mut occurrences: HashMap<&TopicName, usize> = HashMap::new();
    for topic in &request.topics {
        *occurrences.entry(&topic.name).or_default() += 1;
    }
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let result = CreatableTopicResult::default().with_name(topic.name.clone());
            // A name given twice is refused in both places: which one was meant is unknowable.
            let created = if occurrences[&topic.name] > 1 {
                Err((ResponseError::InvalidRequest.code(), "Duplicate topic name.".to_owned()))
            } else {
                validate_creatable(ctx, topic)
                    .and_then(|()| create_one(ctx, topic, request.validate_only))
            };
            match created {
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

/// Kafka's checks of one CreateTopics entry that the log engine cannot make (it knows neither
/// replicas nor the request's shape), with Kafka's error codes and messages.
fn validate_creatable(ctx: &BrokerContext, topic: &CreatableTopic) -> Result<(), (i16, String)> {
    let null_configs: Vec<&str> = topic
        .configs
        .iter()
        .filter(|c| c.value.is_none())
        .map(|c| c.name.as_str())
        .collect();
    if !null_configs.is_empty() {
        return Err((
            ResponseError::InvalidConfig.code(),
            format!(
                "Null value not supported for topic configs: {}",
                null_configs.join(",")
            ),
        ));
    }
    if topic.assignments.is_empty() {
        if topic.replication_factor == 0 || topic.replication_factor < -1 {
            return Err((
                ResponseError::InvalidReplicationFactor.code(),
                "Replication factor must be larger than 0, or -1 to use the default value."
                    .to_owned(),
            ));
        }
        return Ok(());
    }
    let invalid_request =
        |message: &str| Err((ResponseError::InvalidRequest.code(), message.into()));
    if topic.num_partitions != -1 {
        return invalid_request(
            "A manual partition assignment was specified, but numPartitions was not set to -1.",
        );
    }
    if topic.replication_factor != -1 {
        return invalid_request(
            "A manual partition assignment was specified, but replicationFactor was not set to -1.",
        );
    }
    validate_assignments(ctx.node_id(), &topic.assignments)
        .map_err(|message| (ResponseError::InvalidReplicaAssignment.code(), message))
}

/// A manual assignment on this single node: partitions 0..n, each with exactly this broker.
fn validate_assignments(
    node_id: i32,
    assignments: &[CreatableReplicaAssignment],
) -> Result<(), String> {
    let mut partitions = BTreeSet::new();
    for assignment in assignments {
        if !partitions.insert(assignment.partition_index) {
            return Err(format!(
                "Found multiple manual partition assignments for partition {}",
                assignment.partition_index
            ));
        }
        let mut brokers = BTreeSet::new();
        if assignment.broker_ids.is_empty() {
            return Err("The manual partition assignment includes an empty replica list.".into());
        }
        for broker in &assignment.broker_ids {
            if broker.0 != node_id {
                return Err(format!(
                    "The manual partition assignment includes broker {}, but no such broker is registered.",
                    broker.0
                ));
            }
            if !brokers.insert(broker.0) {
                return Err(format!(
                    "The manual partition assignment includes the broker {} more than once.",
                    broker.0
                ));
            }
        }
    }
    if !partitions.iter().copied().eq(0..assignments.len() as i32) {
        return Err("partitions should be a consecutive 0-based integer sequence".into());
    }
    Ok(())
}

fn create_one(
    ctx: &BrokerContext,
    topic: &CreatableTopic,
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
    let fetch_resolve = overrides.get(crate::smt::FETCH_RESOLVE).map(String::as_str);
    crate::smt::check_fetch_resolve(ctx.smt().as_deref(), fetch_resolve)
        .and_then(|()| {
            ctx.log
                .create_topic(&topic.name, partitions, overrides, validate_only)
        })
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
    // Unlinking every segment file and fsyncing the topic metadata: not on a runtime worker.
    let (log, name) = (ctx.log.clone(), topic.name.clone());
    let deleted = match tokio::task::spawn_blocking(move || log.delete_topic(&name)).await {
        Ok(result) => result.map_err(|e| (e.kafka_error_code(), e.to_string())),
        Err(join) => Err((
            ResponseError::KafkaStorageError.code(),
            format!("deleting the topic's files failed: {join}"),
        )),
    };
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

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::BrokerId;
    use kafka_protocol::messages::create_topics_request::CreatableTopicConfig;

    use super::*;
    use crate::kafka::test_support::TestBroker;

    fn topic(name: &str, num_partitions: i32, replication_factor: i16) -> CreatableTopic {
        CreatableTopic::default()
            .with_name(TopicName(str_bytes(name)))
            .with_num_partitions(num_partitions)
            .with_replication_factor(replication_factor)
    }

    /// `(partition, brokers)` as a manual assignment.
    fn assigned(name: &str, assignments: &[(i32, &[i32])]) -> CreatableTopic {
        topic(name, -1, -1).with_assignments(
            assignments
                .iter()
                .map(|(partition, brokers)| {
                    CreatableReplicaAssignment::default()
                        .with_partition_index(*partition)
                        .with_broker_ids(brokers.iter().map(|b| BrokerId(*b)).collect())
                })
                .collect(),
        )
    }

    #[tokio::test]
    async fn create_topics_refuses_what_kafka_refuses_and_creates_the_rest() {
        let broker = TestBroker::start(&[("node.id", "3")]).await;
        let ctx = &broker.ctx;
        let null_config = topic("null-config", 1, 1).with_configs(vec![
            CreatableTopicConfig::default()
                .with_name(str_bytes("retention.ms"))
                .with_value(None),
        ]);
        let mut assign_and_count = assigned("assign-and-count", &[(0, &[3])]);
        assign_and_count.num_partitions = 1;
        let mut assign_and_rf = assigned("assign-and-rf", &[(0, &[3])]);
        assign_and_rf.replication_factor = 1;
        let request = CreateTopicsRequest::default().with_topics(vec![
            topic("rf-zero", 1, 0),
            topic("rf-minus-two", 1, -2),
            assigned("other-broker", &[(0, &[0])]),
            assigned("two-replicas", &[(0, &[3, 3])]),
            assigned("no-replica", &[(0, &[])]),
            assigned("gap", &[(0, &[3]), (2, &[3])]),
            assign_and_count,
            assign_and_rf,
            null_config,
            topic("twice", 1, 1),
            topic("twice", 2, 1),
            assigned("assigned", &[(1, &[3]), (0, &[3])]),
            topic("defaults", -1, -1),
        ]);
        let response = create_topics(ctx, &request, 7);
        let answers: Vec<(String, i16, String)> = response
            .topics
            .iter()
            .map(|t| {
                let message = t.error_message.as_ref().map_or("", |m| m.as_str());
                (t.name.to_string(), t.error_code, message.to_owned())
            })
            .collect();
        let expected: Vec<(&str, ResponseError, &str)> = vec![
            (
                "rf-zero",
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ),
            (
                "rf-minus-two",
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ),
            (
                "other-broker",
                ResponseError::InvalidReplicaAssignment,
                "The manual partition assignment includes broker 0, but no such broker is registered.",
            ),
            (
                "two-replicas",
                ResponseError::InvalidReplicaAssignment,
                "The manual partition assignment includes the broker 3 more than once.",
            ),
            (
                "no-replica",
                ResponseError::InvalidReplicaAssignment,
                "The manual partition assignment includes an empty replica list.",
            ),
            (
                "gap",
                ResponseError::InvalidReplicaAssignment,
                "partitions should be a consecutive 0-based integer sequence",
            ),
            (
                "assign-and-count",
                ResponseError::InvalidRequest,
                "A manual partition assignment was specified, but numPartitions was not set to -1.",
            ),
            (
                "assign-and-rf",
                ResponseError::InvalidRequest,
                "A manual partition assignment was specified, but replicationFactor was not set to -1.",
            ),
            (
                "null-config",
                ResponseError::InvalidConfig,
                "Null value not supported for topic configs: retention.ms",
            ),
            (
                "twice",
                ResponseError::InvalidRequest,
                "Duplicate topic name.",
            ),
            (
                "twice",
                ResponseError::InvalidRequest,
                "Duplicate topic name.",
            ),
        ];
        for (answer, (name, error, message)) in answers.iter().zip(&expected) {
            assert_eq!(
                answer,
                &(name.to_string(), error.code(), message.to_string())
            );
            assert!(ctx.log.topic(name).is_none(), "{name} was created");
        }
        assert_eq!(
            &answers[expected.len()..],
            &[
                ("assigned".to_string(), 0, String::new()),
                ("defaults".to_string(), 0, String::new()),
            ]
        );
        assert_eq!(ctx.log.topic("assigned").unwrap().partitions, 2);
        assert_eq!(ctx.log.topic("defaults").unwrap().partitions, 1);
        broker.stop().await;
    }

    #[tokio::test]
    async fn fetch_resolve_is_refused_without_a_claim_store() {
        use kafka_protocol::messages::{
            AlterConfigsRequest, IncrementalAlterConfigsRequest, alter_configs_request,
            incremental_alter_configs_request,
        };

        use crate::kafka::handlers::admin_configs::{alter_configs, incremental_alter_configs};
        use std::sync::Arc;

        use crate::smt::{FETCH_RESOLVE, SmtEngine};

        const TOPIC_RESOURCE: i8 = 2;
        let with_resolve = |name: &str, value: &str| {
            topic(name, 1, 1).with_configs(vec![
                CreatableTopicConfig::default()
                    .with_name(str_bytes(FETCH_RESOLVE))
                    .with_value(Some(str_bytes(value))),
            ])
        };
        let create = |ctx: &BrokerContext, topic: CreatableTopic| {
            let request = CreateTopicsRequest::default().with_topics(vec![topic]);
            let answer = create_topics(ctx, &request, 7).topics.remove(0);
            let message = answer
                .error_message
                .map(|m| m.to_string())
                .unwrap_or_default();
            (answer.error_code, message)
        };
        let incremental = |ctx: &BrokerContext, value: &str| {
            let resource = incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(str_bytes("plain"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(str_bytes(FETCH_RESOLVE))
                        .with_config_operation(0)
                        .with_value(Some(str_bytes(value))),
                ]);
            let request = IncrementalAlterConfigsRequest::default().with_resources(vec![resource]);
            incremental_alter_configs(ctx, &request).responses[0].error_code
        };
        let replace = |ctx: &BrokerContext, value: &str| {
            let resource = alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(TOPIC_RESOURCE)
                .with_resource_name(str_bytes("plain"))
                .with_configs(vec![
                    alter_configs_request::AlterableConfig::default()
                        .with_name(str_bytes(FETCH_RESOLVE))
                        .with_value(Some(str_bytes(value))),
                ]);
            let request = AlterConfigsRequest::default().with_resources(vec![resource]);
            alter_configs(ctx, &request).responses[0].error_code
        };
        let invalid_config = ResponseError::InvalidConfig.code();

        // claimcheck.enable=false: an engine without claim store (or none at all).
        let broker = TestBroker::start(&[]).await;
        let ctx = &broker.ctx;
        let (code, message) = create(ctx, with_resolve("resolving", "true"));
        assert_eq!(code, invalid_config, "{message}");
        assert!(
            message.contains(FETCH_RESOLVE) && message.contains("claimcheck.enable=false"),
            "{message}"
        );
        assert!(ctx.log.topic("resolving").is_none());
        ctx.set_smt(Arc::new(SmtEngine::without_claims()));
        assert_eq!(
            create(ctx, with_resolve("resolving", "TRUE")).0,
            invalid_config
        );
        assert_eq!(create(ctx, with_resolve("plain", "false")).0, 0);
        assert_eq!(incremental(ctx, "true"), invalid_config);
        assert_eq!(replace(ctx, "true"), invalid_config);
        assert_eq!(incremental(ctx, "false"), 0);
        let overrides = ctx.log.topic("plain").unwrap().overrides;
        assert_eq!(
            overrides.get(FETCH_RESOLVE).map(String::as_str),
            Some("false")
        );

        // With the claim-check gateway: accepted everywhere.
        let store = strata_claimcheck::ClaimStore::new(
            Arc::new(object_store::memory::InMemory::new()),
            "c",
        )
        .unwrap();
        ctx.set_smt(Arc::new(SmtEngine::with_claims(store, Default::default())));
        assert_eq!(create(ctx, with_resolve("resolving", "true")).0, 0);
        assert_eq!(incremental(ctx, "true"), 0);
        assert_eq!(replace(ctx, "true"), 0);
        broker.stop().await;
    }
}
