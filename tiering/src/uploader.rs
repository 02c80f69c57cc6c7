//! Segment upload: local segment file -> one remote segment object -> manifest entry.
//!
//! # Protocol (one attempt)
//!
//! ```text
//!  1. manifest: add CopySegmentStarted{upload_id}   (stale Started attempts of the same base
//!                                                    offset become DeleteSegmentStarted)
//!  2. object:   stream chunks -> <segments>/<base>-<upload_id>.seg  (multipart when large)
//!  3. manifest: CopySegmentStarted -> CopySegmentFinished (+ chunk count, footer position, CRC)
//! ```
//!
//! * Idempotent: if a finished entry already covers exactly this segment, nothing is uploaded.
//! * Crash after 1 or during 2: a Started entry no reader looks at, maybe a partial object or an
//!   unfinished multipart upload (with its marker, `multipart.rs`; local staging files are
//!   removed on drop). `reconcile` removes all of it once older than the grace period. Every attempt writes a new key, so a retry never
//!   overwrites or collides with an earlier attempt.
//! * Failure during 2: the multipart upload is aborted before the error is returned.
//! * Memory is bounded by three chunks (one being encoded, two queued for the upload) plus
//!   `multipart_concurrency + 1` parts, whatever the segment size; segments under
//!   `multipart_threshold` are buffered and sent with a single PUT.
//! * The copy quota is charged per stored chunk before it is written.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, WriteMultipart};
use std::io::Read;

use tokio::io::AsyncReadExt;
use tracing::Instrument;
use uuid::Uuid;

use strata_format::{BATCH_HEADER_SIZE, RecordBatch};

/// baseOffset (8) + batchLength (4): the bytes before the length-counted part of a batch.
const LENGTH_PREFIX: usize = 12;
use crate::config::{TieringConfig, backoff};
use crate::encoder_priority::{EncoderPriority, EncoderStats};
use crate::error::{Result, TieringError};
use crate::keys::{self, SegmentKey};
use crate::manager::{SegmentDescriptor, UploadQueues, backlog_bytes};
use crate::manifest::{RemoteSegment, SegmentState};
use crate::manifest_cache::ManifestCache;
use crate::quota::RateLimiter;
use crate::retention::complete_deletes;
use crate::segment_object::{EncodedChunk, SegmentEncoder, encode_chunk};
use crate::store::RemoteStore;

/// What an upload did.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadOutcome {
    /// The segment is now `CopySegmentFinished` under this entry.
    Uploaded(RemoteSegment),
    /// A finished entry already covered it (or it is below the remote log start): nothing to do.
    AlreadyTiered,
}

/// Shared state of the uploads of one manager.
#[derive(Debug, Clone)]
pub(crate) struct Uploader {
    pub(crate) remote: RemoteStore,
    pub(crate) manifests: Arc<ManifestCache>,
    pub(crate) config: Arc<TieringConfig>,
    pub(crate) quota: Arc<RateLimiter>,
    /// Upload ids being written by this process: never treated as abandoned.
    pub(crate) in_flight: Arc<Mutex<HashSet<Uuid>>>,
    /// The manager's upload queues: their backlog sets the encoders' CPU priority.
    pub(crate) queues: UploadQueues,
    pub(crate) encoder_stats: Arc<EncoderStats>,
}

struct InFlight<'a>(&'a Mutex<HashSet<Uuid>>, Uuid);
impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.1);
    }
}

enum Sink {
    Buffer(Vec<u8>),
    Multipart(WriteMultipart),
}

impl Sink {
    async fn write(&mut self, bytes: Bytes, concurrency: usize) -> object_store::Result<()> {
        match self {
            Sink::Buffer(v) => v.extend_from_slice(&bytes),
            Sink::Multipart(w) => {
                w.wait_for_capacity(concurrency).await?;
                w.put(bytes);
            }
        }
        Ok(())
    }
}

impl Uploader {
    /// Upload with retries and exponential backoff on retryable errors.
    /// `failed_attempt` hears every failed attempt as it happens, so an outage is visible
    /// before the attempts run out.
    pub(crate) async fn upload_with_retry(
        &self,
        desc: &SegmentDescriptor,
        failed_attempt: impl Fn(&TieringError),
        stopping: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<UploadOutcome> {
        let mut attempt = 0;
        loop {
            match self.upload_once(desc).await {
                Ok(o) => return Ok(o),
                // No new attempt once the manager stops: the next start uploads the segment.
                Err(e)
                    if e.is_retryable()
                        && attempt + 1 < self.config.upload_max_attempts
                        && !*stopping.borrow() =>
                {
                    failed_attempt(&e);
                    let wait = backoff(&self.config, attempt);
                    tracing::warn!(topic = %desc.topic, partition = desc.partition, base_offset = desc.base_offset,
                        attempt, error = %e, wait_ms = wait.as_millis() as u64, "segment upload failed; retrying");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// One attempt of the protocol in the module docs.
    pub(crate) async fn upload_once(&self, desc: &SegmentDescriptor) -> Result<UploadOutcome> {
        let pid = desc.partition_id();
        let upload_id = Uuid::new_v4();
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(upload_id);
        let _guard = InFlight(&self.in_flight, upload_id);
        let key = keys::format_segment(
            &self.remote.prefix,
            &SegmentKey {
                partition: pid.clone(),
                base_offset: desc.base_offset,
                upload_id,
            },
        );
        let started = RemoteSegment {
            base_offset: desc.base_offset,
            next_offset: desc.next_offset,
            max_timestamp: desc.max_timestamp,
            size_bytes: desc.size_bytes,
            stored_bytes: 0,
            upload_id,
            object_key: key.to_string(),
            state: SegmentState::CopySegmentStarted,
            chunk_count: 0,
            footer_crc32c: 0,
            footer_offset: 0,
            footer_len: 0,
            state_changed_ms: crate::now_ms(),
        };

        // 1. CopySegmentStarted (and retire dead attempts of the same segment).
        let in_flight = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let now = crate::now_ms();
        let ((is_new, retired), _) = self
            .manifests
            .update(&pid, |m| {
                let dead: Vec<Uuid> = m
                    .segments
                    .iter()
                    .filter(|s| {
                        s.state == SegmentState::CopySegmentStarted
                            && s.base_offset == desc.base_offset
                    })
                    .filter(|s| !in_flight.contains(&s.upload_id))
                    .map(|s| s.upload_id)
                    .collect();
                m.begin_delete(&dead, now)?;
                let is_new = m.begin_copy(started.clone())?;
                Ok((is_new, !dead.is_empty()))
            })
            .await?;
        if retired && let Err(e) = complete_deletes(&self.remote, &self.manifests, &pid).await {
            tracing::warn!(partition = %pid, error = %e, "could not remove a dead upload attempt; reconcile will");
        }
        if !is_new {
            tracing::debug!(partition = %pid, base_offset = desc.base_offset, "segment already tiered");
            return Ok(UploadOutcome::AlreadyTiered);
        }

        // 2. The object.
        let span = tracing::info_span!("upload_segment", partition = %pid, base_offset = desc.base_offset, %upload_id);
        let done = self
            .write_object(desc, &key, started)
            .instrument(span)
            .await?;

        // 3. CopySegmentFinished.
        let now = crate::now_ms();
        self.manifests
            .update(&pid, |m| m.finish_copy(&done, now))
            .await?;
        tracing::info!(partition = %pid, base_offset = desc.base_offset, next_offset = desc.next_offset,
            bytes = desc.size_bytes, stored = done.stored_bytes, chunks = done.chunk_count, "segment tiered");
        Ok(UploadOutcome::Uploaded(done))
    }

    async fn write_object(
        &self,
        desc: &SegmentDescriptor,
        key: &Path,
        started: RemoteSegment,
    ) -> Result<RemoteSegment> {
        let cfg = &self.config;
        let mut sink = if desc.size_bytes > cfg.multipart_threshold {
            let up = self
                .remote
                .store
                .put_multipart(key)
                .await
                .map_err(|e| TieringError::store("start multipart upload", key, e))?;
            Sink::Multipart(WriteMultipart::new_with_chunk_size(
                up,
                cfg.multipart_part_size,
            ))
        } else {
            Sink::Buffer(Vec::with_capacity(desc.size_bytes as usize / 2))
        };
        let body = self.write_body(desc, key, &mut sink).await;
        match (body, sink) {
            (Ok((footer, tail, (footer_offset, footer_len, footer_crc32c))), sink) => {
                let stored_bytes = footer_offset + tail.len() as u64;
                let put = match sink {
                    Sink::Buffer(mut v) => {
                        v.extend_from_slice(&tail);
                        let opts = PutOptions {
                            mode: PutMode::Create,
                            ..Default::default()
                        };
                        self.remote
                            .store
                            .put_opts(key, PutPayload::from(v), opts)
                            .await
                            .map(|_| ())
                    }
                    Sink::Multipart(mut w) => {
                        w.put(tail);
                        w.finish().await.map(|_| ())
                    }
                };
                put.map_err(|e| TieringError::store("put segment", key, e))?;
                Ok(RemoteSegment {
                    stored_bytes,
                    chunk_count: footer.chunks.len() as u32,
                    footer_offset,
                    footer_len,
                    footer_crc32c,
                    ..started
                })
            }
            (Err(e), Sink::Multipart(w)) => {
                if let Err(abort) = w.abort().await {
                    tracing::warn!(key = %key, error = %abort, "could not abort multipart upload");
                }
                Err(e)
            }
            (Err(e), Sink::Buffer(_)) => Err(e),
        }
    }

    /// Encode the segment's chunks (on a background thread, see [`encode_segment`]), write
    /// them as they come, then the index files.
    async fn write_body(
        &self,
        desc: &SegmentDescriptor,
        key: &Path,
        sink: &mut Sink,
    ) -> Result<(crate::segment_object::Footer, Bytes, (u64, u32, u32))> {
        let (chunks_tx, mut chunks) = tokio::sync::mpsc::channel(2);
        let backlog = Arc::new(AtomicU64::new(backlog_bytes(&self.queues)));
        let encoder = {
            let (segment, cfg) = (desc.clone(), self.config.clone());
            // The encoder reads the backlog this task measures: at idle priority it must not
            // take the manager's lock, which segment rolls on the produce path take too (a
            // preempted idle thread holding it would stall them).
            let backlog = backlog.clone();
            let priority = move || {
                EncoderPriority::for_backlog(
                    backlog.load(Ordering::Relaxed),
                    cfg.idle_max_backlog_bytes,
                )
            };
            let (cfg, stats) = (self.config.clone(), self.encoder_stats.clone());
            std::thread::Builder::new()
                .name("strata-tier-encode".into())
                .spawn(move || encode_segment(&segment, &cfg, chunks_tx, priority, &stats))
                .map_err(|e| TieringError::io("start the segment encoder", &desc.log_path, e))?
        };
        // The encoder stops at its next send once `chunks` is dropped (an upload error).
        while let Some(chunk) = chunks.recv().await {
            backlog.store(backlog_bytes(&self.queues), Ordering::Relaxed);
            self.quota.acquire(chunk.bytes.len() as u64).await;
            sink.write(chunk.bytes, self.config.multipart_concurrency)
                .await
                .map_err(|e| TieringError::store("put segment part", key, e))?;
        }
        let mut enc = tokio::task::spawn_blocking(move || encoder.join())
            .await
            .map_err(|_| TieringError::ShuttingDown)?
            .map_err(|_| {
                TieringError::io(
                    "encode segment",
                    &desc.log_path,
                    std::io::Error::other("encoder thread panicked"),
                )
            })??;
        for index in [&desc.offset_index_path, &desc.time_index_path] {
            let len = self.copy_file(index, key, sink).await?;
            enc.index_written(len);
        }
        Ok(enc.finish())
    }

    /// Stream an index file (if present) into the sink; returns its length.
    async fn copy_file(&self, path: &std::path::Path, key: &Path, sink: &mut Sink) -> Result<u64> {
        let mut file = match tokio::fs::File::open(path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(TieringError::io("open index", path, e)),
        };
        let mut total = 0u64;
        loop {
            let mut buf = vec![0u8; 1 << 20];
            let n = file
                .read(&mut buf)
                .await
                .map_err(|e| TieringError::io("read index", path, e))?;
            if n == 0 {
                return Ok(total);
            }
            buf.truncate(n);
            total += n as u64;
            self.quota.acquire(n as u64).await;
            sink.write(Bytes::from(buf), self.config.multipart_concurrency)
                .await
                .map_err(|e| TieringError::store("put segment part", key, e))?;
        }
    }
}

/// Reads the segment file batch by batch, checks every batch (CRC, offsets within the segment)
/// and compresses chunks, sending each encoded chunk to `chunks` in order. Runs on a thread of
/// its own, at the CPU priority `priority` gives before each chunk (`encoder_priority.rs`);
/// returns the encoder for the index sections and footer.
fn encode_segment(
    desc: &SegmentDescriptor,
    cfg: &TieringConfig,
    chunks: tokio::sync::mpsc::Sender<EncodedChunk>,
    priority: impl Fn() -> EncoderPriority,
    stats: &EncoderStats,
) -> Result<SegmentEncoder> {
    let mut applied = None;
    // Returns the priority the thread runs at from now on.
    let mut follow_backlog = || {
        let wanted = priority();
        if applied != Some(wanted) {
            // Best effort: a refusal leaves the thread as it was.
            if let Err(error) = wanted.apply_to_current_thread() {
                tracing::debug!(%error, ?wanted, "could not set the segment encoder's CPU priority");
            }
            applied = Some(wanted);
        }
        wanted
    };
    let mut current = follow_backlog();
    let path = &desc.log_path;
    let file = std::fs::File::open(path).map_err(|e| TieringError::io("open segment", path, e))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut enc = SegmentEncoder::new(desc.base_offset, cfg.chunk_size, cfg.compression);
    let bad = |d: String| TieringError::corrupt("local segment", path.display(), d);
    let mut send = |enc: &mut SegmentEncoder| -> Result<()> {
        let Some(raw) = enc.take_chunk() else {
            return Ok(());
        };
        let raw_len = raw.raw.len() as u64;
        let mut chunk =
            encode_chunk(raw).map_err(|e| TieringError::io("compress chunk", path, e))?;
        stats.record(current, raw_len);
        chunk.meta = enc.chunk_written(chunk.meta);
        chunks
            .blocking_send(chunk)
            .map_err(|_| TieringError::ShuttingDown)?;
        current = follow_backlog();
        Ok(())
    };
    loop {
        let mut head = [0u8; LENGTH_PREFIX];
        match reader.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(TieringError::io("read segment", path, e)),
        }
        let len = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        if len < (BATCH_HEADER_SIZE - LENGTH_PREFIX) as i32 || len as usize > (1 << 30) {
            return Err(bad(format!("batch length {len}")));
        }
        // `read_to_end` fills spare capacity without zeroing it first.
        let mut bytes = Vec::with_capacity(LENGTH_PREFIX + len as usize);
        bytes.extend_from_slice(&head);
        (&mut reader)
            .take(len as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| TieringError::io("read segment", path, e))?;
        if bytes.len() != LENGTH_PREFIX + len as usize {
            return Err(bad(format!(
                "batch at file position {} cut short",
                enc.file_position()
            )));
        }
        let batch = RecordBatch::new(Bytes::from(bytes)).map_err(|e| bad(e.to_string()))?;
        batch
            .validate()
            .map_err(|e| bad(format!("batch at offset {}: {e}", batch.base_offset())))?;
        if batch.base_offset() < desc.base_offset || batch.last_offset() >= desc.next_offset {
            return Err(bad(format!(
                "batch [{}, {}] outside segment [{}, {})",
                batch.base_offset(),
                batch.last_offset(),
                desc.base_offset,
                desc.next_offset
            )));
        }
        if enc.needs_flush_before(batch.size()) {
            send(&mut enc)?;
        }
        enc.push_batch(&batch);
    }
    send(&mut enc)?;
    Ok(enc)
}

#[cfg(test)]
mod tests {
    use thread_priority::unix::{NormalThreadSchedulePolicy, ThreadSchedulePolicy};

    use super::*;
    use crate::encoder_priority::idle_priority_reversible;
    use crate::encoder_priority::tests::current_priority;

    /// A 40-batch segment file and its descriptor; with 1 KiB chunks every batch is a chunk.
    fn segment(dir: &std::path::Path) -> SegmentDescriptor {
        let (bytes, _) = crate::test_batches::segment_bytes(0, 40, 10, 1_000_000, false);
        let log_path = dir.join("00000000000000000000.log");
        std::fs::write(&log_path, &bytes).unwrap();
        SegmentDescriptor {
            topic: "t".into(),
            topic_id: Uuid::new_v4(),
            partition: 0,
            base_offset: 0,
            next_offset: 400,
            max_timestamp: 1_000_399,
            size_bytes: bytes.len() as u64,
            offset_index_path: dir.join("00000000000000000000.index"),
            time_index_path: dir.join("00000000000000000000.timeindex"),
            log_path,
        }
    }

    /// Encodes the segment with the backlog `backlog` reads (before each chunk), and returns the
    /// encoder thread's scheduling policy and nice value as each chunk arrived.
    fn priorities_per_chunk(
        backlog: impl Fn(u64) -> u64 + Send + 'static,
    ) -> (Vec<(ThreadSchedulePolicy, i32)>, EncoderStats) {
        let dir = tempfile::tempdir().unwrap();
        let desc = segment(dir.path());
        let desc_size = desc.size_bytes;
        let cfg = TieringConfig {
            chunk_size: 1024,
            idle_max_backlog_bytes: Some(1000),
            ..TieringConfig::default()
        };
        let (tx, mut rx) = tokio::sync::mpsc::channel(1);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let encoder = {
            let (seen, cfg2) = (seen.clone(), cfg.clone());
            let calls = AtomicU64::new(0);
            std::thread::spawn(move || {
                let priority = move || {
                    // Called on the encoder thread: what it runs at now, then what it should.
                    let call = calls.fetch_add(1, Ordering::Relaxed);
                    if call > 0 {
                        seen.lock().unwrap().push(current_priority());
                    }
                    EncoderPriority::for_backlog(backlog(call), cfg2.idle_max_backlog_bytes)
                };
                let stats = EncoderStats::default();
                encode_segment(&desc, &cfg2, tx, priority, &stats).map(|_| stats)
            })
        };
        let mut chunks = 0;
        while rx.blocking_recv().is_some() {
            chunks += 1;
        }
        let stats = encoder.join().unwrap().unwrap();
        assert!(chunks >= 20, "the segment made {chunks} chunks");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen.len(),
            chunks,
            "the priority is re-read after every chunk"
        );
        let counted =
            stats.idle_bytes.load(Ordering::Relaxed) + stats.catch_up_bytes.load(Ordering::Relaxed);
        assert_eq!(counted, desc_size, "every segment byte is counted once");
        (seen, stats)
    }

    const IDLE: ThreadSchedulePolicy =
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    const NICE_10: (ThreadSchedulePolicy, i32) = (
        ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other),
        crate::encoder_priority::CATCH_UP_NICE,
    );

    #[test]
    fn the_encoder_runs_idle_under_a_small_backlog_and_catches_up_over_a_large_one() {
        let (small, small_stats) = priorities_per_chunk(|_| 1000);
        let (large, large_stats) = priorities_per_chunk(|_| 1001);
        assert!(large.iter().all(|p| *p == NICE_10), "{large:?}");
        assert_eq!(large_stats.idle_bytes.load(Ordering::Relaxed), 0);
        if idle_priority_reversible() {
            assert!(small.iter().all(|p| p.0 == IDLE), "{small:?}");
            assert_eq!(small_stats.catch_up_bytes.load(Ordering::Relaxed), 0);
        } else {
            assert!(small.iter().all(|p| *p == NICE_10), "{small:?}");
        }
    }

    #[test]
    fn an_encoder_leaves_idle_priority_mid_segment_when_the_backlog_grows() {
        if !idle_priority_reversible() {
            return; // never idle then: covered by the test above
        }
        // Chunks 0-9 under a small backlog, then the backlog passes the limit, then it drains.
        let (seen, stats) =
            priorities_per_chunk(|call| if (10..20).contains(&call) { 5000 } else { 0 });
        let (idle, catch_up) = (
            stats.idle_bytes.load(Ordering::Relaxed),
            stats.catch_up_bytes.load(Ordering::Relaxed),
        );
        assert!(idle > 0 && catch_up > 0, "idle {idle}, catch-up {catch_up}");
        assert!(seen[..9].iter().all(|p| p.0 == IDLE), "{seen:?}");
        assert!(seen[10..19].iter().all(|p| *p == NICE_10), "{seen:?}");
        assert!(seen[20..].iter().all(|p| p.0 == IDLE), "{seen:?}");
    }
}
