//! Real Kafka record batches (magic v2) for tests, built with `kafka-protocol`'s encoder.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Zstd,
    Lz4,
}

/// One batch of `count` records starting at `base_offset`, record i stamped `base_ts + i`.
pub fn batch_bytes(base_offset: i64, count: i64, base_ts: i64, codec: Codec) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: base_offset + i,
            sequence: i as i32,
            timestamp: base_ts + i,
            key: Some(Bytes::from(format!("key-{}", base_offset + i))),
            value: Some(Bytes::from(format!(
                "value-{}-{}",
                base_offset + i,
                "x".repeat(((base_offset + i) % 97) as usize)
            ))),
            headers: Default::default(),
        })
        .collect();
    let compression = match codec {
        Codec::None => Compression::None,
        Codec::Zstd => Compression::Zstd,
        Codec::Lz4 => Compression::Lz4,
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.to_vec()
}

/// A segment file body: `batches` batches of `per_batch` records from `base_offset`, alternating
/// codecs when `mixed`. Returns the bytes and each batch's (base_offset, file position, len).
pub fn segment_bytes(
    base_offset: i64,
    batches: i64,
    per_batch: i64,
    base_ts: i64,
    mixed: bool,
) -> (Vec<u8>, Vec<(i64, usize, usize)>) {
    let mut out = Vec::new();
    let mut index = Vec::new();
    for b in 0..batches {
        let off = base_offset + b * per_batch;
        let codec = match (mixed, b % 3) {
            (false, _) | (true, 0) => Codec::None,
            (true, 1) => Codec::Zstd,
            _ => Codec::Lz4,
        };
        let bytes = batch_bytes(off, per_batch, base_ts + off, codec);
        index.push((off, out.len(), bytes.len()));
        out.extend_from_slice(&bytes);
    }
    (out, index)
}
