//! OffsetCommit, OffsetFetch (v8+ batched groups) and OffsetDelete.

use std::collections::{HashMap, HashSet};
use std::time::{SystemTime, UNIX_EPOCH};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};

use super::str_bytes;
use crate::group::{CommittedOffset, GroupCoordinator};
use crate::kafka::context::BrokerContext;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// OffsetCommit. Partitions that do not exist answer UNKNOWN_TOPIC_OR_PARTITION and are not
/// stored (as in Kafka; no topic is auto-created here), so a deleted topic's offsets cannot come
/// back through a late commit; the others are committed or share the group's error.
pub async fn offset_commit(
    ctx: &BrokerContext,
    request: &OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let exists = |topic: &str, partition: i32| ctx.log.partition(topic, partition).is_some();
    let mut unknown: HashSet<(String, i32)> = HashSet::new();
    let commit_timestamp_ms = now_ms();
    let mut commits = Vec::new();
    for topic in &request.topics {
        for p in &topic.partitions {
            if !exists(&topic.name, p.partition_index) {
                unknown.insert((topic.name.to_string(), p.partition_index));
                continue;
            }
            let committed = CommittedOffset {
                offset: p.committed_offset,
                leader_epoch: if version >= 6 {
                    p.committed_leader_epoch
                } else {
                    -1
                },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
                commit_timestamp_ms,
            };
            commits.push((topic.name.to_string(), p.partition_index, committed));
        }
    }
    // Checked again when journaled: the topic may be deleted meanwhile.
    let result = ctx
        .groups
        .commit_offsets(
            &request.group_id,
            request.member_id.as_str(),
            request.group_instance_id.as_deref(),
            request.generation_id_or_member_epoch,
            commits,
            exists,
        )
        .await;
    let group_error = match result {
        Ok(vanished) => {
            unknown.extend(vanished);
            0
        }
        Err(error) => {
            tracing::info!(group_id = %request.group_id.as_str(), member_id = %request.member_id, error_code = error.code(), "offset commit refused");
            error.code()
        }
    };
    if !unknown.is_empty() {
        tracing::debug!(group_id = %request.group_id.as_str(), partitions = ?unknown, "offset commit for unknown partitions");
    }
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let key = (topic.name.to_string(), p.partition_index);
                    let error_code = if unknown.contains(&key) {
                        ResponseError::UnknownTopicOrPartition.code()
                    } else {
                        group_error
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error_code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One `(topic, partition)` lookup: `(offset, leader epoch, metadata)`, `-1` when uncommitted.
fn lookup(
    groups: &GroupCoordinator,
    group: &str,
    topic: &str,
    partition: i32,
) -> (i64, i32, String) {
    match groups.offsets().fetch(group, topic, partition) {
        Some(c) => (c.offset, c.leader_epoch, c.metadata.unwrap_or_default()),
        None => (-1, -1, String::new()),
    }
}

/// The `(topic, partitions)` asked for, or every committed one when `requested` is `None`.
fn wanted(
    groups: &GroupCoordinator,
    group: &str,
    requested: Option<Vec<(TopicName, Vec<i32>)>>,
) -> Vec<(TopicName, Vec<i32>)> {
    match requested {
        Some(topics) => topics,
        None => {
            let mut by_topic: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
            for (topic, partition, _) in groups.offsets().fetch_all(group) {
                by_topic.entry(topic).or_default().push(partition);
            }
            by_topic
                .into_iter()
                .map(|(t, ps)| (TopicName(str_bytes(&t)), ps))
                .collect()
        }
    }
}

pub fn offset_fetch(
    groups: &GroupCoordinator,
    request: &OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let results = request
            .groups
            .iter()
            .map(|group| {
                let requested = group.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                        .collect()
                });
                let topics = wanted(groups, &group.group_id, requested)
                    .into_iter()
                    .map(|(name, partitions)| {
                        let partitions = partitions
                            .into_iter()
                            .map(|p| {
                                let (offset, epoch, metadata) =
                                    lookup(groups, &group.group_id, &name, p);
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(str_bytes(&metadata)))
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(name)
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(group.group_id.clone())
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(results);
    }
    let requested = request.topics.as_ref().map(|ts| {
        ts.iter()
            .map(|t| (t.name.clone(), t.partition_indexes.clone()))
            .collect()
    });
    let topics = wanted(groups, &request.group_id, requested)
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|p| {
                    let (offset, epoch, metadata) = lookup(groups, &request.group_id, &name, p);
                    let partition = OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(offset)
                        .with_metadata(Some(str_bytes(&metadata)));
                    if version >= 5 {
                        partition.with_committed_leader_epoch(epoch)
                    } else {
                        partition
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetFetchResponse::default().with_topics(topics)
}

/// OffsetDelete (`kafka-consumer-groups --delete-offsets`): partitions of topics that do not
/// exist answer UNKNOWN_TOPIC_OR_PARTITION, as in Kafka; the rest follow the group rules of
/// [`GroupCoordinator::delete_offsets`].
pub async fn offset_delete(
    ctx: &BrokerContext,
    request: &OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let exists = |name: &TopicName, partition: i32| ctx.log.partition(name, partition).is_some();
    let known = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(move |p| (&t.name, p.partition_index))
        })
        .filter(|&(name, partition)| exists(name, partition))
        .map(|(name, partition)| (name.to_string(), partition))
        .collect();
    let group_results: HashMap<(String, i32), Option<ResponseError>> =
        match ctx.groups.delete_offsets(&request.group_id, known).await {
            Ok(results) => results.into_iter().collect(),
            Err(error) => return OffsetDeleteResponse::default().with_error_code(error.code()),
        };
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let key = (topic.name.to_string(), p.partition_index);
                    let error = match group_results.get(&key) {
                        Some(result) => *result,
                        None => Some(ResponseError::UnknownTopicOrPartition),
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::offset_commit_request::{
        OffsetCommitRequestPartition, OffsetCommitRequestTopic,
    };
    use kafka_protocol::messages::{DeleteTopicsRequest, GroupId};

    use super::*;
    use crate::kafka::handlers::admin_topics;
    use crate::kafka::test_support::TestBroker;

    const GROUP: &str = "g";

    /// A standalone commit (generation -1) of `(topic, partition, offset)`s: the error codes.
    async fn commit(ctx: &BrokerContext, offsets: &[(&str, i32, i64)]) -> Vec<(String, i32, i16)> {
        let topics = offsets
            .iter()
            .map(|&(topic, partition, offset)| {
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(partition)
                            .with_committed_offset(offset),
                    ])
            })
            .collect();
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(GROUP)))
            .with_generation_id_or_member_epoch(-1)
            .with_topics(topics);
        offset_commit(ctx, &request, 8)
            .await
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.name.to_string(), p.partition_index, p.error_code))
            })
            .collect()
    }

    fn committed(ctx: &BrokerContext, topic: &str, partition: i32) -> Option<i64> {
        ctx.groups
            .offsets()
            .fetch(GROUP, topic, partition)
            .map(|c| c.offset)
    }

    #[tokio::test]
    async fn commits_to_unknown_partitions_are_refused_and_create_no_topic() {
        // Auto-creation is on (the default): OffsetCommit must still not create topics.
        let broker = TestBroker::start(&[("auto.create.topics.enable", "true")]).await;
        let ctx = &broker.ctx;
        ctx.log
            .create_topic("t", 2, Default::default(), false)
            .unwrap();
        let codes = commit(ctx, &[("t", 0, 5), ("t", 2, 6), ("missing", 0, 7)]).await;
        assert_eq!(
            codes,
            vec![
                ("t".to_string(), 0, 0),
                ("t".to_string(), 2, 3),
                ("missing".to_string(), 0, 3)
            ]
        );
        assert_eq!(committed(ctx, "t", 0), Some(5));
        assert_eq!(committed(ctx, "t", 2), None);
        assert_eq!(committed(ctx, "missing", 0), None);
        assert!(ctx.log.topic("missing").is_none(), "no auto-creation");
        broker.stop().await;
    }

    #[tokio::test]
    async fn deleting_a_topic_removes_its_offsets_so_a_recreated_topic_starts_clean() {
        let broker = TestBroker::start(&[]).await;
        let ctx = &broker.ctx;
        for topic in ["t", "kept"] {
            ctx.log
                .create_topic(topic, 2, Default::default(), false)
                .unwrap();
        }
        let codes = commit(ctx, &[("t", 0, 5), ("t", 1, 6), ("kept", 0, 7)]).await;
        assert!(codes.iter().all(|(_, _, code)| *code == 0), "{codes:?}");

        let request = DeleteTopicsRequest::default()
            .with_topic_names(vec![TopicName(str_bytes("t"))])
            .with_timeout_ms(1000);
        let deleted = admin_topics::delete_topics(ctx, &request, 4).await;
        assert_eq!(deleted.responses[0].error_code, 0);
        ctx.log
            .create_topic("t", 2, Default::default(), false)
            .unwrap();

        assert_eq!(
            committed(ctx, "t", 0),
            None,
            "stale offset of the old topic"
        );
        assert_eq!(
            committed(ctx, "t", 1),
            None,
            "stale offset of the old topic"
        );
        assert_eq!(committed(ctx, "kept", 0), Some(7));
        let codes = commit(ctx, &[("t", 1, 2)]).await;
        assert_eq!(codes, vec![("t".to_string(), 1, 0)]);
        assert_eq!(committed(ctx, "t", 1), Some(2));
        broker.stop().await;
    }
}
