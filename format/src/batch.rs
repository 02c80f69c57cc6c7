//! The record batch header view ([`RecordBatch`]) and its two permitted rewrites
//! ([`RecordBatchMut`]).

use bytes::Bytes;

use crate::FormatError;

/// Size of the fixed v2 batch header; records start right after it.
pub const BATCH_HEADER_SIZE: usize = 61;
/// The first field, the base offset (big-endian i64): outside the CRC, so a broker may rewrite it.
pub const BASE_OFFSET_SIZE: usize = 8;
/// The CRC covers everything from the attributes field to the end of the batch.
pub const CRC_COVERED_FROM: usize = 21;
/// The only record batch version this crate understands.
pub const MAGIC_V2: i8 = 2;
/// Producer id of a batch sent by a non-idempotent producer.
pub const NO_PRODUCER_ID: i64 = -1;
/// Base sequence of a batch sent by a non-idempotent producer.
pub const NO_SEQUENCE: i32 = -1;

/// Bytes before the batch-length field are not counted in it.
const LOG_OVERHEAD: usize = 12;
const OFF_BASE_OFFSET: usize = 0;
const OFF_LENGTH: usize = 8;
const OFF_LEADER_EPOCH: usize = 12;
const OFF_MAGIC: usize = 16;
const OFF_CRC: usize = 17;
const OFF_ATTRIBUTES: usize = 21;
const OFF_LAST_OFFSET_DELTA: usize = 23;
const OFF_BASE_TIMESTAMP: usize = 27;
const OFF_MAX_TIMESTAMP: usize = 35;
const OFF_PRODUCER_ID: usize = 43;
const OFF_PRODUCER_EPOCH: usize = 51;
const OFF_BASE_SEQUENCE: usize = 53;
const OFF_RECORD_COUNT: usize = 57;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Compression codec from the low three attribute bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
    /// Codec ids 5..=7 are not assigned by Kafka.
    Unknown(u8),
}

impl Compression {
    /// The codec id in the attribute bits.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
            Compression::Unknown(id) => id,
        }
    }
}

/// What the batch's timestamps mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// Kafka's sequence arithmetic: sequences wrap from `i32::MAX` to 0.
pub fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}
fn read_i32(buf: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}
fn read_i64(buf: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(buf[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads the total size (header included) a batch declares, from its first 12 bytes.
/// Returns `None` when fewer than 12 bytes are available.
pub(crate) fn declared_size(buf: &[u8]) -> Option<Result<usize, FormatError>> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    let length = read_i32(buf, OFF_LENGTH);
    if length < (BATCH_HEADER_SIZE - LOG_OVERHEAD) as i32 {
        return Some(Err(FormatError::InvalidLength(length)));
    }
    Some(Ok(LOG_OVERHEAD + length as usize))
}

/// A zero-copy view over exactly one record batch (header + records).
///
/// Construct with [`RecordBatch::new`], which checks only that the declared length matches the
/// buffer; call [`RecordBatch::validate`] before trusting anything else.
#[derive(Clone, PartialEq, Eq)]
pub struct RecordBatch {
    bytes: Bytes,
}

impl std::fmt::Debug for RecordBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset())
            .field("size", &self.size())
            .field("record_count", &self.record_count())
            .finish()
    }
}

/// The max timestamp field of a batch from its header alone (the first
/// [`BATCH_HEADER_SIZE`] bytes), for readers that need one field without the whole batch.
pub fn header_max_timestamp(header: &[u8; BATCH_HEADER_SIZE]) -> i64 {
    read_i64(header, OFF_MAX_TIMESTAMP)
}

impl RecordBatch {
    /// Wraps `bytes`, which must hold one complete batch and nothing else.
    pub fn new(bytes: Bytes) -> Result<Self, FormatError> {
        if bytes.len() < BATCH_HEADER_SIZE {
            return Err(FormatError::Truncated {
                needed: BATCH_HEADER_SIZE,
                available: bytes.len(),
            });
        }
        let declared = declared_size(&bytes).expect("at least 12 bytes")?;
        if declared != bytes.len() {
            return Err(FormatError::Truncated {
                needed: declared,
                available: bytes.len(),
            });
        }
        Ok(Self { bytes })
    }

    /// The whole batch, header included.
    pub fn as_bytes(&self) -> &Bytes {
        &self.bytes
    }
    /// Consumes the view and returns the underlying bytes.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }
    /// Total size in bytes, header included.
    pub fn size(&self) -> usize {
        self.bytes.len()
    }

    pub fn base_offset(&self) -> i64 {
        read_i64(&self.bytes, OFF_BASE_OFFSET)
    }
    /// The batch-length field: bytes following it (total size minus 12).
    pub fn batch_length(&self) -> i32 {
        read_i32(&self.bytes, OFF_LENGTH)
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        read_i32(&self.bytes, OFF_LEADER_EPOCH)
    }
    pub fn magic(&self) -> i8 {
        self.bytes[OFF_MAGIC] as i8
    }
    pub fn crc(&self) -> u32 {
        u32::from_be_bytes(
            self.bytes[OFF_CRC..OFF_CRC + 4]
                .try_into()
                .expect("4 bytes"),
        )
    }
    pub fn attributes(&self) -> i16 {
        read_i16(&self.bytes, OFF_ATTRIBUTES)
    }
    pub fn compression(&self) -> Compression {
        match (self.attributes() & ATTR_COMPRESSION_MASK) as u8 {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            other => Compression::Unknown(other),
        }
    }
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & ATTR_TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    pub fn last_offset_delta(&self) -> i32 {
        read_i32(&self.bytes, OFF_LAST_OFFSET_DELTA)
    }
    /// Offset of the last record: base offset + last offset delta.
    pub fn last_offset(&self) -> i64 {
        self.base_offset() + i64::from(self.last_offset_delta())
    }
    /// Offset the next batch in the log must start at.
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    pub fn base_timestamp(&self) -> i64 {
        read_i64(&self.bytes, OFF_BASE_TIMESTAMP)
    }
    pub fn max_timestamp(&self) -> i64 {
        read_i64(&self.bytes, OFF_MAX_TIMESTAMP)
    }
    pub fn producer_id(&self) -> i64 {
        read_i64(&self.bytes, OFF_PRODUCER_ID)
    }
    pub fn producer_epoch(&self) -> i16 {
        read_i16(&self.bytes, OFF_PRODUCER_EPOCH)
    }
    pub fn base_sequence(&self) -> i32 {
        read_i32(&self.bytes, OFF_BASE_SEQUENCE)
    }
    /// Sequence of the last record, with Kafka's wrap-around at `i32::MAX`.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence() == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        increment_sequence(self.base_sequence(), self.last_offset_delta())
    }
    /// True when the batch was sent by an idempotent (or transactional) producer.
    pub fn has_producer_id(&self) -> bool {
        self.producer_id() >= 0
    }
    pub fn record_count(&self) -> i32 {
        read_i32(&self.bytes, OFF_RECORD_COUNT)
    }
    /// The raw record section (after the 61-byte header), possibly compressed.
    pub fn records_section(&self) -> Bytes {
        self.bytes.slice(BATCH_HEADER_SIZE..)
    }

    /// A copy of this batch holding `records` (the same records, encoded the same way) stored
    /// with `codec`: the header is kept (offsets, timestamps, producer fields, record count),
    /// the length, the codec bits and the CRC are set for the new section.
    pub fn with_records_section(&self, codec: Compression, records: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(BATCH_HEADER_SIZE + records.len());
        out.extend_from_slice(&self.bytes[..BATCH_HEADER_SIZE]);
        out.extend_from_slice(records);
        let length = (out.len() - LOG_OVERHEAD) as i32;
        out[OFF_LENGTH..OFF_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
        let attributes = (self.attributes() & !ATTR_COMPRESSION_MASK) | i16::from(codec.id());
        out[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        let crc = crate::crc32c(&out[CRC_COVERED_FROM..]);
        out[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
        Bytes::from(out)
    }

    /// CRC-32C over attributes..end, as Kafka computes it.
    pub fn compute_crc(&self) -> u32 {
        crate::crc32c(&self.bytes[CRC_COVERED_FROM..])
    }

    /// Checks everything that can be checked without decoding records: length, magic, CRC and
    /// the sanity of the counts.
    pub fn validate(&self) -> Result<(), FormatError> {
        if self.magic() != MAGIC_V2 {
            return Err(FormatError::UnsupportedMagic(self.magic()));
        }
        let computed = self.compute_crc();
        if computed != self.crc() {
            return Err(FormatError::CrcMismatch {
                stored: self.crc(),
                computed,
            });
        }
        if self.last_offset_delta() < 0 {
            return Err(FormatError::InvalidHeader("negative last offset delta"));
        }
        if self.record_count() < 0 {
            return Err(FormatError::InvalidHeader("negative record count"));
        }
        if self.base_offset() < 0 {
            return Err(FormatError::InvalidHeader("negative base offset"));
        }
        if self
            .base_offset()
            .checked_add(i64::from(self.last_offset_delta()))
            .is_none()
        {
            return Err(FormatError::InvalidHeader("last offset overflows"));
        }
        // An uncompressed record needs at least 7 bytes (length, attributes, ts delta, offset
        // delta, key len, value len, header count), so a count larger than that bound is a lie.
        if self.compression() == Compression::None
            && (self.record_count() as usize) > self.size() - BATCH_HEADER_SIZE
        {
            return Err(FormatError::InvalidHeader(
                "record count exceeds batch size",
            ));
        }
        if let Compression::Unknown(_) = self.compression() {
            return Err(FormatError::InvalidHeader("unknown compression codec"));
        }
        Ok(())
    }
}

/// A mutable view over one batch, for the two rewrites the log engine performs before storing.
pub struct RecordBatchMut<'a> {
    bytes: &'a mut [u8],
}

impl<'a> RecordBatchMut<'a> {
    /// Wraps a buffer holding exactly one batch (length is checked, not the CRC).
    pub fn new(bytes: &'a mut [u8]) -> Result<Self, FormatError> {
        if bytes.len() < BATCH_HEADER_SIZE {
            return Err(FormatError::Truncated {
                needed: BATCH_HEADER_SIZE,
                available: bytes.len(),
            });
        }
        let declared = declared_size(bytes).expect("at least 12 bytes")?;
        if declared != bytes.len() {
            return Err(FormatError::Truncated {
                needed: declared,
                available: bytes.len(),
            });
        }
        Ok(Self { bytes })
    }

    /// Places the batch in the log. The base offset is outside the CRC, so no recomputation.
    pub fn set_base_offset(&mut self, base_offset: i64) {
        self.bytes[OFF_BASE_OFFSET..OFF_BASE_OFFSET + 8]
            .copy_from_slice(&base_offset.to_be_bytes());
    }

    /// Stamps a `LogAppendTime` topic's batch: sets the max timestamp and the timestamp-type
    /// bit, then recomputes the CRC (both fields are CRC-covered).
    pub fn set_log_append_time(&mut self, timestamp: i64) {
        self.bytes[OFF_MAX_TIMESTAMP..OFF_MAX_TIMESTAMP + 8]
            .copy_from_slice(&timestamp.to_be_bytes());
        let attributes = read_i16(self.bytes, OFF_ATTRIBUTES) | ATTR_TIMESTAMP_TYPE;
        self.bytes[OFF_ATTRIBUTES..OFF_ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        let crc = crate::crc32c(&self.bytes[CRC_COVERED_FROM..]);
        self.bytes[OFF_CRC..OFF_CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }

    /// Sets the partition leader epoch (outside the CRC).
    pub fn set_partition_leader_epoch(&mut self, epoch: i32) {
        self.bytes[OFF_LEADER_EPOCH..OFF_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
    }
}
