//! Fault injection: an `ObjectStore` wrapper that fails or slows chosen calls (tests only,
//! feature `testing`). Faults are armed through a shared [`Faults`] handle:
//!
//! * `fail_next_puts(n)`: the next `n` single PUTs and multipart parts fail (retryable 503-like);
//! * `fail_parts_after(bytes)`: multipart parts fail once this many part bytes were accepted
//!   (one shot: disarmed by the first failure);
//! * `get_delay(d)` / `put_delay(d)`: every GET / PUT (or part) sleeps `d` first;
//! * `fail_deletes(true)`: deletes fail until switched off;
//! * `lose_next_conditional_answers(n)`: the next `n` conditional PUTs are saved, then answered
//!   with a precondition failure (what object_store's retry of a lost 5xx answer gets);
//! * counters of GETs and PUTs for assertions.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};

/// Shared fault switches and counters.
#[derive(Debug, Default)]
pub struct Faults {
    fail_puts: AtomicU64,
    fail_parts_after: AtomicU64,
    parts_bytes: AtomicU64,
    get_delay_ms: AtomicU64,
    put_delay_ms: AtomicU64,
    fail_deletes: std::sync::atomic::AtomicBool,
    lost_answers: AtomicU64,
    pub gets: AtomicU64,
    pub puts: AtomicU64,
    pub aborts: AtomicU64,
}

impl Faults {
    pub fn fail_next_puts(&self, n: u64) {
        self.fail_puts.store(n, Ordering::SeqCst);
    }
    pub fn fail_parts_after(&self, bytes: u64) {
        self.parts_bytes.store(0, Ordering::SeqCst);
        self.fail_parts_after.store(bytes + 1, Ordering::SeqCst);
    }
    pub fn get_delay(&self, d: Duration) {
        self.get_delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }
    /// Every PUT and multipart part sleeps `d` first (to cut uploads off midway).
    pub fn put_delay(&self, d: Duration) {
        self.put_delay_ms
            .store(d.as_millis() as u64, Ordering::SeqCst);
    }
    /// While set, every delete fails (retryable).
    pub fn fail_deletes(&self, on: bool) {
        self.fail_deletes.store(on, Ordering::SeqCst);
    }
    /// The next `n` conditional PUTs (manifest writes) are applied and then reported as a
    /// precondition failure: the store saved the first try, its answer was lost, and the
    /// client's retry found its own write in place.
    pub fn lose_next_conditional_answers(&self, n: u64) {
        self.lost_answers.store(n, Ordering::SeqCst);
    }
    fn put_sleep(&self) -> Duration {
        Duration::from_millis(self.put_delay_ms.load(Ordering::SeqCst))
    }
    fn take_put_failure(&self) -> bool {
        self.fail_puts
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
    fn part_fails(&self, len: u64) -> bool {
        let limit = self.fail_parts_after.load(Ordering::SeqCst);
        if limit == 0 {
            return false;
        }
        let total = self.parts_bytes.fetch_add(len, Ordering::SeqCst) + len;
        if total >= limit {
            self.fail_parts_after.store(0, Ordering::SeqCst);
            return true;
        }
        false
    }
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "Faulty",
        source: format!("injected failure: {what}").into(),
    }
}

/// The wrapper.
#[derive(Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    pub faults: Arc<Faults>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> Self {
        Self {
            inner,
            faults: Arc::default(),
        }
    }
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Faulty({})", self.inner)
    }
}

#[derive(Debug)]
struct FaultyUpload {
    inner: Box<dyn MultipartUpload>,
    faults: Arc<Faults>,
}

#[async_trait]
impl MultipartUpload for FaultyUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        if self.faults.take_put_failure() || self.faults.part_fails(data.content_length() as u64) {
            return Box::pin(async { Err(injected("put part")) });
        }
        let delay = self.faults.put_sleep();
        let part = self.inner.put_part(data);
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            part.await
        })
    }
    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }
    async fn abort(&mut self) -> object_store::Result<()> {
        self.faults.aborts.fetch_add(1, Ordering::SeqCst);
        self.inner.abort().await
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.faults.puts.fetch_add(1, Ordering::SeqCst);
        if self.faults.take_put_failure() {
            return Err(injected("put"));
        }
        tokio::time::sleep(self.faults.put_sleep()).await;
        let conditional = !matches!(opts.mode, object_store::PutMode::Overwrite);
        if conditional
            && self
                .faults
                .lost_answers
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            self.inner.put_opts(location, payload, opts).await?;
            return Err(object_store::Error::Precondition {
                path: location.to_string(),
                source: "injected: the retry of a saved PUT whose answer was lost".into(),
            });
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(location, opts).await?;
        Ok(Box::new(FaultyUpload {
            inner,
            faults: self.faults.clone(),
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.faults.gets.fetch_add(1, Ordering::SeqCst);
        let delay = self.faults.get_delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.faults.gets.fetch_add(1, Ordering::SeqCst);
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        if self.faults.fail_deletes.load(Ordering::SeqCst) {
            use futures::StreamExt;
            return locations.map(|_| Err(injected("delete"))).boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
