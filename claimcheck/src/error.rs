//! The one error type of the claim-check crate.
//!
//! Every failure is a [`ClaimError`]; it classifies itself: [`ClaimError::code`] is the stable
//! machine-readable code used in HTTP error bodies, [`ClaimError::http_status`] the status the
//! gateway answers with, and [`ClaimError::is_retryable`] tells clients whether trying again can
//! help. [`SinkError`] is what a broker's [`crate::TicketSink`] returns.

use serde::{Deserialize, Serialize};

/// Errors a [`crate::TicketSink`] implementation reports.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error("topic {topic:?} has no partition {partition}")]
    UnknownPartition { topic: String, partition: i32 },
    #[error("record too large: {0}")]
    RecordTooLarge(String),
    /// Not enough in-sync replicas, shutting down, disk full...: trying again may succeed.
    #[error("log unavailable: {0}")]
    Unavailable(String),
    /// The broker refuses appends to this partition for now, as it refuses Kafka produce (e.g.
    /// the remote tier's upload lag is above `remote.log.manager.max.upload.lag.bytes`, or the
    /// topic's `min.insync.replicas` is above this node's one replica): trying again later may
    /// succeed (once uploads catch up, or the topic's config is changed).
    #[error("append refused: {0}")]
    AppendRefused(String),
    /// The record was written but could not be made durable (the broker's fsync failed): it
    /// may be read, and may or may not survive a crash. Whatever it points to must be kept.
    #[error("append not durable: {0}")]
    NotDurable(String),
    #[error("{0}")]
    Other(String),
}

/// A malformed CSV row, reported with its 1-based line number in the uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CsvRowError {
    pub line: u64,
    pub message: String,
}

/// Every error of the claim-check gateway, its client and its background tasks.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopic { name: String, reason: &'static str },
    #[error("invalid {kind} id {value:?}: expected 32 lowercase hex digits")]
    InvalidId { kind: &'static str, value: String },
    #[error("{0} not found")]
    NotFound(String),
    #[error("payload exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: u64 },
    #[error("size mismatch: expected {expected} bytes, received {actual}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("SHA-256 mismatch: expected {expected}, computed {actual}")]
    DigestMismatch { expected: String, actual: String },
    #[error("range not satisfiable for a payload of {size} bytes")]
    RangeNotSatisfiable { size: u64 },
    #[error("malformed CSV: {} bad row(s), first at line {}", rows.len(), rows.first().map_or(0, |r| r.line))]
    MalformedCsv { rows: Vec<CsvRowError> },
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("too many concurrent requests")]
    Overloaded,
    /// More than `max.requests.per.second`; the next request is accepted after `retry_after`.
    #[error("request rate above {limit} per second; retry in {} ms", retry_after.as_millis())]
    RateLimited {
        limit: u32,
        retry_after: std::time::Duration,
    },
    #[error("request headers exceed {limit} bytes")]
    HeadersTooLarge { limit: usize },
    #[error("request body aborted: {0}")]
    BodyAborted(String),
    #[error("appending to the log: {0}")]
    Sink(#[from] SinkError),
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("gateway answered {status} {code}: {message}")]
    Remote {
        status: u16,
        code: String,
        message: String,
    },
    #[error("invalid claim ticket: {0}")]
    InvalidTicket(String),
    #[error("reassembling chunked payload: {0}")]
    Reassembly(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("internal: {0}")]
    Internal(String),
    /// A resumable upload failed after retries; resume it with `upload`.
    #[error("upload {upload} interrupted (resume it with this id): {source}")]
    Interrupted {
        upload: crate::ticket::UploadId,
        source: Box<ClaimError>,
    },
}

pub type Result<T, E = ClaimError> = std::result::Result<T, E>;

impl ClaimError {
    /// Stable machine-readable code (the `error.code` field of HTTP error bodies).
    pub fn code(&self) -> &'static str {
        match self {
            ClaimError::BadRequest(_) => "bad_request",
            ClaimError::InvalidTopic { .. } => "invalid_topic",
            ClaimError::InvalidId { .. } => "invalid_id",
            ClaimError::NotFound(_) => "not_found",
            ClaimError::PayloadTooLarge { .. } => "payload_too_large",
            ClaimError::SizeMismatch { .. } => "size_mismatch",
            ClaimError::DigestMismatch { .. } => "digest_mismatch",
            ClaimError::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            ClaimError::MalformedCsv { .. } => "malformed_csv",
            ClaimError::Conflict(_) => "conflict",
            ClaimError::Overloaded => "overloaded",
            ClaimError::RateLimited { .. } => "rate_limited",
            ClaimError::HeadersTooLarge { .. } => "headers_too_large",
            ClaimError::BodyAborted(_) => "body_aborted",
            ClaimError::Sink(SinkError::UnknownTopic(_)) => "unknown_topic",
            ClaimError::Sink(SinkError::UnknownPartition { .. }) => "unknown_partition",
            ClaimError::Sink(SinkError::RecordTooLarge(_)) => "record_too_large",
            ClaimError::Sink(SinkError::AppendRefused(_)) => "append_refused",
            ClaimError::Sink(SinkError::NotDurable(_)) => "append_not_durable",
            ClaimError::Sink(_) => "log_unavailable",
            ClaimError::Store(object_store::Error::NotFound { .. }) => "not_found",
            ClaimError::Store(_) => "object_store",
            ClaimError::Http(_) => "http_client",
            ClaimError::Remote { .. } => "remote",
            ClaimError::InvalidTicket(_) => "invalid_ticket",
            ClaimError::Reassembly(_) => "reassembly",
            ClaimError::Io(_) => "io",
            ClaimError::Internal(_) => "internal",
            ClaimError::Interrupted { source, .. } => source.code(),
        }
    }

    /// The HTTP status the gateway answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            ClaimError::BadRequest(_)
            | ClaimError::InvalidTopic { .. }
            | ClaimError::InvalidId { .. }
            | ClaimError::SizeMismatch { .. }
            | ClaimError::BodyAborted(_)
            | ClaimError::InvalidTicket(_) => 400,
            ClaimError::NotFound(_)
            | ClaimError::Store(object_store::Error::NotFound { .. })
            | ClaimError::Sink(SinkError::UnknownTopic(_))
            | ClaimError::Sink(SinkError::UnknownPartition { .. }) => 404,
            ClaimError::Conflict(_) => 409,
            ClaimError::PayloadTooLarge { .. } | ClaimError::Sink(SinkError::RecordTooLarge(_)) => {
                413
            }
            ClaimError::RangeNotSatisfiable { .. } => 416,
            ClaimError::DigestMismatch { .. } | ClaimError::MalformedCsv { .. } => 422,
            ClaimError::Overloaded | ClaimError::RateLimited { .. } => 429,
            ClaimError::HeadersTooLarge { .. } => 431,
            ClaimError::Sink(
                SinkError::Unavailable(_) | SinkError::AppendRefused(_) | SinkError::NotDurable(_),
            )
            | ClaimError::Store(_) => 503,
            ClaimError::Remote { status, .. } => *status,
            ClaimError::Interrupted { source, .. } => source.http_status(),
            ClaimError::Sink(SinkError::Other(_))
            | ClaimError::Http(_)
            | ClaimError::Reassembly(_)
            | ClaimError::Io(_)
            | ClaimError::Internal(_) => 500,
        }
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            ClaimError::Overloaded
            | ClaimError::RateLimited { .. }
            | ClaimError::Sink(
                SinkError::Unavailable(_) | SinkError::AppendRefused(_) | SinkError::NotDurable(_),
            )
            | ClaimError::BodyAborted(_) => true,
            ClaimError::Store(e) => !matches!(
                e,
                object_store::Error::NotFound { .. }
                    | object_store::Error::InvalidPath { .. }
                    | object_store::Error::NotSupported { .. }
                    | object_store::Error::NotImplemented { .. }
            ),
            ClaimError::Http(e) => e.is_timeout() || e.is_connect() || e.is_request(),
            ClaimError::Remote { status, .. } => *status == 429 || *status >= 500,
            ClaimError::Interrupted { .. } => true,
            _ => false,
        }
    }

    /// True when the error means "does not exist".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            ClaimError::NotFound(_) | ClaimError::Store(object_store::Error::NotFound { .. })
        ) || matches!(self, ClaimError::Remote { status: 404, .. })
    }
}
