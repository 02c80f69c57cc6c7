//! Conditional PUT (`PutMode::Update`) for the local-directory backend.
//!
//! `object_store`'s `LocalFileSystem` supports `PutMode::Create` (hard-link publish) but not
//! `PutMode::Update`. The manifest protocol needs compare-and-swap on every backend, including the
//! zero-config local directory, so this wrapper adds it: `Create` and `Update` puts take an
//! exclusive lock (an in-process mutex plus an OS advisory lock on `<root>/.strata-cas.lock`, so two
//! processes on one host are fenced too), compare the current ETag with the expected one, then
//! publish with an atomic rename. Every other call is delegated unchanged.
//!
//! Invariant: between the ETag check and the rename no other conditional writer can run, and
//! every conditional writer goes through the lock. (Unconditional `Overwrite` puts bypass it; this
//! crate never overwrites a fenced object unconditionally.)

use std::fmt;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// `LocalFileSystem` plus lock-based compare-and-swap puts.
#[derive(Debug)]
pub struct LocalConditionalStore {
    inner: Arc<LocalFileSystem>,
    lock_path: PathBuf,
    local_lock: tokio::sync::Mutex<()>,
}

impl LocalConditionalStore {
    /// Wrap a `LocalFileSystem` rooted at `root`.
    pub fn new(inner: LocalFileSystem, root: PathBuf) -> Self {
        Self {
            inner: Arc::new(inner),
            lock_path: root.join(".strata-cas.lock"),
            local_lock: tokio::sync::Mutex::new(()),
        }
    }

    async fn lock_file(&self) -> object_store::Result<std::fs::File> {
        let path = self.lock_path.clone();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)?;
            file.lock()?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|e| object_store::Error::JoinError { source: e })?
        .map_err(|e| object_store::Error::Generic {
            store: "LocalConditional",
            source: Box::new(e),
        })
    }
}

impl fmt::Display for LocalConditionalStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalConditional({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for LocalConditionalStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let expected = match &opts.mode {
            PutMode::Overwrite => return self.inner.put_opts(location, payload, opts).await,
            PutMode::Create => None,
            PutMode::Update(v) => Some(v.e_tag.clone()),
        };
        let _guard = self.local_lock.lock().await;
        let _file_lock = self.lock_file().await?;
        let current = match self.inner.head(location).await {
            Ok(meta) => Some(meta.e_tag),
            Err(object_store::Error::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        match (expected, current) {
            (None, None) => {}
            (None, Some(_)) => {
                return Err(object_store::Error::AlreadyExists {
                    path: location.to_string(),
                    source: "object exists".into(),
                });
            }
            (Some(_), None) => {
                return Err(object_store::Error::Precondition {
                    path: location.to_string(),
                    source: "object does not exist".into(),
                });
            }
            (Some(want), Some(have)) => {
                if want.is_none() || want != have {
                    return Err(object_store::Error::Precondition {
                        path: location.to_string(),
                        source: format!("etag {have:?} does not match {want:?}").into(),
                    });
                }
            }
        }
        let opts = PutOptions {
            mode: PutMode::Overwrite,
            ..opts
        };
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
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
