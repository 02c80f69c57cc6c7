//! Minimal view of a Kafka record batch (magic v2) header.
//!
//! Private stand-in until `strata-format` exports its sans-io batch view (switch to it then).
//! Layout (big-endian): baseOffset i64 @0, batchLength i32 @8 (bytes after this field),
//! partitionLeaderEpoch i32 @12, magic i8 @16, crc u32 @17 (CRC-32C of bytes 21..),
//! attributes i16 @21, lastOffsetDelta i32 @23, baseTimestamp i64 @27, maxTimestamp i64 @35,
//! producerId i64 @43, producerEpoch i16 @51, baseSequence i32 @53, recordCount i32 @57.

/// Size of the v2 batch header.
pub(crate) const HEADER_LEN: usize = 61;
/// Bytes before and including `batchLength`: the batch is `LOG_OVERHEAD + batchLength` long.
pub(crate) const LOG_OVERHEAD: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().unwrap_or_default())
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().unwrap_or_default())
}

impl BatchHeader {
    /// Parse the header at the start of `b`. Checks length and magic, not the CRC.
    pub(crate) fn parse(b: &[u8]) -> Result<Self, String> {
        if b.len() < HEADER_LEN {
            return Err(format!("{} bytes is shorter than a batch header", b.len()));
        }
        let h = BatchHeader {
            base_offset: be_i64(b, 0),
            batch_length: be_i32(b, 8),
            magic: b[16] as i8,
            crc: u32::from_be_bytes([b[17], b[18], b[19], b[20]]),
            attributes: i16::from_be_bytes([b[21], b[22]]),
            last_offset_delta: be_i32(b, 23),
            max_timestamp: be_i64(b, 35),
        };
        if h.magic != 2 {
            return Err(format!(
                "batch at offset {} has magic {}, want 2",
                h.base_offset, h.magic
            ));
        }
        if (h.batch_length as i64) < (HEADER_LEN - LOG_OVERHEAD) as i64 {
            return Err(format!(
                "batch at offset {} has length {}",
                h.base_offset, h.batch_length
            ));
        }
        Ok(h)
    }

    /// Total bytes of the batch including the 12-byte log overhead.
    pub(crate) fn total_len(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }

    pub(crate) fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    /// Compression codec bits (0 = none).
    pub(crate) fn compression(&self) -> i16 {
        self.attributes & 0x7
    }

    /// Check the CRC-32C over `attributes..end` of the whole batch `b`.
    pub(crate) fn verify_crc(&self, b: &[u8]) -> bool {
        b.len() == self.total_len() && crc32c::crc32c(&b[21..]) == self.crc
    }
}

/// Iterate whole batches of a buffer of back-to-back batches.
pub(crate) fn batches(
    mut buf: &[u8],
) -> impl Iterator<Item = Result<(BatchHeader, &[u8]), String>> {
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        let item = BatchHeader::parse(buf).and_then(|h| {
            if buf.len() < h.total_len() {
                Err(format!("batch at offset {} truncated", h.base_offset))
            } else {
                Ok(h)
            }
        });
        match item {
            Ok(h) => {
                let (batch, rest) = buf.split_at(h.total_len());
                buf = rest;
                Some(Ok((h, batch)))
            }
            Err(e) => {
                buf = &[];
                Some(Err(e))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_batches::{Codec, batch_bytes};

    #[test]
    fn parses_real_batches() {
        for codec in [Codec::None, Codec::Zstd, Codec::Lz4] {
            let b = batch_bytes(100, 5, 1000, codec);
            let h = BatchHeader::parse(&b).unwrap();
            assert_eq!(h.total_len(), b.len(), "{codec:?}");
            assert_eq!(
                (h.base_offset, h.last_offset(), h.max_timestamp),
                (100, 104, 1004)
            );
            assert_eq!(h.compression() != 0, codec != Codec::None);
            assert!(
                h.verify_crc(&b),
                "{codec:?} crc {:#x} vs {:#x}",
                h.crc,
                crc32c::crc32c(&b[21..])
            );
        }
    }
}
