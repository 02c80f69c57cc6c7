//! Where an export goes: a local directory, or an object-store prefix (`s3://bucket/prefix`,
//! `gs://`, `az://`) opened by [`strata_tiering::RemoteStore::from_url`], so the same `AWS_*`
//! variables (`AWS_ENDPOINT_URL` included) that configure the broker's remote tier apply.
//!
//! Every file is written through a [`FileSink`] that hashes the bytes as they pass (SHA-256 and
//! size for the manifest, without reading the file back) and that makes the file visible only
//! when it is complete:
//! - local: `<name>.tmp`, fsync, rename on [`AsyncFileWriter::complete`];
//! - object store: `object_store`'s `BufWriter`, a multipart upload of [`PART_BYTES`] parts with
//!   at most [`PART_CONCURRENCY`] in flight (bounded memory), completed on `complete`. An
//!   upload interrupted by a crash is never visible, and the next export into the destination
//!   aborts it ([`Destination::discard_unfinished`]).
//!
//! A file given up on an error ([`FileSink::abort`]) leaves nothing: the `.tmp` is removed, the
//! multipart upload aborted.

use std::path::PathBuf;

use bytes::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::async_writer::AsyncFileWriter;
use parquet::errors::ParquetError;
use sha2::{Digest, Sha256};
use strata_tiering::RemoteStore;
use tokio::io::AsyncWriteExt;

use super::ExportError;

/// Multipart part size (S3 needs at least 5 MiB per part but the last).
pub const PART_BYTES: usize = 8 << 20;
/// Parts uploading at once per file.
pub const PART_CONCURRENCY: usize = 2;

#[derive(Clone)]
pub enum Destination {
    Local(PathBuf),
    /// The store, the prefix, and the URL without a trailing `/` (for messages).
    Object(RemoteStore),
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_string())
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(dir) => write!(f, "{}", dir.display()),
            Self::Object(remote) => f.write_str(&remote.url),
        }
    }
}

fn object_error(
    action: &'static str,
    what: String,
) -> impl FnOnce(object_store::Error) -> ExportError {
    move |e| ExportError::Destination(format!("{action} {what}: {e}"))
}

impl Destination {
    /// A path (or `file://` URL) is a local directory; any other URL an object-store prefix.
    pub fn parse(text: &str) -> Result<Self, ExportError> {
        if let Some(path) = text.strip_prefix("file://") {
            return Ok(Self::Local(PathBuf::from(path)));
        }
        if !text.contains("://") {
            return Ok(Self::Local(PathBuf::from(text)));
        }
        let mut remote = RemoteStore::from_url(text)?;
        remote.url = text.trim_end_matches('/').to_string();
        Ok(Self::Object(remote))
    }

    /// What makes two destinations the same place, to refuse two exports into one: the
    /// directory's canonical path (`/x/a`, `/x/a/`, `file:///x/a`, `/x/./a` and a symlink to it
    /// are one; lexically normalised when it does not exist yet), or the URL.
    pub async fn identity(&self) -> String {
        match self {
            Self::Local(dir) => match tokio::fs::canonicalize(dir).await {
                Ok(path) => path.display().to_string(),
                Err(_) => {
                    let normal: PathBuf = dir.components().collect();
                    normal.display().to_string()
                }
            },
            Self::Object(remote) => remote.url.clone(),
        }
    }

    fn object_path(prefix: &ObjectPath, name: &str) -> ObjectPath {
        prefix.clone().join(name)
    }

    /// Human-readable location of one file.
    pub fn describe(&self, name: &str) -> String {
        match self {
            Self::Local(dir) => dir.join(name).display().to_string(),
            Self::Object(remote) => format!("{}/{name}", remote.url),
        }
    }

    /// Creates the directory (local) and writes then deletes a probe file, so that a
    /// destination that cannot be written fails before any log is read.
    pub async fn probe_writable(&self) -> Result<(), ExportError> {
        const PROBE: &str = ".strata-export-probe";
        match self {
            Self::Local(dir) => {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(ExportError::io("creating", dir))?;
                let probe = dir.join(PROBE);
                tokio::fs::write(&probe, b"")
                    .await
                    .map_err(ExportError::io("writing to", &probe))?;
                tokio::fs::remove_file(&probe)
                    .await
                    .map_err(ExportError::io("removing", &probe))?;
            }
            Self::Object(RemoteStore { store, prefix, .. }) => {
                let path = Self::object_path(prefix, PROBE);
                store
                    .put(&path, PutPayload::from_static(b""))
                    .await
                    .map_err(object_error("writing to", self.describe(PROBE)))?;
                store
                    .delete(&path)
                    .await
                    .map_err(object_error("removing", self.describe(PROBE)))?;
            }
        }
        Ok(())
    }

    /// A small file's bytes (manifests), `None` when it does not exist.
    pub async fn read_small(&self, name: &str) -> Result<Option<Vec<u8>>, ExportError> {
        match self {
            Self::Local(dir) => match tokio::fs::read(dir.join(name)).await {
                Ok(bytes) => Ok(Some(bytes)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(ExportError::io("reading", dir.join(name))(e)),
            },
            Self::Object(RemoteStore { store, prefix, .. }) => {
                match store.get(&Self::object_path(prefix, name)).await {
                    Ok(got) => Ok(Some(
                        got.bytes()
                            .await
                            .map_err(object_error("reading", self.describe(name)))?
                            .to_vec(),
                    )),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(object_error("reading", self.describe(name))(e)),
                }
            }
        }
    }

    /// Replaces a small file atomically (local: temp + fsync + rename; object store: one PUT).
    pub async fn write_small(&self, name: &str, bytes: Vec<u8>) -> Result<(), ExportError> {
        match self {
            Self::Local(dir) => {
                let path = dir.join(name);
                let tmp = dir.join(format!("{name}.tmp"));
                let mut file = tokio::fs::File::create(&tmp)
                    .await
                    .map_err(ExportError::io("creating", &tmp))?;
                file.write_all(&bytes)
                    .await
                    .map_err(ExportError::io("writing", &tmp))?;
                file.sync_all()
                    .await
                    .map_err(ExportError::io("syncing", &tmp))?;
                tokio::fs::rename(&tmp, &path)
                    .await
                    .map_err(ExportError::io("renaming", &tmp))?;
            }
            Self::Object(RemoteStore { store, prefix, .. }) => {
                store
                    .put(&Self::object_path(prefix, name), PutPayload::from(bytes))
                    .await
                    .map_err(object_error("writing", self.describe(name)))?;
            }
        }
        Ok(())
    }

    pub async fn remove(&self, name: &str) -> Result<(), ExportError> {
        match self {
            Self::Local(dir) => match tokio::fs::remove_file(dir.join(name)).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(ExportError::io("removing", dir.join(name))(e))
                }
                _ => Ok(()),
            },
            Self::Object(RemoteStore { store, prefix, .. }) => {
                match store.delete(&Self::object_path(prefix, name)).await {
                    Err(e) if !matches!(e, object_store::Error::NotFound { .. }) => {
                        Err(object_error("removing", self.describe(name))(e))
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// Discards what an interrupted export left: `.tmp` files in a directory (their names are
    /// returned); in an object store the multipart uploads of unfinished files (with their
    /// markers, see `strata_tiering::multipart`), except those this process is running. Called
    /// when an export into this destination (re)starts; two exports into one destination are
    /// refused.
    pub async fn discard_unfinished(&self) -> Result<Vec<String>, ExportError> {
        let dir = match self {
            Self::Local(dir) => dir,
            Self::Object(remote) => {
                // Each aborted upload is logged with its key by the sweep.
                remote
                    .abort_interrupted_multipart_uploads(std::time::Duration::ZERO)
                    .await?;
                return Ok(Vec::new());
            }
        };
        let mut removed = Vec::new();
        let mut entries = tokio::fs::read_dir(dir)
            .await
            .map_err(ExportError::io("listing", dir))?;
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(ExportError::io("listing", dir))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".parquet.tmp") {
                tokio::fs::remove_file(entry.path())
                    .await
                    .map_err(ExportError::io("removing", entry.path()))?;
                removed.push(name);
            }
        }
        Ok(removed)
    }

    /// Names of the files directly in the directory, or of the objects directly under the
    /// prefix (not in sub-directories: readers globbing `*.parquet` do not see those either).
    pub async fn list_names(&self) -> Result<Vec<String>, ExportError> {
        let mut names = Vec::new();
        match self {
            Self::Local(dir) => {
                let mut entries = tokio::fs::read_dir(dir)
                    .await
                    .map_err(ExportError::io("listing", dir))?;
                while let Some(entry) = entries
                    .next_entry()
                    .await
                    .map_err(ExportError::io("listing", dir))?
                {
                    let is_file = entry
                        .file_type()
                        .await
                        .map_err(ExportError::io("listing", entry.path()))?
                        .is_file();
                    if is_file {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
            }
            Self::Object(RemoteStore {
                store, prefix, url, ..
            }) => {
                let listed = store
                    .list_with_delimiter(Some(prefix))
                    .await
                    .map_err(object_error("listing", url.clone()))?;
                names.extend(
                    listed
                        .objects
                        .iter()
                        .filter_map(|o| o.location.filename().map(str::to_string)),
                );
            }
        }
        names.sort();
        Ok(names)
    }

    /// Opens a sink for `name`; nothing is visible under that name until it completes.
    pub async fn create(&self, name: &str) -> Result<FileSink, ExportError> {
        let target = match self {
            Self::Local(dir) => {
                let path = dir.join(name);
                let tmp = dir.join(format!("{name}.tmp"));
                let file = tokio::fs::File::create(&tmp)
                    .await
                    .map_err(ExportError::io("creating", &tmp))?;
                SinkTarget::Local { file, tmp, path }
            }
            Self::Object(RemoteStore { store, prefix, .. }) => SinkTarget::Object(
                BufWriter::with_capacity(
                    store.clone(),
                    Self::object_path(prefix, name),
                    PART_BYTES,
                )
                .with_max_concurrency(PART_CONCURRENCY),
            ),
        };
        Ok(FileSink {
            target,
            hasher: Sha256::new(),
            bytes: 0,
            digest: None,
            completing: false,
            given_up: false,
        })
    }

    /// SHA-256 (hex) and size of a file, streamed; `None` when it does not exist.
    pub async fn sha256(&self, name: &str) -> Result<Option<(String, u64)>, ExportError> {
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        match self {
            Self::Local(dir) => {
                use tokio::io::AsyncReadExt;
                let path = dir.join(name);
                let mut file = match tokio::fs::File::open(&path).await {
                    Ok(file) => file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(ExportError::io("opening", &path)(e)),
                };
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = file
                        .read(&mut buf)
                        .await
                        .map_err(ExportError::io("reading", &path))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    total += n as u64;
                }
            }
            Self::Object(RemoteStore { store, prefix, .. }) => {
                let got = match store.get(&Self::object_path(prefix, name)).await {
                    Ok(got) => got,
                    Err(object_store::Error::NotFound { .. }) => return Ok(None),
                    Err(e) => return Err(object_error("reading", self.describe(name))(e)),
                };
                let mut stream = got.into_stream();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk.map_err(object_error("reading", self.describe(name)))?;
                    hasher.update(&chunk);
                    total += chunk.len() as u64;
                }
            }
        }
        Ok(Some((hex::encode(hasher.finalize()), total)))
    }

    /// The row count in a Parquet file's footer.
    pub async fn parquet_rows(&self, name: &str) -> Result<u64, ExportError> {
        use parquet::arrow::async_reader::ParquetRecordBatchStreamBuilder;
        let metadata = match self {
            Self::Local(dir) => {
                let path = dir.join(name);
                let file = tokio::fs::File::open(&path)
                    .await
                    .map_err(ExportError::io("opening", &path))?;
                ParquetRecordBatchStreamBuilder::new(file)
                    .await?
                    .metadata()
                    .clone()
            }
            Self::Object(RemoteStore { store, prefix, .. }) => {
                #[allow(deprecated)] // the crate's own reader is still the simplest correct one
                let reader = parquet::arrow::async_reader::ParquetObjectReader::new(
                    store.clone(),
                    Self::object_path(prefix, name),
                );
                ParquetRecordBatchStreamBuilder::new(reader)
                    .await?
                    .metadata()
                    .clone()
            }
        };
        Ok(metadata.file_metadata().num_rows().max(0) as u64)
    }
}

enum SinkTarget {
    Local {
        file: tokio::fs::File,
        tmp: PathBuf,
        path: PathBuf,
    },
    Object(BufWriter),
}

/// One file being written; see the module doc. [`FileSink::digest`] is the SHA-256 and size of
/// everything written, available after `complete`.
pub struct FileSink {
    target: SinkTarget,
    hasher: Sha256,
    bytes: u64,
    digest: Option<(String, u64)>,
    /// `complete` was called: a multipart upload is finishing (and aborts itself if a part
    /// fails), a `BufWriter` can no longer be aborted.
    completing: bool,
    /// [`FileSink::abort`] ran.
    given_up: bool,
}

impl FileSink {
    pub fn digest(&self) -> Option<(String, u64)> {
        self.digest.clone()
    }

    /// Bytes handed to the sink so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Gives an unfinished file up after an error: the local `.tmp` is removed (a re-run
    /// writes the file again from its first offset anyway; after a crash the re-run's
    /// `discard_unfinished` removes it instead), the multipart upload is aborted so that its
    /// parts do not linger in the bucket (the lifecycle rule only covers crashes). Best effort
    /// and idempotent: a failure is logged, the error that stopped the export is what counts.
    pub async fn abort(&mut self) {
        if std::mem::replace(&mut self.given_up, true) {
            return;
        }
        let outcome = match &mut self.target {
            SinkTarget::Local { tmp, .. } => match tokio::fs::remove_file(&tmp).await {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
                _ => Ok(()),
            },
            SinkTarget::Object(writer) if !self.completing => {
                writer.abort().await.map_err(|e| e.to_string())
            }
            SinkTarget::Object(_) => Ok(()),
        };
        if let Err(error) = outcome {
            tracing::warn!(%error, "could not clean up an unfinished export file");
        }
    }
}

fn external(e: impl std::error::Error + Send + Sync + 'static) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileWriter for FileSink {
    fn write(&mut self, bs: Bytes) -> BoxFuture<'_, parquet::errors::Result<()>> {
        Box::pin(async move {
            self.hasher.update(&bs);
            self.bytes += bs.len() as u64;
            match &mut self.target {
                SinkTarget::Local { file, .. } => file.write_all(&bs).await.map_err(external),
                SinkTarget::Object(writer) => writer.put(bs).await.map_err(external),
            }
        })
    }

    fn complete(&mut self) -> BoxFuture<'_, parquet::errors::Result<()>> {
        Box::pin(async move {
            self.completing = true;
            match &mut self.target {
                SinkTarget::Local { file, tmp, path } => {
                    file.flush().await.map_err(external)?;
                    file.sync_all().await.map_err(external)?;
                    tokio::fs::rename(&tmp, &path).await.map_err(external)?;
                }
                SinkTarget::Object(writer) => writer.shutdown().await.map_err(external)?,
            }
            let hasher = std::mem::take(&mut self.hasher);
            self.digest = Some((hex::encode(hasher.finalize()), self.bytes));
            Ok(())
        })
    }
}
