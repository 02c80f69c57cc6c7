//! The remote segment object: one object per uploaded segment.
//!
//! ```text
//! +---------+---------+-----+-------------+-----------+--------+-----------------+
//! | chunk 0 | chunk 1 | ... | offset index| time index| footer | trailer (24 B)  |
//! +---------+---------+-----+-------------+-----------+--------+-----------------+
//! trailer = "STRSEG01" | footer_offset u64 BE | footer_len u32 BE | footer_crc32c u32 BE
//! ```
//!
//! * A chunk holds whole record batches, up to `chunk_size` raw bytes (a single larger batch gets a
//!   chunk of its own). It is compressed with zstd or lz4, or stored as-is when every batch in it
//!   is already compressed by the producer (attributes compression bits != 0).
//! * The footer (JSON, versioned) is the chunk index: per chunk the first/last offset, max
//!   timestamp, position, stored and raw length, codec, and CRC-32C of the stored bytes. It also
//!   locates the local segment's offset and time index files, copied verbatim for restore.
//! * A cold read is one small ranged GET for the footer (its position is in the manifest, and in
//!   the trailer for a self-describing object) plus one ranged GET per chunk.
//! * Decompressed chunks are the exact bytes of the local segment file range they came from.
//!
//! The encoder is sans-io: it is fed batches and hands back encoded chunks, so memory is bounded by
//! one chunk whatever the segment size; `uploader.rs` does the file and network I/O.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Result, TieringError};
use strata_format::RecordBatch;

pub const TRAILER_MAGIC: &[u8; 8] = b"STRSEG01";
pub const TRAILER_LEN: usize = 24;
pub const FOOTER_VERSION: u32 = 1;

/// How chunks are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Zstd,
    Lz4,
}

/// How one stored chunk is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChunkCodec {
    Raw,
    Zstd,
    Lz4,
}

/// One chunk's entry in the footer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMeta {
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    /// Byte position of the stored chunk in the object.
    pub position: u64,
    pub stored_len: u32,
    pub raw_len: u32,
    /// Byte position of the chunk's first batch in the local segment file.
    pub file_position: u64,
    pub codec: ChunkCodec,
    /// CRC-32C of the stored bytes.
    pub crc32c: u32,
}

/// The chunk index and index-file locations.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Footer {
    pub version: u32,
    pub base_offset: i64,
    pub chunks: Vec<ChunkMeta>,
    /// (position, length) of the local `.index` file bytes.
    pub offset_index: (u64, u64),
    /// (position, length) of the local `.timeindex` file bytes.
    pub time_index: (u64, u64),
}

impl Footer {
    /// Index of the first chunk whose last offset is >= `offset`.
    pub fn chunk_for_offset(&self, offset: i64) -> Option<usize> {
        let i = self.chunks.partition_point(|c| c.last_offset < offset);
        (i < self.chunks.len()).then_some(i)
    }

    /// Index of the first chunk holding a batch with max timestamp >= `ts`.
    pub fn chunk_for_timestamp(&self, ts: i64) -> Option<usize> {
        self.chunks.iter().position(|c| c.max_timestamp >= ts)
    }
}

/// A chunk ready to be written.
#[derive(Debug)]
pub struct EncodedChunk {
    pub meta: ChunkMeta,
    pub bytes: Bytes,
}

/// Streaming encoder: push batches, collect chunks, then `finish`.
#[derive(Debug)]
pub struct SegmentEncoder {
    compression: Compression,
    chunk_size: usize,
    base_offset: i64,
    buf: Vec<u8>,
    all_compressed: bool,
    first_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
    file_position: u64,
    chunk_file_position: u64,
    position: u64,
    chunks: Vec<ChunkMeta>,
    index_sections: Vec<(u64, u64)>,
}

impl SegmentEncoder {
    pub fn new(base_offset: i64, chunk_size: usize, compression: Compression) -> Self {
        Self {
            compression,
            chunk_size: chunk_size.max(1),
            base_offset,
            buf: Vec::new(),
            all_compressed: true,
            first_offset: -1,
            last_offset: -1,
            max_timestamp: -1,
            file_position: 0,
            chunk_file_position: 0,
            position: 0,
            chunks: Vec::new(),
            index_sections: Vec::new(),
        }
    }

    /// Position in the segment file of the next batch pushed.
    pub fn file_position(&self) -> u64 {
        self.file_position
    }

    /// Raw bytes buffered for the current chunk.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True if adding a batch of `len` bytes would overflow the current chunk.
    pub fn needs_flush_before(&self, len: usize) -> bool {
        !self.buf.is_empty() && self.buf.len() + len > self.chunk_size
    }

    /// Add one whole batch (already validated, CRC included, by the caller).
    pub(crate) fn push_batch(&mut self, batch: &RecordBatch) {
        if self.buf.is_empty() {
            self.first_offset = batch.base_offset();
            self.chunk_file_position = self.file_position;
            self.all_compressed = true;
            self.max_timestamp = i64::MIN;
        }
        self.buf.extend_from_slice(batch.as_bytes());
        self.all_compressed &= batch.compression() != strata_format::Compression::None;
        self.last_offset = batch.last_offset();
        self.max_timestamp = self.max_timestamp.max(batch.max_timestamp());
        self.file_position += batch.size() as u64;
    }

    /// Take the raw bytes of the current chunk for compression (see [`encode_chunk`]); returns
    /// `None` when nothing is buffered.
    pub fn take_chunk(&mut self) -> Option<RawChunk> {
        if self.buf.is_empty() {
            return None;
        }
        let codec = match (self.all_compressed, self.compression) {
            (true, _) | (false, Compression::None) => ChunkCodec::Raw,
            (false, Compression::Zstd) => ChunkCodec::Zstd,
            (false, Compression::Lz4) => ChunkCodec::Lz4,
        };
        Some(RawChunk {
            codec,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            max_timestamp: self.max_timestamp,
            file_position: self.chunk_file_position,
            raw: std::mem::take(&mut self.buf),
        })
    }

    /// Record that an encoded chunk was written at the current position; returns its meta.
    pub fn chunk_written(&mut self, mut meta: ChunkMeta) -> ChunkMeta {
        meta.position = self.position;
        self.position += meta.stored_len as u64;
        self.chunks.push(meta.clone());
        meta
    }

    /// Record an index-file section of `len` bytes written at the current position.
    pub fn index_written(&mut self, len: u64) {
        self.index_sections.push((self.position, len));
        self.position += len;
    }

    /// Finish: the footer and trailer bytes to write last, and the footer (offset, len, crc).
    pub fn finish(self) -> (Footer, Bytes, (u64, u32, u32)) {
        let section = |i: usize| {
            self.index_sections
                .get(i)
                .copied()
                .unwrap_or((self.position, 0))
        };
        let footer = Footer {
            version: FOOTER_VERSION,
            base_offset: self.base_offset,
            offset_index: section(0),
            time_index: section(1),
            chunks: self.chunks,
        };
        let body = serde_json::to_vec(&footer).unwrap_or_default();
        let crc = strata_format::crc32c(&body);
        let footer_offset = self.position;
        let mut out = Vec::with_capacity(body.len() + TRAILER_LEN);
        out.extend_from_slice(&body);
        out.extend_from_slice(TRAILER_MAGIC);
        out.extend_from_slice(&footer_offset.to_be_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&crc.to_be_bytes());
        (
            footer,
            Bytes::from(out),
            (footer_offset, body.len() as u32, crc),
        )
    }
}

/// Raw bytes of one chunk plus what the index needs.
#[derive(Debug)]
pub struct RawChunk {
    pub codec: ChunkCodec,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub file_position: u64,
    pub raw: Vec<u8>,
}

/// zstd level of the chunks. Level 1 rather than the library's default 3: on the text-like
/// and JSON payloads measured (BENCHMARKS.md, tiering session 5) it compresses within 1% of
/// level 3, or better, while decoding 1.5-1.8x and encoding 1.6-2x faster, and decoding is what
/// every cold read and export pays.
pub const CHUNK_ZSTD_LEVEL: i32 = 1;

/// Compress a chunk (CPU-bound: call from `spawn_blocking`).
pub fn encode_chunk(c: RawChunk) -> std::io::Result<EncodedChunk> {
    let raw_len = c.raw.len();
    let compressed = match c.codec {
        ChunkCodec::Raw => None,
        ChunkCodec::Zstd => Some(zstd::bulk::compress(&c.raw, CHUNK_ZSTD_LEVEL)?),
        ChunkCodec::Lz4 => Some(lz4_flex::block::compress(&c.raw)),
    };
    // Never store a compressed chunk larger than the raw one.
    let (codec, stored) = match compressed {
        Some(compressed) if compressed.len() < raw_len => (c.codec, compressed),
        _ => (ChunkCodec::Raw, c.raw),
    };
    let meta = ChunkMeta {
        first_offset: c.first_offset,
        last_offset: c.last_offset,
        max_timestamp: c.max_timestamp,
        position: 0,
        stored_len: stored.len() as u32,
        raw_len: raw_len as u32,
        file_position: c.file_position,
        codec,
        crc32c: strata_format::crc32c(&stored),
    };
    Ok(EncodedChunk {
        meta,
        bytes: Bytes::from(stored),
    })
}

/// Verify and decompress one stored chunk (CPU-bound).
pub fn decode_chunk(key: &str, meta: &ChunkMeta, stored: &[u8]) -> Result<Bytes> {
    if stored.len() != meta.stored_len as usize {
        return Err(TieringError::corrupt(
            "chunk",
            key,
            format!("{} bytes, want {}", stored.len(), meta.stored_len),
        ));
    }
    let crc = strata_format::crc32c(stored);
    if crc != meta.crc32c {
        return Err(TieringError::corrupt(
            "chunk",
            key,
            format!(
                "chunk at {} crc32c {crc:#010x}, want {:#010x}",
                meta.position, meta.crc32c
            ),
        ));
    }
    let raw = match meta.codec {
        ChunkCodec::Raw => stored.to_vec(),
        ChunkCodec::Zstd => zstd::bulk::decompress(stored, meta.raw_len as usize)
            .map_err(|e| TieringError::corrupt("chunk", key, format!("zstd: {e}")))?,
        ChunkCodec::Lz4 => lz4_flex::block::decompress(stored, meta.raw_len as usize)
            .map_err(|e| TieringError::corrupt("chunk", key, format!("lz4: {e}")))?,
    };
    if raw.len() != meta.raw_len as usize {
        return Err(TieringError::corrupt(
            "chunk",
            key,
            "decompressed length mismatch",
        ));
    }
    Ok(Bytes::from(raw))
}

/// Parse the trailer (the last [`TRAILER_LEN`] bytes of the object): footer (offset, len, crc).
pub fn decode_trailer(key: &str, t: &[u8]) -> Result<(u64, u32, u32)> {
    if t.len() != TRAILER_LEN || &t[..8] != TRAILER_MAGIC {
        return Err(TieringError::corrupt("trailer", key, "bad magic"));
    }
    let off = u64::from_be_bytes(t[8..16].try_into().unwrap_or_default());
    let len = u32::from_be_bytes(t[16..20].try_into().unwrap_or_default());
    let crc = u32::from_be_bytes(t[20..24].try_into().unwrap_or_default());
    Ok((off, len, crc))
}

/// Verify and parse footer bytes.
pub fn decode_footer(key: &str, bytes: &[u8], crc: u32) -> Result<Footer> {
    if strata_format::crc32c(bytes) != crc {
        return Err(TieringError::corrupt("footer", key, "crc32c mismatch"));
    }
    let footer: Footer = serde_json::from_slice(bytes)
        .map_err(|e| TieringError::corrupt("footer", key, e.to_string()))?;
    match footer.version {
        FOOTER_VERSION => Ok(footer),
        v => Err(TieringError::corrupt(
            "footer",
            key,
            format!("unknown footer version {v}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_batches::batch_bytes;

    fn encode_all(batches: &[Vec<u8>], chunk: usize, c: Compression) -> (Vec<u8>, Footer) {
        let mut enc = SegmentEncoder::new(0, chunk, c);
        let mut out = Vec::new();
        let flush = |enc: &mut SegmentEncoder, out: &mut Vec<u8>| {
            if let Some(raw) = enc.take_chunk() {
                let e = encode_chunk(raw).unwrap();
                enc.chunk_written(e.meta);
                out.extend_from_slice(&e.bytes);
            }
        };
        for b in batches {
            let batch = RecordBatch::new(Bytes::copy_from_slice(b)).unwrap();
            batch.validate().unwrap();
            if enc.needs_flush_before(b.len()) {
                flush(&mut enc, &mut out);
            }
            enc.push_batch(&batch);
        }
        flush(&mut enc, &mut out);
        out.extend_from_slice(b"IDX");
        enc.index_written(3);
        let (footer, tail, _) = enc.finish();
        out.extend_from_slice(&tail);
        (out, footer)
    }

    #[test]
    fn chunks_round_trip_for_every_codec() {
        let batches: Vec<Vec<u8>> = (0..40)
            .map(|i| batch_bytes(i * 5, 5, 1000 + i, strata_format::Compression::None))
            .collect();
        let raw: Vec<u8> = batches.concat();
        for c in [Compression::None, Compression::Zstd, Compression::Lz4] {
            let (obj, footer) = encode_all(&batches, 1500, c);
            assert!(footer.chunks.len() > 2, "multi-chunk");
            let t = &obj[obj.len() - TRAILER_LEN..];
            let (off, len, crc) = decode_trailer("k", t).unwrap();
            let f2 =
                decode_footer("k", &obj[off as usize..off as usize + len as usize], crc).unwrap();
            assert_eq!(f2, footer);
            assert_eq!(footer.offset_index.1, 3);
            let mut back = Vec::new();
            for m in &footer.chunks {
                let s = &obj[m.position as usize..m.position as usize + m.stored_len as usize];
                let d = decode_chunk("k", m, s).unwrap();
                assert_eq!(
                    &raw[m.file_position as usize..m.file_position as usize + d.len()],
                    &d[..]
                );
                back.extend_from_slice(&d);
            }
            assert_eq!(back, raw);
            assert_eq!(footer.chunk_for_offset(0), Some(0));
            assert_eq!(footer.chunk_for_offset(199), Some(footer.chunks.len() - 1));
            assert_eq!(footer.chunk_for_offset(200), None);
        }
    }

    #[test]
    fn already_compressed_batches_are_stored_raw_and_corruption_is_caught() {
        let batches: Vec<Vec<u8>> = (0..4)
            .map(|i| batch_bytes(i * 5, 5, 1000, strata_format::Compression::Zstd))
            .collect();
        let (mut obj, footer) = encode_all(&batches, 1 << 20, Compression::Zstd);
        assert_eq!(footer.chunks[0].codec, ChunkCodec::Raw);
        let m = &footer.chunks[0];
        obj[m.position as usize + 30] ^= 0xff;
        let s = &obj[m.position as usize..m.position as usize + m.stored_len as usize];
        assert!(matches!(
            decode_chunk("k", m, s),
            Err(TieringError::Corrupt { .. })
        ));
    }
}
