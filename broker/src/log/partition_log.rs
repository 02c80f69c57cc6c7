//! One topic partition's log: the append path (validate -> producer check -> assign offsets ->
//! write -> group-commit fsync), reads, timestamp lookups, rolling and DeleteRecords.
//!
//! ```text
//! append ─ lock(state) ─ validate ─ producer check ─ maybe roll ─ pwrite ─ update state ─ unlock
//!            │                                          │
//!            │                                          └─ closed segment: fsync, then SegmentEvent::Closed
//!            └─ Durability::Fsync: flush_to(end) — one appender syncs for all who wait (group commit)
//! ```
//!
//! Group commit: appenders wait on `flush_lock`; whoever holds it snapshots the log end, fsyncs
//! every segment holding unflushed data (on a blocking thread) and publishes the new recovery
//! point in `flushed`. Everyone whose batch ended at or below it returns without syncing again.

use std::collections::BTreeMap;
use std::io::IoSlice;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use bytes::{Bytes, BytesMut};
use strata_format::{BASE_OFFSET_SIZE, RecordBatch, RecordBatchMut};

use super::recompress::{decode_bounded, needs_recompression, recompress, stored_codec};
use super::validation::validate_batches;
use tokio::sync::{broadcast, watch};

use super::metrics::LogMetrics;
use super::producer_state::{ProducerStateManager, SequenceCheck};
use super::segment::{BatchPlacement, Segment};
use super::{
    AppendResult, ClosedSegment, Durability, LogError, ReadResult, SegmentEvent, SharedGate,
    TimestampPolicy, TopicConfig, now_ms,
};

/// Mutable state guarded by the append lock.
pub(crate) struct LogState {
    pub segments: BTreeMap<i64, Arc<Segment>>,
    pub log_start_offset: i64,
    /// The highest offset DeleteRecords (or remote retention, through it) moved the log start
    /// to, persisted in [`DELETED_BELOW_FILE`]; -1 if never. Nothing below it is ever served
    /// again, whatever the remote tier still holds (see `expose_remote_log_start`).
    pub deleted_below: i64,
    pub next_offset: i64,
    pub producers: ProducerStateManager,
    pub oldest_unflushed_ms: Option<i64>,
    /// A segment file was created since the directory was last fsynced.
    pub dir_sync_needed: bool,
}

impl LogState {
    pub fn active(&self) -> &Arc<Segment> {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }
    pub fn local_log_start_offset(&self) -> i64 {
        let first = self
            .segments
            .keys()
            .next()
            .copied()
            .unwrap_or(self.next_offset);
        first.max(self.log_start_offset)
    }
}

/// One topic partition's log. Shared as `Arc<PartitionLog>`.
pub struct PartitionLog {
    pub(super) topic: String,
    pub(super) partition: i32,
    pub(super) topic_id: uuid::Uuid,
    pub(super) dir: PathBuf,
    pub(super) config: RwLock<Arc<TopicConfig>>,
    pub(super) state: Mutex<LogState>,
    pub(super) high_watermark: watch::Sender<i64>,
    /// Offset below which everything is fsynced (the recovery point).
    pub(super) flushed: watch::Sender<i64>,
    pub(super) flush_lock: tokio::sync::Mutex<()>,
    pub(super) events: broadcast::Sender<SegmentEvent>,
    pub(super) gate: SharedGate,
    pub(super) metrics: Arc<LogMetrics>,
    /// This partition's share (0..1) of `segment.jitter.ms`, drawn once and applied to the
    /// current configs, so a lowered `segment.ms` or a jitter set later take effect at once.
    pub(super) roll_jitter_share: f64,
    /// Segments closed but not yet fsynced and announced, in roll order.
    pub(super) pending_closes: Arc<Mutex<std::collections::VecDeque<Arc<Segment>>>>,
    /// Held by the task announcing closed segments, so events leave in roll order.
    pub(super) close_lock: Arc<tokio::sync::Mutex<()>>,
    /// Set by [`LogManager::shutdown`](super::LogManager::shutdown): later appends would make the
    /// clean-shutdown marker lie, so they are refused.
    pub(super) shut_down: std::sync::atomic::AtomicBool,
    /// An fsync of this log failed. Linux marks the failed pages clean, so a later fsync would
    /// succeed without writing them: from here nothing is vouched durable, appends are refused
    /// and the recovery point stays put until a restart recovers the log from what is on disk
    /// (Kafka takes the log directory offline for the same reason).
    pub(super) sync_failed: Arc<std::sync::atomic::AtomicBool>,
    /// Test hook: the next fsync of this log fails as if the disk had reported EIO.
    fail_next_sync: std::sync::atomic::AtomicBool,
}

/// Kafka's rule: offsets inside a segment are stored relative to its base as u32.
const MAX_RELATIVE_OFFSET: i64 = u32::MAX as i64 - 1;

/// What every partition of one [`LogManager`](super::LogManager) shares.
#[derive(Clone)]
pub(crate) struct SharedByPartitions {
    pub events: broadcast::Sender<SegmentEvent>,
    pub gate: SharedGate,
    pub metrics: Arc<LogMetrics>,
}

/// A partition's numbers for `/metrics` (Kafka's `kafka.log:type=Log` gauges).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionStats {
    pub size_bytes: u64,
    pub segments: usize,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
}

impl PartitionLog {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        topic: String,
        partition: i32,
        topic_id: uuid::Uuid,
        dir: PathBuf,
        config: Arc<TopicConfig>,
        state: LogState,
        recovery_point: i64,
        shared: SharedByPartitions,
    ) -> Self {
        let next_offset = state.next_offset;
        Self {
            topic,
            partition,
            topic_id,
            dir,
            config: RwLock::new(config),
            state: Mutex::new(state),
            high_watermark: watch::Sender::new(next_offset),
            flushed: watch::Sender::new(recovery_point.min(next_offset)),
            flush_lock: tokio::sync::Mutex::new(()),
            events: shared.events,
            gate: shared.gate,
            metrics: shared.metrics,
            roll_jitter_share: rand::random::<f64>(),
            pending_closes: Arc::default(),
            close_lock: Arc::default(),
            shut_down: std::sync::atomic::AtomicBool::new(false),
            sync_failed: Arc::default(),
            fail_next_sync: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(super) fn lock_state(&self) -> MutexGuard<'_, LogState> {
        // A panic while holding the lock cannot leave the state half-updated in a way that
        // matters more than refusing all further service, so keep going.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends one or more record batches. See the module doc for the steps and the guarantees
    /// of each [`Durability`].
    pub async fn append(
        &self,
        records: Bytes,
        durability: Durability,
    ) -> Result<AppendResult, LogError> {
        let appended = self.append_counted(records, durability).await;
        if let Err(error) = &appended {
            self.metrics.append_failed(error);
        }
        appended
    }

    async fn append_counted(
        &self,
        records: Bytes,
        durability: Durability,
    ) -> Result<AppendResult, LogError> {
        let config = self.config();
        let mut batches = validate_batches(&records, &config)?;
        let mut records = records;
        if let Some(codec) = stored_codec(&config.compression_type)
            && needs_recompression(&batches, codec)
        {
            let (sent, split, settings) = (records.clone(), batches.clone(), config.clone());
            let recompressed =
                tokio::task::spawn_blocking(move || recompress(&sent, &split, codec, &settings))
                    .await
                    .map_err(|e| {
                        LogError::storage("re-compressing a batch", std::io::Error::other(e))
                    })??;
            // The stored batches are checked like the producer's (max.message.bytes applies
            // to what is stored, as in Kafka).
            batches = validate_batches(&recompressed, &config)?;
            records = recompressed;
            self.metrics
                .recompressed_batches
                .inc_by(batches.len() as u64);
        }
        // Appends fsynced before the acknowledgement write into a zeroed tail (see segment.rs).
        let durable = durability == Durability::Fsync || config.flush_messages <= 1;
        let outcome = self.append_locked(&records, &batches, &config, durable)?;
        if outcome.closed_segment.is_some() {
            self.spawn_close();
        }
        let end = outcome.result.last_offset + 1;
        let must_flush = durability == Durability::Fsync || outcome.flush_messages_reached;
        if must_flush && let Err(error) = self.flush_to(end).await {
            // The records are in the log (readable) whatever the fsync's fate.
            let source = match error {
                LogError::Storage { source, .. } => source,
                other => std::io::Error::other(other.to_string()),
            };
            return Err(LogError::NotDurable {
                base_offset: outcome.result.base_offset,
                last_offset: outcome.result.last_offset,
                source,
            });
        }
        Ok(outcome.result)
    }

    fn append_locked(
        &self,
        records: &Bytes,
        batches: &[RecordBatch],
        config: &TopicConfig,
        durable: bool,
    ) -> Result<AppendOutcome, LogError> {
        let now = now_ms();
        let mut state = self.lock_state();
        if self.shut_down.load(std::sync::atomic::Ordering::Acquire) {
            return Err(LogError::ShuttingDown);
        }
        if self.sync_failed.load(std::sync::atomic::Ordering::Acquire) {
            return Err(LogError::storage(
                "appending after a failed fsync of this partition (restart the broker to recover the log from disk)",
                std::io::Error::other("an earlier fsync failed"),
            ));
        }
        if let [batch] = batches {
            match state.producers.check(batch)? {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate {
                    first_offset,
                    last_offset,
                } => {
                    tracing::debug!(topic = %self.topic, partition = self.partition, producer_id = batch.producer_id(),
                        sequence = batch.base_sequence(), first_offset, "duplicate batch from idempotent producer");
                    return Ok(AppendOutcome {
                        result: AppendResult {
                            base_offset: first_offset,
                            last_offset,
                            log_append_time: -1,
                            log_start_offset: state.log_start_offset,
                            duplicate: true,
                        },
                        closed_segment: None,
                        flush_messages_reached: false,
                    });
                }
            }
        }
        let total_records: i64 = batches
            .iter()
            .map(|b| i64::from(b.last_offset_delta()) + 1)
            .sum();
        let closed_segment =
            if self.should_roll(&state, records.len() as u64, total_records, config, now) {
                Some(self.roll_locked(&mut state, config)?)
            } else {
                None
            };

        // Assign offsets by rewriting base offsets (and stamp LogAppendTime) in our own copy.
        let log_append_time = if config.message_timestamp_type == TimestampPolicy::LogAppendTime {
            now
        } else {
            -1
        };
        let mut placements = Vec::with_capacity(batches.len());
        let mut next = state.next_offset;
        let mut position = 0usize;
        for batch in batches {
            let last = next + i64::from(batch.last_offset_delta());
            let max_timestamp = if log_append_time >= 0 {
                log_append_time
            } else {
                batch.max_timestamp()
            };
            placements.push(BatchPlacement {
                relative_position: position,
                size: batch.size(),
                base_offset: next,
                last_offset: last,
                max_timestamp,
            });
            next = last + 1;
            position += batch.size();
        }
        // The base offset is outside the CRC, so with CreateTime the file gets each new base
        // offset followed by the client's own bytes, in one vectored write and without a copy.
        // LogAppendTime changes CRC-covered fields: those batches are rewritten in a copy.
        let base_offsets: Vec<[u8; 8]>;
        let mut stamped = BytesMut::new();
        let pieces: Vec<IoSlice<'_>> = if log_append_time >= 0 {
            stamped.extend_from_slice(records);
            for placement in &placements {
                let range =
                    placement.relative_position..placement.relative_position + placement.size;
                let mut view = RecordBatchMut::new(&mut stamped[range])
                    .map_err(|e| LogError::CorruptMessage(e.to_string()))?;
                view.set_base_offset(placement.base_offset);
                view.set_log_append_time(log_append_time);
            }
            vec![IoSlice::new(&stamped)]
        } else {
            base_offsets = placements
                .iter()
                .map(|placement| placement.base_offset.to_be_bytes())
                .collect();
            placements
                .iter()
                .zip(&base_offsets)
                .flat_map(|(placement, base_offset)| {
                    let rest = placement.relative_position + BASE_OFFSET_SIZE
                        ..placement.relative_position + placement.size;
                    [IoSlice::new(base_offset), IoSlice::new(&records[rest])]
                })
                .collect()
        };
        let active = state.active().clone();
        active
            .append(
                &pieces,
                position,
                &placements,
                config.index_interval_bytes,
                now,
                durable,
            )
            .map_err(|error| {
                let error = LogError::storage(format!("appending to {}", active.log_path().display()), error);
                tracing::error!(topic = %self.topic, partition = self.partition, %error, disk_full = error.is_disk_full(), "append failed; log left unchanged");
                error
            })?;
        let base_offset = state.next_offset;
        for (batch, placement) in batches.iter().zip(&placements) {
            state
                .producers
                .record(batch, placement.base_offset, placement.last_offset);
        }
        state.next_offset = next;
        state.oldest_unflushed_ms.get_or_insert(now);
        // Kafka's unflushed count: everything past the recovery point, so appends that land
        // while a flush runs are counted, never reset with it.
        let flush_messages_reached = next - *self.flushed.borrow() >= config.flush_messages;
        let log_start_offset = state.log_start_offset;
        drop(state);
        self.high_watermark.send_replace(next);
        Ok(AppendOutcome {
            result: AppendResult {
                base_offset,
                last_offset: next - 1,
                log_append_time,
                log_start_offset,
                duplicate: false,
            },
            closed_segment,
            flush_messages_reached,
        })
    }

    /// `segment.ms` less this partition's jitter: Kafka draws it below
    /// min(`segment.jitter.ms`, `segment.ms`), so a segment never rolls at once.
    fn roll_after_ms(&self, config: &TopicConfig) -> i64 {
        let bound = config.segment_jitter_ms.min(config.segment_ms).max(0);
        let jitter = (self.roll_jitter_share * bound as f64) as i64;
        config.segment_ms - jitter.min(bound.saturating_sub(1)).max(0)
    }

    fn should_roll(
        &self,
        state: &LogState,
        incoming_bytes: u64,
        incoming_records: i64,
        config: &TopicConfig,
        now: i64,
    ) -> bool {
        let active = state.active();
        let meta = active.meta();
        if meta.size == 0 {
            return false;
        }
        let full = meta.size + incoming_bytes > config.segment_bytes;
        let aged = meta
            .first_append_ms
            .is_some_and(|first| now - first >= self.roll_after_ms(config));
        let index_full = meta.offset_index.is_full() || meta.time_index.is_full();
        let offsets_overflow =
            state.next_offset + incoming_records - active.base_offset > MAX_RELATIVE_OFFSET;
        full || aged || index_full || offsets_overflow
    }

    /// Closes the active segment and opens a new one at the log end. Returns the closed segment;
    /// the caller hands it to [`Self::spawn_close`] once the lock is released.
    pub(super) fn roll_locked(
        &self,
        state: &mut LogState,
        config: &TopicConfig,
    ) -> Result<Arc<Segment>, LogError> {
        let old = state.active().clone();
        old.close()
            .map_err(|e| LogError::storage("closing segment indexes", e))?;
        let base = state.next_offset;
        let new = Segment::create(&self.dir, base, config.segment_index_bytes)
            .map_err(|e| LogError::storage(format!("creating segment {base}"), e))?;
        state.segments.insert(base, Arc::new(new));
        state.dir_sync_needed = true;
        self.pending_closes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(old.clone());
        if let Err(error) = state.producers.write_snapshot(&self.dir, base, false) {
            tracing::warn!(topic = %self.topic, partition = self.partition, %error, "could not write producer snapshot at roll");
        }
        self.metrics.segment_rolls.inc();
        tracing::info!(topic = %self.topic, partition = self.partition, closed_base = old.base_offset,
            closed_size = old.size(), new_base = base, "rolled segment");
        Ok(old)
    }

    /// fsyncs just-closed segments (data, indexes, directory) off the runtime, then publishes
    /// `SegmentEvent::Closed` in roll order, so tiering only ever sees durable segments.
    pub(super) fn spawn_close(&self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (queue, close_lock, events, dir, flushed, sync_failed) = (
            self.pending_closes.clone(),
            self.close_lock.clone(),
            self.events.clone(),
            self.dir.clone(),
            self.flushed.clone(),
            self.sync_failed.clone(),
        );
        let describe = {
            let (topic, topic_id, partition) = (self.topic.clone(), self.topic_id, self.partition);
            move |segment: &Segment| closed_segment_event(&topic, topic_id, partition, segment)
        };
        runtime.spawn(async move {
            let _announcer = close_lock.lock().await;
            loop {
                // Left in the queue until synced: `closed_segments` skips what is queued.
                let Some(segment) = queue.lock().unwrap_or_else(|p| p.into_inner()).front().cloned() else { return };
                let event = describe(&segment);
                let dir = dir.clone();
                let closed_end = segment.next_offset();
                let synced = tokio::task::spawn_blocking(move || {
                    segment.sync_all()?;
                    sync_dir(&dir)
                })
                .await;
                queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
                match synced {
                    Ok(Ok(())) if sync_failed.load(std::sync::atomic::Ordering::Acquire) => {}
                    Ok(Ok(())) => {
                        // Every segment before it was synced when it closed (or at open), so
                        // the recovery point moves to its end, as Kafka flushes on roll: an
                        // unclean start then rescans only the active segment, not everything
                        // produced with acks=1 since the last start.
                        flushed.send_if_modified(|current| {
                            let advanced = closed_end > *current;
                            *current = (*current).max(closed_end);
                            advanced
                        });
                        let _ = events.send(SegmentEvent::Closed(event));
                    }
                    Ok(Err(error)) => {
                        sync_failed.store(true, std::sync::atomic::Ordering::Release);
                        tracing::error!(%error, log = %event.log_path.display(), "fsync of closed segment failed; the partition refuses appends until a restart");
                    }
                    Err(error) => tracing::error!(%error, "closed-segment fsync task failed"),
                }
            }
        });
    }

    /// Record-level refinement of a timestamp lookup inside one batch (decoded within the
    /// topic's inflation bound; the batch's base offset if it cannot be decoded).
    /// Records below `min_offset` (the log start) do not count; `None` when only those match.
    fn first_record_at_or_after(
        &self,
        batch: &RecordBatch,
        target: i64,
        min_offset: i64,
    ) -> Option<(i64, i64)> {
        if batch.timestamp_type() == strata_format::TimestampType::LogAppendTime {
            return Some((batch.base_offset().max(min_offset), batch.max_timestamp()));
        }
        match decode_bounded(batch, self.config().max_message_bytes) {
            Ok(set) => set
                .records
                .iter()
                .find(|r| r.timestamp >= target && r.offset >= min_offset)
                .map(|record| (record.offset, record.timestamp)),
            Err(_) => Some((batch.base_offset().max(min_offset), batch.max_timestamp())),
        }
    }

    fn closed_segment(&self, segment: &Segment) -> ClosedSegment {
        closed_segment_event(&self.topic, self.topic_id, self.partition, segment)
    }

    /// Every closed (immutable) segment still on local disk, oldest first. Tiering uses it to
    /// catch up on segments closed while it was not listening (e.g. before a restart).
    /// Segments whose close (fsync) is still queued are left out: tiering only ever sees
    /// durable segments, as with the `Closed` event.
    pub fn closed_segments(&self) -> Vec<ClosedSegment> {
        let segments: Vec<_> = {
            let state = self.lock_state();
            let count = state.segments.len();
            state.segments.values().take(count - 1).cloned().collect()
        };
        let closing = self
            .pending_closes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|s| s.base_offset)
            .collect::<std::collections::HashSet<_>>();
        segments
            .iter()
            .filter(|s| !closing.contains(&s.base_offset))
            .map(|s| self.closed_segment(s))
            .collect()
    }

    /// Returns once every offset below `target` is fsynced (group commit, see module doc).
    pub(super) async fn flush_to(&self, target: i64) -> Result<(), LogError> {
        loop {
            if *self.flushed.borrow() >= target {
                return Ok(());
            }
            let _flusher = self.flush_lock.lock().await;
            let flushed = *self.flushed.borrow();
            if flushed >= target {
                return Ok(());
            }
            if self.sync_failed.load(std::sync::atomic::Ordering::Acquire) {
                return Err(LogError::storage(
                    "fsyncing the log (an earlier fsync of this partition failed; restart the broker)",
                    std::io::Error::other("an earlier fsync failed"),
                ));
            }
            let inject_failure = self
                .fail_next_sync
                .swap(false, std::sync::atomic::Ordering::AcqRel);
            let (segments, upto, sync_directory) = {
                let mut state = self.lock_state();
                let segments: Vec<_> = state
                    .segments
                    .values()
                    .filter(|s| s.next_offset() > flushed)
                    .cloned()
                    .collect();
                let sync_directory = std::mem::take(&mut state.dir_sync_needed);
                (segments, state.next_offset, sync_directory)
            };
            let dir = self.dir.clone();
            let started = std::time::Instant::now();
            let result = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                if inject_failure {
                    return Err(std::io::Error::from_raw_os_error(5));
                }
                for segment in &segments {
                    segment.sync_log()?;
                }
                if sync_directory {
                    sync_dir(&dir)?;
                }
                Ok(())
            })
            .await
            .map_err(|e| LogError::storage("running fsync", std::io::Error::other(e)))?;
            self.metrics
                .flush_seconds
                .observe(started.elapsed().as_secs_f64());
            if let Err(error) = result {
                if sync_directory {
                    self.lock_state().dir_sync_needed = true;
                }
                self.sync_failed
                    .store(true, std::sync::atomic::Ordering::Release);
                tracing::error!(topic = %self.topic, partition = self.partition, %error, "fsync failed; the partition refuses appends until a restart recovers it from disk");
                return Err(LogError::storage("fsyncing the log", error));
            }
            {
                let mut state = self.lock_state();
                // Appends that landed during the sync are at most this old.
                state.oldest_unflushed_ms = (state.next_offset > upto).then(now_ms);
            }
            self.flushed.send_if_modified(|current| {
                let advanced = upto > *current;
                *current = (*current).max(upto);
                advanced
            });
        }
    }

    /// Cuts the active segment's zeroed tail (clean shutdown: the files left behind hold
    /// exactly the log).
    pub fn trim_zeroed_tail(&self) -> Result<(), LogError> {
        let active = self.lock_state().active().clone();
        active
            .trim_zeroed_tail()
            .map_err(|e| LogError::storage(format!("trimming {}", active.log_path().display()), e))
    }

    /// Flushes everything written so far (data fsync; indexes persisted).
    /// Indexes are fsynced too, and so are segments whose close is still queued: a clean
    /// shutdown marker written after this vouches for every file the next start trusts.
    pub async fn flush(&self) -> Result<(), LogError> {
        let end = self.log_end_offset();
        self.flush_to(end).await?;
        // Wait for a close being announced; sync the ones still queued here.
        let _announcer = self.close_lock.lock().await;
        let mut to_sync: Vec<_> = self
            .pending_closes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        let (active, segments) = {
            let state = self.lock_state();
            (
                state.active().clone(),
                state.segments.values().cloned().collect::<Vec<_>>(),
            )
        };
        to_sync.push(active);
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            for segment in &segments {
                segment.persist_indexes()?;
            }
            for segment in &to_sync {
                segment.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| LogError::storage("flushing indexes", std::io::Error::other(e)))?
        .map_err(|e| LogError::storage("persisting and fsyncing indexes", e))
    }

    /// Reads whole batches from `fetch_offset`, up to `max_bytes` but at least one batch.
    pub fn read(&self, fetch_offset: i64, max_bytes: usize) -> Result<ReadResult, LogError> {
        let (segments, log_start_offset, high_watermark) = {
            let state = self.lock_state();
            let local_start = state.local_log_start_offset();
            if fetch_offset < local_start || fetch_offset > state.next_offset {
                return Err(LogError::OffsetOutOfRange {
                    offset: fetch_offset,
                    log_start_offset: state.log_start_offset,
                    log_end_offset: state.next_offset,
                });
            }
            let first = state
                .segments
                .range(..=fetch_offset)
                .next_back()
                .map(|(base, _)| *base)
                .unwrap_or(local_start);
            let segments: Vec<_> = state
                .segments
                .range(first..)
                .map(|(_, s)| s.clone())
                .collect();
            (segments, state.log_start_offset, state.next_offset)
        };
        let mut records = Bytes::new();
        if fetch_offset < high_watermark {
            for segment in segments {
                let found = segment.read(fetch_offset, max_bytes).map_err(|e| {
                    LogError::storage(format!("reading {}", segment.log_path().display()), e)
                })?;
                if let Some(bytes) = found {
                    records = bytes;
                    break;
                }
            }
        }
        Ok(ReadResult {
            records,
            high_watermark,
            log_start_offset,
        })
    }

    /// On this single-node broker the high watermark is the log end offset.
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }
    pub fn log_start_offset(&self) -> i64 {
        self.lock_state().log_start_offset
    }

    /// The offset DeleteRecords last deleted up to (durable), or -1: the remote tier must drop
    /// what lies below it too.
    pub fn deleted_records_offset(&self) -> i64 {
        self.lock_state().deleted_below
    }
    /// The first offset still on local disk (ListOffsets -4); equals the log start offset unless
    /// tiering let local retention delete segments that remain in the remote tier.
    pub fn local_log_start_offset(&self) -> i64 {
        self.lock_state().local_log_start_offset()
    }
    /// Bytes of record batches in this partition's segments on local disk (Kafka's log size:
    /// the remote tier's copies are not counted, nor the indexes).
    pub fn local_size_bytes(&self) -> u64 {
        self.lock_state().segments.values().map(|s| s.size()).sum()
    }
    /// Test hook: the next fsync of this log fails with EIO, as a failing disk would.
    #[doc(hidden)]
    pub fn fail_next_fsync(&self) {
        self.fail_next_sync
            .store(true, std::sync::atomic::Ordering::Release);
    }

    /// Size, segment count and offsets, read under one lock.
    pub fn stats(&self) -> PartitionStats {
        let state = self.lock_state();
        PartitionStats {
            size_bytes: state.segments.values().map(|s| s.size()).sum(),
            segments: state.segments.len(),
            log_start_offset: state.log_start_offset,
            log_end_offset: state.next_offset,
        }
    }

    pub fn log_end_offset(&self) -> i64 {
        self.lock_state().next_offset
    }
    /// Offset below which every batch is fsynced.
    pub fn recovery_point(&self) -> i64 {
        *self.flushed.borrow()
    }

    /// The first record whose timestamp is >= `timestamp`, as (offset, timestamp); `None` if all
    /// records are older. Record-level for uncompressed and compressed batches alike (decoded with
    /// `kafka-protocol`); falls back to the batch's base offset if decoding fails.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        let (segments, log_start) = {
            let state = self.lock_state();
            (
                state.segments.values().cloned().collect::<Vec<_>>(),
                state.log_start_offset,
            )
        };
        for segment in segments {
            let found = segment
                .find_by_timestamp(timestamp, log_start, |batch| {
                    self.first_record_at_or_after(batch, timestamp, log_start)
                })
                .map_err(|e| {
                    LogError::storage(format!("searching {}", segment.log_path().display()), e)
                })?;
            if found.is_some() {
                return Ok(found);
            }
        }
        Ok(None)
    }

    /// The record holding the largest timestamp, as (offset, timestamp) (ListOffsets -3).
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        let (segment, batch_offset, timestamp) = {
            let state = self.lock_state();
            let mut best: Option<(Arc<Segment>, i64, i64)> = None;
            for segment in state.segments.values() {
                let meta = segment.meta();
                if meta.max_timestamp >= 0
                    && best
                        .as_ref()
                        .is_none_or(|(_, _, ts)| meta.max_timestamp > *ts)
                {
                    best = Some((
                        segment.clone(),
                        meta.offset_of_max_timestamp,
                        meta.max_timestamp,
                    ));
                }
            }
            best?
        };
        // Refine from the batch to the record (Kafka returns the record's offset since KIP-734).
        let record_offset = segment
            .read(batch_offset, 1)
            .ok()
            .flatten()
            .and_then(|bytes| strata_format::BatchIter::new(bytes).next())
            .and_then(|batch| self.first_record_at_or_after(&batch, timestamp, i64::MIN))
            .map_or(batch_offset, |(offset, _)| offset);
        Some((record_offset.max(self.log_start_offset()), timestamp))
    }

    /// DeleteRecords: moves the log start offset to `offset` (-1 = high watermark), durably,
    /// and deletes segments wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let (new_start, deletable) = {
            let mut state = self.lock_state();
            let target = if offset == -1 {
                state.next_offset
            } else {
                offset
            };
            if target < 0 || target > state.next_offset {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start_offset: state.log_start_offset,
                    log_end_offset: state.next_offset,
                });
            }
            if target <= state.log_start_offset {
                return Ok(state.log_start_offset);
            }
            for file in [DELETED_BELOW_FILE, LOG_START_FILE] {
                super::manager::write_atomically(
                    &self.dir.join(file),
                    target.to_string().as_bytes(),
                    true,
                )
                .map_err(|e| LogError::storage("persisting the log start offset", e))?;
            }
            state.log_start_offset = target;
            state.deleted_below = state.deleted_below.max(target);
            state.producers.remove_below(target);
            let deletable = self.take_segments_below(&mut state, target);
            (target, deletable)
        };
        tracing::info!(topic = %self.topic, partition = self.partition, log_start_offset = new_start, "log start offset moved");
        self.delete_segment_files(deletable);
        Ok(new_start)
    }

    /// Tiered storage: moves the (in-memory) log start offset down to `offset`, the remote log
    /// start, when the remote tier holds every offset from there up to the local log start. Not
    /// persisted (recovery clamps the log start to local data): the remote tier re-applies it at
    /// every start. Never below an offset DeleteRecords deleted up to: the remote tier may
    /// still hold those records until its retention pass removes them. Returns the log start
    /// offset in effect.
    pub fn expose_remote_log_start(&self, offset: i64) -> i64 {
        let mut state = self.lock_state();
        let offset = offset.max(state.deleted_below);
        if offset >= 0 && offset < state.log_start_offset {
            state.log_start_offset = offset;
            tracing::info!(topic = %self.topic, partition = self.partition, log_start_offset = offset, "log start offset set to the remote log start");
        }
        state.log_start_offset
    }

    /// Removes closed segments whose every offset is below `offset` from the log.
    pub(super) fn take_segments_below(
        &self,
        state: &mut LogState,
        offset: i64,
    ) -> Vec<Arc<Segment>> {
        let active_base = state.active().base_offset;
        let bases: Vec<i64> = state
            .segments
            .values()
            .filter(|s| s.base_offset != active_base && s.next_offset() <= offset)
            .map(|s| s.base_offset)
            .collect();
        bases
            .iter()
            .filter_map(|base| state.segments.remove(base))
            .collect()
    }

    /// Renames removed segments' files to `*.deleted` and removes them after
    /// `file.delete.delay.ms` (startup removes leftovers), so in-flight readers holding the file
    /// open finish undisturbed.
    pub(super) fn delete_segment_files(&self, segments: Vec<Arc<Segment>>) {
        if segments.is_empty() {
            return;
        }
        let mut renamed = Vec::new();
        for segment in &segments {
            for path in [
                segment.log_path().to_path_buf(),
                segment.index_path(),
                segment.time_index_path(),
            ] {
                let deleted = PathBuf::from(format!("{}.deleted", path.display()));
                match std::fs::rename(&path, &deleted) {
                    Ok(()) => renamed.push(deleted),
                    Err(error) => {
                        tracing::warn!(path = %path.display(), %error, "could not mark segment file deleted")
                    }
                }
            }
        }
        let first_base = self
            .lock_state()
            .segments
            .keys()
            .next()
            .copied()
            .unwrap_or(i64::MAX);
        remove_snapshots_below(&self.dir, first_base);
        let delay =
            std::time::Duration::from_millis(self.config().file_delete_delay_ms.max(0) as u64);
        let remove = move || {
            for path in renamed {
                let _ = std::fs::remove_file(path);
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) if !delay.is_zero() => {
                runtime.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = tokio::task::spawn_blocking(remove).await;
                });
            }
            _ => remove(),
        }
    }

    /// Rolls an idle active segment older than `segment.ms` (called periodically).
    pub(super) fn maybe_roll_idle(&self, now: i64) -> Result<(), LogError> {
        let config = self.config();
        let closed = {
            let mut state = self.lock_state();
            let aged = {
                let meta = state.active().meta();
                meta.size > 0
                    && meta
                        .first_append_ms
                        .is_some_and(|first| now - first >= self.roll_after_ms(&config))
            };
            if !aged {
                return Ok(());
            }
            self.roll_locked(&mut state, &config)?
        };
        drop(closed);
        self.spawn_close();
        Ok(())
    }

    /// Flushes when the oldest unflushed write is older than `flush.ms` (called periodically).
    pub(super) async fn maybe_flush_by_time(&self, now: i64) -> Result<(), LogError> {
        let config = self.config();
        let due = self
            .lock_state()
            .oldest_unflushed_ms
            .is_some_and(|oldest| now - oldest >= config.flush_ms);
        if due {
            self.flush_to(self.log_end_offset()).await
        } else {
            Ok(())
        }
    }

    /// Writes a producer-state snapshot at the log end (clean shutdown).
    pub(super) fn snapshot_producer_state(&self) -> Result<(), LogError> {
        let state = self.lock_state();
        state
            .producers
            .write_snapshot(&self.dir, state.next_offset, true)
            .map_err(|e| LogError::storage("writing producer snapshot", e))
    }

    pub(super) fn set_config(&self, config: Arc<TopicConfig>) {
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = config;
    }

    pub fn subscribe_appends(&self) -> watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }
    pub fn topic(&self) -> &str {
        &self.topic
    }
    pub fn partition(&self) -> i32 {
        self.partition
    }
    pub fn topic_id(&self) -> uuid::Uuid {
        self.topic_id
    }
    pub fn config(&self) -> Arc<TopicConfig> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    /// The partition's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn closed_segment_event(
    topic: &str,
    topic_id: uuid::Uuid,
    partition: i32,
    segment: &Segment,
) -> ClosedSegment {
    let meta = segment.meta();
    ClosedSegment {
        topic: topic.to_string(),
        topic_id,
        partition,
        base_offset: segment.base_offset,
        next_offset: meta.next_offset,
        max_timestamp: meta.max_timestamp,
        size_bytes: meta.size,
        log_path: segment.log_path().to_path_buf(),
        offset_index_path: meta.offset_index.path().to_path_buf(),
        time_index_path: meta.time_index.path().to_path_buf(),
    }
}

pub(crate) const LOG_START_FILE: &str = "log-start-offset";
/// The DeleteRecords floor ([`LogState::deleted_below`]). Separate from [`LOG_START_FILE`],
/// which a topic restored from the bucket uses for where its empty local log begins.
pub(crate) const DELETED_BELOW_FILE: &str = "delete-records-offset";

struct AppendOutcome {
    result: AppendResult,
    closed_segment: Option<Arc<Segment>>,
    flush_messages_reached: bool,
}

pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Deletes `<offset>.snapshot` files below `first_base`, keeping the newest one regardless.
fn remove_snapshots_below(dir: &Path, first_base: i64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut snapshots: Vec<(i64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (offset, ext) = super::segment::parse_segment_file_name(&name)?;
            (ext == "snapshot").then_some((offset, e.path()))
        })
        .collect();
    snapshots.sort();
    snapshots.pop();
    for (offset, path) in snapshots {
        if offset < first_base {
            let _ = std::fs::remove_file(path);
        }
    }
}
