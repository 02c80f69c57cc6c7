//! Test harness: the real router on a loopback port, an in-memory `TicketSink`, and the object
//! store as a local directory and (when configured) a real S3 server.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use sha2::{Digest, Sha256};
use strata_claimcheck::{
    ClaimCheckConfig, ClaimCheckService, ClaimId, ClaimStore, LiveClaims, OutRecord,
    RecordPosition, SinkError, TicketSink,
};

/// One appended record, as the log would hold it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
}

impl Stored {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }
    pub fn header_pairs(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter().map(|(k, v)| (k.as_str(), &v[..]))
    }
}

/// In-memory log. With `sample_every > 1` only every n-th record is kept (for 1M-row tests);
/// all records are counted and the `claimcheck.csv.line` header is checked to increase.
pub struct MemorySink {
    pub topics: BTreeMap<String, i32>,
    state: Mutex<SinkState>,
    sample_every: u64,
    /// Ticket ids whose records "left the log" (retention), for GC tests.
    pub expired: Mutex<HashSet<ClaimId>>,
}

#[derive(Default)]
struct SinkState {
    records: Vec<Stored>,
    next_offset: BTreeMap<(String, i32), i64>,
    count: u64,
    last_csv_line: u64,
    csv_order_violations: u64,
}

impl MemorySink {
    pub fn new() -> Arc<Self> {
        Self::with_sampling(1)
    }
    pub fn with_sampling(sample_every: u64) -> Arc<Self> {
        Arc::new(Self {
            topics: [("events".to_string(), 3), ("rows".to_string(), 1)]
                .into_iter()
                .collect(),
            state: Mutex::new(SinkState::default()),
            sample_every,
            expired: Mutex::new(HashSet::new()),
        })
    }
    pub fn records(&self) -> Vec<Stored> {
        self.state.lock().unwrap().records.clone()
    }
    pub fn count(&self) -> u64 {
        self.state.lock().unwrap().count
    }
    pub fn csv_order_violations(&self) -> u64 {
        self.state.lock().unwrap().csv_order_violations
    }
    fn store(&self, topic: &str, partition: i32, record: OutRecord) -> RecordPosition {
        let mut state = self.state.lock().unwrap();
        let next = state
            .next_offset
            .entry((topic.to_string(), partition))
            .or_insert(0);
        let offset = *next;
        *next += 1;
        state.count += 1;
        let line = record
            .headers
            .iter()
            .find(|(k, _)| k == "claimcheck.csv.line")
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse::<u64>().ok());
        if let Some(line) = line {
            if line <= state.last_csv_line {
                state.csv_order_violations += 1;
            }
            state.last_csv_line = line;
        }
        let keep = self.sample_every <= 1
            || line.is_none()
            || state.count.is_multiple_of(self.sample_every);
        if keep {
            state.records.push(Stored {
                topic: topic.to_string(),
                partition,
                offset,
                key: record.key,
                value: record.value,
                headers: record.headers,
            });
        }
        RecordPosition { partition, offset }
    }
    fn check(&self, topic: &str, partition: Option<i32>) -> Result<i32, SinkError> {
        let count = *self
            .topics
            .get(topic)
            .ok_or_else(|| SinkError::UnknownTopic(topic.into()))?;
        let p = partition.unwrap_or(0);
        if p < 0 || p >= count {
            return Err(SinkError::UnknownPartition {
                topic: topic.into(),
                partition: p,
            });
        }
        Ok(p)
    }
}

#[async_trait]
impl TicketSink for MemorySink {
    async fn append(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Bytes>,
        value: Bytes,
        headers: Vec<(String, Bytes)>,
    ) -> Result<RecordPosition, SinkError> {
        let p = self.check(topic, partition)?;
        Ok(self.store(
            topic,
            p,
            OutRecord {
                key,
                value,
                headers,
            },
        ))
    }
    async fn append_batch(
        &self,
        topic: &str,
        partition: Option<i32>,
        records: Vec<OutRecord>,
    ) -> Result<Vec<RecordPosition>, SinkError> {
        let p = self.check(topic, partition)?;
        Ok(records
            .into_iter()
            .map(|r| self.store(topic, p, r))
            .collect())
    }
    fn partition_count(&self, topic: &str) -> Option<i32> {
        self.topics.get(topic).copied()
    }
}

#[async_trait]
impl LiveClaims for MemorySink {
    async fn live_claims(&self) -> Result<HashSet<ClaimId>, SinkError> {
        let expired = self.expired.lock().unwrap().clone();
        Ok(self
            .records()
            .iter()
            .filter_map(|r| r.header("claimcheck.id")?.parse().ok())
            .filter(|id| !expired.contains(id))
            .collect())
    }
}

/// Which object store a test runs against.
pub enum Backend {
    Local(tempfile::TempDir),
    S3 { bucket: String },
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Local(_) => "local",
            Backend::S3 { .. } => "s3",
        }
    }
}

/// The local directory backend, plus S3 when `STRATA_TEST_S3_ENDPOINT` is set. When it is not:
/// fail if `STRATA_TEST_REQUIRE_S3=1`, else print a loud SKIPPED line.
pub async fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Local(tempfile::tempdir().unwrap())];
    match std::env::var("STRATA_TEST_S3_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => {
            let bucket = format!(
                "strata-claimcheck-{}",
                hex::encode(rand::random::<[u8; 6]>())
            );
            let url = format!("{}/{bucket}", endpoint.trim_end_matches('/'));
            let response = reqwest::Client::new()
                .put(&url)
                .send()
                .await
                .expect("create bucket");
            assert!(
                response.status().is_success(),
                "creating bucket {url}: {}",
                response.status()
            );
            all.push(Backend::S3 { bucket });
        }
        _ => {
            if std::env::var("STRATA_TEST_REQUIRE_S3").as_deref() == Ok("1") {
                panic!("STRATA_TEST_REQUIRE_S3=1 but STRATA_TEST_S3_ENDPOINT is not set");
            }
            eprintln!(
                "\n!!!!!! SKIPPED: S3 endpoint not configured (set STRATA_TEST_S3_ENDPOINT) — local store only !!!!!!\n"
            );
        }
    }
    all
}

pub fn object_store(backend: &Backend) -> Arc<dyn ObjectStore> {
    match backend {
        Backend::Local(dir) => {
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap())
        }
        Backend::S3 { bucket } => {
            let endpoint = std::env::var("STRATA_TEST_S3_ENDPOINT").unwrap();
            Arc::new(
                object_store::aws::AmazonS3Builder::from_env()
                    .with_endpoint(endpoint)
                    .with_bucket_name(bucket)
                    .with_allow_http(true)
                    .build()
                    .unwrap(),
            )
        }
    }
}

/// A running gateway.
pub struct Gateway {
    pub base_url: String,
    pub sink: Arc<MemorySink>,
    pub service: ClaimCheckService,
    pub store: ClaimStore,
    pub backend_name: &'static str,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub async fn start(backend: &Backend, config: ClaimCheckConfig, sink: Arc<MemorySink>) -> Gateway {
    let store = ClaimStore::new(object_store(backend), "strata").unwrap();
    let service = ClaimCheckService::new(store.clone(), sink.clone(), config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let router = service.router();
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Gateway {
        base_url,
        sink,
        service,
        store,
        backend_name: backend.name(),
        server,
    }
}

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
    /// Every object under the store prefix.
    pub async fn objects(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .store
            .object_store()
            .list(Some(self.store.prefix()))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        all.sort();
        all
    }
}

/// Deterministic pseudo-random payload of `len` bytes as a stream of `chunk`-sized pieces,
/// generated lazily (never held in memory), and its SHA-256 computed on the side.
pub fn payload_stream(
    seed: u64,
    len: u64,
    chunk: usize,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut state = seed | 1;
    let mut produced = 0u64;
    futures::stream::poll_fn(move |_| {
        if produced >= len {
            return std::task::Poll::Ready(None);
        }
        let n = chunk.min((len - produced) as usize);
        let mut buf = Vec::with_capacity(n);
        while buf.len() < n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            buf.extend_from_slice(&state.to_le_bytes());
        }
        buf.truncate(n);
        produced += n as u64;
        std::task::Poll::Ready(Some(Ok(Bytes::from(buf))))
    })
}

pub async fn payload_sha256(seed: u64, len: u64) -> String {
    let mut hasher = Sha256::new();
    let mut s = Box::pin(payload_stream(seed, len, 1 << 20));
    while let Some(chunk) = s.next().await {
        hasher.update(chunk.unwrap());
    }
    hex::encode(hasher.finalize())
}

pub async fn payload_bytes(seed: u64, len: u64) -> Vec<u8> {
    let chunks: Vec<Bytes> = payload_stream(seed, len, 1 << 16)
        .try_collect()
        .await
        .unwrap();
    chunks.concat()
}
