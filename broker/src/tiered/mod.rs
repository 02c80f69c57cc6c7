//! Tiered storage in the broker: the glue between the log engine (`crate::log`), the Kafka
//! server (`crate::kafka`) and the remote tier (`strata_tiering::RemoteLogManager`).
//!
//! ```text
//!  LogManager ── SegmentEvent::Closed ──▶ pump.rs ──▶ RemoteLogManager::on_segment_closed
//!      │                                   ▲ catch-up: closed local segments not in the manifest
//!      │ retention asks gate.rs ◀── refresh (gate.rs, every second): which local segments the
//!      │                                     manifest covers, upload lag, status snapshot
//!  Fetch < local log start ──▶ cold_read.rs ──▶ RemoteLogManager::read (spawned, max_wait bound)
//!  ListOffsets -4/-5 ──▶ offsets.rs          ListOffsets by time ──▶ cold_read.rs
//!  retention.rs: retention.ms / retention.bytes over the whole log (remote part)
//!  restore.rs: topic.json in the bucket; empty data dir ──▶ topics recreated from the bucket
//!              (retried until it finishes; meanwhile their names cannot be created anew)
//!  DeleteTopics ──▶ topic_delete.rs: tombstone, local delete, every remote object of the topic
//!  status.rs: /metrics collector, GET /v1/tier/status, the snapshot behind `strata tier status`
//! ```
//!
//! # Invariants
//! - **Upload before local delete.** The log engine deletes a closed local segment of a tiered
//!   topic only if the [`gate::UploadGate`] says so, and the gate answers from a set of segments
//!   that the refresh task has seen covered by `CopySegmentFinished` entries of the manifest
//!   (`RemoteLogManager::may_delete_locally`). A segment the gate has not heard of stays.
//! - **Log start before remote delete.** Remote retention first moves the log engine's log
//!   start offset (what clients see for ListOffsets -2 and in Fetch), then lets the remote tier
//!   move the manifest's start and delete objects (manifest first, objects second, inside
//!   `strata-tiering`). A client is therefore never sent to an object about to vanish.
//! - **DeleteRecords is final.** An offset DeleteRecords deleted up to is persisted by the log
//!   engine (`deleted_records_offset`); the log start is never lowered below it at a restart,
//!   and the retention pass drops the remote segments wholly below it and moves the manifest's
//!   log start to it, so a restore from the bucket does not serve those records either.
//! - **The remote tier is the source of truth for everything below the local log start.** The
//!   log engine clamps its log start to local data on restart; at every start (and after
//!   restore) [`TieredStorage::start`] lowers it again to the remote log start, but only when
//!   the manifest covers every offset from there to the local log start (no hole is exposed).
//! - **Produce is bounded by upload lag.** While more than `remote.log.manager.max.upload.lag.bytes`
//!   of a tiered partition's closed segments wait for upload, produce to it fails with
//!   KAFKA_STORAGE_ERROR and a message, rather than filling the disk.
//!
//! # Crash consistency
//! Nothing here keeps durable state of its own: the manifest (bucket) and the log (disk) are the
//! two sources of truth, and every task is a reconciliation between them that is safe to repeat.
//! A crash between steps is repaired at the next start by `RemoteLogManager::reconcile` (orphan
//! objects, unfinished deletes) and by the catch-up scan (segments closed but never uploaded).
//!
//! # Shutdown order
//! Kafka listener stops -> tasks here stop (a periodic step cut short, as a crash would) ->
//! `RemoteLogManager::shutdown` (in-flight uploads get `SHUTDOWN_GRACE`, then are abandoned and
//! redone at the next start) -> log shutdown.

pub mod cold_read;
pub mod gate;
pub mod offsets;
pub mod pump;
pub mod restore;
pub mod retention;
pub mod status;
pub mod topic_delete;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use strata_tiering::{RemoteLogManager, TieringConfig};
use tokio_util::sync::CancellationToken;

use crate::kafka::BrokerContext;
use crate::log::LogManager;

pub use status::PartitionTierStatus;

/// Broker-level settings of the tiered-storage glue (Kafka names in `config.rs`).
#[derive(Debug, Clone)]
pub struct TierSettings {
    /// `remote.log.storage.system.enable`.
    pub enabled: bool,
    /// `remote.log.manager.max.upload.lag.bytes`.
    pub max_upload_lag_bytes: u64,
    /// `remote.log.manager.task.interval.ms`: remote retention and upload catch-up.
    pub task_interval: Duration,
    /// `remote.log.manager.reconcile.interval.ms`.
    pub reconcile_interval: Duration,
    /// How often the gate's view, lag and status are refreshed from the manifests.
    pub refresh_interval: Duration,
}

impl TierSettings {
    /// From the Kafka-named broker configs (defaults where missing or unparsable).
    pub fn from_broker_configs(configs: &BTreeMap<String, String>) -> Self {
        let get = |key: &str, default: u64| -> u64 {
            configs
                .get(key)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(default)
        };
        Self {
            enabled: configs
                .get("remote.log.storage.system.enable")
                .is_none_or(|v| v.trim() != "false"),
            max_upload_lag_bytes: get("remote.log.manager.max.upload.lag.bytes", 10 << 30),
            task_interval: Duration::from_millis(get(
                "remote.log.manager.task.interval.ms",
                30_000,
            )),
            reconcile_interval: Duration::from_millis(get(
                "remote.log.manager.reconcile.interval.ms",
                3_600_000,
            )),
            refresh_interval: Duration::from_millis(1_000),
        }
    }

    /// The copy and fetch byte-rate quotas (`remote.log.manager.{copy,fetch}.max.bytes.per.second`;
    /// `None`, unlimited, for Kafka's default `Long.MAX_VALUE`).
    pub fn quotas(configs: &BTreeMap<String, String>) -> (Option<u64>, Option<u64>) {
        let quota = |key: &str| {
            configs
                .get(key)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|n| *n < i64::MAX as u64)
        };
        (
            quota("remote.log.manager.copy.max.bytes.per.second"),
            quota("remote.log.manager.fetch.max.bytes.per.second"),
        )
    }

    /// `TieringConfig` from the broker configs; `writer_epoch` is set by the caller.
    pub fn tiering_config(
        configs: &BTreeMap<String, String>,
        cache_dir: std::path::PathBuf,
    ) -> TieringConfig {
        let get = |key: &str| configs.get(key).and_then(|v| v.trim().parse::<u64>().ok());
        let mut config = TieringConfig::default();
        if let Some(n) = get("remote.log.manager.copier.thread.pool.size") {
            config.copier_threads = n as usize;
        }
        (
            config.copy_max_bytes_per_second,
            config.fetch_max_bytes_per_second,
        ) = Self::quotas(configs);
        if let Some(n) = get("remote.log.reader.threads") {
            config.reader_threads = n as usize;
        }
        if let Some(n) = get("remote.log.read.ahead.chunks") {
            config.read_ahead_chunks = n as usize;
        }
        if let Some(n) = get("remote.log.index.file.cache.total.size.bytes") {
            config.cache_disk_bytes = n;
        }
        if let Some(n) = get("remote.log.chunk.cache.memory.bytes") {
            config.cache_memory_bytes = n;
        }
        if let Some(bytes) = configs
            .get("remote.log.manager.idle.upload.backlog.bytes")
            .and_then(|v| v.trim().parse::<i64>().ok())
        {
            config.idle_max_backlog_bytes = u64::try_from(bytes).ok();
        }
        if let Some(ms) = get("remote.log.manager.orphan.grace.ms") {
            config.orphan_grace = Duration::from_millis(ms);
        }
        config.compression = match configs
            .get("remote.log.chunk.compression")
            .map(|v| v.trim())
        {
            Some("lz4") => strata_tiering::segment_object::Compression::Lz4,
            Some("none") => strata_tiering::segment_object::Compression::None,
            _ => strata_tiering::segment_object::Compression::Zstd,
        };
        config.cache_dir = Some(cache_dir);
        config
    }
}

/// What the tasks know about one partition, refreshed from the log and the manifest.
#[derive(Debug, Clone, Default)]
pub(crate) struct PartitionView {
    pub status: PartitionTierStatus,
    /// Closed local segments (base -> next offset) covered by finished remote segments.
    pub uploaded: BTreeMap<i64, i64>,
    /// `status.remote` came from the store (in this refresh or an earlier one), so "no
    /// remote segments" can be believed.
    pub remote_known: bool,
}

/// In-memory state shared by the gate, the hooks and the tasks.
#[derive(Debug, Default)]
pub(crate) struct TierState {
    pub partitions: Mutex<HashMap<(String, i32), PartitionView>>,
    /// What an unfinished restore from the bucket still has to bring back (`restore.rs`).
    pub pending_restore: restore::SharedPendingRestore,
    /// Why the last restore attempt did not finish (the store's own error), for the refusals.
    pub restore_error: restore::SharedRestoreError,
    /// Whether the manifest writer epoch was raised past the bucket's (`restore.rs`).
    pub bucket_epoch_known: std::sync::atomic::AtomicBool,
}

impl TierState {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), PartitionView>> {
        self.partitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn pending_restore(&self) -> restore::PendingRestore {
        self.pending_restore
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn snapshot(&self) -> Vec<PartitionTierStatus> {
        let mut list: Vec<_> = self.lock().values().map(|v| v.status.clone()).collect();
        list.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        list
    }
}

/// The running remote tier of a broker.
pub struct TieredStorage {
    pub rlm: RemoteLogManager,
    pub(crate) log: Arc<LogManager>,
    pub(crate) state: Arc<TierState>,
    pub(crate) data_dir: std::path::PathBuf,
    /// Topic metadata this process wrote to the bucket (see `restore.rs`).
    pub(crate) published: Mutex<HashMap<String, crate::log::TopicMetadata>>,
    /// Ids of topics whose deletion is under way. Held while `topic.json` is written, so that a
    /// write racing a DeleteTopics lands before the deletion lists the topic's objects, or not at
    /// all (a late one would bring the deleted topic back at the next restore).
    pub(crate) deleting_topics: tokio::sync::Mutex<std::collections::HashSet<uuid::Uuid>>,
    pub settings: TierSettings,
    cancel: CancellationToken,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl TieredStorage {
    /// Wires the remote tier into the log engine and the Kafka server, restores topics from the
    /// bucket when the log is empty, and starts the tasks (pump, refresh, retention, reconcile).
    pub async fn start(
        rlm: RemoteLogManager,
        log: Arc<LogManager>,
        broker: &BrokerContext,
        settings: TierSettings,
        data_dir: std::path::PathBuf,
    ) -> anyhow::Result<Arc<Self>> {
        let this = Arc::new(Self {
            rlm,
            log,
            state: Arc::default(),
            data_dir,
            published: Mutex::default(),
            deleting_topics: tokio::sync::Mutex::default(),
            settings,
            cancel: CancellationToken::new(),
            tasks: Mutex::default(),
        });
        this.log
            .set_topic_creation_gate(Arc::new(restore::RestoreGate {
                pending: this.state.pending_restore.clone(),
                last_error: this.state.restore_error.clone(),
            }));
        let epoch_known = restore::raise_past_bucket_epoch(&this).await;
        restore::restore_at_start(&this).await;
        this.log
            .set_local_deletion_gate(Arc::new(gate::UploadGate::new(&this.log, &this.state)));
        broker.set_tier_offsets(Arc::new(offsets::RemoteTierOffsets {
            state: this.state.clone(),
            data_dir: this.data_dir.clone(),
        }));
        broker.set_cold_reader(Arc::new(cold_read::RemoteColdReader {
            rlm: this.rlm.clone(),
        }));
        broker.set_topic_deletion(Arc::new(topic_delete::RemoteTopicDeletion::new(
            this.clone(),
        )));
        broker.set_append_admission(Arc::new(gate::UploadLagAdmission {
            state: this.state.clone(),
            max_lag_bytes: this.settings.max_upload_lag_bytes,
        }));
        match this.rlm.reconcile().await {
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "reconcile at start failed; retrying later"),
        }
        topic_delete::finish_deletions(&this).await;
        gate::refresh(&this).await;
        retention::expose_remote_log_starts(&this).await;
        pump::catch_up(&this).await;
        let mut tasks = vec![
            tokio::spawn(pump::run_events(this.clone())),
            tokio::spawn(pump::run_periodic(this.clone())),
            tokio::spawn(follow_quotas(this.clone(), broker.watch_broker_configs())),
            tokio::spawn(restore::retry_unfinished_restore(this.clone())),
        ];
        if !epoch_known {
            tasks.push(tokio::spawn(restore::retry_bucket_epoch(this.clone())));
        }
        this.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(tasks);
        tracing::info!(remote = %this.rlm.remote().url, "tiered storage started");
        Ok(this)
    }

    /// The broker with no remote tier (`remote.log.storage.system.enable=false`): the gate still
    /// keeps local segments of topics that ask for tiering, since nothing would ever upload them.
    pub fn install_disabled(log: &Arc<LogManager>) {
        log.set_local_deletion_gate(Arc::new(gate::UploadGate::new(log, &Arc::default())));
    }

    pub(crate) fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// `GET /v1/tier/status` for the HTTP listener.
    pub fn router(&self) -> axum::Router {
        status::router(self.state.clone(), self.rlm.remote().url.clone())
    }

    /// Registers the per-partition gauges (collected at scrape time).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        registry.register_collector(Box::new(status::TierCollector {
            state: self.state.clone(),
            rlm: self.rlm.clone(),
        }));
    }

    /// Status of every partition with tiering on or data in the remote tier.
    pub fn status(&self) -> Vec<PartitionTierStatus> {
        self.state.snapshot()
    }

    /// Stops the tasks, lets in-flight uploads finish, stops the remote log manager.
    pub async fn shutdown(&self) {
        self.cancel.cancel();
        let tasks: Vec<_> = self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        self.rlm.shutdown().await;
    }
}

/// Applies changes of the dynamic quota configs (AlterConfigs on the broker) to the remote tier.
async fn follow_quotas(
    tiered: Arc<TieredStorage>,
    mut configs: tokio::sync::watch::Receiver<BTreeMap<String, String>>,
) {
    loop {
        tokio::select! {
            () = tiered.cancel.cancelled() => return,
            changed = configs.changed() => if changed.is_err() { return },
        }
        let (copy, fetch) = TierSettings::quotas(&configs.borrow_and_update());
        if tiered.rlm.quotas() != (copy, fetch) {
            tracing::info!(copy_bytes_per_second = ?copy, fetch_bytes_per_second = ?fetch,
                "remote tier quotas changed (None: unlimited)");
            tiered.rlm.set_copy_quota(copy);
            tiered.rlm.set_fetch_quota(fetch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiering_config_takes_the_broker_config_names() {
        let configs: BTreeMap<String, String> = [
            ("remote.log.reader.threads", "6"),
            ("remote.log.read.ahead.chunks", "12"),
            ("remote.log.chunk.compression", "lz4"),
            ("remote.log.manager.copier.thread.pool.size", "3"),
            ("remote.log.manager.idle.upload.backlog.bytes", "-1"),
            ("remote.log.manager.fetch.max.bytes.per.second", "1048576"),
            ("remote.log.chunk.cache.memory.bytes", "33554432"),
            ("remote.log.index.file.cache.total.size.bytes", "1000000"),
            (
                "remote.log.manager.copy.max.bytes.per.second",
                "9223372036854775807",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let config = TierSettings::tiering_config(&configs, "/tmp/cache".into());
        assert_eq!(config.reader_threads, 6);
        assert_eq!(config.read_ahead_chunks, 12);
        assert_eq!(config.copier_threads, 3);
        assert_eq!(config.idle_max_backlog_bytes, None, "-1: never idle");
        assert_eq!(config.fetch_max_bytes_per_second, Some(1 << 20));
        assert_eq!(config.cache_memory_bytes, 32 << 20);
        assert_eq!(config.cache_disk_bytes, 1_000_000);
        assert_eq!(config.copy_max_bytes_per_second, None, "Long.MAX_VALUE");
        assert!(matches!(
            config.compression,
            strata_tiering::segment_object::Compression::Lz4
        ));
        assert_eq!(config.cache_dir, Some("/tmp/cache".into()));
        let defaults = TierSettings::tiering_config(&BTreeMap::new(), "/tmp/cache".into());
        assert_eq!(
            defaults.read_ahead_chunks,
            TieringConfig::default().read_ahead_chunks
        );
        assert_eq!(defaults.idle_max_backlog_bytes, Some(2 << 30));
        let small: BTreeMap<String, String> = [(
            "remote.log.manager.idle.upload.backlog.bytes".to_string(),
            "1000".to_string(),
        )]
        .into();
        let small = TierSettings::tiering_config(&small, "/tmp/cache".into());
        assert_eq!(small.idle_max_backlog_bytes, Some(1000));
    }
}
