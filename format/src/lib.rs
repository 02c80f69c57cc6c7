//! Sans-io views of the Kafka record batch, magic v2.
//!
//! A record batch is stored on disk and sent on the wire in exactly the same layout, so the log
//! engine keeps the bytes a producer sent and only ever rewrites two things: the base offset (to
//! place the batch in the log) and, for `LogAppendTime` topics, the max timestamp plus the
//! timestamp-type attribute bit (which forces a CRC recomputation).
//!
//! ```text
//! offset  size  field                    covered by CRC
//!      0     8  base offset              no
//!      8     4  batch length (bytes after this field)
//!     12     4  partition leader epoch   no
//!     16     1  magic (= 2)              no
//!     17     4  crc (CRC-32C)            no
//!     21     2  attributes               yes ...
//!     23     4  last offset delta
//!     27     8  base timestamp
//!     35     8  max timestamp
//!     43     8  producer id
//!     51     2  producer epoch
//!     53     4  base sequence
//!     57     4  record count
//!     61     …  records (varint encoded, possibly compressed)  ... to the end
//! ```
//!
//! Record-level (varint) decoding is `kafka-protocol`'s; the `codecs` feature only inflates
//! compressed records sections within a bound and hands them to it (`codec.rs`).

mod batch;
#[cfg(feature = "codecs")]
pub mod codec;
mod error;
mod iter;
pub mod records;
#[cfg(feature = "testing")]
pub mod testing;

pub use batch::{
    BASE_OFFSET_SIZE, BATCH_HEADER_SIZE, CRC_COVERED_FROM, Compression, MAGIC_V2, NO_PRODUCER_ID,
    NO_SEQUENCE, RecordBatch, RecordBatchMut, TimestampType, header_max_timestamp,
    increment_sequence,
};
pub use error::FormatError;
pub use iter::{BatchIter, BatchIterEnd};

/// CRC-32C (Castagnoli), the checksum of record batches and of everything Strata stores.
pub fn crc32c(bytes: &[u8]) -> u32 {
    // Crc32Iscsi is CRC-32C; the 32-bit result is returned in a u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32c_is_castagnoli() {
        // The CRC-32C check value (RFC 3720 B.4), and the empty input.
        assert_eq!(super::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(super::crc32c(b""), 0);
        // 32 zero bytes, RFC 3720 B.4.
        assert_eq!(super::crc32c(&[0u8; 32]), 0x8A91_36AA);
        // Lengths around the SIMD block sizes agree with a bitwise reference.
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 131 % 251) as u8).collect();
        for len in [1, 15, 16, 63, 64, 255, 256, 257, 1023, 4096, 4999] {
            assert_eq!(
                super::crc32c(&data[..len]),
                bitwise(&data[..len]),
                "length {len}"
            );
        }
    }

    fn bitwise(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &byte in bytes {
            crc ^= u32::from(byte);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
