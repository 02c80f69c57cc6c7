//! Why a byte range is not a valid record batch.

/// A structural problem with a record batch. Every variant carries enough to log or to map onto
/// Kafka's `CORRUPT_MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Fewer bytes than the fixed 61-byte header, or fewer than the declared batch length.
    #[error("truncated record batch: need {needed} bytes, have {available}")]
    Truncated { needed: usize, available: usize },
    /// The declared batch length is smaller than the header or absurdly large.
    #[error("invalid batch length {0}")]
    InvalidLength(i32),
    /// Only magic v2 batches are supported.
    #[error("unsupported record batch magic {0} (only v2 is supported)")]
    UnsupportedMagic(i8),
    /// The stored CRC does not match the bytes.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    /// A header field holds a value no valid batch can have.
    #[error("invalid record batch header: {0}")]
    InvalidHeader(&'static str),
    /// A record's lengths or counts do not fit the bytes of the records section.
    #[error("invalid record {index} of the batch: {reason}")]
    InvalidRecord { index: usize, reason: &'static str },
}
