//! Live progress of one export, shared between the job and whoever watches it (the CLI's
//! progress bar, `GET /v1/exports/{id}`).

use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// Progress of one partition's range.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PartitionProgress {
    pub partition: i32,
    /// The offset range exported (inclusive), after resolving times.
    pub from_offset: i64,
    pub to_offset: i64,
    /// Offsets of the range passed so far (records plus gaps such as control batches).
    pub offsets_done: u64,
    /// Records written to Parquet.
    pub records_done: u64,
    /// Bytes of record batches read from the log (both tiers).
    pub log_bytes_read: u64,
    /// Bytes of finished Parquet files.
    pub bytes_written: u64,
    pub files_done: u32,
    pub done: bool,
}

impl PartitionProgress {
    pub fn offsets_total(&self) -> u64 {
        (self.to_offset - self.from_offset + 1).max(0) as u64
    }
}

/// A cheaply cloned handle on the progress of every partition of one export, and the switch
/// that stops it.
#[derive(Debug, Clone, Default)]
pub struct ExportProgress {
    partitions: Arc<Mutex<Vec<PartitionProgress>>>,
    cancel: CancellationToken,
    metrics: Option<ExportMetrics>,
}

/// The broker's Prometheus metrics of its export jobs (`strata_export_*`, see docs/metrics.md).
#[derive(Debug, Clone, Default)]
pub struct ExportMetrics {
    pub(crate) running: Gauge,
    pub(crate) finished: Family<StateLabels, Counter>,
    records: Counter,
    written: Counter,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StateLabels {
    pub state: String,
}

impl ExportMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("export");
        registry.register(
            "jobs_running",
            "Export jobs (POST /v1/exports) running now",
            self.running.clone(),
        );
        registry.register(
            "jobs_finished",
            "Export jobs finished, by state (succeeded, failed, cancelled)",
            self.finished.clone(),
        );
        registry.register(
            "records",
            "Records in the finished Parquet files of export jobs",
            self.records.clone(),
        );
        registry.register_with_unit(
            "written",
            "Bytes of finished Parquet files written by export jobs",
            Unit::Bytes,
            self.written.clone(),
        );
    }
}

impl ExportProgress {
    /// Progress that also counts into the broker's metrics.
    pub fn with_metrics(metrics: ExportMetrics) -> Self {
        Self {
            metrics: Some(metrics),
            ..Self::default()
        }
    }

    /// A file of `bytes` holding `records` finished.
    pub(crate) fn count_file(&self, bytes: u64, records: u64) {
        if let Some(m) = &self.metrics {
            m.written.inc_by(bytes);
            m.records.inc_by(records);
        }
    }

    /// Asks the export to stop: it abandons the file it is writing (no `.tmp`, no open multipart
    /// upload left) and fails with [`super::ExportError::Cancelled`]; finished files and the
    /// partial manifest stay, so running the same export again resumes it.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Completes once [`Self::cancel`] was called.
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    pub fn snapshot(&self) -> Vec<PartitionProgress> {
        self.lock().clone()
    }

    pub(crate) fn set_plan(&self, partitions: Vec<PartitionProgress>) {
        *self.lock() = partitions;
    }

    pub(crate) fn update(&self, partition: i32, change: impl FnOnce(&mut PartitionProgress)) {
        if let Some(p) = self.lock().iter_mut().find(|p| p.partition == partition) {
            change(p);
        }
    }

    /// Offsets done and total over every partition.
    pub fn totals(&self) -> (u64, u64) {
        let partitions = self.lock();
        (
            partitions.iter().map(|p| p.offsets_done).sum(),
            partitions
                .iter()
                .map(PartitionProgress::offsets_total)
                .sum(),
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<PartitionProgress>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }
}
