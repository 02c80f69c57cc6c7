//! Record batches through a transform chain: split the produce records into batches, decode
//! each with `kafka_protocol::records::RecordBatchDecoder`, apply the chain per record,
//! re-encode with `RecordBatchEncoder`.
//!
//! What a re-encoded batch keeps: magic v2, the batch's compression codec, producer id and
//! epoch, base sequence, the record count (unless records were dropped, see below), each
//! record's offset delta, timestamp and sequence. Keys, values and headers are what the chain
//! returned. A batch whose records all come back unchanged (same key/value buffers, same
//! headers) is kept byte for byte, so a ClaimCheck topic costs nothing for small records.
//!
//! Memory: keys and values of uncompressed batches are slices of the request buffer (no copy);
//! a record externalized by ClaimCheck is uploaded from that slice and dropped, the output
//! batch holds only the ticket.
//!
//! Dropped records: a batch with a producer id (idempotent) may not lose records (see the
//! module docs of `smt`); a batch without one is re-numbered densely; a batch that loses every
//! record disappears.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, RecordSet};
use strata_claimcheck::ClaimId;
use strata_claimcheck::ticket::header;
use strata_connect_smt::{ConnectRecord, TransformChain, TransformError};
use strata_format::{BatchIter, BatchIterEnd, RecordBatch, RecordBatchMut, TimestampType};

use crate::log::{LogError, decode_bounded};

/// Why a batch could not be transformed.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    #[error(
        "record batch of {size} bytes exceeds max.message.bytes={max} (checked before the transform)"
    )]
    TooLarge { size: usize, max: usize },
    #[error(
        "the transform chain dropped records of an idempotent batch (producer id {producer_id}); \
         Filter on the produce path needs a non-idempotent producer (enable.idempotence=false)"
    )]
    IdempotentDrop { producer_id: i64 },
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// A batch that does not decode, or whose records inflate past the limit.
    #[error(transparent)]
    Decode(#[from] LogError),
}

/// The outcome of [`transform_batches`].
#[derive(Debug, Default)]
pub struct Transformed {
    /// The batches to append (empty when every record was dropped).
    pub records: Bytes,
    /// Records in `records`.
    pub record_count: i64,
    /// Claims created by the chain, with the index of their record in `records` (the record's
    /// offset is the append's base offset plus this index).
    pub new_claims: Vec<(ClaimId, i64)>,
    /// Whether anything changed (false: `records` are the input bytes).
    pub changed: bool,
}

/// Splits `records` into whole batches, validating each (CRC) and checking its size against
/// `max_batch_bytes`.
pub fn split_batches(
    records: &Bytes,
    max_batch_bytes: usize,
) -> Result<Vec<RecordBatch>, BatchError> {
    let mut iter = BatchIter::new(records.clone());
    let mut batches = Vec::new();
    for batch in iter.by_ref() {
        batch
            .validate()
            .map_err(|e| BatchError::Corrupt(e.to_string()))?;
        if batch.size() > max_batch_bytes {
            return Err(BatchError::TooLarge {
                size: batch.size(),
                max: max_batch_bytes,
            });
        }
        batches.push(batch);
    }
    match iter.end() {
        Some(BatchIterEnd::TornTail { error, .. }) => Err(BatchError::Corrupt(error.to_string())),
        _ if batches.is_empty() => Err(BatchError::Corrupt("no record batch".into())),
        _ => Ok(batches),
    }
}

/// Decodes one batch. A compressed one is first inflated by the log's bounded decompression
/// (a batch that inflates past 16 x `max_batch_bytes` is refused, not held); the set keeps the
/// batch's codec, so [`encode`] compresses it the same way.
pub fn decode(batch: &RecordBatch, max_batch_bytes: usize) -> Result<RecordSet, BatchError> {
    Ok(decode_bounded(batch, max_batch_bytes)?)
}

/// Encodes records as one batch (or several if their producer fields differ, which never
/// happens for records of one decoded batch).
pub fn encode(set: &RecordSet) -> Result<Bytes, BatchError> {
    Ok(encode_mut(set)?.freeze())
}

fn encode_mut(set: &RecordSet) -> Result<BytesMut, BatchError> {
    let mut out = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut out,
        set.records.iter(),
        &RecordEncodeOptions {
            version: set.version,
            compression: set.compression,
        },
    )
    .map_err(|e| BatchError::Corrupt(format!("re-encoding: {e}")))?;
    Ok(out)
}

/// [`encode`]s the records decoded from `source` (one batch) with `source`'s timestamp type:
/// kafka-protocol's encoder always writes CreateTime and the records' largest timestamp, so a
/// `LogAppendTime` batch gets its attribute bit and max timestamp (the append time) back, CRC
/// recomputed.
pub fn encode_like(source: &RecordBatch, set: &RecordSet) -> Result<Bytes, BatchError> {
    let mut out = encode_mut(set)?;
    if source.timestamp_type() == TimestampType::LogAppendTime {
        RecordBatchMut::new(&mut out)
            .map_err(|e| BatchError::Corrupt(format!("re-encoding: {e}")))?
            .set_log_append_time(source.max_timestamp());
    }
    Ok(out.freeze())
}

/// Batches up to this size, uncompressed, are decoded and encoded on the calling task; larger or
/// compressed ones (inflating to 16 x `max.message.bytes`, re-compressing as much) on the
/// blocking pool, so that they never hold a runtime worker (two, on a 2-core host).
const INLINE_CODEC_BYTES: usize = 256 * 1024;

fn codec_work_is_small(size: usize, compressed: bool) -> bool {
    !compressed && size <= INLINE_CODEC_BYTES
}

fn codec_task_failed(error: tokio::task::JoinError) -> BatchError {
    BatchError::Decode(LogError::storage(
        "decoding or encoding a record batch",
        std::io::Error::other(error),
    ))
}

/// [`decode`], off the runtime's workers unless the batch is small and uncompressed.
pub async fn decode_off_runtime(
    batch: &RecordBatch,
    max_batch_bytes: usize,
) -> Result<RecordSet, BatchError> {
    let compressed = batch.compression() != strata_format::Compression::None;
    if codec_work_is_small(batch.size(), compressed) {
        return decode(batch, max_batch_bytes);
    }
    let batch = batch.clone();
    tokio::task::spawn_blocking(move || decode(&batch, max_batch_bytes))
        .await
        .map_err(codec_task_failed)?
}

/// [`encode_like`], off the runtime's workers unless the records are few bytes, uncompressed.
pub async fn encode_like_off_runtime(
    source: &RecordBatch,
    set: RecordSet,
) -> Result<Bytes, BatchError> {
    let size: usize = set
        .records
        .iter()
        .map(|r| {
            r.key.as_ref().map_or(0, Bytes::len)
                + r.value.as_ref().map_or(0, Bytes::len)
                + r.headers
                    .iter()
                    .map(|(k, v)| k.len() + v.as_ref().map_or(0, Bytes::len))
                    .sum::<usize>()
        })
        .sum();
    let compressed = set.compression != kafka_protocol::records::Compression::None;
    if codec_work_is_small(size, compressed) {
        return encode_like(source, &set);
    }
    let source = source.clone();
    tokio::task::spawn_blocking(move || encode_like(&source, &set))
        .await
        .map_err(codec_task_failed)?
}

pub fn to_connect(topic: &str, partition: i32, record: &Record) -> ConnectRecord {
    ConnectRecord {
        topic: topic.to_string(),
        partition: Some(partition),
        key: record.key.clone(),
        value: record.value.clone(),
        headers: record
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
        timestamp: record.timestamp,
    }
}

/// `template` with the key, value, headers and timestamp of `connect`. Headers with a
/// repeated name keep the last value (the wire record type is a map).
pub fn from_connect(template: &Record, connect: ConnectRecord) -> Record {
    let mut headers = IndexMap::with_capacity(connect.headers.len());
    for (name, value) in connect.headers {
        headers.insert(StrBytes::from_string(name), value);
    }
    Record {
        key: connect.key,
        value: connect.value,
        headers,
        timestamp: connect.timestamp,
        ..template.clone_without_payload()
    }
}

trait CloneWithoutPayload {
    fn clone_without_payload(&self) -> Record;
}

impl CloneWithoutPayload for Record {
    fn clone_without_payload(&self) -> Record {
        Record {
            transactional: self.transactional,
            control: self.control,
            delete_horizon: self.delete_horizon,
            partition_leader_epoch: self.partition_leader_epoch,
            producer_id: self.producer_id,
            producer_epoch: self.producer_epoch,
            timestamp_type: self.timestamp_type,
            offset: self.offset,
            sequence: self.sequence,
            timestamp: self.timestamp,
            key: None,
            value: None,
            headers: IndexMap::new(),
        }
    }
}

fn same_bytes(a: &Option<Bytes>, b: &Option<Bytes>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.len() == b.len() && (a.as_ptr() == b.as_ptr() || a == b),
        _ => false,
    }
}

fn unchanged(before: &Record, after: &ConnectRecord) -> bool {
    same_bytes(&before.key, &after.key)
        && same_bytes(&before.value, &after.value)
        && before.timestamp == after.timestamp
        && before.headers.len() == after.headers.len()
        && before
            .headers
            .iter()
            .zip(&after.headers)
            .all(|((k, v), (k2, v2))| k.as_str() == k2 && v == v2)
}

/// Claim ids in the ticket headers (value and key tickets) of a record.
fn claim_ids<'a>(headers: impl Iterator<Item = (&'a str, Option<&'a Bytes>)>) -> Vec<ClaimId> {
    let key_id = header::ID.replacen("claimcheck.", "claimcheck.key.", 1);
    headers
        .filter(|(name, _)| *name == header::ID || *name == key_id)
        .filter_map(|(_, v)| std::str::from_utf8(v?).ok()?.trim().parse().ok())
        .collect()
}

/// Runs every record of `records` through `chain`; see the module docs. Every claim the chain
/// creates is pushed to `created` as soon as its record comes back, so that when a later record
/// or batch fails the caller can delete the payloads no appended ticket will point to.
pub async fn transform_batches(
    records: &Bytes,
    max_batch_bytes: usize,
    chain: &TransformChain,
    topic: &str,
    partition: i32,
    created: &mut Vec<ClaimId>,
) -> Result<Transformed, BatchError> {
    let batches = split_batches(records, max_batch_bytes)?;
    let mut out = Transformed::default();
    let mut parts: Vec<Bytes> = Vec::with_capacity(batches.len());
    for batch in &batches {
        if batch.is_control() {
            out.record_count += i64::from(batch.record_count());
            parts.push(batch.as_bytes().clone());
            continue;
        }
        let RecordSet {
            version,
            compression,
            records: decoded,
        } = decode_off_runtime(batch, max_batch_bytes).await?;
        let decoded_count = decoded.len();
        let first = decoded.first().map(|r| (r.offset, r.sequence));
        let idempotent = batch.has_producer_id();
        let mut kept: Vec<Record> = Vec::with_capacity(decoded_count);
        let mut claims: Vec<(ClaimId, usize)> = Vec::new();
        let mut batch_changed = false;
        for record in decoded {
            let before: Vec<ClaimId> =
                claim_ids(record.headers.iter().map(|(k, v)| (k.as_str(), v.as_ref())));
            let Some(after) = chain.apply(to_connect(topic, partition, &record)).await? else {
                batch_changed = true;
                continue;
            };
            if unchanged(&record, &after) {
                kept.push(record);
                continue;
            }
            batch_changed = true;
            for id in claim_ids(after.headers.iter().map(|(k, v)| (k.as_str(), v.as_ref()))) {
                if !before.contains(&id) {
                    created.push(id);
                    claims.push((id, kept.len()));
                }
            }
            kept.push(from_connect(&record, after));
        }
        if kept.len() != decoded_count && idempotent {
            return Err(BatchError::IdempotentDrop {
                producer_id: batch.producer_id(),
            });
        }
        let base_index = out.record_count;
        out.record_count += kept.len() as i64;
        out.new_claims.extend(
            claims
                .into_iter()
                .map(|(id, i)| (id, base_index + i as i64)),
        );
        if !batch_changed {
            parts.push(batch.as_bytes().clone());
            continue;
        }
        out.changed = true;
        if kept.is_empty() {
            continue;
        }
        if kept.len() != decoded_count {
            // Non-idempotent batch that lost records: dense offsets again.
            let (first_offset, first_sequence) = first.expect("records were dropped");
            for (i, record) in kept.iter_mut().enumerate() {
                record.offset = first_offset + i as i64;
                record.sequence = first_sequence.wrapping_add(i as i32);
            }
        }
        parts.push(
            encode_like_off_runtime(
                batch,
                RecordSet {
                    version,
                    compression,
                    records: kept,
                },
            )
            .await?,
        );
    }
    out.records = if !out.changed {
        records.clone()
    } else if parts.len() == 1 {
        parts.pop().expect("one part")
    } else {
        let mut all = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
        for part in parts {
            all.extend_from_slice(&part);
        }
        all.freeze()
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kafka_protocol::records::{Compression, TimestampType};
    use strata_claimcheck::ClaimStore;
    use strata_connect_smt::TransformContext;

    use super::*;

    fn record(i: i64, producer: (i64, i16, i32), value: Bytes) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer.0,
            producer_epoch: producer.1,
            timestamp_type: TimestampType::Creation,
            offset: i,
            // As decoded: base sequence (-1 without a producer id) plus the offset delta.
            sequence: producer.2.wrapping_add(i as i32),
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(value),
            headers: IndexMap::new(),
        }
    }

    fn batch(n: i64, producer: (i64, i16, i32), compression: Compression, big: &[i64]) -> Bytes {
        let records: Vec<Record> = (0..n)
            .map(|i| {
                let value = if big.contains(&i) {
                    Bytes::from(vec![b'x'; 4096])
                } else {
                    Bytes::from(format!("v{i}"))
                };
                record(i, producer, value)
            })
            .collect();
        encode(&RecordSet {
            version: 2,
            compression,
            records,
        })
        .unwrap()
    }

    fn build(pairs: &[(&str, &str)]) -> (TransformChain, ClaimStore) {
        let store = ClaimStore::new(Arc::new(object_store::memory::InMemory::new()), "c").unwrap();
        let ctx = TransformContext::with_claim_store(store.clone(), Default::default());
        let props: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (
            TransformChain::from_properties(&props, &ctx).unwrap(),
            store,
        )
    }
    use std::sync::Arc;

    const CLAIM_CHECK: &[(&str, &str)] = &[
        ("transforms", "cc"),
        ("transforms.cc.type", "ClaimCheck"),
        ("transforms.cc.threshold.bytes", "1024"),
    ];

    #[tokio::test]
    async fn a_batch_that_inflates_past_the_limit_is_refused_before_the_chain() {
        let (chain, _store) = build(CLAIM_CHECK);
        let zeros = Bytes::from(vec![0u8; 65 << 20]);
        let input = encode(&RecordSet {
            version: 2,
            compression: Compression::Zstd,
            records: vec![record(0, (-1, -1, -1), zeros)],
        })
        .unwrap();
        assert!(input.len() < 1 << 20, "the bomb is {} bytes", input.len());
        let err = transform_batches(&input, 1 << 20, &chain, "t", 0, &mut Vec::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, BatchError::Decode(LogError::MessageTooLarge { max, .. }) if max == 64 << 20),
            "{err}"
        );
    }

    #[tokio::test]
    async fn claim_check_keeps_batch_fields() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let (chain, _store) = build(CLAIM_CHECK);
            let input = batch(5, (42, 3, 100), compression, &[1, 3]);
            let out = transform_batches(&input, usize::MAX, &chain, "t", 0, &mut Vec::new())
                .await
                .unwrap();
            assert!(out.changed);
            assert_eq!(out.record_count, 5);
            assert_eq!(
                out.new_claims.iter().map(|c| c.1).collect::<Vec<_>>(),
                vec![1, 3]
            );
            let before = RecordBatch::new(input.clone()).unwrap();
            let after = RecordBatch::new(out.records.clone()).unwrap();
            after.validate().unwrap();
            assert_eq!(after.compression(), before.compression(), "{compression:?}");
            assert_eq!(after.producer_id(), 42);
            assert_eq!(after.producer_epoch(), 3);
            assert_eq!(after.base_sequence(), 100);
            assert_eq!(after.record_count(), 5);
            assert_eq!(after.last_offset_delta(), 4);
            assert_eq!(after.base_timestamp(), before.base_timestamp());
            let set = decode(&after, 1 << 20).unwrap();
            for (i, r) in set.records.iter().enumerate() {
                assert_eq!(r.key.as_deref(), Some(format!("k{i}").as_bytes()));
                if i == 1 || i == 3 {
                    assert!(r.headers.keys().any(|k| k.as_str() == "claimcheck.id"));
                    assert!(r.value.as_ref().unwrap().len() < 4096);
                } else {
                    assert_eq!(r.value.as_deref(), Some(format!("v{i}").as_bytes()));
                }
            }
        }
    }

    #[tokio::test]
    async fn resolve_inverts_claim_check() {
        let (cc, store) = build(CLAIM_CHECK);
        let input = batch(3, (-1, -1, -1), Compression::Lz4, &[0, 2]);
        let ticketed = transform_batches(&input, usize::MAX, &cc, "t", 0, &mut Vec::new())
            .await
            .unwrap();
        let ctx = TransformContext::with_claim_store(store, Default::default());
        let resolve = TransformChain::from_properties_text(
            "transforms=r\ntransforms.r.type=ClaimCheckResolve\n",
            &ctx,
        )
        .unwrap();
        let back = transform_batches(
            &ticketed.records,
            usize::MAX,
            &resolve,
            "t",
            0,
            &mut Vec::new(),
        )
        .await
        .unwrap();
        let original = decode(&RecordBatch::new(input).unwrap(), 1 << 20).unwrap();
        let resolved = decode(&RecordBatch::new(back.records).unwrap(), 1 << 20).unwrap();
        assert_eq!(original.records, resolved.records);
    }

    #[tokio::test]
    async fn unchanged_batches_are_kept_byte_for_byte() {
        let (chain, _) = build(CLAIM_CHECK);
        let input = batch(4, (7, 0, 0), Compression::Zstd, &[]);
        let out = transform_batches(&input, usize::MAX, &chain, "t", 0, &mut Vec::new())
            .await
            .unwrap();
        assert!(!out.changed);
        assert_eq!(out.records, input);
        assert_eq!(out.record_count, 4);
    }

    #[tokio::test]
    async fn filter_and_idempotence() {
        let (chain, _) = build(&[
            ("transforms", "drop"),
            ("transforms.drop.type", "Filter"),
            ("transforms.drop.predicate", "big"),
            ("predicates", "big"),
            ("predicates.big.type", "HasHeaderKey"),
            ("predicates.big.name", "nope"),
        ]);
        // Nothing matches: unchanged.
        let input = batch(3, (7, 0, 0), Compression::None, &[]);
        assert!(
            !transform_batches(&input, usize::MAX, &chain, "t", 0, &mut Vec::new())
                .await
                .unwrap()
                .changed
        );

        let (chain, _) = build(&[("transforms", "drop"), ("transforms.drop.type", "Filter")]);
        let error = transform_batches(&input, usize::MAX, &chain, "t", 0, &mut Vec::new())
            .await
            .unwrap_err();
        assert!(
            matches!(error, BatchError::IdempotentDrop { producer_id: 7 }),
            "{error}"
        );
        let plain = batch(3, (-1, -1, -1), Compression::None, &[]);
        let out = transform_batches(&plain, usize::MAX, &chain, "t", 0, &mut Vec::new())
            .await
            .unwrap();
        assert_eq!((out.record_count, out.records.len()), (0, 0));
    }

    #[tokio::test]
    async fn incoming_size_is_checked_before_the_transform() {
        let (chain, _) = build(CLAIM_CHECK);
        let input = batch(2, (-1, -1, -1), Compression::None, &[0]);
        let error = transform_batches(&input, 1000, &chain, "t", 0, &mut Vec::new())
            .await
            .unwrap_err();
        assert!(matches!(error, BatchError::TooLarge { .. }), "{error}");
        let mut corrupt = input.to_vec();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        assert!(matches!(
            transform_batches(
                &Bytes::from(corrupt),
                usize::MAX,
                &chain,
                "t",
                0,
                &mut Vec::new()
            )
            .await,
            Err(BatchError::Corrupt(_))
        ));
    }

    /// `template` (one batch) with `section` as its records and `record_count`, CRC recomputed.
    fn with_records(template: &Bytes, section: &[u8], record_count: i32) -> Bytes {
        let template = RecordBatch::new(template.clone()).unwrap();
        let codec = template.compression();
        let mut bytes = template.with_records_section(codec, section).to_vec();
        bytes[57..61].copy_from_slice(&record_count.to_be_bytes());
        let crc = strata_format::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(bytes)
    }

    #[tokio::test]
    async fn counts_the_batch_cannot_hold_are_refused_before_any_allocation() {
        let (chain, _) = build(CLAIM_CHECK);
        // One record (no key, no value) declaring i32::MAX headers: 72 bytes, valid CRC.
        // kafka-protocol would size a header map for 2^31 entries from it.
        let liar = [
            0x14, 0x00, 0x00, 0x00, 0x01, 0x01, 0xfe, 0xff, 0xff, 0xff, 0x0f,
        ];
        let input = with_records(&batch(1, (-1, -1, -1), Compression::None, &[]), &liar, 1);
        assert_eq!(input.len(), 72);
        RecordBatch::new(input.clone()).unwrap().validate().unwrap();
        // A compressed batch of one small record declaring i32::MAX records: the decoder would
        // reserve room for 2^31 records.
        let zstd = batch(1, (-1, -1, -1), Compression::Zstd, &[]);
        let section = RecordBatch::new(zstd.clone()).unwrap().records_section();
        let many = with_records(&zstd, &section, i32::MAX);
        RecordBatch::new(many.clone()).unwrap().validate().unwrap();

        let peak_before = peak_rss_bytes();
        for (input, reason) in [
            (input, "header count exceeds the record's bytes"),
            (
                many,
                "record count exceeds what the records section can hold",
            ),
        ] {
            let started = std::time::Instant::now();
            let error = transform_batches(&input, 1 << 20, &chain, "t", 0, &mut Vec::new())
                .await
                .unwrap_err();
            assert!(
                matches!(&error, BatchError::Decode(LogError::CorruptMessage(m)) if m.contains(reason)),
                "{error}"
            );
            assert!(started.elapsed() < std::time::Duration::from_secs(1));
            // The produce answer: CORRUPT_MESSAGE.
            assert_eq!(LogError::from(error).kafka_error_code(), 2);
        }
        // Without the check the header map alone zeroes 4 GiB of control bytes. Other tests of
        // this binary may run meanwhile, hence the generous bound.
        if let (Some(before), Some(after)) = (peak_before, peak_rss_bytes()) {
            assert!(
                after - before < 1 << 30,
                "peak RSS grew by {} MiB",
                (after - before) >> 20
            );
        }
    }

    #[tokio::test]
    async fn records_that_would_take_too_much_memory_decoded_are_refused_before_decoding() {
        let (chain, _) = build(CLAIM_CHECK);
        // 9 million of the smallest records (7 bytes each: no key, no value, no header), 63 MB
        // inflated from a zstd section of a few KiB. Each costs a whole `Record` decoded: about
        // 1.5 GB for the batch. The framing is valid; the decoded size is what is refused.
        let count: i32 = 9_000_000;
        let mut plain = Vec::with_capacity(count as usize * 7);
        for _ in 0..count {
            plain.extend_from_slice(&[0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00]);
        }
        let section = zstd::bulk::compress(&plain, 1).unwrap();
        drop(plain);
        let zstd = batch(1, (-1, -1, -1), Compression::Zstd, &[]);
        let input = with_records(&zstd, &section, count);
        RecordBatch::new(input.clone()).unwrap().validate().unwrap();

        let peak_before = peak_rss_bytes();
        let error = transform_batches(&input, 1 << 20, &chain, "t", 0, &mut Vec::new())
            .await
            .unwrap_err();
        let BatchError::Decode(log_error) = &error else {
            panic!("{error}");
        };
        assert!(
            log_error.to_string().contains("decoded size"),
            "{log_error}"
        );
        assert_eq!(log_error.kafka_error_code(), 10, "MESSAGE_TOO_LARGE");
        // The inflated section (63 MB) is all it costs. Other tests of this binary may run
        // meanwhile, hence the generous bound.
        if let (Some(before), Some(after)) = (peak_before, peak_rss_bytes()) {
            assert!(
                after - before < 512 << 20,
                "peak RSS grew by {} MiB",
                (after - before) >> 20
            );
        }
        // Below the bound, a batch of many small records decodes as before.
        let small: i32 = 100_000;
        let plain: Vec<u8> = (0..small)
            .flat_map(|_| [0x0c, 0x00, 0x00, 0x00, 0x01, 0x01, 0x00])
            .collect();
        let input = with_records(&zstd, &zstd::bulk::compress(&plain, 1).unwrap(), small);
        let set = decode(&RecordBatch::new(input).unwrap(), 1 << 20).unwrap();
        assert_eq!(set.records.len(), small as usize);
    }

    /// The process's peak resident set (VmHWM), where /proc tells it.
    fn peak_rss_bytes() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    }
}
