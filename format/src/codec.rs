//! Compressed records sections, inflated within a bound (feature `codecs`).
//!
//! A batch is bounded by `max.message.bytes`, what its records section inflates to is not. Every
//! place that inflates or decodes a batch's records goes through [`inflate_records`], whose
//! streaming decoders (zstd, gzip, LZ4 frames) stop one byte past the limit, and which checks a
//! Snappy section against the lengths its blocks declare before decompressing any: a
//! compression bomb costs one refusal ([`InflateError::TooLarge`]), not the process's memory.
//! Record decoding itself is kafka-protocol's ([`decode_records`]), after the framing check of
//! `records.rs` and a bound on what the decoded records and headers take
//! ([`InflateError::DecodedTooLarge`]).

use std::io::Read;

use bytes::{Buf, Bytes};
use kafka_protocol::compression::{Decompressor, Snappy};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KafkaCompression, Record, RecordBatchDecoder, RecordSet,
};

use crate::records::{RecordsShape, check_records_framing};
use crate::{BATCH_HEADER_SIZE, Compression, RecordBatch};

/// The most a batch's records section may inflate to, given the largest batch accepted: 16 times
/// `max_batch_bytes`, at least 64 MiB (a 1 MiB batch of text compresses 5-10x; 16x leaves room
/// for very repetitive data).
pub fn max_inflated_bytes(max_batch_bytes: usize) -> usize {
    max_batch_bytes.saturating_mul(16).max(64 << 20)
}

/// Why a records section could not be inflated or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// The section is not valid for its codec, or its records do not decode.
    #[error("{0}")]
    Corrupt(String),
    /// The section inflates past the limit (`size` is what was seen or declared).
    #[error("the records section inflates to more than {limit} bytes ({size} seen)")]
    TooLarge { size: usize, limit: usize },
    /// The records would take more than the limit once decoded (`size`, estimated from the
    /// record and header counts).
    #[error(
        "the batch's {records} records and {headers} headers would take about {size} bytes decoded, more than {limit}"
    )]
    DecodedTooLarge {
        records: usize,
        headers: usize,
        size: usize,
        limit: usize,
    },
}

/// About what kafka-protocol's decoder allocates for `shape`: a `Record` per record, and per
/// header an entry of the record's `IndexMap<StrBytes, Option<Bytes>>` (key, value, hash) plus
/// its slot in the index table. Buffers of keys and values are slices of the batch and cost nothing more.
pub fn decoded_bytes(shape: RecordsShape) -> usize {
    let record = std::mem::size_of::<Record>();
    let header =
        std::mem::size_of::<(StrBytes, Option<Bytes>)>() + 2 * std::mem::size_of::<usize>();
    shape
        .records
        .saturating_mul(record)
        .saturating_add(shape.headers.saturating_mul(header))
}

/// The batch's records section, uncompressed; more than `limit` bytes is refused.
pub fn inflate_records(batch: &RecordBatch, limit: usize) -> Result<Bytes, InflateError> {
    let section = batch.records_section();
    let codec = batch.compression();
    let corrupt = |e: &dyn std::fmt::Display| {
        InflateError::Corrupt(format!(
            "the batch's {codec:?} records section does not decompress: {e}"
        ))
    };
    let too_large = |size: usize| InflateError::TooLarge { size, limit };
    let inflate = |reader: &mut dyn Read| -> Result<Bytes, InflateError> {
        let mut plain = Vec::new();
        reader
            .take((limit as u64).saturating_add(1))
            .read_to_end(&mut plain)
            .map_err(|e| corrupt(&e))?;
        if plain.len() > limit {
            return Err(too_large(plain.len()));
        }
        Ok(Bytes::from(plain))
    };
    match codec {
        Compression::None => Ok(section),
        Compression::Gzip => inflate(&mut flate2::read::GzDecoder::new(&section[..])),
        Compression::Lz4 => inflate(&mut lz4_flex::frame::FrameDecoder::new(&section[..])),
        Compression::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::new(&section[..]).map_err(|e| corrupt(&e))?;
            inflate(&mut decoder)
        }
        Compression::Snappy => {
            let declared = snappy_declared_size(&section).map_err(|e| corrupt(&e))?;
            if declared > limit {
                return Err(too_large(declared));
            }
            let mut section = section;
            Snappy::decompress(&mut section, |b: &mut Bytes| {
                Ok(b.copy_to_bytes(b.remaining()))
            })
            .map_err(|e| corrupt(&format!("{e:#}")))
        }
        Compression::Unknown(id) => Err(InflateError::Corrupt(format!(
            "batch uses unknown compression codec {id}"
        ))),
    }
}

/// Decodes one batch with kafka-protocol's decoder, its records section inflated by
/// [`inflate_records`] first (at most `limit` bytes) and its record framing checked by
/// [`check_records_framing`] (so no count on the wire sizes an allocation the bytes do not
/// back); a batch whose records would take more than `limit` decoded ([`decoded_bytes`]) is
/// refused too. The set keeps the batch's codec.
pub fn decode_records(batch: &RecordBatch, limit: usize) -> Result<RecordSet, InflateError> {
    let codec = match batch.compression() {
        Compression::None => KafkaCompression::None,
        Compression::Gzip => KafkaCompression::Gzip,
        Compression::Snappy => KafkaCompression::Snappy,
        Compression::Lz4 => KafkaCompression::Lz4,
        Compression::Zstd => KafkaCompression::Zstd,
        Compression::Unknown(id) => {
            return Err(InflateError::Corrupt(format!(
                "batch uses unknown compression codec {id}"
            )));
        }
    };
    let mut plain = if codec == KafkaCompression::None {
        batch.as_bytes().clone()
    } else {
        let section = inflate_records(batch, limit)?;
        batch.with_records_section(Compression::None, &section)
    };
    let shape = check_records_framing(&plain[BATCH_HEADER_SIZE..], batch.record_count())
        .map_err(|e| InflateError::Corrupt(e.to_string()))?;
    let decoded = decoded_bytes(shape);
    if decoded > limit {
        return Err(InflateError::DecodedTooLarge {
            records: shape.records,
            headers: shape.headers,
            size: decoded,
            limit,
        });
    }
    let mut set = RecordBatchDecoder::decode(&mut plain)
        .map_err(|e| InflateError::Corrupt(format!("{e:#}")))?;
    set.compression = codec;
    Ok(set)
}

/// The xerial framing Kafka's Snappy uses: a 16-byte header, then blocks of `u32` length and
/// raw Snappy; a section without the header is one raw Snappy block (as Kafka's clients accept).
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;

/// What a Snappy section says it inflates to, from the length each raw block declares.
fn snappy_declared_size(section: &[u8]) -> Result<usize, String> {
    if !section.starts_with(XERIAL_MAGIC) {
        return snap::raw::decompress_len(section).map_err(|e| e.to_string());
    }
    let mut rest = section
        .get(XERIAL_HEADER_BYTES..)
        .ok_or("truncated xerial header")?;
    let mut total = 0usize;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or("truncated block length")?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail.get(..len).ok_or("truncated block")?;
        total = total.saturating_add(snap::raw::decompress_len(block).map_err(|e| e.to_string())?);
        rest = &tail[len..];
    }
    Ok(total)
}
