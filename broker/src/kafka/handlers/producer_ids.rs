//! InitProducerId (idempotent producers) and the transactional APIs we refuse.
//!
//! Producer ids come from the durable allocator in `kafka/broker_state.rs`, always with epoch 0;
//! sequence numbers are checked by the log engine inside `PartitionLog::append`.
//! Transactions are out of scope. A transactional producer finds this broker as its
//! coordinator (FindCoordinator key type 1, `group_admin.rs`) and its InitProducerId is refused
//! with [`TRANSACTIONAL_ID_REFUSED`], so `init_transactions` fails at once with a fatal error
//! instead of retrying until its timeout; every other transaction API is answered with
//! [`TRANSACTIONS_UNSUPPORTED`].

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnResponse, AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, EndTxnResponse,
    InitProducerIdRequest, InitProducerIdResponse, ProducerId, TxnOffsetCommitRequest,
    TxnOffsetCommitResponse,
};

use crate::kafka::context::BrokerContext;

/// The error every transactional request gets.
pub const TRANSACTIONS_UNSUPPORTED: ResponseError = ResponseError::UnsupportedVersion;

/// InitProducerId with a transactional id. Not UNSUPPORTED_VERSION: librdkafka retries that
/// until `init_transactions` times out. TRANSACTIONAL_ID_AUTHORIZATION_FAILED is what Kafka
/// answers a producer that may not use its transactional id, and the one refusal that both
/// librdkafka (a fatal error) and the Java producer (`initTransactions` throws) give up on at
/// once; Redpanda with transactions disabled refuses transactional produce with it too.
pub const TRANSACTIONAL_ID_REFUSED: ResponseError =
    ResponseError::TransactionalIdAuthorizationFailed;

pub fn init_producer_id(
    ctx: &BrokerContext,
    request: &InitProducerIdRequest,
) -> InitProducerIdResponse {
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|id| !id.is_empty())
    {
        tracing::warn!(transactional_id = ?request.transactional_id, "InitProducerId refused: transactions are not supported");
        return InitProducerIdResponse::default().with_error_code(TRANSACTIONAL_ID_REFUSED.code());
    }
    match ctx.producer_ids.allocate() {
        Ok(producer_id) => {
            tracing::debug!(producer_id, "producer id allocated");
            InitProducerIdResponse::default()
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(0)
        }
        Err(err) => {
            tracing::error!(error = %err, "producer id allocation failed");
            InitProducerIdResponse::default()
                .with_error_code(ResponseError::UnknownServerError.code())
        }
    }
}

pub fn add_partitions_to_txn(request: &AddPartitionsToTxnRequest) -> AddPartitionsToTxnResponse {
    let results = request
        .v3_and_below_topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(TRANSACTIONS_UNSUPPORTED.code())
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(partitions)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results)
}

pub fn add_offsets_to_txn() -> AddOffsetsToTxnResponse {
    AddOffsetsToTxnResponse::default().with_error_code(TRANSACTIONS_UNSUPPORTED.code())
}

pub fn end_txn() -> EndTxnResponse {
    EndTxnResponse::default().with_error_code(TRANSACTIONS_UNSUPPORTED.code())
}

pub fn txn_offset_commit(request: &TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(TRANSACTIONS_UNSUPPORTED.code())
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
