//! Visibility: per-partition tiering status as Prometheus gauges (collected at scrape time from
//! the refresh task's snapshot), as JSON on `GET /v1/tier/status`, and as a file
//! (`<data_dir>/tier-status.json`) that `strata tier status --data-dir` reads.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TierState;
pub use super::restore::PendingRestore;

/// One partition as `strata tier status` and `/metrics` show it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionTierStatus {
    pub topic: String,
    pub partition: i32,
    pub topic_id: Uuid,
    /// `remote.storage.enable`.
    pub tiered: bool,
    /// Tiered and `remote.log.copy.disable=false`.
    pub copy_enabled: bool,
    /// Bytes of local segment files (closed and active).
    pub local_bytes: u64,
    /// Local bytes not (yet) in the remote tier.
    pub local_only_bytes: u64,
    /// The log start offset clients see (ListOffsets -2).
    pub log_start_offset: i64,
    /// Oldest offset on local disk (ListOffsets -4).
    pub local_log_start_offset: i64,
    pub log_end_offset: i64,
    pub remote_bytes: u64,
    pub remote_segments: u64,
    /// Oldest offset in the remote tier, -1 when it holds nothing.
    pub remote_log_start_offset: i64,
    /// ListOffsets -5, -1 when nothing is tiered.
    pub highest_tiered_offset: i64,
    /// Bytes of closed local segments waiting for upload.
    pub upload_lag_bytes: u64,
    pub upload_lag_offsets: i64,
    pub queued_segments: u64,
    pub last_error: Option<String>,
    pub last_upload_ms: Option<i64>,
    #[serde(skip)]
    pub(crate) remote: strata_tiering::PartitionStatus,
}

/// The JSON document of `GET /v1/tier/status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TierStatusReport {
    /// The remote tier's URL; empty when `remote.log.storage.system.enable=false`.
    pub remote: String,
    /// A restore from the bucket that has not finished (absent: none).
    #[serde(default, skip_serializing_if = "PendingRestore::is_nothing")]
    pub restore_pending: PendingRestore,
    pub partitions: Vec<PartitionTierStatus>,
}

/// Where the broker keeps the latest report for offline readers.
pub fn status_file(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("tier-status.json")
}

#[derive(Clone)]
struct StatusSource {
    state: Arc<TierState>,
    remote: String,
}

impl StatusSource {
    fn report(&self) -> TierStatusReport {
        TierStatusReport {
            remote: self.remote.clone(),
            restore_pending: self.state.pending_restore(),
            partitions: self.state.snapshot(),
        }
    }
}

/// `GET /v1/tier/status`.
pub(crate) fn router(state: Arc<TierState>, remote: String) -> Router {
    Router::new()
        .route("/v1/tier/status", get(status_json))
        .with_state(StatusSource { state, remote })
}

async fn status_json(State(source): State<StatusSource>) -> axum::Json<TierStatusReport> {
    axum::Json(source.report())
}

/// Writes the report to `<data_dir>/tier-status.json` (atomically: temp + rename).
pub(crate) fn write_status_file(state: &TierState, remote: &str, data_dir: &std::path::Path) {
    let report = TierStatusReport {
        remote: remote.to_string(),
        restore_pending: state.pending_restore(),
        partitions: state.snapshot(),
    };
    let path = status_file(data_dir);
    let temp = path.with_extension("json.tmp");
    let written = serde_json::to_vec_pretty(&report)
        .map_err(std::io::Error::other)
        .and_then(|bytes| std::fs::write(&temp, bytes))
        .and_then(|()| std::fs::rename(&temp, &path));
    if let Err(error) = written {
        tracing::debug!(%error, path = %path.display(), "writing the tier status file failed");
    }
}

/// Prometheus collector: one gauge family per figure, labelled by topic and partition.
#[derive(Debug)]
pub(crate) struct TierCollector {
    pub state: Arc<TierState>,
    pub rlm: strata_tiering::RemoteLogManager,
}

type Figure = (&'static str, &'static str, fn(&PartitionTierStatus) -> i64);

const FIGURES: &[Figure] = &[
    ("tier_local_bytes", "Bytes of local segment files", |s| {
        s.local_bytes as i64
    }),
    (
        "tier_remote_bytes",
        "Bytes of record batches in the remote tier",
        |s| s.remote_bytes as i64,
    ),
    (
        "tier_upload_lag_bytes",
        "Bytes of closed local segments waiting for upload",
        |s| s.upload_lag_bytes as i64,
    ),
    (
        "tier_upload_lag_offsets",
        "Offsets closed locally but not yet in the remote tier",
        |s| s.upload_lag_offsets,
    ),
    (
        "tier_local_log_start_offset",
        "Oldest offset on local disk",
        |s| s.local_log_start_offset,
    ),
    (
        "tier_remote_log_start_offset",
        "Oldest offset in the remote tier (-1: none)",
        |s| s.remote_log_start_offset,
    ),
    (
        "tier_highest_tiered_offset",
        "Last offset copied to the remote tier (-1: none)",
        |s| s.highest_tiered_offset,
    ),
    (
        "tier_upload_failing",
        "1 while the last upload attempt of the partition failed",
        |s| i64::from(s.last_error.is_some()),
    ),
];

impl Collector for TierCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let partitions = self.state.snapshot();
        for (name, help, value) in FIGURES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for status in &partitions {
                let labels = [
                    ("topic", status.topic.clone()),
                    ("partition", status.partition.to_string()),
                ];
                let gauge = ConstGauge::new(value(status));
                gauge.encode(family.encode_family(&labels)?)?;
            }
        }
        ConstGauge::new(i64::from(!self.state.pending_restore().is_nothing())).encode(
            encoder.encode_descriptor(
                "tier_restore_pending",
                "1 while a restore from the remote tier is unfinished (topics it may bring back cannot be created)",
                None,
                MetricType::Gauge,
            )?,
        )?;
        let encoded = self.rlm.encoder_stats();
        let mut family = encoder.encode_descriptor(
            "tier_encoded",
            "Segment bytes read and compressed for upload, by the encoders' CPU priority (idle: \
             only on spare CPU; catch_up: nice 10, the upload backlog is over \
             remote.log.manager.idle.upload.backlog.bytes)",
            Some(&Unit::Bytes),
            MetricType::Counter,
        )?;
        for (priority, counter) in [
            ("idle", &encoded.idle_bytes),
            ("catch_up", &encoded.catch_up_bytes),
        ] {
            ConstCounter::new(counter.load(Ordering::Relaxed))
                .encode(family.encode_family(&[("priority", priority)])?)?;
        }
        let stats = self.rlm.cache_stats();
        let (memory_bytes, disk_bytes) = self.rlm.cache_sizes();
        let mut hits = encoder.encode_descriptor(
            "tier_chunk_cache_hits",
            "Cold-read chunks served from the chunk cache, by cache tier",
            None,
            MetricType::Counter,
        )?;
        for (tier, counter) in [("memory", &stats.memory_hits), ("disk", &stats.disk_hits)] {
            ConstCounter::new(counter.load(Ordering::Relaxed))
                .encode(hits.encode_family(&[("tier", tier)])?)?;
        }
        ConstCounter::new(stats.downloads.load(Ordering::Relaxed)).encode(
            encoder.encode_descriptor(
                "tier_chunk_downloads",
                "Cold-read chunks downloaded from the remote tier (read-ahead included)",
                None,
                MetricType::Counter,
            )?,
        )?;
        let mut held = encoder.encode_descriptor(
            "tier_chunk_cache",
            "Bytes the chunk cache holds, by cache tier",
            Some(&Unit::Bytes),
            MetricType::Gauge,
        )?;
        for (tier, bytes) in [("memory", memory_bytes), ("disk", disk_bytes)] {
            ConstGauge::new(bytes as i64).encode(held.encode_family(&[("tier", tier)])?)?;
        }
        let (copy, fetch) = self.rlm.quota_throttled();
        for (name, help, waited) in [
            (
                "tier_copy_throttle",
                "Time uploads waited for remote.log.manager.copy.max.bytes.per.second",
                copy,
            ),
            (
                "tier_fetch_throttle",
                "Time cold reads waited for remote.log.manager.fetch.max.bytes.per.second",
                fetch,
            ),
        ] {
            let counter = ConstCounter::new(waited.as_secs_f64());
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?)?;
        }
        Ok(())
    }
}
