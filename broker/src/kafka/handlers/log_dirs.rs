//! DescribeLogDirs (`kafka-log-dirs --describe`): the broker's one log directory, the local size
//! of each partition in it and, from v4, the volume's total and usable bytes.
//!
//! As in Kafka with KIP-405, a partition's size is what its segments take on local disk: once
//! tiering has uploaded segments and local retention removed them, the size shrinks while the
//! records stay readable from the remote tier.

use std::path::Path;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};

use super::str_bytes;
use crate::kafka::context::BrokerContext;

/// Kafka's value for volume sizes it cannot read.
const UNKNOWN_VOLUME_BYTES: i64 = -1;

pub fn describe_log_dirs(
    ctx: &BrokerContext,
    request: &DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // `None` asks for every partition; a named topic or partition this broker does not have is
    // left out of the answer, as Kafka does.
    let wanted: Vec<(String, Vec<i32>)> = match &request.topics {
        None => ctx
            .log
            .topics()
            .into_iter()
            .map(|t| (t.name, (0..t.partitions).collect()))
            .collect(),
        Some(topics) => topics
            .iter()
            .map(|t| (t.topic.to_string(), t.partitions.clone()))
            .collect(),
    };
    let topics = wanted
        .into_iter()
        .filter_map(|(name, partitions)| {
            let partitions: Vec<DescribeLogDirsPartition> = partitions
                .into_iter()
                .filter_map(|index| {
                    let log = ctx.log.partition(&name, index)?;
                    Some(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(index)
                            .with_partition_size(
                                i64::try_from(log.local_size_bytes()).unwrap_or(i64::MAX),
                            )
                            .with_offset_lag(0)
                            .with_is_future_key(false),
                    )
                })
                .collect();
            (!partitions.is_empty()).then(|| {
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(str_bytes(&name)))
                    .with_partitions(partitions)
            })
        })
        .collect();
    let dir = ctx.log.data_dir();
    let (total_bytes, usable_bytes) = volume_bytes(dir);
    let result = DescribeLogDirsResult::default()
        .with_log_dir(str_bytes(&absolute(dir)))
        .with_topics(topics)
        .with_total_bytes(total_bytes)
        .with_usable_bytes(usable_bytes)
        .with_error_code(if dir.is_dir() {
            0
        } else {
            ResponseError::KafkaStorageError.code()
        });
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// The size of the file system holding `dir` and the bytes an unprivileged writer may still
/// use there, or Kafka's -1 when they cannot be read.
fn volume_bytes(dir: &Path) -> (i64, i64) {
    match rustix::fs::statvfs(dir) {
        Ok(stats) => {
            let block = stats.f_frsize;
            let bytes =
                |blocks: u64| i64::try_from(blocks.saturating_mul(block)).unwrap_or(i64::MAX);
            (bytes(stats.f_blocks), bytes(stats.f_bavail))
        }
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "could not read the log directory's volume size");
            (UNKNOWN_VOLUME_BYTES, UNKNOWN_VOLUME_BYTES)
        }
    }
}

/// Kafka reports log dirs as absolute paths; a relative `--data-dir` is resolved against the
/// working directory.
fn absolute(dir: &Path) -> String {
    std::path::absolute(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string()
}
