//! Building the object store from a URL.
//!
//! | URL                        | backend                                                    |
//! | -------------------------- | ---------------------------------------------------------- |
//! | `file:///abs/dir`          | local directory (created), fsynced puts, CAS (`local_cas.rs`) |
//! | `file://./rel/dir`         | same, relative to the working directory                    |
//! | `s3://bucket/prefix`       | S3 / MinIO / any S3 API, configured from `AWS_*` env vars   |
//! | `gs://bucket/prefix`       | Google Cloud Storage, `GOOGLE_*` env vars                   |
//! | `az://container/prefix`    | Azure Blob Storage, `AZURE_*` env vars                      |
//! | `memory://`                | in-process, for tests                                       |
//!
//! Every backend supports `PutMode::Create` and `PutMode::Update`, which the manifest protocol
//! relies on (S3 uses `If-None-Match` / `If-Match`). On the backends with multipart uploads
//! (S3, GCS, Azure, memory) each upload leaves a marker while it runs, so that one a crash
//! interrupted is found and aborted later ([`RemoteStore::abort_interrupted_multipart_uploads`],
//! `multipart.rs`); on a local directory the same role falls to
//! [`RemoteStore::remove_stale_staging_files`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{ObjectStore, RetryConfig};

use crate::error::{Result, TieringError};
use crate::local_cas::LocalConditionalStore;
use crate::multipart::{SweepInterruptedUploads, SweepReport, TrackedMultipartStore};

/// The HTTP client's own retries only bridge short blips: the uploader retries with its own
/// backoff and reports every failed attempt (`strata tier status`), which it could not do while
/// the client kept retrying a dead endpoint for object_store's default three minutes.
fn client_retry() -> RetryConfig {
    RetryConfig {
        max_retries: 3,
        retry_timeout: std::time::Duration::from_secs(15),
        ..RetryConfig::default()
    }
}

/// An object store plus the key prefix under which this cluster's remote tier lives.
#[derive(Debug, Clone)]
pub struct RemoteStore {
    pub store: Arc<dyn ObjectStore>,
    pub prefix: Path,
    /// The URL the store was built from (for messages and `strata tier status`).
    pub url: String,
    /// The directory of a `file://` store: where a process killed mid-write leaves
    /// `LocalFileSystem` staging files (`<key>#<n>`) that no listing shows.
    pub local_root: Option<PathBuf>,
    /// The markers of this store's multipart uploads, for backends that have them.
    multipart: Option<Arc<dyn SweepInterruptedUploads>>,
}

impl RemoteStore {
    /// Wrap an existing store (tests, fault injection).
    pub fn new(
        store: Arc<dyn ObjectStore>,
        prefix: impl AsRef<str>,
        url: impl Into<String>,
    ) -> Self {
        Self {
            store,
            prefix: Path::from(prefix.as_ref()),
            url: url.into(),
            local_root: None,
            multipart: None,
        }
    }

    /// Wrap a store with multipart uploads so that each leaves a marker under `prefix` while it
    /// runs (see `multipart.rs`).
    pub fn with_tracked_multipart<S: ObjectStore + MultipartStore>(
        store: Arc<S>,
        prefix: impl AsRef<str>,
        url: impl Into<String>,
    ) -> Self {
        let prefix = Path::from(prefix.as_ref());
        let tracked = Arc::new(TrackedMultipartStore::new(store, prefix.clone()));
        Self {
            multipart: Some(tracked.clone()),
            ..Self::new(tracked, prefix, url)
        }
    }

    /// Build a store from `url`; see the module docs for the schemes.
    pub fn from_url(url: &str) -> Result<Self> {
        Self::from_url_with_options(url, std::iter::empty::<(String, String)>())
    }

    /// Like [`RemoteStore::from_url`], with backend options that override the environment, named
    /// as `object_store` names them (`aws_endpoint`, `aws_access_key_id`, `aws_region`,
    /// `aws_allow_http`, `google_service_account`, `azure_storage_account_name`, ...).
    pub fn from_url_with_options<K: AsRef<str>, V: Into<String>>(
        url: &str,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self> {
        let options: Vec<(String, String)> = options
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.into()))
            .collect();
        let bad = |reason: String| TieringError::InvalidUrl {
            url: url.to_string(),
            reason,
        };
        if let Some(rest) = url.strip_prefix("file://") {
            let dir = PathBuf::from(rest);
            if rest.is_empty() {
                return Err(bad("missing directory".into()));
            }
            let dir = if dir.is_absolute() {
                dir
            } else {
                std::env::current_dir()
                    .map_err(|e| bad(format!("no working directory: {e}")))?
                    .join(dir)
            };
            std::fs::create_dir_all(&dir)
                .map_err(|e| bad(format!("create {}: {e}", dir.display())))?;
            let dir = dir
                .canonicalize()
                .map_err(|e| bad(format!("resolve {}: {e}", dir.display())))?;
            // With fsync, a PUT returns once the object and its directory entries are on stable
            // storage, as an S3 PUT does: the log deletes a segment's local copy once its upload
            // is in the manifest, and a claim is acknowledged once its payload is stored, so an
            // object still in the page cache would be lost with a power cut.
            let fs = LocalFileSystem::new_with_prefix(&dir)
                .map_err(|e| bad(e.to_string()))?
                .with_automatic_cleanup(true)
                .with_fsync(true);
            let store = LocalConditionalStore::new(fs, dir.clone());
            return Ok(Self {
                local_root: Some(dir),
                ..Self::new(Arc::new(store), "", url)
            });
        }
        let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        let bucket = parsed.host_str().unwrap_or_default().to_string();
        let prefix = parsed.path().trim_matches('/').to_string();
        match parsed.scheme() {
            "memory" => Ok(Self::with_tracked_multipart(
                Arc::new(InMemory::new()),
                prefix,
                url,
            )),
            "s3" | "s3a" => {
                if bucket.is_empty() {
                    return Err(bad("missing bucket".into()));
                }
                let mut b = AmazonS3Builder::from_env()
                    .with_bucket_name(&bucket)
                    .with_conditional_put(S3ConditionalPut::ETagMatch)
                    .with_retry(client_retry());
                for (k, v) in &options {
                    let key = k
                        .parse()
                        .map_err(|e: object_store::Error| bad(e.to_string()))?;
                    b = b.with_config(key, v.clone());
                }
                let endpoint = options
                    .iter()
                    .find(|(k, _)| {
                        k == "aws_endpoint" || k == "aws_endpoint_url" || k == "endpoint"
                    })
                    .map(|(_, v)| v.clone())
                    .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
                if let Some(endpoint) = endpoint {
                    let loopback = ["://127.", "://localhost", "://[::1]"]
                        .iter()
                        .any(|p| endpoint.contains(p));
                    b = b
                        .with_endpoint(&endpoint)
                        .with_allow_http(endpoint.starts_with("http://") || loopback);
                    if std::env::var("AWS_REGION").is_err()
                        && !options.iter().any(|(k, _)| k == "aws_region")
                    {
                        b = b.with_region("us-east-1");
                    }
                }
                let store = b.build().map_err(|e| bad(e.to_string()))?;
                Ok(Self::with_tracked_multipart(Arc::new(store), prefix, url))
            }
            "gs" => {
                if bucket.is_empty() {
                    return Err(bad("missing bucket".into()));
                }
                let mut b = GoogleCloudStorageBuilder::from_env()
                    .with_bucket_name(&bucket)
                    .with_retry(client_retry());
                for (k, v) in &options {
                    let key = k
                        .parse()
                        .map_err(|e: object_store::Error| bad(e.to_string()))?;
                    b = b.with_config(key, v.clone());
                }
                let store = b.build().map_err(|e| bad(e.to_string()))?;
                Ok(Self::with_tracked_multipart(Arc::new(store), prefix, url))
            }
            "az" | "azure" | "abfs" | "abfss" => {
                let mut b = MicrosoftAzureBuilder::from_env()
                    .with_url(url)
                    .with_retry(client_retry());
                for (k, v) in &options {
                    let key = k
                        .parse()
                        .map_err(|e: object_store::Error| bad(e.to_string()))?;
                    b = b.with_config(key, v.clone());
                }
                let store = b.build().map_err(|e| bad(e.to_string()))?;
                Ok(Self::with_tracked_multipart(Arc::new(store), prefix, url))
            }
            other => Err(bad(format!(
                "unsupported scheme {other:?} (file, s3, gs, az, memory)"
            ))),
        }
    }

    /// Aborts the multipart uploads that interrupted writes left (a process killed mid-upload,
    /// an abort that failed during an outage): those whose marker is older than `grace` and that
    /// no upload of this process is running. A no-op on a local directory (see
    /// [`RemoteStore::remove_stale_staging_files`]).
    pub async fn abort_interrupted_multipart_uploads(
        &self,
        grace: Duration,
    ) -> Result<SweepReport> {
        let Some(multipart) = &self.multipart else {
            return Ok(SweepReport::default());
        };
        let dir = crate::keys::format_multipart_markers_dir(&self.prefix);
        let report = multipart
            .abort_stale_uploads(grace)
            .await
            .map_err(|e| TieringError::store("sweep interrupted multipart uploads", &dir, e))?;
        if report.aborted > 0 || report.failed > 0 {
            tracing::info!(store = %self.url, aborted = report.aborted, failed = report.failed,
                "swept the multipart uploads of interrupted writes");
        }
        Ok(report)
    }

    /// Deletes the `LocalFileSystem` staging files (`<key>#<digits>`) under the key prefix
    /// `under` (every level below it) that were last written more than `grace` ago: what a
    /// process killed while writing an object leaves. No listing shows them, so nothing else
    /// would ever remove them. Blocking file-system work; returns the files and bytes removed.
    /// A no-op for stores other than a local directory.
    pub fn remove_stale_staging_files(&self, under: &Path, grace: Duration) -> (usize, u64) {
        let Some(root) = &self.local_root else {
            return (0, 0);
        };
        let mut removed = (0, 0);
        let mut dirs = vec![
            under
                .parts()
                .fold(root.clone(), |dir, part| dir.join(part.as_ref())),
        ];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    dirs.push(entry.path());
                    continue;
                }
                let name = entry.file_name().to_string_lossy().into_owned();
                let staging = name
                    .rsplit_once('#')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                let old_enough = meta
                    .modified()
                    .ok()
                    .and_then(|modified| modified.elapsed().ok())
                    .is_some_and(|age| age >= grace);
                if staging && old_enough && std::fs::remove_file(entry.path()).is_ok() {
                    tracing::info!(file = %entry.path().display(), bytes = meta.len(),
                        "deleted the staging file of an interrupted write");
                    removed.0 += 1;
                    removed.1 += meta.len();
                }
            }
        }
        removed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let m = RemoteStore::from_url("memory://").unwrap();
        assert_eq!(m.prefix.as_ref(), "");
        let m = RemoteStore::from_url("memory://x/a/b").unwrap();
        assert_eq!(m.prefix.as_ref(), "a/b");
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}/sub", dir.path().display());
        RemoteStore::from_url(&url).unwrap();
        assert!(dir.path().join("sub").is_dir());
        let err = RemoteStore::from_url("ftp://x/y").unwrap_err().to_string();
        assert!(err.contains("ftp://x/y"), "{err}");
        assert!(RemoteStore::from_url("s3:///nobucket").is_err());
    }

    #[test]
    fn only_stale_staging_files_under_the_prefix_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = RemoteStore::from_url(&format!("file://{}", dir.path().display())).unwrap();
        let deep = dir.path().join("p/claims/x");
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::create_dir_all(dir.path().join("other")).unwrap();
        for name in ["a.seg", "a.seg#1", "b.seg#12", "c.seg#", "d.seg#x1"] {
            std::fs::write(dir.path().join("p").join(name), b"x").unwrap();
        }
        std::fs::write(deep.join("payload#3"), b"xyz").unwrap();
        std::fs::write(dir.path().join("other/e#1"), b"x").unwrap();
        let prefix = Path::from("p");
        let long = Duration::from_secs(3600);
        assert_eq!(
            store.remove_stale_staging_files(&prefix, long),
            (0, 0),
            "too young"
        );
        assert_eq!(
            store.remove_stale_staging_files(&prefix, Duration::ZERO),
            (3, 5)
        );
        let mut left: Vec<_> = std::fs::read_dir(dir.path().join("p"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["a.seg", "c.seg#", "claims", "d.seg#x1"]);
        assert!(deep.read_dir().unwrap().next().is_none());
        assert!(dir.path().join("other/e#1").exists(), "outside the prefix");
        let memory = RemoteStore::from_url("memory://").unwrap();
        assert_eq!(
            memory.remove_stale_staging_files(&prefix, Duration::ZERO),
            (0, 0)
        );
    }
}
