//! Multipart uploads that a crash cannot leave behind unseen.
//!
//! S3 and GCS keep the parts of an upload that was neither completed nor aborted (a process
//! killed mid-upload, an abort that failed during an outage): billed, and invisible to object
//! listings, so `object_store` alone can never find them again. Every multipart upload through a
//! [`TrackedMultipartStore`] therefore leaves a marker in the bucket while it runs:
//!
//! ```text
//! create upload (id) ──► PUT <prefix>/multipart-uploads/<uuid>.json {key, upload_id}
//!                          └─fails─► abort the upload, return the error
//!   ──► parts ──► complete | abort ──► DELETE the marker
//! ```
//!
//! A marker older than a grace period whose upload this process is not running belongs to an
//! interrupted upload: [`TrackedMultipartStore::abort_stale_uploads`] aborts the upload (one
//! already completed or aborted is fine) and deletes the marker. The remote tier sweeps at start
//! and at every reconcile (`remote.log.manager.orphan.grace.ms`), the claim-check gateway at its
//! staging sweeps (`claimcheck.upload.expiry`), an export before it writes (one hour).
//!
//! The one gap: a crash between creating the upload and writing its marker leaves an upload
//! without parts, which stores nothing; the bucket's `AbortIncompleteMultipartUpload` lifecycle
//! rule removes it.

use std::collections::HashSet;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartId, MultipartUpload, ObjectMeta,
    ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
    UploadPart,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys;

/// Markers of the uploads this process is running (every store, every prefix): never swept,
/// however old.
static RUNNING: LazyLock<Mutex<HashSet<Path>>> = LazyLock::new(Default::default);

fn running() -> MutexGuard<'static, HashSet<Path>> {
    RUNNING.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What a marker holds: enough to abort the upload from any process.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    key: String,
    upload_id: String,
    started_ms: i64,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Interrupted uploads aborted (or found already finished) and their markers deleted.
    pub aborted: usize,
    /// Markers kept because the abort failed (retried at the next sweep).
    pub failed: usize,
}

/// Sweeping the markers of interrupted uploads, for a store of any concrete type.
pub(crate) trait SweepInterruptedUploads: fmt::Debug + Send + Sync {
    fn abort_stale_uploads(
        &self,
        grace: Duration,
    ) -> BoxFuture<'_, object_store::Result<SweepReport>>;
}

/// An object store whose multipart uploads leave a marker under `prefix` while they run; every
/// other call goes straight to the inner store.
#[derive(Debug)]
pub struct TrackedMultipartStore<S> {
    inner: Arc<S>,
    prefix: Path,
}

impl<S: ObjectStore + MultipartStore> TrackedMultipartStore<S> {
    pub fn new(inner: Arc<S>, prefix: Path) -> Self {
        Self { inner, prefix }
    }

    /// Aborts the uploads of markers older than `grace` that this process is not running, and
    /// deletes their markers.
    pub async fn abort_stale_uploads(&self, grace: Duration) -> object_store::Result<SweepReport> {
        let dir = keys::format_multipart_markers_dir(&self.prefix);
        let markers: Vec<ObjectMeta> = self.inner.list(Some(&dir)).try_collect().await?;
        let (now_ms, grace_ms) = (crate::now_ms(), grace.as_millis() as i64);
        let mut report = SweepReport::default();
        for meta in markers {
            let young = grace_ms > 0 && now_ms - meta.last_modified.timestamp_millis() < grace_ms;
            if young
                || keys::parse_multipart_marker(&self.prefix, &meta.location).is_none()
                || running().contains(&meta.location)
            {
                continue;
            }
            let body = match self.inner.get(&meta.location).await {
                Ok(got) => got.bytes().await?,
                // Another sweeper (the gateway's, the tier's) got there first.
                Err(object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            match serde_json::from_slice::<Marker>(&body) {
                Ok(marker) => {
                    let key = Path::from(marker.key.as_str());
                    match self.inner.abort_multipart(&key, &marker.upload_id).await {
                        // NotFound: completed, or aborted, before the marker could go.
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                            tracing::info!(key = %key, upload_id = %marker.upload_id,
                                started_ms = marker.started_ms,
                                "aborted the multipart upload of an interrupted write");
                        }
                        Err(error) => {
                            tracing::warn!(key = %key, upload_id = %marker.upload_id, %error,
                                "could not abort the multipart upload of an interrupted write; retrying at the next sweep");
                            report.failed += 1;
                            continue;
                        }
                    }
                }
                Err(error) => {
                    tracing::warn!(marker = %meta.location, %error,
                        "unreadable multipart upload marker deleted; the bucket lifecycle rule has to reclaim its upload");
                }
            }
            match self.inner.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => report.aborted += 1,
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }
}

impl<S: ObjectStore + MultipartStore> SweepInterruptedUploads for TrackedMultipartStore<S> {
    fn abort_stale_uploads(
        &self,
        grace: Duration,
    ) -> BoxFuture<'_, object_store::Result<SweepReport>> {
        Box::pin(TrackedMultipartStore::abort_stale_uploads(self, grace))
    }
}

impl<S: fmt::Display> fmt::Display for TrackedMultipartStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrackedMultipart({})", self.inner)
    }
}

#[async_trait]
impl<S: ObjectStore + MultipartStore> ObjectStore for TrackedMultipartStore<S> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let upload_id = self.inner.create_multipart_opts(location, opts).await?;
        let marker = keys::format_multipart_marker(&self.prefix, Uuid::new_v4());
        let body = serde_json::to_vec(&Marker {
            key: location.to_string(),
            upload_id: upload_id.clone(),
            started_ms: crate::now_ms(),
        })
        .expect("a marker serializes");
        running().insert(marker.clone());
        let create = PutOptions::from(PutMode::Create);
        if let Err(error) = self.inner.put_opts(&marker, body.into(), create).await {
            running().remove(&marker);
            if let Err(abort) = self.inner.abort_multipart(location, &upload_id).await {
                tracing::warn!(key = %location, %upload_id, error = %abort,
                    "could not abort a multipart upload whose marker could not be written");
            }
            return Err(error);
        }
        Ok(Box::new(TrackedUpload {
            store: self.inner.clone(),
            location: location.clone(),
            upload_id,
            marker,
            next_part: 0,
            parts: Default::default(),
            finished: false,
        }))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
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

/// One multipart upload with its marker; parts may run concurrently, as `WriteMultipart` drives
/// them.
struct TrackedUpload<S> {
    store: Arc<S>,
    location: Path,
    upload_id: MultipartId,
    marker: Path,
    next_part: usize,
    parts: Arc<Mutex<Vec<Option<PartId>>>>,
    finished: bool,
}

impl<S: ObjectStore + MultipartStore> TrackedUpload<S> {
    /// The upload is completed or aborted: its marker goes. If the delete fails, a later sweep
    /// finds the upload finished and deletes the marker then.
    async fn forget_marker(&mut self) {
        self.finished = true;
        if let Err(error) = self.store.delete(&self.marker).await {
            tracing::warn!(marker = %self.marker, %error,
                "could not delete the marker of a finished multipart upload; a later sweep will");
        }
        running().remove(&self.marker);
    }
}

impl<S> fmt::Debug for TrackedUpload<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedUpload")
            .field("location", &self.location)
            .field("upload_id", &self.upload_id)
            .field("marker", &self.marker)
            .field("next_part", &self.next_part)
            .finish()
    }
}

#[async_trait]
impl<S: ObjectStore + MultipartStore> MultipartUpload for TrackedUpload<S> {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let index = self.next_part;
        self.next_part += 1;
        let (store, location, upload_id, parts) = (
            self.store.clone(),
            self.location.clone(),
            self.upload_id.clone(),
            self.parts.clone(),
        );
        Box::pin(async move {
            let part = store.put_part(&location, &upload_id, index, data).await?;
            let mut parts = parts.lock().unwrap_or_else(PoisonError::into_inner);
            if parts.len() <= index {
                parts.resize(index + 1, None);
            }
            parts[index] = Some(part);
            Ok(())
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let parts =
            {
                let parts = self.parts.lock().unwrap_or_else(PoisonError::into_inner);
                (0..self.next_part)
                    .map(|i| {
                        parts.get(i).cloned().flatten().ok_or_else(|| {
                            object_store::Error::Generic {
                                store: "TrackedMultipart",
                                source: format!("part {i} of {} was not uploaded", self.location)
                                    .into(),
                            }
                        })
                    })
                    .collect::<object_store::Result<Vec<_>>>()?
            };
        let done = self
            .store
            .complete_multipart(&self.location, &self.upload_id, parts)
            .await?;
        self.forget_marker().await;
        Ok(done)
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.store
            .abort_multipart(&self.location, &self.upload_id)
            .await?;
        self.forget_marker().await;
        Ok(())
    }
}

impl<S> Drop for TrackedUpload<S> {
    /// Dropped unfinished (the writer gave up, or its abort failed): the upload is no longer
    /// running, so a sweep past the grace period aborts it.
    fn drop(&mut self) {
        if !self.finished {
            running().remove(&self.marker);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn tracked() -> (Arc<InMemory>, TrackedMultipartStore<InMemory>) {
        let raw = Arc::new(InMemory::new());
        (
            raw.clone(),
            TrackedMultipartStore::new(raw, Path::from("tier")),
        )
    }

    async fn markers(store: &TrackedMultipartStore<InMemory>) -> Vec<Marker> {
        let dir = keys::format_multipart_markers_dir(&Path::from("tier"));
        let metas: Vec<ObjectMeta> = store.list(Some(&dir)).try_collect().await.unwrap();
        let mut out = Vec::new();
        for m in metas {
            let body = store.get(&m.location).await.unwrap().bytes().await.unwrap();
            out.push(serde_json::from_slice(&body).unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_completed_upload_leaves_its_object_and_no_marker() {
        let (_, store) = tracked();
        let key = Path::from("tier/topics/t/0/segments/a.seg");
        let mut up = store.put_multipart(&key).await.unwrap();
        assert_eq!(markers(&store).await.len(), 1);
        let (first, second) = (
            up.put_part(b"hello ".to_vec().into()),
            up.put_part(b"world".to_vec().into()),
        );
        // Parts finish in any order.
        second.await.unwrap();
        first.await.unwrap();
        up.complete().await.unwrap();
        let got = store.get(&key).await.unwrap().bytes().await.unwrap();
        assert_eq!(&got[..], b"hello world");
        assert!(markers(&store).await.is_empty());
        assert_eq!(
            store.abort_stale_uploads(Duration::ZERO).await.unwrap(),
            SweepReport::default()
        );
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_nothing() {
        let (_, store) = tracked();
        let key = Path::from("tier/claims/x/payload");
        let mut up = store.put_multipart(&key).await.unwrap();
        up.put_part(b"partial".to_vec().into()).await.unwrap();
        up.abort().await.unwrap();
        assert!(markers(&store).await.is_empty());
        assert!(store.head(&key).await.is_err());
    }

    #[tokio::test]
    async fn only_uploads_nobody_runs_are_swept() {
        let (raw, store) = tracked();
        let key = Path::from("tier/exports/part-0.parquet");
        let mut running_upload = store.put_multipart(&key).await.unwrap();
        running_upload
            .put_part(b"in flight".to_vec().into())
            .await
            .unwrap();
        let marker = markers(&store).await.remove(0);
        assert_eq!(marker.key, key.as_ref());
        // However old, an upload this process runs is left alone.
        assert_eq!(
            store.abort_stale_uploads(Duration::ZERO).await.unwrap(),
            SweepReport::default()
        );
        raw.put_part(&key, &marker.upload_id, 1, b"!".to_vec().into())
            .await
            .expect("the upload is still open");

        // A writer killed mid-upload (here: dropped without complete or abort).
        drop(running_upload);
        assert_eq!(
            store
                .abort_stale_uploads(Duration::from_secs(3600))
                .await
                .unwrap(),
            SweepReport::default(),
            "younger than the grace period"
        );
        assert_eq!(
            store.abort_stale_uploads(Duration::ZERO).await.unwrap(),
            SweepReport {
                aborted: 1,
                failed: 0
            }
        );
        assert!(markers(&store).await.is_empty());
        assert!(
            raw.put_part(&key, &marker.upload_id, 2, b"!".to_vec().into())
                .await
                .is_err(),
            "the upload was aborted"
        );
        assert!(store.head(&key).await.is_err(), "nothing visible");
    }

    #[tokio::test]
    async fn a_marker_whose_upload_cannot_be_aborted_stays_for_the_next_sweep() {
        let (raw, store) = tracked();
        let key = Path::from("tier/a");
        let mut up = store.put_multipart(&key).await.unwrap();
        let marker = markers(&store).await.remove(0);
        // The upload is gone in a way the store reports as a plain error (InMemory does not say
        // NotFound): the sweep keeps the marker and says so.
        raw.abort_multipart(&key, &marker.upload_id).await.unwrap();
        drop(up.put_part(Bytes::new().into()));
        drop(up);
        assert_eq!(
            store.abort_stale_uploads(Duration::ZERO).await.unwrap(),
            SweepReport {
                aborted: 0,
                failed: 1
            }
        );
        assert_eq!(markers(&store).await.len(), 1);
    }
}
