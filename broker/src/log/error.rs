//! The log engine's one error type. Every variant knows its Kafka error code and whether a client
//! may retry, so the protocol layer never has to guess.

use std::io;

/// Everything that can go wrong in the log engine.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A batch failed validation (length, magic, CRC, header sanity).
    #[error("corrupt record batch: {0}")]
    CorruptMessage(String),
    /// A batch (or the whole append) is larger than `max.message.bytes` / `segment.bytes`.
    #[error("record batch of {size} bytes exceeds the limit of {max} bytes ({config})")]
    MessageTooLarge {
        size: usize,
        max: usize,
        config: &'static str,
    },
    /// A batch timestamp falls outside `message.timestamp.before/after.max.ms`.
    #[error("invalid timestamp: {0}")]
    InvalidTimestamp(String),
    /// A well-formed batch that the log refuses (e.g. several batches from an idempotent producer).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// An idempotent producer skipped or reordered sequence numbers.
    #[error(
        "out of order sequence for producer {producer_id}: expected {expected_sequence}, got {received_sequence}"
    )]
    OutOfOrderSequence {
        producer_id: i64,
        expected_sequence: i32,
        received_sequence: i32,
    },
    /// An idempotent producer wrote with an epoch older than the one the log has seen.
    #[error(
        "producer {producer_id} epoch {received_epoch} is older than current epoch {current_epoch}"
    )]
    InvalidProducerEpoch {
        producer_id: i64,
        current_epoch: i16,
        received_epoch: i16,
    },
    /// A read or DeleteRecords outside `[log_start_offset, log_end_offset]`.
    #[error("offset {offset} is out of range [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start_offset: i64,
        log_end_offset: i64,
    },
    #[error("topic '{0}' already exists")]
    TopicAlreadyExists(String),
    /// The topic may exist in the remote tier, whose restore has not finished yet.
    #[error(
        "topic '{topic}' cannot be created yet: {reason}; the broker retries the restore on its own, try again once it has finished"
    )]
    RestorePending { topic: String, reason: String },
    #[error("invalid topic name '{name}': {reason}")]
    InvalidTopic { name: String, reason: String },
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    /// A topic config key or value is invalid; `key` names the offender.
    #[error("invalid config '{key}': {reason}")]
    InvalidConfig { key: String, reason: String },
    #[error("unknown topic or partition {topic}-{partition}")]
    UnknownTopicOrPartition { topic: String, partition: i32 },
    /// An I/O failure (disk full, EIO, fsync failure). The log stays usable: a failed append is
    /// rolled back and later appends may succeed once the cause is gone.
    #[error("storage error while {context}: {source}")]
    Storage {
        context: String,
        #[source]
        source: io::Error,
    },
    /// The records were written (readers may already see them) but the fsync that was to make
    /// them durable failed: whether they survive a crash is unknown. Neither refused nor
    /// acknowledged, so whoever wrote them must not act as if they were never written (e.g.
    /// delete what they point to).
    #[error(
        "records at offsets {base_offset}..={last_offset} were written but could not be made durable: {source}"
    )]
    NotDurable {
        base_offset: i64,
        last_offset: i64,
        #[source]
        source: io::Error,
    },
    /// The data directory was written by an incompatible version, or is locked by another process.
    #[error("unusable data directory: {0}")]
    DataDirectory(String),
    /// The log manager is shutting down.
    #[error("the log is shutting down")]
    ShuttingDown,
}

impl LogError {
    /// Shorthand for wrapping an I/O error with a short verb phrase ("appending to segment").
    pub(crate) fn storage(context: impl Into<String>, source: io::Error) -> Self {
        LogError::Storage {
            context: context.into(),
            source,
        }
    }

    /// The Kafka protocol error code for this error.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            LogError::OffsetOutOfRange { .. } => 1,
            LogError::CorruptMessage(_) => 2,
            LogError::UnknownTopicOrPartition { .. } => 3,
            // Kafka: a record set larger than a whole segment is RECORD_LIST_TOO_LARGE.
            LogError::MessageTooLarge {
                config: "segment.bytes",
                ..
            } => 18,
            LogError::MessageTooLarge { .. } => 10,
            LogError::InvalidTopic { .. } => 17,
            LogError::InvalidTimestamp(_) => 32,
            LogError::TopicAlreadyExists(_) => 36,
            // What Kafka answers for a topic that exists but cannot be served yet: clients retry.
            LogError::RestorePending { .. } => 5,
            LogError::InvalidPartitions(_) => 37,
            LogError::InvalidConfig { .. } => 40,
            LogError::OutOfOrderSequence { .. } => 45,
            LogError::InvalidProducerEpoch { .. } => 47,
            LogError::Storage { .. }
            | LogError::NotDurable { .. }
            | LogError::DataDirectory(_)
            | LogError::ShuttingDown => 56,
            LogError::InvalidRecord(_) => 87,
        }
    }

    /// Whether a client may retry the same request unchanged (Kafka's `RetriableException`).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            LogError::CorruptMessage(_)
                | LogError::UnknownTopicOrPartition { .. }
                | LogError::RestorePending { .. }
                | LogError::Storage { .. }
                | LogError::NotDurable { .. }
                | LogError::ShuttingDown
        )
    }

    /// True for a full disk, so callers and logs can say so plainly.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, LogError::Storage { source, .. } if source.raw_os_error() == Some(28))
    }
}
