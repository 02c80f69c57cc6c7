//! Cold reads: offsets below the local log start served from segment objects.
//!
//! ```text
//! read(p, offset) -> manifest (cached) -> finished segment holding offset
//!                 -> footer (cached; one ranged GET) -> chunk index -> chunk (cache, or ranged GET
//!                 + CRC check + decompress, shared by concurrent readers) -> whole batches
//! ```
//!
//! * Returns whole batches, starting with the one that contains `offset`, byte-identical to the
//!   local segment file. At least one batch is returned even if larger than `max_bytes` (as Kafka
//!   does since KIP-74); later batches only while the total stays within `max_bytes`.
//! * Only `CopySegmentFinished` segments are read. A chunk whose CRC does not match is an error
//!   (logged, not cached, never served).
//! * Object-store requests of cold reads go through their own semaphore (`reader_threads`), so a
//!   burst of cold reads queues behind itself and never takes upload or hot-path capacity. Their
//!   bytes are charged to the fetch quota (`remote.log.manager.fetch.max.bytes.per.second`)
//!   before each request, outside the pool, so a throttled read holds no pool permit.
//! * Sequential replay: a read starts the downloads of every chunk it needs at once (concurrent
//!   ranged GETs), and a read that stops inside a segment starts those of the next read of the
//!   same size plus `read_ahead_chunks` more, when pool permits are free; that window runs on
//!   into the next segment (its footer first), so crossing a segment boundary does not stall.
//!   The window never holds more than the memory cache does (else prefetched chunks are evicted
//!   before their read and downloaded again).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use strata_format::codec::{InflateError, decode_records, max_inflated_bytes};
use tokio::sync::Semaphore;

use crate::cache::{ChunkCache, ChunkId};
use crate::error::{Result, TieringError};
use crate::keys::PartitionId;
use crate::manifest::RemoteSegment;
use crate::manifest_cache::ManifestCache;
use crate::quota::RateLimiter;
use crate::segment_object::{Footer, decode_chunk, decode_footer};
use crate::store::RemoteStore;
use strata_format::{BatchIter, BatchIterEnd, MAGIC_V2, RecordBatch};

const FOOTER_CACHE_ENTRIES: usize = 4096;

/// Reads remote history; owned by the manager.
#[derive(Debug)]
pub struct RemoteLogReader {
    manifests: Arc<ManifestCache>,
    pub(crate) cache: Arc<ChunkCache>,
    fetcher: Fetcher,
    read_ahead: usize,
}

/// Footer and chunk downloads through the reader pool and the caches; cheap to clone into the
/// tasks that prefetch.
#[derive(Debug, Clone)]
struct Fetcher {
    remote: RemoteStore,
    cache: Arc<ChunkCache>,
    footers: Arc<Mutex<HashMap<String, Arc<Footer>>>>,
    permits: Arc<Semaphore>,
    quota: Arc<RateLimiter>,
}

impl Fetcher {
    async fn footer(&self, seg: &RemoteSegment) -> Result<Arc<Footer>> {
        if let Some(f) = self
            .footers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&seg.object_key)
        {
            return Ok(f.clone());
        }
        let key = Path::from(seg.object_key.as_str());
        let range = seg.footer_offset..seg.footer_offset + seg.footer_len as u64;
        self.quota.acquire(range.end - range.start).await;
        let bytes = {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| TieringError::ShuttingDown)?;
            self.remote
                .store
                .get_range(&key, range)
                .await
                .map_err(|e| TieringError::store("get footer", &key, e))?
        };
        let footer = Arc::new(decode_footer(key.as_ref(), &bytes, seg.footer_crc32c)?);
        let mut footers = self.footers.lock().unwrap_or_else(|e| e.into_inner());
        if footers.len() >= FOOTER_CACHE_ENTRIES {
            footers.clear();
        }
        footers.insert(seg.object_key.clone(), footer.clone());
        Ok(footer)
    }

    fn chunk_fetch(
        &self,
        seg: &RemoteSegment,
        footer: &Footer,
        index: usize,
    ) -> (
        ChunkId,
        impl std::future::Future<Output = Result<Bytes>> + Send + 'static,
    ) {
        let id = ChunkId {
            object_key: Arc::from(seg.object_key.as_str()),
            index: index as u32,
        };
        let meta = footer.chunks[index].clone();
        let store = self.remote.store.clone();
        let permits = self.permits.clone();
        let quota = self.quota.clone();
        let key = Path::from(seg.object_key.as_str());
        let fetch = async move {
            quota.acquire(meta.stored_len as u64).await;
            let stored = {
                let _permit = permits
                    .acquire_owned()
                    .await
                    .map_err(|_| TieringError::ShuttingDown)?;
                let range = meta.position..meta.position + meta.stored_len as u64;
                store
                    .get_range(&key, range)
                    .await
                    .map_err(|e| TieringError::store("get chunk", &key, e))?
            };
            let k = key.to_string();
            let decoded = tokio::task::spawn_blocking(move || decode_chunk(&k, &meta, &stored))
                .await
                .map_err(|_| TieringError::ShuttingDown)?;
            if let Err(e) = &decoded {
                tracing::error!(key = %key, chunk = index, error = %e, "remote chunk failed verification");
            }
            decoded
        };
        (id, fetch)
    }

    async fn chunk(&self, seg: &RemoteSegment, footer: &Footer, index: usize) -> Result<Bytes> {
        let (id, fetch) = self.chunk_fetch(seg, footer, index);
        self.cache.get_or_fetch(id, fetch).await
    }

    /// Starts downloading chunks `indexes` of `seg` in the background, except those already
    /// cached or downloading; stops when the reader pool is saturated (reads come first).
    fn start_chunks(&self, seg: &RemoteSegment, footer: &Footer, indexes: std::ops::Range<usize>) {
        for index in indexes.start..indexes.end.min(footer.chunks.len()) {
            if self.permits.available_permits() == 0 {
                return;
            }
            let (id, fetch) = self.chunk_fetch(seg, footer, index);
            if self.cache.contains(&id) {
                continue;
            }
            let cache = self.cache.clone();
            tokio::spawn(async move {
                let _ = cache.get_or_fetch(id, fetch).await;
            });
        }
    }
}

impl RemoteLogReader {
    pub(crate) fn new(
        remote: RemoteStore,
        manifests: Arc<ManifestCache>,
        cache: Arc<ChunkCache>,
        quota: Arc<RateLimiter>,
        reader_threads: usize,
        read_ahead: usize,
    ) -> Self {
        Self {
            manifests,
            cache: cache.clone(),
            fetcher: Fetcher {
                remote,
                cache,
                footers: Arc::default(),
                permits: Arc::new(Semaphore::new(reader_threads.max(1))),
                quota,
            },
            read_ahead,
        }
    }

    /// Starts the downloads a sequential reader will want from chunk `from` of `seg` on: every
    /// chunk a read of `max_bytes` from there needs, plus `read_ahead` more (at least two more
    /// reads' worth), continuing into
    /// `next` (the following segment) when `seg` runs out. So the ranged GETs of one fetch run
    /// concurrently instead of one after another, and the consumer's next fetch finds its
    /// chunks ready, also when it crosses into the next segment. The window (the chunk being
    /// read included) never outgrows the memory cache: a prefetched chunk evicted before it is
    /// read is downloaded and decompressed again (a 2 GiB export with a 16 MiB cache
    /// downloaded each chunk 2.4 times).
    fn prefetch(
        &self,
        seg: &RemoteSegment,
        footer: &Footer,
        next: Option<&RemoteSegment>,
        from: usize,
        max_bytes: usize,
    ) {
        let chunks = &footer.chunks;
        let mut end = from;
        let mut wanted = 0usize;
        while end < chunks.len() && wanted < max_bytes {
            wanted += chunks[end].raw_len as usize;
            end += 1;
        }
        // Beyond this read, at least two more reads of the same size: a consumer with large
        // fetches turns a fixed window over in one fetch, before its GETs have returned.
        let average = (seg.size_bytes as usize / chunks.len().max(1)).max(1);
        let per_read = max_bytes.div_ceil(average);
        let ahead = match self.read_ahead {
            0 => 0, // read-ahead off
            n => n.max(2 * per_read),
        };
        let fits = (self.fetcher.cache.memory_capacity() as usize / average).max(1);
        let window_end = (end + ahead).min(from + fits);
        self.fetcher.start_chunks(seg, footer, from + 1..window_end);
        let Some(next) = next else { return };
        // What spills past this segment, in chunks of this segment's average size.
        let in_this_segment = window_end.min(chunks.len()) - from;
        let spill = ((max_bytes - wanted.min(max_bytes)).div_ceil(average)
            + (end + ahead).saturating_sub(chunks.len()))
        .min(fits.saturating_sub(in_this_segment));
        if spill == 0 || self.fetcher.permits.available_permits() == 0 {
            return;
        }
        let (fetcher, next) = (self.fetcher.clone(), next.clone());
        tokio::spawn(async move {
            if let Ok(footer) = fetcher.footer(&next).await {
                fetcher.start_chunks(&next, &footer, 0..spill);
            }
        });
    }

    /// Whole batches from the batch containing `offset`, up to `max_bytes` (at least one batch).
    /// `Ok(None)` when the remote tier has nothing at or after `offset`.
    pub async fn read(
        &self,
        p: &PartitionId,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Option<Bytes>> {
        let mut parts = self.read_parts(p, offset, max_bytes).await?;
        Ok(match parts.len() {
            0 => None,
            1 => parts.pop(),
            _ => {
                let mut out = BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
                for p in parts {
                    out.extend_from_slice(&p);
                }
                Some(out.freeze())
            }
        })
    }

    /// [`Self::read`] without joining the batches into one buffer: one slice of each chunk
    /// read, in offset order (empty when the remote tier has nothing at or after `offset`).
    /// For readers that take batches one by one, the join would only copy.
    pub async fn read_parts(
        &self,
        p: &PartitionId,
        offset: i64,
        max_bytes: usize,
    ) -> Result<Vec<Bytes>> {
        let Some(v) = self.manifests.get(p).await? else {
            return Ok(Vec::new());
        };
        let m = &v.manifest;
        if offset < m.log_start_offset {
            return Err(TieringError::OffsetOutOfRange {
                partition: p.to_string(),
                offset,
                log_start_offset: m.log_start_offset,
            });
        }
        let mut parts: Vec<Bytes> = Vec::new();
        let mut total = 0usize;
        let mut cursor = offset;
        let segments: Vec<&RemoteSegment> =
            m.finished().filter(|s| s.next_offset > offset).collect();
        'segments: for (i, &seg) in segments.iter().enumerate() {
            let next = segments.get(i + 1).copied();
            let footer = self.fetcher.footer(seg).await?;
            let Some(first) = footer.chunk_for_offset(cursor) else {
                continue;
            };
            self.prefetch(seg, &footer, next, first, max_bytes.saturating_sub(total));
            for index in first..footer.chunks.len() {
                let data = self.fetcher.chunk(seg, &footer, index).await?;
                let mut pos = 0usize;
                let mut start: Option<usize> = None;
                for item in whole_batches(&data) {
                    let batch =
                        item.map_err(|d| TieringError::corrupt("chunk", &seg.object_key, d))?;
                    let len = batch.size();
                    if batch.last_offset() < cursor {
                        pos += len;
                        continue;
                    }
                    if total > 0 && total + len > max_bytes {
                        if let Some(s) = start {
                            parts.push(data.slice(s..pos));
                        }
                        self.prefetch(seg, &footer, next, index, max_bytes);
                        break 'segments;
                    }
                    start.get_or_insert(pos);
                    pos += len;
                    total += len;
                    cursor = batch.last_offset() + 1;
                }
                if let Some(s) = start {
                    parts.push(data.slice(s..pos));
                }
                if total >= max_bytes {
                    self.prefetch(seg, &footer, next, index, max_bytes);
                    break 'segments;
                }
            }
        }
        Ok(parts)
    }

    /// Kafka ListOffsets by timestamp over the remote tier: the first record with a timestamp
    /// at or after `ts` and an offset at or above `min_offset` (and the remote log start), as
    /// `(offset, timestamp)`; `None` if every such remote record is older.
    pub async fn offset_for_timestamp(
        &self,
        p: &PartitionId,
        ts: i64,
        min_offset: i64,
    ) -> Result<Option<(i64, i64)>> {
        let Some(v) = self.manifests.get(p).await? else {
            return Ok(None);
        };
        let floor = v.manifest.log_start_offset.max(min_offset);
        for seg in v
            .manifest
            .finished()
            .filter(|s| s.max_timestamp >= ts && s.next_offset > floor)
        {
            let footer = self.fetcher.footer(seg).await?;
            let Some(first) = footer.chunk_for_timestamp(ts) else {
                continue;
            };
            for index in first..footer.chunks.len() {
                let data = self.fetcher.chunk(seg, &footer, index).await?;
                for item in whole_batches(&data) {
                    let batch =
                        item.map_err(|d| TieringError::corrupt("chunk", &seg.object_key, d))?;
                    if batch.max_timestamp() < ts || batch.last_offset() < floor {
                        continue;
                    }
                    // Inflated within a bound proportional to the batch (the log accepted it
                    // under max.message.bytes); one that inflates past it answers at batch
                    // level, as the log does for a batch it cannot decode.
                    let limit = max_inflated_bytes(batch.size());
                    let hit = match decode_records(&batch, limit) {
                        Ok(set) => set
                            .records
                            .iter()
                            .find(|r| r.timestamp >= ts && r.offset >= floor)
                            .map(|r| (r.offset, r.timestamp)),
                        Err(
                            InflateError::TooLarge { .. } | InflateError::DecodedTooLarge { .. },
                        ) => Some((batch.base_offset().max(floor), batch.max_timestamp())),
                        Err(e) => return Err(TieringError::corrupt("batch", &seg.object_key, e)),
                    };
                    if hit.is_some() {
                        return Ok(hit);
                    }
                }
            }
        }
        Ok(None)
    }
}

/// The whole v2 batches of a decompressed chunk; a torn tail or another magic is corruption.
fn whole_batches(data: &Bytes) -> impl Iterator<Item = Result<RecordBatch, String>> {
    let mut iter = BatchIter::new(data.clone());
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        match iter.next() {
            Some(batch) if batch.magic() == MAGIC_V2 => Some(Ok(batch)),
            Some(batch) => {
                done = true;
                Some(Err(format!(
                    "batch at offset {} has magic {}, want {MAGIC_V2}",
                    batch.base_offset(),
                    batch.magic()
                )))
            }
            None => {
                done = true;
                match iter.end() {
                    Some(BatchIterEnd::TornTail { position, error }) => {
                        Some(Err(format!("at byte {position}: {error}")))
                    }
                    _ => None,
                }
            }
        }
    })
}
