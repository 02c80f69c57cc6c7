//! DeleteRecords: moves a partition's log start offset forward.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::kafka::context::BrokerContext;

/// `offset = -1` means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

/// Each partition's move is done on the blocking pool: it fsyncs the new log start (and
/// deletes whole segments) under the partition's lock, which must not hold a runtime worker.
pub async fn delete_records(
    ctx: &BrokerContext,
    request: &DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let result =
                DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            let Some(log) = ctx.log.partition(&topic.name, p.partition_index) else {
                partitions.push(
                    result
                        .with_low_watermark(-1)
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                );
                continue;
            };
            let offset = if p.offset == HIGH_WATERMARK {
                log.high_watermark()
            } else {
                p.offset
            };
            let moved =
                tokio::task::spawn_blocking(move || log.delete_records_before(offset)).await;
            partitions.push(match moved {
                Ok(Ok(low_watermark)) => {
                    tracing::info!(topic = %topic.name.as_str(), partition = p.partition_index, low_watermark, "records deleted");
                    result.with_low_watermark(low_watermark)
                }
                Ok(Err(e)) => result
                    .with_low_watermark(-1)
                    .with_error_code(e.kafka_error_code()),
                Err(join) => {
                    tracing::error!(topic = %topic.name.as_str(), partition = p.partition_index, error = %join, "DeleteRecords task failed");
                    result
                        .with_low_watermark(-1)
                        .with_error_code(ResponseError::KafkaStorageError.code())
                }
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
