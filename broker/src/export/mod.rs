//! `strata export`: one partition range at a time, from the log (local or remote tier) to
//! Parquet files plus a `manifest.json` that lets an auditor check them later.
//!
//! ```text
//!  ExportPlan (offset range per partition, resolved from offsets or RFC 3339 times)
//!     │
//!     ▼
//!  reader.rs  RecordReader ── offset < local log start ──▶ RemoteLogManager::read (remote tier)
//!     │                    └─ otherwise ─────────────────▶ PartitionLog::read   (local segments)
//!     │  whole batches, at most READ_CHUNK_BYTES per step, decoded with kafka-protocol's
//!     │  RecordBatchDecoder, records outside [from, to] dropped, control batches skipped
//!     ▼
//!  parquet_writer.rs  PartitionParquetWriter ── Arrow RecordBatch per chunk ──▶ <file>.tmp
//!     │  row groups closed at ~128 MiB or 1M rows, zstd; fsync + rename on finish
//!     ▼
//!  manifest.rs  manifest.json: per file the exact offsets and times exported, row count,
//!               size and SHA-256; written last (temp + fsync + rename), `verify` recomputes.
//! ```
//!
//! # Invariants
//! - **Same read path as a consumer.** Records come from the bytes `PartitionLog::read` and
//!   `RemoteLogManager::read` return to a Fetch (the remote tier CRC-checks its chunks), so an
//!   export sees exactly what a consumer sees; a corrupt chunk fails the export, never a file.
//! - **Bounded memory.** One read chunk (a few MiB of batches, at least one batch) plus the
//!   Parquet row group being built (~128 MiB) per partition; partitions run one after another.
//! - **No partial output looks complete.** Parquet files are written under a `.tmp` name and
//!   renamed when closed; `manifest.json` is written only after every file, so a directory
//!   without a manifest is an interrupted export.
//! - **The broker is stopped.** The export opens the data directory with the log engine, which
//!   takes the directory's `.lock`: a running broker makes the export fail up front. Background
//!   retention and rolls are pushed out beyond the export's lifetime; nothing is appended.
//!
//! # Limits (first deliverable)
//! Record headers come from kafka-protocol's decoder as a map: two headers with the same key in
//! one record keep only the last. Transaction markers (control batches) are not exported; aborted
//! transactional records are (the export is read-uncommitted).

pub mod claims;
pub mod destination;
pub mod http;
pub mod job;
pub mod manifest;
pub mod parquet_writer;
pub mod progress;
pub mod reader;

use std::path::PathBuf;

/// Everything that can stop an export or a verification.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The requested range is not (entirely) in the partition's log.
    #[error(
        "{topic}-{partition}: requested offsets [{from}, {to}] are outside the log, which holds [{log_start}, {log_end})"
    )]
    OutOfRange {
        topic: String,
        partition: i32,
        from: i64,
        to: i64,
        log_start: i64,
        log_end: i64,
    },
    /// The requested range starts in history that retention already deleted.
    #[error(
        "{topic}-{partition}: history before offset {log_start} has expired (retention deleted it); the log holds [{log_start}, {log_end})"
    )]
    Expired {
        topic: String,
        partition: i32,
        log_start: i64,
        log_end: i64,
    },
    /// Offsets below the local log start that the remote tier does not have.
    #[error("{topic}-{partition}: offset {offset} is in neither the local log nor the remote tier")]
    Missing {
        topic: String,
        partition: i32,
        offset: i64,
    },
    #[error("reading the log: {0}")]
    Log(#[from] crate::log::LogError),
    #[error("reading the remote tier: {0}")]
    Remote(#[from] strata_tiering::TieringError),
    #[error("decoding a record batch at offset {offset}: {message}")]
    Decode { offset: i64, message: String },
    #[error("writing Parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("building Arrow arrays: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("manifest: {0}")]
    Manifest(String),
    #[error("destination: {0}")]
    Destination(String),
    /// The request itself is wrong (unknown topic or partition, bad bounds, a destination that
    /// already holds another export).
    #[error("{0}")]
    BadRequest(String),
    #[error("reading the claim store: {0}")]
    Claims(String),
}

impl ExportError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

/// One record as exported: the columns of the Parquet schema except topic and partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRecord {
    pub offset: i64,
    /// Milliseconds since the epoch (the batch's max timestamp on `LogAppendTime` topics).
    pub timestamp: i64,
    pub timestamp_type: TimestampKind,
    pub key: Option<bytes::Bytes>,
    pub value: Option<bytes::Bytes>,
    pub headers: Vec<(String, Option<bytes::Bytes>)>,
    pub producer_id: i64,
    /// The ticket's fields when the record is a claim ticket (`claimcheck.version` header).
    pub claim: Option<ClaimFields>,
}

/// The exported fields of a claim ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimFields {
    pub id: String,
    pub uri: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampKind {
    CreateTime,
    LogAppendTime,
}

impl TimestampKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreateTime => "CreateTime",
            Self::LogAppendTime => "LogAppendTime",
        }
    }
}

#[cfg(test)]
mod tests;
