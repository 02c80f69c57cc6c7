//! DeleteRecords: moves a partition's log start offset forward.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::kafka::context::BrokerContext;

/// `offset = -1` means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub fn delete_records(
    ctx: &BrokerContext,
    request: &DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
                    let Some(log) = ctx.log.partition(&topic.name, p.partition_index) else {
                        return result.with_low_watermark(-1).with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    let offset = if p.offset == HIGH_WATERMARK { log.high_watermark() } else { p.offset };
                    match log.delete_records_before(offset) {
                        Ok(low_watermark) => {
                            tracing::info!(topic = %topic.name.as_str(), partition = p.partition_index, low_watermark, "records deleted");
                            result.with_low_watermark(low_watermark)
                        }
                        Err(e) => result.with_low_watermark(-1).with_error_code(e.kafka_error_code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default().with_name(topic.name.clone()).with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
