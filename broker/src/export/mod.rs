//! Export: any slice of a topic's history, from both tiers, to Parquet files plus a
//! `manifest.json` that lets an auditor check them later. Run by `strata export` (a stopped
//! broker's data directory) or as a job inside a running broker (`POST /v1/exports`, `http.rs`).
//!
//! ```text
//!  ExportRequest ─▶ job.rs run_export: probe destination, resolve ranges, resume point
//!     │
//!     ▼
//!  reader.rs  RecordReader ── offset < local log start ──▶ RemoteLogManager::read (remote tier)
//!     │                    └─ otherwise ─────────────────▶ PartitionLog::read   (local segments)
//!     │  whole batches, at most READ_CHUNK_BYTES per step, decoded with kafka-protocol's
//!     │  RecordBatchDecoder, records outside [from, to] dropped, control batches skipped
//!     ▼                                  claims.rs: --verify-claims hashes each ticket's payload
//!  parquet_writer.rs  PartitionParquetWriter ── records copied into Arrow builders
//!     │  row groups closed at ~16 MiB or 1M rows, encoded (zstd) on the blocking pool, one per
//!     │  core at once, appended to the file in order; a new file at --max-file-bytes
//!     ▼
//!  destination.rs  FileSink ── local .tmp + fsync + rename | object-store multipart upload
//!     │  SHA-256 and size computed while writing
//!     ▼
//!  manifest.rs  manifest.partial.json after every file; manifest.json last; `verify` recomputes
//! ```
//!
//! # Invariants
//! - **Same read path as a consumer.** Records come from the bytes `PartitionLog::read` and
//!   `RemoteLogManager::read` return to a Fetch (the remote tier CRC-checks its chunks), so an
//!   export sees exactly what a consumer sees; a corrupt chunk fails the export, never a file.
//!   Each batch's CRC is checked before it is decoded (decoding a compressed batch rebuilds it,
//!   CRC included, so it would not notice), so a batch rotten on local disk fails the export
//!   too, naming its offset.
//!   Inside a running broker these are the broker's own instances (shared chunk cache, reader
//!   pool); the range ends at the high watermark resolved when the job starts.
//! - **Bounded memory.** Two prefetched read chunks (a few MiB of batches each, at least one
//!   batch), the row group being collected (~16 MiB of Arrow arrays) plus one being encoded per
//!   core (2 to 4, each its arrays and its encoded pages), for object stores two 8 MiB parts in
//!   flight, and (CLI) a remote chunk cache of four chunks; partitions run one after another.
//!   A 2 GiB export peaks near 200 MiB RSS on 2 cores (BENCHMARKS.md).
//! - **No partial output looks complete.** A file becomes visible only when complete (rename, or
//!   multipart completion); `manifest.json` is written only after every file, so a destination
//!   without it is an interrupted export, which a re-run with the same request resumes from
//!   `manifest.partial.json` (see `job.rs`).
//! - **The CLI needs the broker stopped.** It opens the data directory with the log engine,
//!   which takes the directory's `.lock`: a running broker makes it fail up front (use the HTTP
//!   job instead). Background retention and rolls are pushed out beyond its lifetime.
//!
//! # Limits
//! Values are binary by default; `utf8` and `json` value formats check every value (a value
//! that does not fit fails the export with its offset rather than being altered or dropped).
//! Record headers come from kafka-protocol's decoder as a map: two headers with the same key in
//! one record keep only the last. Transaction markers (control batches) are not exported; aborted
//! transactional records are (the export is read-uncommitted). HTTP jobs live in memory: a
//! broker restart forgets them (re-post to resume). An object-store upload cut by a crash leaves
//! an incomplete multipart upload, which the next export into the destination aborts (an error
//! aborts it at once).

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
    /// The requested range starts in history that retention or DeleteRecords already deleted.
    #[error(
        "{topic}-{partition}: history before offset {log_start} has expired (retention or DeleteRecords deleted it); the log holds [{log_start}, {log_end})"
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
    /// A stored batch whose bytes do not check out (CRC, header): bit rot on disk.
    #[error(
        "{topic}-{partition}: the stored record batch at offset {offset} is corrupt ({problem}); nothing from it is exported"
    )]
    Corrupt {
        topic: String,
        partition: i32,
        offset: i64,
        problem: strata_format::FormatError,
    },
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
    /// Stopped on request (`DELETE /v1/exports/{id}`, Ctrl-C on the CLI).
    #[error(
        "the export was cancelled; the files finished so far are kept, and running the same export to the same destination again resumes it"
    )]
    Cancelled,
    #[error("destination: {0}")]
    Destination(String),
    /// The request itself is wrong (unknown topic or partition, bad bounds, a destination that
    /// already holds another export).
    #[error("{0}")]
    BadRequest(String),
    #[error("reading the claim store: {0}")]
    Claims(String),
    /// A record value that the requested value format cannot hold.
    #[error(
        "{topic}-{partition} offset {offset}: the value is not valid {} ({problem}); export with value format `binary` to keep values as bytes",
        format.describe()
    )]
    BadValue {
        topic: String,
        partition: i32,
        offset: i64,
        format: ValueFormat,
        problem: String,
    },
}

/// How the `value` column holds record values.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// The bytes as produced (Parquet BYTE_ARRAY, Arrow binary).
    #[default]
    Binary,
    /// UTF-8 text (Arrow utf8, Parquet STRING); a value that is not valid UTF-8 fails the
    /// export, naming its offset.
    Utf8,
    /// JSON documents (Arrow utf8 with the `arrow.json` extension, Parquet JSON); a value that
    /// is not one JSON document fails the export, naming its offset.
    Json,
}

impl ValueFormat {
    fn describe(self) -> &'static str {
        match self {
            Self::Binary => "binary",
            Self::Utf8 => "UTF-8",
            Self::Json => "JSON",
        }
    }
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
