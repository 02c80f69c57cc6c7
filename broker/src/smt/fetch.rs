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
//! response, answers MESSAGE_TOO_LARGE (10) for the partition. A payload that is missing or
//! fails verification answers CORRUPT_MESSAGE (2): not retried by clients, the application sees
//! the error at the record's offset and may seek past it (records before the fetch offset are
//! not resolved, so the rest of its batch is then served). An unreadable one (store failure)
//! answers KAFKA_STORAGE_ERROR (56), which clients retry. When earlier batches were resolved
//! they are returned and the error comes next fetch. A record whose ticket headers do not form
//! a ticket (a `claimcheck.version` header with missing or garbage fields) is not a claim: it is
//! returned as it is, with a warning.
//! Consumers must accept responses bigger than what they asked for (librdkafka:
//! `receive.message.max.bytes` / `fetch.max.bytes`; the Java client: `fetch.max.bytes`).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::records::{Record, RecordSet};
use strata_claimcheck::ticket::header;
use strata_connect_smt::{TransformChain, TransformError};
use strata_format::BatchIter;

use super::SmtEngine;
use super::batch::{decode_off_runtime, encode_like_off_runtime, from_connect, to_connect};
use crate::log::PartitionLog;

const MESSAGE_TOO_LARGE: i16 = 10;
const CORRUPT_MESSAGE: i16 = 2;
const KAFKA_STORAGE_ERROR: i16 = 56;

/// Resolves tickets in `partitions` for topics with fetch-side resolution on; `targets` gives
/// each answer's partition and fetch offset, in the same order.
pub async fn resolve_fetch(
    engine: Option<Arc<SmtEngine>>,
    targets: Vec<Option<(Arc<PartitionLog>, i64)>>,
    mut partitions: Vec<PartitionData>,
) -> Vec<PartitionData> {
    let Some(engine) = engine else {
        return partitions;
    };
    let mut spent = 0u64;
    for (target, answer) in targets.iter().zip(partitions.iter_mut()) {
        let Some((log, fetch_offset)) = target else {
            continue;
        };
        if answer.error_code != 0 {
            continue;
        }
        let Some(records) = answer.records.clone().filter(|r| !r.is_empty()) else {
            continue;
        };
        let Some((chain, limit)) = engine.fetch_chain(log) else {
            continue;
        };
        match resolve_records(&records, &chain, log, *fetch_offset, limit, &mut spent).await {
            Ok(resolved) => answer.records = Some(resolved),
            Err(code) => {
                answer.records = Some(Bytes::new());
                answer.error_code = code;
            }
        }
    }
    partitions
}

/// The partition's error for a ticket that does not resolve. A payload that is gone or does
/// not match its ticket never will: CORRUPT_MESSAGE, which clients hand to the application
/// (librdkafka: a consumer error at the offset; Java: a KafkaException from poll), so it can
/// seek past the record. A failing store may recover: KAFKA_STORAGE_ERROR, which clients retry.
fn unresolved_error_code(error: &TransformError) -> i16 {
    match error {
        TransformError::PayloadMissing { .. }
        | TransformError::HashMismatch { .. }
        | TransformError::SizeMismatch { .. } => CORRUPT_MESSAGE,
        TransformError::PayloadTooLarge { .. } => MESSAGE_TOO_LARGE,
        TransformError::Store { .. } => KAFKA_STORAGE_ERROR,
        // Passed through by resolve_records / produce-side only.
        TransformError::InvalidTicket { .. } | TransformError::ReservedHeader { .. } => {
            CORRUPT_MESSAGE
        }
    }
}

/// Payload bytes the tickets of `set` declare (value and key tickets, from their `size`
/// headers), `None` when it holds no ticket. Only records carrying the field's `version`
/// header are tickets (others pass unresolved, whatever `size` header they carry), and the sum
/// saturates: the headers are the producer's, not to be trusted with the budget.
fn ticket_bytes(records: &[Record]) -> Option<u64> {
    let field_header = |field: &str, name: &str| name.replacen("claimcheck.", field, 1);
    let fields = ["claimcheck.", "claimcheck.key."].map(|field| {
        (
            field_header(field, header::VERSION),
            field_header(field, header::SIZE),
        )
    });
    let header = |record: &Record, name: &str| {
        record
            .headers
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .map(|(_, v)| v.clone())
    };
    let mut total = None;
    for record in records {
        for (version, size) in &fields {
            if header(record, version).is_none() {
                continue;
            }
            let size: u64 = header(record, size)
                .flatten()
                .and_then(|v| std::str::from_utf8(&v).ok()?.trim().parse().ok())
                .unwrap_or(0);
            total = Some(total.unwrap_or(0u64).saturating_add(size));
        }
    }
    total
}

/// Resolves the tickets of `records` (one partition's answer) at or after `fetch_offset`.
/// Records before it (the start of the first batch) are returned as they are: clients drop
/// them, and a consumer that seeks past a record whose payload is gone fetches its batch again.
/// A record whose ticket headers do not form a ticket (InvalidTicket) is returned as it is,
/// with one warning per batch: it is not a claim, so there is nothing to resolve.
async fn resolve_records(
    records: &Bytes,
    chain: &TransformChain,
    log: &PartitionLog,
    fetch_offset: i64,
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
        let Ok(set) = decode_off_runtime(&batch, max_batch_bytes).await else {
            out.extend_from_slice(batch.as_bytes());
            continue;
        };
        let wanted = set.records.partition_point(|r| r.offset < fetch_offset);
        let Some(size) = ticket_bytes(&set.records[wanted..]) else {
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
        let RecordSet {
            version,
            compression,
            records: decoded,
        } = set;
        let mut resolved = Vec::with_capacity(decoded.len());
        let mut not_tickets: Vec<(i64, TransformError)> = Vec::new();
        for record in decoded {
            if record.offset < fetch_offset {
                resolved.push(record);
                continue;
            }
            match chain
                .apply(to_connect(log.topic(), log.partition(), &record))
                .await
            {
                Ok(Some(after)) => resolved.push(from_connect(&record, after)),
                Ok(None) => resolved.push(record),
                Err(error @ TransformError::InvalidTicket { .. }) => {
                    not_tickets.push((record.offset, error));
                    resolved.push(record);
                }
                Err(error) => {
                    tracing::warn!(topic = log.topic(), partition = log.partition(), offset = record.offset,
                        %error, "fetch-side resolution failed");
                    if !out.is_empty() {
                        return Ok(out.freeze());
                    }
                    return Err(unresolved_error_code(&error));
                }
            }
        }
        if let Some((offset, error)) = not_tickets.first() {
            tracing::warn!(topic = log.topic(), partition = log.partition(), offset, records = not_tickets.len(),
                %error, "fetch-side resolution: records with invalid ticket headers returned as they are");
        }
        let encoded = encode_like_off_runtime(
            &batch,
            RecordSet {
                version,
                compression,
                records: resolved,
            },
        )
        .await
        .map_err(|_| CORRUPT_MESSAGE)?;
        out.extend_from_slice(&encoded);
        *spent += size;
        resolved_any = true;
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use strata_format::{RecordBatch, TimestampType};

    use super::*;
    use crate::smt::batch::decode;
    use crate::smt::test_support::{Fixture, fixture, produce, record};

    /// What a Fetch at `offset` answers for the partition.
    async fn fetch(f: &Fixture, offset: i64) -> PartitionData {
        let read = f.log.read(offset, 64 << 20).unwrap();
        let answer = PartitionData::default().with_records(Some(read.records));
        resolve_fetch(
            Some(f.engine.clone()),
            vec![Some((f.log.clone(), offset))],
            vec![answer],
        )
        .await
        .pop()
        .unwrap()
    }

    fn batches(records: &Bytes) -> Vec<RecordBatch> {
        let batches: Vec<RecordBatch> = BatchIter::new(records.clone()).collect();
        for batch in &batches {
            batch.validate().unwrap();
        }
        batches
    }

    #[tokio::test]
    async fn resolution_keeps_log_append_time() {
        let f = fixture(&[("message.timestamp.type", "LogAppendTime")]).await;
        let big = vec![b'x'; 4096];
        produce(
            &f,
            vec![record(0, 1_000, &big, &[]), record(1, 2_000, b"small", &[])],
        )
        .await;
        let stored = &batches(&f.log.read(0, 1 << 20).unwrap().records)[0];
        assert_eq!(stored.timestamp_type(), TimestampType::LogAppendTime);
        let append_time = stored.max_timestamp();
        assert!(append_time > 1_600_000_000_000, "{append_time}");

        let answer = fetch(&f, 0).await;
        assert_eq!(answer.error_code, 0);
        let resolved = &batches(answer.records.as_ref().unwrap())[0];
        assert_eq!(resolved.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(resolved.max_timestamp(), append_time);
        assert_eq!(resolved.base_timestamp(), stored.base_timestamp());
        let set = decode(resolved, 1 << 20).unwrap();
        assert_eq!(set.records[0].value.as_deref(), Some(&big[..]));
        assert!(set.records[0].headers.is_empty());
        assert_eq!(set.records[1].value.as_deref(), Some(&b"small"[..]));
    }

    #[test]
    fn ticket_bytes_counts_tickets_only_and_saturates() {
        let set = |records: Vec<Record>| records;
        let huge = u64::MAX.to_string();
        // A record with a size header but no version header is no ticket: not counted.
        let decoy = record(0, 0, b"x", &[("claimcheck.size", huge.as_bytes())]);
        let ticket = record(
            1,
            0,
            b"{}",
            &[("claimcheck.version", b"1"), ("claimcheck.size", b"1000")],
        );
        let key_ticket = record(
            2,
            0,
            b"",
            &[
                ("claimcheck.key.version", b"1"),
                ("claimcheck.key.size", b"24"),
            ],
        );
        assert_eq!(ticket_bytes(&set(vec![decoy.clone()])), None);
        assert_eq!(
            ticket_bytes(&set(vec![
                decoy.clone(),
                ticket.clone(),
                decoy.clone(),
                key_ticket
            ])),
            Some(1024)
        );
        // Declared sizes that overflow add up to u64::MAX (over any budget), not a wrapped sum.
        let liar = record(
            3,
            0,
            b"{}",
            &[
                ("claimcheck.version", b"1"),
                ("claimcheck.size", huge.as_bytes()),
            ],
        );
        assert_eq!(
            ticket_bytes(&set(vec![liar.clone(), ticket, liar])),
            Some(u64::MAX)
        );
    }

    fn header<'a>(record: &'a Record, name: &str) -> Option<&'a [u8]> {
        record
            .headers
            .iter()
            .find(|(k, _)| k.as_str() == name)
            .and_then(|(_, v)| v.as_deref())
    }

    #[tokio::test]
    async fn bad_tickets_do_not_stall_the_partition() {
        let f = fixture(&[]).await;
        let (gone, good) = (vec![b'g'; 4096], vec![b'o'; 4096]);
        // One batch: a ticket whose payload will be deleted, a record with a ticket version
        // header but no ticket (passes the produce chain: below the threshold), a good ticket.
        produce(
            &f,
            vec![
                record(0, 1_000, &gone, &[]),
                record(1, 1_001, b"not a ticket", &[("claimcheck.version", b"1")]),
                record(2, 1_002, &good, &[]),
            ],
        )
        .await;
        let stored = decode(
            &batches(&f.log.read(0, 1 << 20).unwrap().records)[0],
            1 << 20,
        )
        .unwrap();
        let id = std::str::from_utf8(header(&stored.records[0], "claimcheck.id").unwrap())
            .unwrap()
            .parse()
            .unwrap();
        f.store.delete_claim(id).await.unwrap();

        // At offset 0: the payload is gone for good, an error clients hand to the application.
        let answer = fetch(&f, 0).await;
        assert_eq!(answer.error_code, CORRUPT_MESSAGE);
        assert_eq!(answer.records.as_deref(), Some(&[][..]));

        // After a seek past it: the batch again, the record before the fetch offset as stored,
        // the non-ticket as produced, the good ticket resolved.
        let answer = fetch(&f, 1).await;
        assert_eq!(answer.error_code, 0);
        let set = decode(&batches(answer.records.as_ref().unwrap())[0], 1 << 20).unwrap();
        assert_eq!(set.records.len(), 3);
        assert_eq!(set.records[0], stored.records[0]);
        assert_eq!(set.records[1].value.as_deref(), Some(&b"not a ticket"[..]));
        assert_eq!(
            header(&set.records[1], "claimcheck.version"),
            Some(&b"1"[..])
        );
        assert_eq!(set.records[2].value.as_deref(), Some(&good[..]));
        assert!(set.records[2].headers.is_empty());

        // From the good ticket's offset: only it is resolved.
        let answer = fetch(&f, 2).await;
        assert_eq!(answer.error_code, 0);
        let set = decode(&batches(answer.records.as_ref().unwrap())[0], 1 << 20).unwrap();
        assert_eq!(set.records[2].value.as_deref(), Some(&good[..]));
    }
}
