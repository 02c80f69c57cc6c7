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
//! Record-level (varint) decoding is deliberately absent: `kafka-protocol` owns that codec.

mod batch;
mod error;
mod iter;
#[cfg(feature = "testing")]
pub mod testing;

pub use batch::{
    BASE_OFFSET_SIZE, BATCH_HEADER_SIZE, CRC_COVERED_FROM, Compression, MAGIC_V2, NO_PRODUCER_ID,
    NO_SEQUENCE, RecordBatch, RecordBatchMut, TimestampType, increment_sequence,
};
pub use error::FormatError;
pub use iter::{BatchIter, BatchIterEnd};
