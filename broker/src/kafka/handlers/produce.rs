//! Produce: each partition's records go to `PartitionLog::append` as the client sent them.
//!
//! acks=-1 appends with `Durability::Fsync` (answered after the fdatasync that covers the batch);
//! acks=1 and acks=0 with `Durability::Written`. acks=0 gets no response at all. The partitions
//! of one request are appended concurrently, so one group-commit fsync can cover all of them.
//! Idempotent-producer sequence checks happen inside the log; a duplicate retry is answered with
//! the original offsets.
//! Topics with a transform chain (`transforms=` topic configs) go through `crate::smt::append`,
//! which re-encodes the batch after the chain (see `smt/produce.rs`).

use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::producer_ids::TRANSACTIONS_UNSUPPORTED;
use super::str_bytes;
use crate::kafka::context::BrokerContext;
use crate::log::Durability;

/// Refuses appends a subsystem cannot absorb (the remote tier when uploads stall).
pub trait AppendAdmission: Send + Sync {
    /// `Err((kafka error code, message))` to refuse an append to `log`.
    fn admit(&self, log: &crate::log::PartitionLog) -> Result<(), (i16, String)>;
}

/// Produce v8+ carries per-partition error messages.
const ERROR_MESSAGE_VERSION: i16 = 8;

/// The one replica of this single-node broker is the whole in-sync set, so an acks=all append
/// (a produce with acks=-1, a claim-check ticket) to a topic whose `min.insync.replicas` is above
/// 1 is refused, as Kafka refuses it when the ISR is too small: acknowledging it would promise
/// copies that do not exist. acks=0/1 produce is not subject to the setting, as in Kafka.
pub(crate) fn not_enough_replicas(log: &crate::log::PartitionLog) -> Option<(i16, String)> {
    let required = log.config().min_insync_replicas;
    (required > IN_SYNC_REPLICAS).then(|| {
        (
            ResponseError::NotEnoughReplicas.code(),
            format!(
                "min.insync.replicas={required} but this single-node broker has {IN_SYNC_REPLICAS} \
                 in-sync replica; acks=all appends need the topic's min.insync.replicas at 1"
            ),
        )
    })
}

/// Replicas of every partition: this broker alone.
const IN_SYNC_REPLICAS: i32 = 1;

/// `None` when the request must not be answered (acks=0).
pub async fn handle(
    ctx: &BrokerContext,
    request: &ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let durability = match request.acks {
        -1 => Ok(Durability::Fsync),
        0 | 1 => Ok(Durability::Written),
        _ => Err(ResponseError::InvalidRequiredAcks),
    };
    let transactional = request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.is_empty());

    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in &request.topic_data {
        let appends = topic.partition_data.iter().map(|partition_data| async {
            let index = partition_data.index;
            let response = PartitionProduceResponse::default().with_index(index);
            let durability = match durability {
                Ok(durability) if !transactional => durability,
                Ok(_) => return response.with_error_code(TRANSACTIONS_UNSUPPORTED.code()),
                Err(error) => return response.with_error_code(error.code()),
            };
            let Some(log) = ctx.log.partition(&topic.name, index) else {
                return response.with_error_code(ResponseError::UnknownTopicOrPartition.code());
            };
            let Some(records) = partition_data.records.clone() else {
                return response.with_error_code(ResponseError::InvalidRecord.code());
            };
            let refusal = (request.acks == -1)
                .then(|| not_enough_replicas(&log))
                .flatten()
                .or_else(|| ctx.append_admission().and_then(|a| a.admit(&log).err()));
            if let Some((code, message)) = refusal {
                tracing::debug!(topic = %topic.name.as_str(), partition = index, %message, "append refused");
                let response = response.with_error_code(code);
                return if version >= ERROR_MESSAGE_VERSION {
                    response.with_error_message(Some(str_bytes(&message)))
                } else {
                    response
                };
            }
            let bytes = records.len();
            match crate::smt::append(ctx.smt().as_ref(), &log, records, durability).await {
                Ok(appended) => {
                    tracing::trace!(topic = %topic.name.as_str(), partition = index, base_offset = appended.base_offset,
                        bytes, duplicate = appended.duplicate, "produced");
                    let response = response
                        .with_base_offset(appended.base_offset)
                        .with_log_append_time_ms(appended.log_append_time);
                    if version >= 5 { response.with_log_start_offset(appended.log_start_offset) } else { response }
                }
                Err(err) => {
                    tracing::debug!(topic = %topic.name.as_str(), partition = index, error = %err, "append refused");
                    let response = response.with_error_code(err.kafka_error_code());
                    if version >= ERROR_MESSAGE_VERSION {
                        response.with_error_message(Some(str_bytes(&err.to_string())))
                    } else {
                        response
                    }
                }
            }
        });
        let partition_responses = join_all(appends).await;
        topics.push(
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_partition_responses(partition_responses),
        );
    }

    if request.acks == 0 {
        return None;
    }
    Some(ProduceResponse::default().with_responses(topics))
}
