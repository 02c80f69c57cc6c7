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
use kafka_protocol::records::{Record, RecordSet};
use strata_claimcheck::ticket::header;
use strata_connect_smt::TransformChain;
use strata_format::BatchIter;

use super::SmtEngine;
use super::batch::{decode, encode_like, from_connect, to_connect};
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

/// Payload bytes the tickets of `set` declare (value and key tickets, from their `size`
/// headers), `None` when it holds no ticket. Only records carrying the field's `version`
/// header are tickets (others pass unresolved, whatever `size` header they carry), and the sum
/// saturates: the headers are the producer's, not to be trusted with the budget.
fn ticket_bytes(set: &RecordSet) -> Option<u64> {
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
    for record in &set.records {
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
        let encoded = encode_like(
            &batch,
            &RecordSet {
                version: set.version,
                compression: set.compression,
                records: resolved,
            },
        )
        .map_err(|_| CORRUPT_MESSAGE)?;
        out.extend_from_slice(&encoded);
        *spent += size;
        resolved_any = true;
    }
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{Compression, TimestampType as RecordTimestampType};
    use strata_claimcheck::{ClaimCheckConfig, ClaimStore};
    use strata_format::{RecordBatch, TimestampType};

    use super::*;
    use crate::log::{Durability, LogManager, LogManagerConfig};
    use crate::smt::FETCH_RESOLVE;
    use crate::smt::batch::encode;

    /// A one-partition topic `t` with a ClaimCheck chain (records of 1 KiB and more become
    /// tickets) and fetch-side resolution, on an in-memory claim store.
    struct Fixture {
        _dir: tempfile::TempDir,
        _manager: Arc<LogManager>,
        log: Arc<PartitionLog>,
        engine: Arc<SmtEngine>,
    }

    async fn fixture(configs: &[(&str, &str)]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let manager = LogManager::open(LogManagerConfig::new(dir.path()))
            .await
            .unwrap();
        let overrides: BTreeMap<String, String> = [
            ("transforms", "cc"),
            ("transforms.cc.type", "ClaimCheck"),
            ("transforms.cc.threshold.bytes", "1024"),
            (FETCH_RESOLVE, "true"),
        ]
        .iter()
        .chain(configs)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        manager.create_topic("t", 1, overrides, false).unwrap();
        let log = manager.partition("t", 0).unwrap();
        let store = ClaimStore::new(Arc::new(object_store::memory::InMemory::new()), "c").unwrap();
        let engine = Arc::new(SmtEngine::with_claims(store, ClaimCheckConfig::default()));
        Fixture {
            _dir: dir,
            _manager: manager,
            log,
            engine,
        }
    }

    fn record(offset: i64, timestamp: i64, value: &[u8], headers: &[(&str, &[u8])]) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: RecordTimestampType::Creation,
            offset,
            // As decoded: no base sequence (-1) plus the offset delta.
            sequence: (offset as i32).wrapping_sub(1),
            timestamp,
            key: None,
            value: Some(Bytes::copy_from_slice(value)),
            headers: headers
                .iter()
                .map(|(k, v)| {
                    (
                        StrBytes::from_string(k.to_string()),
                        Some(Bytes::copy_from_slice(v)),
                    )
                })
                .collect::<IndexMap<_, _>>(),
        }
    }

    fn batch_of(records: Vec<Record>) -> Bytes {
        encode(&RecordSet {
            version: 2,
            compression: Compression::None,
            records,
        })
        .unwrap()
    }

    /// Produces `records` as one batch through the topic's chain.
    async fn produce(f: &Fixture, records: Vec<Record>) {
        crate::smt::append(
            Some(&f.engine),
            &f.log,
            batch_of(records),
            Durability::Written,
        )
        .await
        .unwrap();
    }

    /// What a Fetch at `offset` answers for the partition.
    async fn fetch(f: &Fixture, offset: i64) -> PartitionData {
        let read = f.log.read(offset, 64 << 20).unwrap();
        let answer = PartitionData::default().with_records(Some(read.records));
        resolve_fetch(
            Some(f.engine.clone()),
            vec![Some(f.log.clone())],
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
        let set = |records| RecordSet {
            version: 2,
            compression: Compression::None,
            records,
        };
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
}
