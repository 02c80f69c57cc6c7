//! Shared test harness: segment files on disk, managers over each backend.
#![allow(dead_code)]

pub mod batches;

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;
use strata_tiering::segment_object::Compression;
use strata_tiering::{RemoteLogManager, RemoteStore, SegmentDescriptor, TieringConfig};
use uuid::Uuid;

/// A segment written to disk, with its batches' (base offset, file position, len).
pub struct LocalSegment {
    pub desc: SegmentDescriptor,
    pub bytes: Vec<u8>,
    pub batches: Vec<(i64, usize, usize)>,
}

impl LocalSegment {
    /// The local bytes of the batch holding `offset`.
    pub fn batch_at(&self, offset: i64) -> &[u8] {
        let i = self.batches.partition_point(|(b, _, _)| *b <= offset) - 1;
        let (_, pos, len) = self.batches[i];
        &self.bytes[pos..pos + len]
    }
}

/// Write a segment of `batches` batches x `per_batch` records at `base_offset` into `dir`.
pub fn write_segment(
    dir: &FsPath,
    topic: &str,
    topic_id: Uuid,
    base_offset: i64,
    batches: i64,
    per_batch: i64,
    mixed: bool,
) -> LocalSegment {
    let (bytes, index) = batches::segment_bytes(base_offset, batches, per_batch, 1_000_000, mixed);
    let log_path = dir.join(format!("{base_offset:020}.log"));
    std::fs::write(&log_path, &bytes).unwrap();
    let offset_index_path = dir.join(format!("{base_offset:020}.index"));
    std::fs::write(&offset_index_path, b"opaque offset index").unwrap();
    let time_index_path = dir.join(format!("{base_offset:020}.timeindex"));
    let next_offset = base_offset + batches * per_batch;
    LocalSegment {
        desc: SegmentDescriptor {
            topic: topic.to_string(),
            topic_id,
            partition: 0,
            base_offset,
            next_offset,
            max_timestamp: 1_000_000 + next_offset - 1,
            size_bytes: bytes.len() as u64,
            log_path,
            offset_index_path,
            time_index_path,
        },
        bytes,
        batches: index,
    }
}

/// Small chunks and parts so tests exercise multi-chunk and multipart paths.
pub fn test_config() -> TieringConfig {
    TieringConfig {
        chunk_size: 4096,
        compression: Compression::Zstd,
        multipart_threshold: 16 * 1024,
        multipart_part_size: 8 * 1024,
        orphan_grace: Duration::ZERO,
        retry_initial_backoff: Duration::from_millis(5),
        retry_max_backoff: Duration::from_millis(50),
        cache_memory_bytes: 64 * 1024,
        ..TieringConfig::default()
    }
}

pub fn manager(remote: &RemoteStore, config: TieringConfig) -> RemoteLogManager {
    RemoteLogManager::with_remote(remote.clone(), config).unwrap()
}

pub fn wrap(remote: &RemoteStore, store: Arc<dyn ObjectStore>) -> RemoteStore {
    RemoteStore::new(store, remote.prefix.as_ref(), remote.url.clone())
}

/// Backends the conformance suite runs on. `None` for S3 means "skip" (after printing why).
pub enum Backend {
    Memory,
    Local(tempfile::TempDir),
    S3 { bucket: String, endpoint: String },
}

impl Backend {
    pub fn remote(&self, prefix: &str) -> RemoteStore {
        match self {
            Backend::Memory => RemoteStore::from_url(&format!("memory://x/{prefix}")).unwrap(),
            Backend::Local(dir) => {
                RemoteStore::from_url(&format!("file://{}/{prefix}", dir.path().display())).unwrap()
            }
            Backend::S3 { bucket, endpoint } => {
                let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
                let opts = [
                    ("aws_endpoint", endpoint.clone()),
                    ("aws_access_key_id", env("AWS_ACCESS_KEY_ID", "test")),
                    (
                        "aws_secret_access_key",
                        env("AWS_SECRET_ACCESS_KEY", "test"),
                    ),
                    ("aws_region", env("AWS_REGION", "us-east-1")),
                ];
                RemoteStore::from_url_with_options(&format!("s3://{bucket}/{prefix}"), opts)
                    .unwrap()
            }
        }
    }

    /// The S3 store under [`Backend::remote`]'s wrapper, to check what the bucket holds.
    pub fn raw_s3(&self) -> Option<object_store::aws::AmazonS3> {
        let Backend::S3 { bucket, endpoint } = self else {
            return None;
        };
        let env = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        let s3 = object_store::aws::AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_endpoint(endpoint)
            .with_allow_http(true)
            .with_access_key_id(env("AWS_ACCESS_KEY_ID", "test"))
            .with_secret_access_key(env("AWS_SECRET_ACCESS_KEY", "test"))
            .with_region(env("AWS_REGION", "us-east-1"))
            .build()
            .unwrap();
        Some(s3)
    }

    /// Multipart part size this backend accepts (S3 wants >= 5 MiB but the last).
    pub fn part_size(&self) -> usize {
        match self {
            Backend::S3 { .. } => 5 << 20,
            _ => 8 * 1024,
        }
    }
}

/// The S3 backend from `STRATA_TEST_S3_ENDPOINT`, creating a fresh bucket (moto accepts unsigned
/// `PUT /bucket`) unless `STRATA_TEST_S3_BUCKET` names one. Unset endpoint: fail when
/// `STRATA_TEST_REQUIRE_S3=1`, else skip loudly.
pub async fn s3_backend() -> Option<Backend> {
    let Ok(endpoint) = std::env::var("STRATA_TEST_S3_ENDPOINT") else {
        if std::env::var("STRATA_TEST_REQUIRE_S3").as_deref() == Ok("1") {
            panic!("STRATA_TEST_REQUIRE_S3=1 but STRATA_TEST_S3_ENDPOINT is not set");
        }
        eprintln!("\n*** SKIPPED: S3 endpoint not configured (set STRATA_TEST_S3_ENDPOINT) ***\n");
        return None;
    };
    let bucket = match std::env::var("STRATA_TEST_S3_BUCKET") {
        Ok(b) => b,
        Err(_) => {
            let b = format!("strata-test-{}", Uuid::new_v4().simple());
            let url = format!("{}/{b}", endpoint.trim_end_matches('/'));
            let resp = reqwest::Client::new()
                .put(&url)
                .send()
                .await
                .expect("create bucket");
            assert!(
                resp.status().is_success(),
                "create bucket {url}: {}",
                resp.status()
            );
            b
        }
    };
    Some(Backend::S3 { bucket, endpoint })
}
