//! Library side of `strata claim put FILE --topic T` and `strata claim get CLAIM_ID -o FILE`:
//! progress bars (indicatif), resumable uploads with per-part retries, verified downloads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tracing::warn;

use crate::client::{ClaimHead, HttpClaimClient};
use crate::error::{ClaimError, Result};
use crate::resumable::NewUpload;
use crate::ticket::{ClaimId, ClaimReceipt, UploadId};

/// Options of [`put_file`].
#[derive(Debug, Clone)]
pub struct PutFileOptions {
    pub topic: String,
    pub key: Option<String>,
    pub partition: Option<i32>,
    pub content_type: Option<String>,
    /// Size of each resumable part.
    pub part_bytes: u64,
    /// Attempts per part before giving up (the error then names the upload id to resume).
    pub attempts_per_part: u32,
    /// Resume this upload instead of opening a new one.
    pub resume: Option<UploadId>,
    pub show_progress: bool,
}

impl PutFileOptions {
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            key: None,
            partition: None,
            content_type: None,
            part_bytes: 16 * 1024 * 1024,
            attempts_per_part: 4,
            resume: None,
            show_progress: true,
        }
    }
}

fn progress_bar(len: u64, show: bool, message: &'static str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg:>10} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message);
    bar
}

async fn hash_range(
    path: &Path,
    start: u64,
    len: u64,
    bar: Option<&ProgressBar>,
) -> Result<String> {
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let mut reader = file.take(len);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(bar) = bar {
            bar.inc(n as u64);
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Uploads `path` through the resumable API and returns the receipt. A part that keeps failing
/// ends with [`ClaimError::Interrupted`] naming the upload; pass it as `resume` to continue.
pub async fn put_file(
    gateway: &str,
    path: &Path,
    options: &PutFileOptions,
) -> Result<ClaimReceipt> {
    let client = HttpClaimClient::new(gateway)?;
    let size = tokio::fs::metadata(path).await?.len();
    let hashing = progress_bar(size, options.show_progress, "hashing");
    let sha256 = hash_range(path, 0, size, Some(&hashing)).await?;
    hashing.finish_and_clear();

    let (upload, present) = match options.resume {
        Some(id) => {
            let status = client.upload_status(id).await?;
            if let Some(receipt) = status.receipt {
                return Ok(receipt);
            }
            (id, status.parts)
        }
        None => {
            let state = client
                .create_upload(&NewUpload {
                    topic: options.topic.clone(),
                    partition: options.partition,
                    key: options.key.clone(),
                    content_type: options.content_type.clone(),
                    size: Some(size),
                    sha256: Some(sha256.clone()),
                    ..Default::default()
                })
                .await?;
            (state.upload_id, Vec::new())
        }
    };

    let part_bytes = options.part_bytes.max(1);
    let parts = size.div_ceil(part_bytes);
    let bar = progress_bar(size, options.show_progress, "uploading");
    for index in 0..parts {
        let number = (index + 1) as u32;
        let start = index * part_bytes;
        let len = part_bytes.min(size - start);
        if present.iter().any(|p| p.part == number && p.size == len) {
            bar.inc(len);
            continue;
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match send_part(&client, upload, number, path, start, len, &bar).await {
                Ok(()) => break,
                Err(e) if attempt < options.attempts_per_part && e.is_retryable() => {
                    warn!(upload = %upload, part = number, attempt, error = %e, "part failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
                }
                Err(e) => {
                    bar.abandon_with_message("interrupted");
                    return Err(ClaimError::Interrupted {
                        upload,
                        source: Box::new(e),
                    });
                }
            }
        }
    }
    let receipt = client
        .complete_upload(upload)
        .await
        .map_err(|e| ClaimError::Interrupted {
            upload,
            source: Box::new(e),
        })?;
    bar.finish_with_message("stored");
    Ok(receipt)
}

async fn send_part(
    client: &HttpClaimClient,
    upload: UploadId,
    number: u32,
    path: &Path,
    start: u64,
    len: u64,
    bar: &ProgressBar,
) -> Result<()> {
    let sha256 = hash_range(path, start, len, None).await?;
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(start)).await?;
    let counted = bar.clone();
    let sent_before = bar.position();
    let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), 256 * 1024)
        .inspect_ok(move |chunk| counted.inc(chunk.len() as u64));
    let result = client
        .put_part(
            upload,
            number,
            reqwest::Body::wrap_stream(stream),
            len,
            &sha256,
        )
        .await;
    if result.is_err() {
        bar.set_position(sent_before);
    }
    result.map(|_| ())
}

/// Downloads claim `id` to `output`, verifying the SHA-256; the file appears only when verified.
pub async fn get_file(
    gateway: &str,
    id: ClaimId,
    output: &Path,
    show_progress: bool,
) -> Result<ClaimHead> {
    let client = HttpClaimClient::new(gateway)?;
    let (head, mut stream) = client.get(id).await?;
    let directory: PathBuf = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let partial = tempfile::NamedTempFile::new_in(&directory)?;
    let mut file = tokio::fs::File::from_std(partial.reopen()?);
    let bar = progress_bar(head.size, show_progress, "downloading");
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        file.write_all(&chunk).await?;
        bar.inc(chunk.len() as u64);
    }
    file.flush().await?;
    file.sync_all().await?;
    partial
        .persist(output)
        .map_err(|e| ClaimError::Io(e.error))?;
    bar.finish_with_message("verified");
    Ok(head)
}
