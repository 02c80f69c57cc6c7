//! Settings of the remote tier. Names in the docs are Kafka's where Kafka has one.

use std::path::PathBuf;
use std::time::Duration;

use crate::segment_object::Compression;

/// Tiering settings; `Default` is what `strata serve` uses with no flags.
#[derive(Debug, Clone)]
pub struct TieringConfig {
    /// Fencing epoch of this writer (e.g. the broker epoch or leader epoch). A manifest written
    /// with a higher epoch refuses our writes.
    pub writer_epoch: u64,
    /// Raw bytes per chunk (whole batches; a larger batch gets its own chunk). Default 4 MiB.
    pub chunk_size: usize,
    /// Chunk compression for batches the producer did not compress. Default zstd.
    pub compression: Compression,
    /// Segments larger than this are uploaded with multipart upload. Default 16 MiB.
    pub multipart_threshold: u64,
    /// Multipart part size (S3 needs >= 5 MiB except the last). Default 8 MiB.
    pub multipart_part_size: usize,
    /// Parts in flight per multipart upload. Default 2.
    pub multipart_concurrency: usize,
    /// Concurrent segment uploads (`remote.log.manager.copier.thread.pool.size`). Default 4.
    pub copier_threads: usize,
    /// Segment encoders run at idle CPU priority while the upload backlog (bytes of closed
    /// segments waiting, all partitions) is at most this, at nice 10 above it
    /// (`encoder_priority.rs`); `None`: always nice 10. Default 2 GiB.
    pub idle_max_backlog_bytes: Option<u64>,
    /// Copy byte-rate quota (`remote.log.manager.copy.max.bytes.per.second`); `None` = unlimited.
    pub copy_max_bytes_per_second: Option<u64>,
    /// Cold-read byte-rate quota (`remote.log.manager.fetch.max.bytes.per.second`), charged per
    /// byte downloaded (chunks, read-ahead and footers); `None` = unlimited.
    pub fetch_max_bytes_per_second: Option<u64>,
    /// Concurrent cold-read object-store requests (`remote.log.reader.threads`). Default 16.
    pub reader_threads: usize,
    /// In-memory chunk cache size. Default 256 MiB.
    pub cache_memory_bytes: u64,
    /// On-disk chunk cache directory (cleared at start); `None` disables the disk tier.
    pub cache_dir: Option<PathBuf>,
    /// On-disk chunk cache size. Default 4 GiB.
    pub cache_disk_bytes: u64,
    /// Chunks prefetched beyond what a sequential read needs for its next fetch, and at least
    /// two reads' worth. Default 4 (16 MiB with the default chunk size): enough to hide a ranged
    /// GET's latency behind the consumer's processing of the previous fetch.
    pub read_ahead_chunks: usize,
    /// Abandoned upload attempts and unreferenced objects younger than this are left alone by
    /// `reconcile` (another writer may be mid-upload). Default 1 h.
    pub orphan_grace: Duration,
    /// Attempts per upload before the background worker records an error and backs off. Default 5.
    pub upload_max_attempts: u32,
    /// First retry backoff (doubles, with jitter, up to `retry_max_backoff`). Default 200 ms.
    pub retry_initial_backoff: Duration,
    /// Default 30 s.
    pub retry_max_backoff: Duration,
}

impl Default for TieringConfig {
    fn default() -> Self {
        Self {
            writer_epoch: 0,
            chunk_size: 4 << 20,
            compression: Compression::Zstd,
            multipart_threshold: 16 << 20,
            multipart_part_size: 8 << 20,
            multipart_concurrency: 2,
            copier_threads: 4,
            idle_max_backlog_bytes: Some(2 << 30),
            copy_max_bytes_per_second: None,
            fetch_max_bytes_per_second: None,
            reader_threads: 16,
            cache_memory_bytes: 256 << 20,
            cache_dir: None,
            cache_disk_bytes: 4 << 30,
            read_ahead_chunks: 4,
            orphan_grace: Duration::from_secs(3600),
            upload_max_attempts: 5,
            retry_initial_backoff: Duration::from_millis(200),
            retry_max_backoff: Duration::from_secs(30),
        }
    }
}

/// Exponential backoff with jitter for retry `attempt` (0-based).
pub(crate) fn backoff(cfg: &TieringConfig, attempt: u32) -> Duration {
    let base = cfg
        .retry_initial_backoff
        .saturating_mul(1u32 << attempt.min(16));
    let capped = base.min(cfg.retry_max_backoff);
    let jitter = (uuid::Uuid::new_v4().as_u128() % 1000) as u32; // 0..1000 per-mille
    capped.mul_f64(0.5 + f64::from(jitter) / 2000.0)
}
