//! Settings of the claim-check gateway, with Kafka-style dotted names for the broker's config file.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Gateway settings. Every field has a default, so `ClaimCheckConfig::default()` is a working
/// configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ClaimCheckConfig {
    /// Largest payload accepted by any upload (reference, chunked, CSV, resumable total).
    #[serde(rename = "claimcheck.max.upload.bytes")]
    pub max_upload_bytes: u64,
    /// Size of one object-store multipart part; payloads smaller than this are stored with one
    /// PUT. Memory per upload is bounded by `(multipart.concurrency + 1) * multipart.part.bytes`.
    #[serde(rename = "claimcheck.multipart.part.bytes")]
    pub multipart_part_bytes: usize,
    /// Parts of one upload in flight at once.
    #[serde(rename = "claimcheck.multipart.concurrency")]
    pub multipart_concurrency: usize,
    /// Record value size in chunk mode.
    #[serde(rename = "chunk.bytes")]
    pub chunk_bytes: usize,
    /// Resumable uploads not completed within this time are removed.
    #[serde(rename = "claimcheck.upload.expiry", with = "humantime_serde")]
    pub upload_expiry: Duration,
    /// Largest part of a resumable upload.
    #[serde(rename = "claimcheck.upload.max.part.bytes")]
    pub max_part_bytes: u64,
    /// A payload object without a live ticket is deleted only once it is older than this. It also
    /// bounds how long an upload may take between storing the payload and appending its ticket.
    #[serde(rename = "claimcheck.gc.grace", with = "humantime_serde")]
    pub gc_grace: Duration,
    /// Requests handled at once; more get `429 overloaded`.
    #[serde(rename = "claimcheck.max.concurrent.requests")]
    pub max_concurrent_requests: usize,
    /// Requests accepted per second over the whole API, with bursts of the same size; more get
    /// `429 rate_limited` with `Retry-After`. `0` means no limit.
    #[serde(rename = "claimcheck.max.requests.per.second")]
    pub max_requests_per_second: u32,
    /// Total size of request headers accepted (`431` above).
    #[serde(rename = "claimcheck.max.header.bytes")]
    pub max_header_bytes: usize,
    /// Where CSV uploads are spooled before they are split (the system temp dir when unset).
    #[serde(rename = "claimcheck.spool.dir")]
    pub spool_dir: Option<std::path::PathBuf>,
    /// Base URL written into tickets' `uri` (`<url>/v1/claims/<id>`); relative when unset.
    #[serde(rename = "claimcheck.public.url")]
    pub public_url: Option<String>,
}

impl Default for ClaimCheckConfig {
    fn default() -> Self {
        Self {
            max_upload_bytes: 64 * 1024 * 1024 * 1024,
            multipart_part_bytes: 8 * 1024 * 1024,
            multipart_concurrency: 2,
            chunk_bytes: 512 * 1024,
            upload_expiry: Duration::from_secs(24 * 3600),
            max_part_bytes: 1024 * 1024 * 1024,
            gc_grace: Duration::from_secs(3600),
            max_concurrent_requests: 32,
            max_requests_per_second: 0,
            max_header_bytes: 16 * 1024,
            spool_dir: None,
            public_url: None,
        }
    }
}

impl ClaimCheckConfig {
    pub fn spool_dir(&self) -> std::path::PathBuf {
        self.spool_dir.clone().unwrap_or_else(std::env::temp_dir)
    }

    /// The `uri` a ticket for `id` carries.
    pub fn claim_uri(&self, id: &crate::ClaimId) -> String {
        match &self.public_url {
            Some(base) => format!("{}/v1/claims/{id}", base.trim_end_matches('/')),
            None => format!("/v1/claims/{id}"),
        }
    }
}
