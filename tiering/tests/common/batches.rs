//! Real Kafka record batches (magic v2) for tests, built with `strata_format::testing`.
#![allow(dead_code)]

use bytes::Bytes;
use strata_format::Compression;
use strata_format::testing::BatchBuilder;

/// One batch of `count` records starting at `base_offset`, record i stamped `base_ts + i`, with
/// keys and values of varying length derived from each record's offset.
pub fn batch_bytes(base_offset: i64, count: i64, base_ts: i64, codec: Compression) -> Vec<u8> {
    BatchBuilder::new()
        .base_offset(base_offset)
        .records(count as usize)
        .timestamp(base_ts)
        .timestamp_step(1)
        .keys(|offset| Bytes::from(format!("key-{offset}")))
        .values(|offset| {
            let padding = "x".repeat((offset % 97) as usize);
            Bytes::from(format!("value-{offset}-{padding}"))
        })
        .compression(codec)
        .build()
        .to_vec()
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
            (false, _) | (true, 0) => Compression::None,
            (true, 1) => Compression::Zstd,
            _ => Compression::Lz4,
        };
        let bytes = batch_bytes(off, per_batch, base_ts + off, codec);
        index.push((off, out.len(), bytes.len()));
        out.extend_from_slice(&bytes);
    }
    (out, index)
}
