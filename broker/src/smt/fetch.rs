//! Fetch-side resolution (`claimcheck.fetch.resolve=true`): claim tickets in a Fetch answer
//! are replaced by their verified payloads, for consumers that cannot change.
//!
//! Per partition answer, batch by batch: a batch without ticket headers is passed through
//! byte for byte; a batch with tickets is decoded, every ticket resolved (ClaimCheckResolve on
//! value and key: SHA-256 and size verified) and re-encoded with the same offsets, producer
//! fields and compression.
//!
//! Budget: at most `claimcheck.fetch.resolve.max.bytes` of payload per Fetch response (summed
//! over its partitions, from the tickets' `size` headers, checked before downloading). When the
//! next batch would exceed it, the answer ends before that batch (the consumer fetches it
//! next time). A batch that alone exceeds it, with nothing resolved before it in the
//! response, answers MESSAGE_TOO_LARGE (10) for the partition. A payload that fails
//! verification answers CORRUPT_MESSAGE (2), a missing or unreadable one KAFKA_STORAGE_ERROR
//! (56); when earlier batches were resolved they are returned and the error comes next fetch.
//! Consumers must accept responses bigger than what they asked for (librdkafka:
//! `receive.message.max.bytes` / `fetch.max.bytes`; the Java client: `fetch.max.bytes`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::records::RecordSet;
use strata_claimcheck::ticket::header;
use strata_connect_smt::TransformChain;
use strata_format::BatchIter;

use super::SmtEngine;
use super::batch::{decode, encode, from_connect, to_connect};
use crate::log::PartitionLog;

const MESSAGE_TOO_LARGE: i16 = 10;
const CORRUPT_MESSAGE: i16 = 2;
const KAFKA_STORAGE_ERROR: i16 = 56;

/// Resolves tickets in `partitions` (answers in the order of `logs`) for topics with
/// fetch-side resolution on.
pub async fn resolve_fetch(
    engine: Option<Arc<SmtEngine>>,
    logs: Vec<Option<Arc<PartitionLog>>>,
    mut partitions: Vec<PartitionData>,
) -> Vec<PartitionData> {
    let Some(engine) = engine else {
        return partitions;
    };
    let mut spent = 0u64;
    for (log, answer) in logs.iter().zip(partitions.iter_mut()) {
        let Some(log) = log else { continue };
        if answer.error_code != 0 {
            continue;
        }
        let Some(records) = answer.records.clone().filter(|r| !r.is_empty()) else {
            continue;
        };
        let Some((chain, limit)) = engine.fetch_chain(log) else {
            continue;
        };
        match resolve_records(&records, &chain, log, limit, &mut spent).await {
            Ok(resolved) => answer.records = Some(resolved),
            Err(code) => {
                answer.records = Some(Bytes::new());
                answer.error_code = code;
            }
        }
    }
    partitions
}

fn ticket_bytes(set: &RecordSet) -> Option<u64> {
    let key_size = header::SIZE.replacen("claimcheck.", "claimcheck.key.", 1);
    let mut total = None;
    for record in &set.records {
        for (name, value) in &record.headers {
            if name.as_str() == header::SIZE || name.as_str() == key_size {
                let size: u64 = value
                    .as_ref()
                    .and_then(|v| std::str::from_utf8(v).ok()?.trim().parse().ok())
                    .unwrap_or(0);
                total = Some(total.unwrap_or(0) + size);
            }
        }
    }
    total
}

async fn resolve_records(
    records: &Bytes,
    chain: &TransformChain,
    log: &PartitionLog,
    limit: u64,
    spent: &mut u64,
) -> Result<Bytes, i16> {
    let mut out = BytesMut::new();
    let mut iter = BatchIter::new(records.clone());
    let mut resolved_any = *spent > 0;
    let max_batch_bytes = log.config().max_message_bytes;
    for batch in iter.by_ref() {
        if batch.is_control() {
            out.extend_from_slice(batch.as_bytes());
            continue;
        }
        let Ok(set) = decode(&batch, max_batch_bytes) else {
            out.extend_from_slice(batch.as_bytes());
            continue;
        };
        let Some(size) = ticket_bytes(&set) else {
            out.extend_from_slice(batch.as_bytes());
            continue;
        };
        if spent.saturating_add(size) > limit {
            if resolved_any || !out.is_empty() {
                return Ok(out.freeze());
            }
            tracing::warn!(
                topic = log.topic(),
                partition = log.partition(),
                offset = batch.base_offset(),
                size,
                limit,
                "fetch-side resolution: batch payloads exceed claimcheck.fetch.resolve.max.bytes"
            );
            return Err(MESSAGE_TOO_LARGE);
        }
        let mut resolved = Vec::with_capacity(set.records.len());
        for record in &set.records {
            match chain
                .apply(to_connect(log.topic(), log.partition(), record))
                .await
            {
                Ok(Some(after)) => resolved.push(from_connect(record, after)),
                Ok(None) => resolved.push(record.clone()),
                Err(error) => {
                    tracing::warn!(topic = log.topic(), partition = log.partition(), offset = record.offset,
                        %error, "fetch-side resolution failed");
                    if !out.is_empty() {
                        return Ok(out.freeze());
                    }
                    return Err(if error.is_integrity_failure() {
                        CORRUPT_MESSAGE
                    } else {
                        KAFKA_STORAGE_ERROR
                    });
                }
            }
        }
        let encoded = encode(&RecordSet {
            version: set.version,
            compression: set.compression,
            records: resolved,
        })
        .map_err(|_| CORRUPT_MESSAGE)?;
        out.extend_from_slice(&encoded);
        *spent += size;
        resolved_any = true;
    }
    Ok(out.freeze())
}
