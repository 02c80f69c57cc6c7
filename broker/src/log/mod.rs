//! The log engine: every topic partition is an append-only log of segments holding Kafka record
//! batches (magic v2) exactly as producers sent them.
//!
//! ```text
//! LogManager ── topics.json (name, id, partitions, overrides; temp+fsync+rename+fsync dir)
//!   └── PartitionLog  <data>/<topic>-<partition>/
//!         ├── 00000000000000000000.log / .index / .timeindex   closed (immutable) segments
//!         ├── 00000000000000004096.log / .index / .timeindex   the active segment
//!         ├── 00000000000000004096.snapshot                    producer state at that offset
//!         ├── log-start-offset                                 set by DeleteRecords
//!         └── partition.metadata                               topic id
//! ```
//!
//! # Invariants
//! - Offsets are dense and increasing; a stored batch differs from the producer's bytes only in
//!   its base offset (and, on `LogAppendTime` topics, its max timestamp, attribute bit and CRC).
//! - One append at a time per partition (a mutex around validate -> sequence check -> offset
//!   assignment -> write(2)); so producer state changes are atomic with the append they describe.
//! - `Durability::Fsync` returns only after an fdatasync covering the batch (group commit: one
//!   sync serves every appender waiting at that moment); `Durability::Written` after write(2).
//! - A failed write is rolled back (the file is truncated to the last good size): a full disk fails
//!   appends with KAFKA_STORAGE_ERROR but never poisons the log; reads keep working.
//! - Closed segments never change; indexes are trimmed when a segment closes.
//!
//! # Crash consistency
//! A clean shutdown flushes everything, writes producer snapshots, the recovery-point checkpoint
//! and a `.clean_shutdown` marker: the next start reads only index tails (O(segments), not
//! O(bytes)). After an unclean stop, segments from the recovery point on are scanned batch by
//! batch (length + CRC), the log is truncated at the first invalid or torn batch, indexes are
//! rebuilt, and producer state is rebuilt from the last snapshot plus the replayed batches.
//! Acks=all batches are below the recovery scan's truncation point because they were fsynced.

mod config;
mod error;
mod manager;
mod metrics;
mod offset_index;
mod partition_log;
mod producer_state;
mod read_buffers;
mod recompress;
mod recovery;
mod retention;
mod segment;
mod time_index;
mod validation;

use std::sync::Arc;

pub use config::{
    ConfigDef, ConfigEntry, ConfigOp, ConfigSource, ConfigType, Synonym, TOPIC_CONFIGS,
    TimestampPolicy, TopicConfig, Validator, apply_config_ops, config_def, replace_all_ops,
};
pub use error::LogError;
pub use manager::{LogManager, LogManagerConfig, TopicMetadata};
pub use metrics::{LogMetrics, failure_reason};
pub use partition_log::{PartitionLog, PartitionStats};
pub(crate) use recompress::decode_bounded;

/// When an append is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// acks=all: after an fdatasync covering the batch (group-committed).
    Fsync,
    /// acks=1 / acks=0: after write(2) to the OS page cache.
    Written,
}

/// The outcome of [`PartitionLog::append`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker time stamped on the batch for `LogAppendTime` topics, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// The batch was a retry of one already in the log: offsets are the original ones and
    /// nothing was appended.
    pub duplicate: bool,
}

/// The outcome of [`PartitionLog::read`].
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Whole batches; empty when the fetch offset is the log end.
    pub records: bytes::Bytes,
    pub high_watermark: i64,
    pub log_start_offset: i64,
}

/// A segment that just became immutable, for the tiering uploader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedSegment {
    pub topic: String,
    pub topic_id: uuid::Uuid,
    pub partition: i32,
    pub base_offset: i64,
    /// One past the last offset in the segment.
    pub next_offset: i64,
    /// Largest batch max-timestamp in the segment (-1 when none).
    pub max_timestamp: i64,
    pub size_bytes: u64,
    pub log_path: std::path::PathBuf,
    pub offset_index_path: std::path::PathBuf,
    pub time_index_path: std::path::PathBuf,
}

/// Published on [`LogManager::subscribe_segment_events`]. Closed segments are fsynced before the
/// event is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentEvent {
    Closed(ClosedSegment),
}

/// Decides whether local retention may delete a closed segment (tiering answers "not until it is
/// uploaded"). Segments entirely below the log start offset are deleted without asking.
pub trait LocalDeletionGate: Send + Sync {
    fn may_delete_locally(
        &self,
        topic: &str,
        partition: i32,
        segment_base_offset: i64,
        segment_next_offset: i64,
    ) -> bool;
}

/// The default gate: local retention deletes whatever it selects.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAllDeletions;

impl LocalDeletionGate for AllowAllDeletions {
    fn may_delete_locally(&self, _: &str, _: i32, _: i64, _: i64) -> bool {
        true
    }
}

pub(crate) type SharedGate = Arc<std::sync::RwLock<Arc<dyn LocalDeletionGate>>>;

/// Decides whether a topic may be created now (tiering refuses names the bucket may still hold
/// while a restore from it is unfinished: a new topic of that name would hide its history).
pub trait TopicCreationGate: Send + Sync {
    fn may_create(&self, topic: &str) -> Result<(), LogError>;
}

/// The default: any valid name may be created.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAllCreations;

impl TopicCreationGate for AllowAllCreations {
    fn may_create(&self, _: &str) -> Result<(), LogError> {
        Ok(())
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
