//! `RemoteLogManager`: the remote tier as the broker sees it.
//!
//! The broker
//! * calls [`RemoteLogManager::on_segment_closed`] when a segment rolls (upload is queued and done
//!   in the background, per partition in offset order, at most `copier_threads` at a time);
//! * deletes a local segment only when [`RemoteLogManager::may_delete_locally`] says so;
//! * serves fetches below its local log start with [`RemoteLogManager::read`], ListOffsets with
//!   [`RemoteLogManager::offset_for_timestamp`], [`RemoteLogManager::remote_log_start_offset`]
//!   (-2 when local data is gone) and [`RemoteLogManager::highest_tiered_offset`] (-5);
//! * runs [`RemoteLogManager::run_retention`] from its retention loop and
//!   [`RemoteLogManager::reconcile`] at start (and e.g. hourly);
//! * lists [`RemoteLogManager::list_remote_partitions`] to restore from the bucket;
//! * reports [`RemoteLogManager::partition_status`] as metrics and in `strata tier status`;
//! * calls [`RemoteLogManager::shutdown`] on exit.
//!
//! Partitions are named by topic and partition; the topic id (needed for object keys) is
//! learned from segment descriptors, [`RemoteLogManager::register_partition`] or the bucket.
//!
//! Cancellation: `shutdown` stops taking work, lets the uploads in flight finish, then returns.
//! Dropping an upload midway is safe (see `uploader.rs`): the attempt is never read and
//! `reconcile` removes it.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::ObjectStore;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::cache::ChunkCache;
use crate::config::{TieringConfig, backoff};
use crate::error::{Result, TieringError};
use crate::keys::PartitionId;
use crate::manifest::ManifestStore;
use crate::manifest_cache::ManifestCache;
use crate::quota::RateLimiter;
use crate::reader::RemoteLogReader;
pub use crate::reconcile::ReconcileReport;
pub use crate::retention::{RetentionOutcome, RetentionPass};
use crate::store::RemoteStore;
pub use crate::uploader::UploadOutcome;

/// How long [`RemoteLogManager::shutdown`] waits for uploads in flight before abandoning them.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
use crate::uploader::Uploader;

/// A closed local segment, as the broker hands it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentDescriptor {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub base_offset: i64,
    /// One past the last offset in the segment.
    pub next_offset: i64,
    pub max_timestamp: i64,
    pub size_bytes: u64,
    pub log_path: PathBuf,
    pub offset_index_path: PathBuf,
    pub time_index_path: PathBuf,
}

impl SegmentDescriptor {
    pub fn partition_id(&self) -> PartitionId {
        PartitionId::new(self.topic.clone(), self.topic_id, self.partition)
    }
}

/// Remote-tier state of one partition, independent of local data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionStatus {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub remote_bytes: u64,
    pub remote_segments: usize,
    pub remote_log_start_offset: i64,
    /// -1 when nothing is tiered.
    pub highest_tiered_offset: i64,
    /// Segments waiting for upload (including the one being uploaded).
    pub queued_segments: usize,
    pub queued_bytes: u64,
    /// Upload lag in offsets: last queued segment's next offset - 1 - highest tiered offset.
    pub upload_lag_offsets: i64,
    pub last_error: Option<String>,
    pub last_upload_ms: Option<i64>,
}

/// A partition's upload queue and outcome, known locally (see [`RemoteLogManager::upload_state`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadState {
    pub queued_segments: usize,
    pub queued_bytes: u64,
    /// The error of the latest failed upload attempt; cleared by the next success.
    pub last_error: Option<String>,
    pub last_upload_ms: Option<i64>,
}

#[derive(Debug, Default)]
pub(crate) struct PartitionWork {
    queue: VecDeque<SegmentDescriptor>,
    worker: bool,
    last_error: Option<String>,
    last_upload_ms: Option<i64>,
}

#[derive(Debug)]
struct Inner {
    remote: RemoteStore,
    config: Arc<TieringConfig>,
    manifests: Arc<ManifestCache>,
    uploader: Uploader,
    reader: RemoteLogReader,
    copy_quota: Arc<RateLimiter>,
    fetch_quota: Arc<RateLimiter>,
    copiers: Arc<Semaphore>,
    work: UploadQueues,
    names: Mutex<HashMap<(String, i32), Uuid>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    idle: Notify,
    stopping: tokio::sync::watch::Sender<bool>,
}

/// The upload queues of every partition; shared with the uploader, whose encoders run at a
/// priority that follows the backlog (`encoder_priority.rs`).
pub(crate) type UploadQueues = Arc<Mutex<HashMap<PartitionId, PartitionWork>>>;

/// Bytes of the closed segments queued for upload or being uploaded, all partitions.
pub(crate) fn backlog_bytes(queues: &UploadQueues) -> u64 {
    lock(queues)
        .values()
        .flat_map(|w| &w.queue)
        .map(|d| d.size_bytes)
        .sum()
}

/// The remote tier of one broker. Cheap to clone.
#[derive(Debug, Clone)]
pub struct RemoteLogManager {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RemoteLogManager {
    /// A manager over `store`, with every key under `prefix`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, config: TieringConfig) -> Result<Self> {
        Self::with_remote(RemoteStore::new(store, prefix, "custom"), config)
    }

    /// A manager over the store named by `url` (see `store.rs`).
    pub fn from_url(url: &str, config: TieringConfig) -> Result<Self> {
        Self::with_remote(RemoteStore::from_url(url)?, config)
    }

    pub fn with_remote(remote: RemoteStore, config: TieringConfig) -> Result<Self> {
        let config = Arc::new(config);
        let manifests = Arc::new(ManifestCache::new(
            ManifestStore::new(remote.clone()),
            config.writer_epoch,
        ));
        // A disk tier in front of a local-directory store would only copy files that are on
        // local disk already (and cost a write per chunk read): memory only there.
        let disk = config
            .cache_dir
            .clone()
            .filter(|_| !remote.url.starts_with("file://"))
            .map(|d| (d, config.cache_disk_bytes));
        let cache = Arc::new(ChunkCache::new(config.cache_memory_bytes, disk)?);
        let copy_quota = Arc::new(RateLimiter::new(config.copy_max_bytes_per_second));
        let fetch_quota = Arc::new(RateLimiter::new(config.fetch_max_bytes_per_second));
        let work = UploadQueues::default();
        let uploader = Uploader {
            queues: work.clone(),
            remote: remote.clone(),
            manifests: manifests.clone(),
            config: config.clone(),
            quota: copy_quota.clone(),
            in_flight: Arc::default(),
            encoder_stats: Arc::default(),
        };
        let reader = RemoteLogReader::new(
            remote.clone(),
            manifests.clone(),
            cache,
            fetch_quota.clone(),
            config.reader_threads,
            config.read_ahead_chunks,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                copiers: Arc::new(Semaphore::new(config.copier_threads.max(1))),
                remote,
                config,
                manifests,
                uploader,
                reader,
                copy_quota,
                fetch_quota,
                work,
                names: Mutex::default(),
                workers: Mutex::default(),
                idle: Notify::new(),
                stopping: tokio::sync::watch::channel(false).0,
            }),
        })
    }

    /// The store and prefix this manager writes to.
    pub fn remote(&self) -> &RemoteStore {
        &self.inner.remote
    }

    /// Segment bytes encoded for upload at each CPU priority.
    pub fn encoder_stats(&self) -> &crate::encoder_priority::EncoderStats {
        &self.inner.uploader.encoder_stats
    }

    /// Chunk cache counters (hits, downloads).
    pub fn cache_stats(&self) -> &crate::cache::CacheStats {
        &self.inner.reader.cache.stats
    }

    /// Bytes the chunk cache holds in memory and on disk.
    pub fn cache_sizes(&self) -> (u64, u64) {
        self.inner.reader.cache.sizes()
    }

    /// Changes the upload byte-rate quota (`None`: unlimited), effective for waiting uploads too.
    pub fn set_copy_quota(&self, bytes_per_second: Option<u64>) {
        self.inner.copy_quota.set_rate(bytes_per_second);
    }

    /// Changes the cold-read byte-rate quota (`None`: unlimited), effective for waiting reads too.
    pub fn set_fetch_quota(&self, bytes_per_second: Option<u64>) {
        self.inner.fetch_quota.set_rate(bytes_per_second);
    }

    /// The upload and cold-read quotas in force (`None`: unlimited).
    pub fn quotas(&self) -> (Option<u64>, Option<u64>) {
        (self.inner.copy_quota.rate(), self.inner.fetch_quota.rate())
    }

    /// Total time uploads and cold reads have waited for their quotas.
    pub fn quota_throttled(&self) -> (std::time::Duration, std::time::Duration) {
        (
            self.inner.copy_quota.throttled(),
            self.inner.fetch_quota.throttled(),
        )
    }

    /// Tell the manager which topic id a topic name has (the live one wins over the bucket's).
    pub fn register_partition(&self, topic: &str, topic_id: Uuid, partition: i32) {
        lock(&self.inner.names).insert((topic.to_string(), partition), topic_id);
    }

    async fn resolve(&self, topic: &str, partition: i32) -> Result<Option<PartitionId>> {
        let known = lock(&self.inner.names)
            .get(&(topic.to_string(), partition))
            .copied();
        if let Some(id) = known {
            return Ok(Some(PartitionId::new(topic, id, partition)));
        }
        self.list_remote_partitions().await?;
        let found = lock(&self.inner.names)
            .get(&(topic.to_string(), partition))
            .copied();
        Ok(found.map(|id| PartitionId::new(topic, id, partition)))
    }

    /// Queue a closed segment for upload; returns at once. Uploads of one partition run in
    /// offset order; failed uploads are retried with backoff until they succeed or fail with a
    /// non-retryable error (reported in `partition_status().last_error`).
    pub fn on_segment_closed(&self, desc: SegmentDescriptor) {
        if *self.inner.stopping.borrow() {
            tracing::warn!(topic = %desc.topic, partition = desc.partition, "segment closed during shutdown; not queued");
            return;
        }
        let pid = desc.partition_id();
        self.register_partition(&desc.topic, desc.topic_id, desc.partition);
        let mut work = lock(&self.inner.work);
        let w = work.entry(pid.clone()).or_default();
        if w.queue.iter().any(|d| d.base_offset == desc.base_offset) {
            return;
        }
        w.queue.push_back(desc);
        if !w.worker {
            w.worker = true;
            let this = self.clone();
            let handle = tokio::spawn(async move { this.partition_worker(pid).await });
            let mut workers = lock(&self.inner.workers);
            workers.retain(|h| !h.is_finished());
            workers.push(handle);
        }
    }

    async fn partition_worker(self, pid: PartitionId) {
        let mut stopping = self.inner.stopping.subscribe();
        let mut failures = 0u32;
        loop {
            let next = {
                let mut work = lock(&self.inner.work);
                let w = work.entry(pid.clone()).or_default();
                match (w.queue.front().cloned(), *stopping.borrow()) {
                    (Some(d), false) => Some(d),
                    (None, _) | (Some(_), true) => {
                        w.worker = false;
                        None
                    }
                }
            };
            let Some(desc) = next else { break };
            let result = {
                let _permit = self.inner.copiers.acquire().await;
                let record_error = |e: &TieringError| {
                    if let Some(w) = lock(&self.inner.work).get_mut(&pid) {
                        w.last_error = Some(e.to_string());
                    }
                };
                self.inner
                    .uploader
                    .upload_with_retry(&desc, record_error, &stopping)
                    .await
            };
            let wait = {
                let mut work = lock(&self.inner.work);
                let w = work.entry(pid.clone()).or_default();
                match result {
                    Ok(_) => {
                        failures = 0;
                        w.queue.pop_front();
                        w.last_error = None;
                        w.last_upload_ms = Some(crate::now_ms());
                        None
                    }
                    Err(e) if e.is_retryable() => {
                        w.last_error = Some(e.to_string());
                        let wait = backoff(&self.inner.config, failures + 4);
                        failures += 1;
                        tracing::warn!(partition = %pid, error = %e, wait_ms = wait.as_millis() as u64, "upload keeps failing; backing off");
                        Some(wait)
                    }
                    Err(e) => {
                        // The catch-up scan offers it again every task interval.
                        tracing::error!(partition = %pid, base_offset = desc.base_offset, error = %e, "segment upload failed; segment stays local until a later attempt succeeds");
                        w.last_error = Some(e.to_string());
                        w.queue.pop_front();
                        None
                    }
                }
            };
            if let Some(wait) = wait {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stopping.changed() => {}
                }
            }
        }
        self.inner.idle.notify_waiters();
    }

    /// Upload a segment now, in the caller's task (CLI, tests); the background queue is bypassed.
    pub async fn upload_now(&self, desc: &SegmentDescriptor) -> Result<UploadOutcome> {
        self.register_partition(&desc.topic, desc.topic_id, desc.partition);
        let _permit = self
            .inner
            .copiers
            .acquire()
            .await
            .map_err(|_| TieringError::ShuttingDown)?;
        let stopping = self.inner.stopping.subscribe();
        self.inner
            .uploader
            .upload_with_retry(desc, |_| {}, &stopping)
            .await
    }

    /// Wait until every queued upload finished (or failed for good).
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            let busy = lock(&self.inner.work).values().any(|w| w.worker);
            if !busy {
                return;
            }
            notified.await;
        }
    }

    /// True only when `CopySegmentFinished` segments in the manifest cover all of
    /// `[base_offset, next_offset)`: the local copy may then be deleted.
    pub async fn may_delete_locally(
        &self,
        topic: &str,
        partition: i32,
        base_offset: i64,
        next_offset: i64,
    ) -> bool {
        let Ok(Some(pid)) = self.resolve(topic, partition).await else {
            return false;
        };
        match self.inner.manifests.get(&pid).await {
            Ok(Some(v)) => v.manifest.covers(base_offset, next_offset),
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(partition = %pid, error = %e, "cannot read manifest; keeping local segment");
                false
            }
        }
    }

    /// For each `[base, next)` range, whether the remote tier still needs it: not covered by
    /// finished segments and not below the remote log start (remote retention removed those).
    /// One manifest read for all of them.
    pub async fn needs_upload(
        &self,
        topic: &str,
        partition: i32,
        ranges: &[(i64, i64)],
    ) -> Result<Vec<bool>> {
        let manifest = match self.resolve(topic, partition).await? {
            Some(pid) => self.inner.manifests.get(&pid).await?,
            None => None,
        };
        Ok(ranges
            .iter()
            .map(|&(base, next)| match &manifest {
                Some(v) => next > v.manifest.log_start_offset && !v.manifest.covers(base, next),
                None => true,
            })
            .collect())
    }

    /// Whole batches from the batch containing `offset`, up to `max_bytes` (at least one batch),
    /// byte-identical to what the producer sent. `Ok(None)`: nothing remote at or after `offset`.
    /// `Err(OffsetOutOfRange)` when `offset` is below the remote log start offset.
    pub async fn read(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Option<Bytes>> {
        let Some(pid) = self.resolve(topic, partition).await? else {
            return Ok(None);
        };
        self.inner.reader.read(&pid, offset, max_bytes).await
    }

    /// [`Self::read`] as one slice per chunk read, not joined into one buffer (see
    /// [`RemoteLogReader::read_parts`](crate::reader::RemoteLogReader::read_parts)); empty when
    /// the remote tier has nothing at or after `offset`.
    pub async fn read_parts(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>> {
        let Some(pid) = self.resolve(topic, partition).await? else {
            return Ok(Vec::new());
        };
        self.inner.reader.read_parts(&pid, offset, max_bytes).await
    }

    /// First record with timestamp >= `timestamp` in the remote tier: `(offset, timestamp)`.
    pub async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>> {
        self.offset_for_timestamp_from(topic, partition, timestamp, i64::MIN)
            .await
    }

    /// [`Self::offset_for_timestamp`] among the records at or above `min_offset` (the
    /// broker's log start, which may be above the remote log start for a while).
    pub async fn offset_for_timestamp_from(
        &self,
        topic: &str,
        partition: i32,
        timestamp: i64,
        min_offset: i64,
    ) -> Result<Option<(i64, i64)>> {
        let Some(pid) = self.resolve(topic, partition).await? else {
            return Ok(None);
        };
        self.inner
            .reader
            .offset_for_timestamp(&pid, timestamp, min_offset)
            .await
    }

    /// The remote log start offset (ListOffsets -2 once local data is gone); `None` if the
    /// partition has nothing remote.
    pub async fn remote_log_start_offset(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>> {
        let Some(pid) = self.resolve(topic, partition).await? else {
            return Ok(None);
        };
        Ok(self.inner.manifests.get(&pid).await?.map(|v| {
            let m = &v.manifest;
            m.finished()
                .map(|s| s.base_offset.max(m.log_start_offset))
                .next()
                .unwrap_or(m.log_start_offset)
        }))
    }

    /// Offset of the last tiered record (ListOffsets -5), -1 when none.
    pub async fn highest_tiered_offset(&self, topic: &str, partition: i32) -> Result<i64> {
        let Some(pid) = self.resolve(topic, partition).await? else {
            return Ok(-1);
        };
        Ok(self
            .inner
            .manifests
            .get(&pid)
            .await?
            .map_or(-1, |v| v.manifest.highest_tiered_offset()))
    }

    /// Every partition the bucket has a manifest for; also teaches the manager their topic ids.
    pub async fn list_remote_partitions(&self) -> Result<Vec<PartitionId>> {
        let parts = crate::reconcile::list_partitions(&self.inner.remote).await?;
        let mut names = lock(&self.inner.names);
        for p in &parts {
            names
                .entry((p.topic.clone(), p.partition))
                .or_insert(p.topic_id);
        }
        Ok(parts)
    }

    /// The upload queue of one partition as this process knows it, without asking the object
    /// store (so it stays visible while the store is down); `None` if nothing was ever queued.
    pub fn upload_state(&self, p: &PartitionId) -> Option<UploadState> {
        lock(&self.inner.work).get(p).map(|w| UploadState {
            queued_segments: w.queue.len(),
            queued_bytes: w.queue.iter().map(|d| d.size_bytes).sum(),
            last_error: w.last_error.clone(),
            last_upload_ms: w.last_upload_ms,
        })
    }

    /// Remote state of every partition known to this manager or present in the bucket.
    pub async fn partition_status(&self) -> Result<Vec<PartitionStatus>> {
        let mut pids: HashSet<PartitionId> =
            self.list_remote_partitions().await?.into_iter().collect();
        pids.extend(lock(&self.inner.work).keys().cloned());
        let mut out = Vec::new();
        for pid in pids {
            let v = self.inner.manifests.get(&pid).await?;
            let mut s = PartitionStatus {
                topic: pid.topic.clone(),
                topic_id: pid.topic_id,
                partition: pid.partition,
                highest_tiered_offset: -1,
                ..Default::default()
            };
            if let Some(v) = v {
                (s.remote_bytes, s.remote_segments) = v.manifest.remote_size();
                s.remote_log_start_offset = v.manifest.log_start_offset;
                s.highest_tiered_offset = v.manifest.highest_tiered_offset();
            }
            if let Some(w) = lock(&self.inner.work).get(&pid) {
                s.queued_segments = w.queue.len();
                s.queued_bytes = w.queue.iter().map(|d| d.size_bytes).sum();
                s.upload_lag_offsets = w
                    .queue
                    .back()
                    .map_or(0, |d| (d.next_offset - 1 - s.highest_tiered_offset).max(0));
                s.last_error = w.last_error.clone();
                s.last_upload_ms = w.last_upload_ms;
            }
            out.push(s);
        }
        out.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(out)
    }

    /// [`Manifest::restart_empty_at`](crate::manifest::Manifest::restart_empty_at) for one
    /// partition; `Ok(false)` while the remote log still holds something.
    pub async fn restart_empty_remote_log(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<bool> {
        let Some(pid) = self.resolve(topic, partition).await? else {
            return Ok(true);
        };
        let (restarted, _) = self
            .inner
            .manifests
            .update(&pid, |m| Ok(m.restart_empty_at(offset)))
            .await?;
        Ok(restarted)
    }

    /// Apply total retention to the remote copy (negative = unlimited); see `retention.rs`.
    pub async fn run_retention(
        &self,
        topic: &str,
        partition: i32,
        retention_ms: i64,
        retention_bytes: i64,
        now_ms: i64,
        deleted_below: i64,
    ) -> Result<RetentionOutcome> {
        let Some(pid) = self.resolve(topic, partition).await? else {
            return Ok(RetentionOutcome::default());
        };
        crate::retention::run_retention(
            &self.inner.remote,
            &self.inner.manifests,
            &pid,
            RetentionPass {
                retention_ms,
                retention_bytes,
                now_ms,
                deleted_below,
                expire_up_to: i64::MAX,
            },
        )
        .await
    }

    /// [`Self::run_retention`] with every rule of the pass, its upper limit included.
    pub async fn run_retention_pass(
        &self,
        topic: &str,
        partition: i32,
        pass: RetentionPass,
    ) -> Result<RetentionOutcome> {
        let Some(pid) = self.resolve(topic, partition).await? else {
            return Ok(RetentionOutcome::default());
        };
        crate::retention::run_retention(&self.inner.remote, &self.inner.manifests, &pid, pass).await
    }

    /// Raises this writer's manifest epoch to at least `epoch` (never lowers it): for a broker
    /// that could not read the bucket's highest epoch at start and learns it later. Returns the
    /// epoch now in use.
    pub fn raise_writer_epoch(&self, epoch: u64) -> u64 {
        self.inner.manifests.raise_epoch(epoch)
    }

    /// Repair every partition in the bucket after crashes, and abort the multipart uploads that
    /// interrupted writes left; see `reconcile.rs`.
    pub async fn reconcile(&self) -> Result<ReconcileReport> {
        let mut report = ReconcileReport::default();
        let grace = self.inner.config.orphan_grace.as_millis() as i64;
        for pid in self.list_remote_partitions().await? {
            let in_flight = lock(&self.inner.uploader.in_flight).clone();
            let r = crate::reconcile::reconcile_partition(
                &self.inner.remote,
                &self.inner.manifests,
                &pid,
                &in_flight,
                grace,
                crate::now_ms(),
            )
            .await?;
            report.add(&r);
        }
        report.multipart_uploads_aborted = self
            .inner
            .remote
            .abort_interrupted_multipart_uploads(self.inner.config.orphan_grace)
            .await?
            .aborted;
        tracing::info!(
            partitions = report.partitions,
            abandoned = report.abandoned_uploads,
            deletes = report.deletes_finished,
            orphans = report.orphans_deleted,
            multipart_uploads_aborted = report.multipart_uploads_aborted,
            "reconcile done"
        );
        Ok(report)
    }

    /// Topic deletion, step 1 (see `topic_delete.rs`): the tombstone that keeps a restore from
    /// bringing the topic back and makes the next start finish the deletion. Call it before the
    /// topic is deleted locally; if that fails, [`RemoteLogManager::unmark_topic_deleted`].
    pub async fn mark_topic_deleted(&self, topic: &str, topic_id: Uuid) -> Result<()> {
        crate::topic_delete::write_tombstone(&self.inner.remote, topic, topic_id).await
    }

    /// Takes back [`RemoteLogManager::mark_topic_deleted`].
    pub async fn unmark_topic_deleted(&self, topic: &str, topic_id: Uuid) -> Result<()> {
        crate::topic_delete::remove_tombstone(&self.inner.remote, topic, topic_id).await
    }

    /// Topic deletion, steps 2-4: drops the topic's queued uploads, waits up to `wait` for the
    /// one running, forgets its manifests, deletes every object of the topic and then the
    /// tombstone. Returns the number of objects deleted. An upload still running after `wait`
    /// fails this with a retryable error (the tombstone stays; call again later).
    pub async fn delete_topic(
        &self,
        topic: &str,
        topic_id: Uuid,
        wait: std::time::Duration,
    ) -> Result<usize> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let running = {
                let mut work = lock(&self.inner.work);
                let mut running = false;
                for (_, w) in work.iter_mut().filter(|(p, _)| p.topic_id == topic_id) {
                    w.queue.clear();
                    running |= w.worker;
                }
                if !running {
                    work.retain(|p, _| p.topic_id != topic_id);
                }
                running
            };
            if !running {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(TieringError::UploadRunning {
                    what: "delete topic",
                    topic: topic.to_string(),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        lock(&self.inner.names).retain(|_, id| *id != topic_id);
        self.inner.manifests.forget_topic(topic_id);
        let deleted =
            crate::topic_delete::delete_topic_objects(&self.inner.remote, topic, topic_id).await?;
        tracing::info!(topic, %topic_id, objects = deleted, "topic deleted from the remote tier");
        Ok(deleted)
    }

    /// Topics with a tombstone in the bucket: deletions to finish, never to be restored.
    pub async fn tombstoned_topics(&self) -> Result<Vec<(String, Uuid)>> {
        crate::topic_delete::tombstoned_topics(&self.inner.remote).await
    }

    /// Stop taking uploads, give in-flight uploads [`SHUTDOWN_GRACE`] to finish, then abandon
    /// the rest, as a crash would: their manifest entries stay `CopySegmentStarted` and their
    /// local segments stay, so the next start's reconcile and catch-up clean up and upload them
    /// again. (An object store that hangs rather than refuses kept a shutdown waiting for every
    /// retry of every request: 150 s measured with a SIGSTOPped S3 server.)
    pub async fn shutdown(&self) {
        self.inner.stopping.send_replace(true);
        let handles: Vec<_> = lock(&self.inner.workers).drain(..).collect();
        let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
        let mut abandoned = 0;
        for mut handle in handles {
            if tokio::time::timeout_at(deadline, &mut handle)
                .await
                .is_err()
            {
                handle.abort();
                abandoned += 1;
            }
        }
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                grace_ms = SHUTDOWN_GRACE.as_millis() as u64,
                "uploads still running at shutdown abandoned; the next start uploads their segments again"
            );
        }
        tracing::info!("remote log manager stopped");
    }
}
