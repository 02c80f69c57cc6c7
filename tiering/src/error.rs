//! The one error type of the remote tier.
//!
//! Every fallible function in this crate returns [`TieringError`]. Errors classify themselves
//! ([`TieringError::is_retryable`]) so the uploader and the reader decide whether to back off and
//! retry without string matching. Sources are kept behind `Arc` so one error can be handed to every
//! waiter of a shared (single-flight) chunk download.

use std::sync::Arc;

/// Result alias used across the crate.
pub type Result<T, E = TieringError> = std::result::Result<T, E>;

/// Everything that can go wrong in the remote tier.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TieringError {
    /// The remote-storage URL could not be turned into an object store.
    #[error("invalid remote storage url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// An object-store call failed. `op` is a short verb phrase ("put manifest", "get chunk").
    #[error("{op} {key}: {source}")]
    Store {
        op: &'static str,
        key: String,
        source: Arc<object_store::Error>,
    },

    /// A fenced (conditional) write lost: somebody else wrote the object since we read it.
    #[error("conflict writing {key}: the object changed since it was read (another writer?)")]
    Conflict { key: String },

    /// A writer with a newer epoch owns this partition's manifest.
    #[error("fenced on {key}: manifest writer epoch {manifest_epoch} > ours {our_epoch}")]
    Fenced {
        key: String,
        manifest_epoch: u64,
        our_epoch: u64,
    },

    /// Local file I/O failed (reading a segment, the disk cache).
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: Arc<std::io::Error>,
    },

    /// Bytes read back do not match what was written (CRC mismatch, bad trailer, bad batch).
    #[error("corrupt {what} in {key}: {detail}")]
    Corrupt {
        what: &'static str,
        key: String,
        detail: String,
    },

    /// A manifest of an unknown version or that does not parse.
    #[error("manifest {key}: {detail}")]
    Manifest { key: String, detail: String },

    /// The segment overlaps remote data in a way that is not an idempotent retry.
    #[error(
        "segment [{base_offset}, {next_offset}) of {partition} overlaps remote segment [{other_base}, {other_next})"
    )]
    Overlap {
        partition: String,
        base_offset: i64,
        next_offset: i64,
        other_base: i64,
        other_next: i64,
    },

    /// The requested offset is below the remote log start offset.
    #[error(
        "offset {offset} of {partition} is below the remote log start offset {log_start_offset}"
    )]
    OffsetOutOfRange {
        partition: String,
        offset: i64,
        log_start_offset: i64,
    },

    /// The partition is not known to the remote tier.
    #[error("unknown remote partition {partition}")]
    UnknownPartition { partition: String },

    /// An upload of the topic is still running; the operation is retried later.
    #[error("{what}: an upload of topic {topic} is still running")]
    UploadRunning { what: &'static str, topic: String },

    /// The manager is shutting down; the operation was not started or was cancelled.
    #[error("remote log manager is shutting down")]
    ShuttingDown,
}

impl TieringError {
    /// True when retrying the same operation later may succeed (network, throttling, 5xx,
    /// a lost manifest race that a re-read resolves).
    pub fn is_retryable(&self) -> bool {
        use object_store::Error as E;
        match self {
            TieringError::Store { source, .. } => !matches!(
                source.as_ref(),
                E::NotFound { .. }
                    | E::InvalidPath { .. }
                    | E::NotSupported { .. }
                    | E::NotImplemented { .. }
                    | E::PermissionDenied { .. }
                    | E::Unauthenticated { .. }
                    | E::UnknownConfigurationKey { .. }
                    | E::AlreadyExists { .. }
                    | E::Precondition { .. }
                    | E::NotModified { .. }
            ),
            TieringError::Conflict { .. } | TieringError::UploadRunning { .. } => true,
            TieringError::Io { .. } => false,
            TieringError::InvalidUrl { .. }
            | TieringError::Fenced { .. }
            | TieringError::Corrupt { .. }
            | TieringError::Manifest { .. }
            | TieringError::Overlap { .. }
            | TieringError::OffsetOutOfRange { .. }
            | TieringError::UnknownPartition { .. }
            | TieringError::ShuttingDown => false,
        }
    }

    /// True when the object (or partition) does not exist.
    pub fn is_not_found(&self) -> bool {
        match self {
            TieringError::Store { source, .. } => {
                matches!(source.as_ref(), object_store::Error::NotFound { .. })
            }
            TieringError::UnknownPartition { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn store(op: &'static str, key: impl ToString, source: object_store::Error) -> Self {
        TieringError::Store {
            op,
            key: key.to_string(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn io(
        op: &'static str,
        path: impl AsRef<std::path::Path>,
        source: std::io::Error,
    ) -> Self {
        TieringError::Io {
            op,
            path: path.as_ref().display().to_string(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn corrupt(what: &'static str, key: impl ToString, detail: impl ToString) -> Self {
        TieringError::Corrupt {
            what,
            key: key.to_string(),
            detail: detail.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let generic = TieringError::store(
            "get chunk",
            "k",
            object_store::Error::Generic {
                store: "S3",
                source: "503 slow down".into(),
            },
        );
        assert!(generic.is_retryable());
        let nf = TieringError::store(
            "get chunk",
            "k",
            object_store::Error::NotFound {
                path: "k".into(),
                source: "nope".into(),
            },
        );
        assert!(!nf.is_retryable());
        assert!(nf.is_not_found());
        assert!(TieringError::Conflict { key: "m".into() }.is_retryable());
        assert!(!TieringError::corrupt("chunk", "k", "crc").is_retryable());
    }
}
