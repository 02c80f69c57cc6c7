//! Produce: each partition's records go to `PartitionLog::append` as the client sent them.
//!
//! acks=-1 appends with `Durability::Fsync` (answered after the fdatasync that covers the batch);
//! acks=1 and acks=0 with `Durability::Written`. acks=0 gets no response at all. The partitions
//! of one request are appended concurrently, so one group-commit fsync can cover all of them.
//! Idempotent-producer sequence checks happen inside the log; a duplicate retry is answered with
//! the original offsets.
//! Topics with a transform chain (`transforms=` topic configs) go through `crate::smt::append`,
//! which re-encodes the batch after the chain (see `smt/produce.rs`).
//!
//! Batches only the broker may write are refused here, not in the log engine's validation,
//! which the broker's own writers (the claim-check gateway, transform chains) share: control
//! batches (INVALID_RECORD, as Kafka), and transactional batches, since there are no
//! transactions (see [`TRANSACTIONAL_BATCHES_REFUSED`]).

use bytes::Bytes;
use futures::future::join_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use strata_format::BatchIter;

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

/// Every partition of a request holding a transactional batch without a transactional id gets
/// this, and nothing is appended: it is Kafka's own answer to that request, a non-retriable
/// refusal clients already handle. (With a transactional id the request gets
/// [`TRANSACTIONS_UNSUPPORTED`]; no client gets that far, as InitProducerId refused the id.)
/// Appending them would store records whose transaction no one can ever commit or abort.
const TRANSACTIONAL_BATCHES_REFUSED: ResponseError =
    ResponseError::TransactionalIdAuthorizationFailed;

/// Whether any partition of the request carries a batch with the transactional attribute.
fn has_transactional_batches(request: &ProduceRequest) -> bool {
    request
        .topic_data
        .iter()
        .flat_map(|topic| &topic.partition_data)
        .filter_map(|partition| partition.records.as_ref())
        .any(|records| BatchIter::new(records.clone()).any(|b| b.is_transactional()))
}

/// Control batches (transaction markers) are written by the broker only; Kafka's message.
fn control_batch_refusal(records: &Bytes, topic: &str, partition: i32) -> Option<String> {
    BatchIter::new(records.clone())
        .any(|b| b.is_control())
        .then(|| {
            format!("Clients are not allowed to write control records in topic partition {topic}-{partition}.")
        })
}

/// `response` with `code`, and `message` where the version carries one.
fn refused(
    response: PartitionProduceResponse,
    code: i16,
    message: &str,
    version: i16,
) -> PartitionProduceResponse {
    let response = response.with_error_code(code);
    if version >= ERROR_MESSAGE_VERSION {
        response.with_error_message(Some(str_bytes(message)))
    } else {
        response
    }
}

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
    let refuse_transactional_batches = !transactional && has_transactional_batches(request);
    if refuse_transactional_batches {
        tracing::info!("produce refused: transactional record batches without a transactional id");
    }

    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic in &request.topic_data {
        let appends = topic.partition_data.iter().map(|partition_data| async {
            let index = partition_data.index;
            // Kafka's answer for a failed partition has no offset: -1, not the default 0,
            // which would name a real offset.
            let response = PartitionProduceResponse::default()
                .with_index(index)
                .with_base_offset(-1);
            if refuse_transactional_batches {
                return refused(
                    response,
                    TRANSACTIONAL_BATCHES_REFUSED.code(),
                    "transactional record batches are refused: this broker has no transactions",
                    version,
                );
            }
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
            let refusal = refusal.or_else(|| {
                control_batch_refusal(&records, &topic.name, index)
                    .map(|message| (ResponseError::InvalidRecord.code(), message))
            });
            if let Some((code, message)) = refusal {
                tracing::debug!(topic = %topic.name.as_str(), partition = index, %message, "append refused");
                return refused(response, code, &message, version);
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

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::*;
    use crate::kafka::test_support::TestBroker;

    /// One record batch of one record, with the given batch attributes.
    fn batch(transactional: bool, control: bool) -> Bytes {
        let record = Record {
            transactional,
            control,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: if transactional { 5 } else { -1 },
            producer_epoch: if transactional { 0 } else { -1 },
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: if transactional { 0 } else { -1 },
            timestamp: crate::log::now_ms(),
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        };
        let mut buffer = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut buffer, &[record], &options).unwrap();
        buffer.freeze()
    }

    async fn produce(
        ctx: &BrokerContext,
        batches: Vec<Bytes>,
        version: i16,
    ) -> Vec<(i16, Option<String>)> {
        let partitions = batches
            .into_iter()
            .enumerate()
            .map(|(index, records)| {
                PartitionProduceData::default()
                    .with_index(index as i32)
                    .with_records(Some(records))
            })
            .collect();
        let request = ProduceRequest::default().with_acks(1).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(str_bytes("p")))
                .with_partition_data(partitions),
        ]);
        let response = handle(ctx, &request, version).await.unwrap();
        response.responses[0]
            .partition_responses
            .iter()
            .map(|p| {
                (
                    p.error_code,
                    p.error_message.as_ref().map(|m| m.to_string()),
                )
            })
            .collect()
    }

    fn log_end(ctx: &BrokerContext, partition: i32) -> i64 {
        ctx.log.partition("p", partition).unwrap().high_watermark()
    }

    #[tokio::test]
    async fn control_batches_from_clients_are_invalid_records() {
        let broker = TestBroker::start(&[]).await;
        let ctx = &broker.ctx;
        ctx.log
            .create_topic("p", 3, Default::default(), false)
            .unwrap();
        let plain = batch(false, false);
        let answers = produce(ctx, vec![plain.clone(), batch(false, true), plain], 9).await;
        let control_refused = (
            ResponseError::InvalidRecord.code(),
            Some("Clients are not allowed to write control records in topic partition p-1.".into()),
        );
        assert_eq!(answers, vec![(0, None), control_refused, (0, None)]);
        assert_eq!(
            [log_end(ctx, 0), log_end(ctx, 1), log_end(ctx, 2)],
            [1, 0, 1]
        );
        broker.stop().await;
    }

    #[tokio::test]
    async fn failed_partitions_report_base_offset_minus_one() {
        let broker = TestBroker::start(&[]).await;
        let ctx = &broker.ctx;
        ctx.log
            .create_topic("p", 2, Default::default(), false)
            .unwrap();
        let plain = batch(false, false);
        // One record in first, so that success answers offset 1, not the default 0.
        assert_eq!(produce(ctx, vec![plain.clone()], 9).await, vec![(0, None)]);
        let partitions = [(0, plain.clone()), (1, batch(false, true)), (7, plain)]
            .into_iter()
            .map(|(index, records)| {
                PartitionProduceData::default()
                    .with_index(index)
                    .with_records(Some(records))
            })
            .collect();
        let request = ProduceRequest::default().with_acks(1).with_topic_data(vec![
            TopicProduceData::default()
                .with_name(TopicName(str_bytes("p")))
                .with_partition_data(partitions),
        ]);
        let response = handle(ctx, &request, 9).await.unwrap();
        let answers: Vec<(i32, i16, i64)> = response.responses[0]
            .partition_responses
            .iter()
            .map(|p| (p.index, p.error_code, p.base_offset))
            .collect();
        assert_eq!(
            answers,
            vec![
                (0, 0, 1),
                (1, ResponseError::InvalidRecord.code(), -1),
                (7, ResponseError::UnknownTopicOrPartition.code(), -1),
            ]
        );
        broker.stop().await;
    }

    #[tokio::test]
    async fn transactional_batches_refuse_the_whole_request() {
        let broker = TestBroker::start(&[]).await;
        let ctx = &broker.ctx;
        ctx.log
            .create_topic("p", 2, Default::default(), false)
            .unwrap();
        let answers = produce(ctx, vec![batch(false, false), batch(true, false)], 7).await;
        let code = ResponseError::TransactionalIdAuthorizationFailed.code();
        assert_eq!(answers, vec![(code, None), (code, None)]);
        assert_eq!(
            [log_end(ctx, 0), log_end(ctx, 1)],
            [0, 0],
            "nothing appended"
        );
        // A transaction marker is transactional too: the same refusal.
        let answers = produce(ctx, vec![batch(true, true)], 9).await;
        assert_eq!(answers[0].0, code);
        assert!(answers[0].1.as_ref().unwrap().contains("no transactions"));
        broker.stop().await;
    }
}
