//! ListOffsets: -1 latest, -2 earliest, -3 max timestamp, -4 earliest local, -5 latest tiered,
//! or the first offset whose timestamp is >= the given one.
//!
//! -4 and -5 go through [`TierOffsets`], the hook the remote tier plugs into
//! ([`crate::kafka::BrokerContext::set_tier_offsets`]). Until it does, [`LocalOnly`] answers
//! from local data: the earliest local offset is the log start offset, and nothing is tiered
//! (-5 answers offset -1, as Kafka does for a topic without remote storage).
//! A timestamp lookup on a partition whose log starts before its local data asks the remote tier
//! first ([`super::fetch::ColdReader::offset_for_timestamp`]), as Kafka does.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::kafka::context::BrokerContext;
use crate::log::PartitionLog;

pub const LATEST_TIMESTAMP: i64 = -1;
pub const EARLIEST_TIMESTAMP: i64 = -2;
pub const MAX_TIMESTAMP: i64 = -3;
pub const EARLIEST_LOCAL_TIMESTAMP: i64 = -4;
pub const LATEST_TIERED_TIMESTAMP: i64 = -5;

/// What only the remote tier knows about a partition's offsets.
pub trait TierOffsets: Send + Sync {
    /// The first offset still on local disk (ListOffsets -4).
    fn earliest_local_offset(&self, log: &PartitionLog) -> i64;
    /// The last offset copied to the remote tier, or `None` when nothing is (ListOffsets -5).
    fn latest_tiered_offset(&self, log: &PartitionLog) -> Option<i64>;
    /// Whether `log`'s log start is final as far as the remote tier knows: false while it may
    /// still move down to the remote log start (the store has not answered since the start).
    fn log_start_settled(&self, _log: &PartitionLog) -> bool {
        true
    }
    /// Whether a restore from the bucket is unfinished: topics may be missing that come back.
    fn restoring(&self) -> bool {
        false
    }
}

/// The answer without a remote tier: everything is local, nothing is tiered.
pub struct LocalOnly;

impl TierOffsets for LocalOnly {
    fn earliest_local_offset(&self, log: &PartitionLog) -> i64 {
        log.log_start_offset()
    }

    fn latest_tiered_offset(&self, _log: &PartitionLog) -> Option<i64> {
        None
    }
}

pub async fn handle(
    ctx: &BrokerContext,
    request: &ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let tier = ctx.tier_offsets();
    let cold = ctx.cold_reader();
    let mut topics = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let response = {
                let answer =
                    ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
                let Some(log) = ctx.log.partition(&topic.name, p.partition_index) else {
                    partitions.push(
                        answer.with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                    );
                    continue;
                };
                let remote = match (&cold, p.timestamp) {
                    (Some(cold), ts)
                        if ts >= 0 && log.log_start_offset() < log.local_log_start_offset() =>
                    {
                        cold.offset_for_timestamp(log.clone(), ts).await
                    }
                    _ => Ok(None),
                };
                let resolved = match remote {
                    Ok(Some(found)) => Ok(found),
                    Ok(None) => resolve(&log, tier.as_ref(), p.timestamp),
                    Err(code) => Err(code),
                };
                match resolved {
                    Ok((offset, timestamp)) => {
                        let answer = answer.with_offset(offset).with_timestamp(timestamp);
                        if version >= 4 && offset >= 0 {
                            answer.with_leader_epoch(ctx.leader_epoch())
                        } else {
                            answer
                        }
                    }
                    Err(code) => answer.with_error_code(code),
                }
            };
            partitions.push(response);
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// `(offset, timestamp)` for one partition, or a Kafka error code.
fn resolve(log: &PartitionLog, tier: &dyn TierOffsets, timestamp: i64) -> Result<(i64, i64), i16> {
    const NONE: (i64, i64) = (-1, -1);
    Ok(match timestamp {
        LATEST_TIMESTAMP => (log.high_watermark(), -1),
        EARLIEST_TIMESTAMP => (log.log_start_offset(), -1),
        MAX_TIMESTAMP => log.max_timestamp().unwrap_or(NONE),
        EARLIEST_LOCAL_TIMESTAMP => (tier.earliest_local_offset(log), -1),
        LATEST_TIERED_TIMESTAMP => (tier.latest_tiered_offset(log).unwrap_or(-1), -1),
        ts if ts >= 0 => log
            .offset_for_timestamp(ts)
            .map_err(|e| e.kafka_error_code())?
            .unwrap_or(NONE),
        _ => return Err(ResponseError::InvalidRequest.code()),
    })
}
