//! The "raw ceiling" of `bench/claimcheck.sh`: writes a file straight to an object store through
//! `object_store` (a `BufWriter` doing a multipart upload, parts uploaded concurrently) and reads
//! it back with one streaming GET (read as the gateway reads it), printing MB/s for each; no HTTP, no hashing, no ticket. The
//! gateway's figures are compared with these.
//!
//! ```text
//! raw_store_ceiling generate FILE BYTES
//!     writes BYTES of deterministic pseudo-random data to FILE (the bench's payload)
//! raw_store_ceiling upload URL FILE [PART_BYTES] [CONCURRENCY]
//!     URL: file:///dir or s3://bucket/prefix (AWS_* variables, AWS_ENDPOINT_URL for a local
//!     S3 server); writes FILE to <prefix>/raw-ceiling/payload, prints `raw_upload_mbps=..`
//! raw_store_ceiling download URL BYTES
//!     reads that object back (checking its size), prints `raw_download_mbps=..`, deletes it
//! ```
//! Two commands, so that the bench can flush dirty pages (`sync`) between the two timings.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::buffered::BufWriter;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

type AnyError = Box<dyn std::error::Error + Send + Sync>;

const MB: f64 = 1e6;

fn usage() -> AnyError {
    "usage: raw_store_ceiling generate FILE BYTES | upload URL FILE [PART_BYTES] [CONCURRENCY] \
     | download URL BYTES"
        .into()
}

/// The store and the object path under it for `url` (same backends the broker's `--remote` takes
/// for the bench: a local directory or S3).
fn open_store(url: &str) -> Result<(Arc<dyn ObjectStore>, Path), AnyError> {
    let object = "raw-ceiling/payload";
    if let Some(dir) = url.strip_prefix("file://") {
        std::fs::create_dir_all(dir)?;
        // fsync, as the broker's local-directory backend does: the ceiling has the same durability.
        let store = LocalFileSystem::new_with_prefix(dir)?.with_fsync(true);
        return Ok((Arc::new(store), Path::from(object)));
    }
    let parsed = url::Url::parse(url)?;
    if parsed.scheme() != "s3" {
        return Err(format!("unsupported URL {url}: file:// or s3://").into());
    }
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(parsed.host_str().unwrap_or(""));
    if let Ok(endpoint) = std::env::var("AWS_ENDPOINT_URL") {
        builder = builder
            .with_allow_http(endpoint.starts_with("http://"))
            .with_endpoint(endpoint);
    }
    let prefix = parsed.path().trim_matches('/');
    let path = if prefix.is_empty() {
        Path::from(object)
    } else {
        Path::from(format!("{prefix}/{object}"))
    };
    Ok((Arc::new(builder.build()?), path))
}

/// xorshift64 blocks: fast to generate, incompressible enough for a storage benchmark.
fn generate(file: &str, bytes: u64) -> Result<(), AnyError> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(file)?);
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut block = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for word in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n])?;
        left -= n as u64;
    }
    out.flush()?;
    Ok(())
}

async fn upload(
    url: &str,
    file: &str,
    part_bytes: usize,
    concurrency: usize,
) -> Result<(), AnyError> {
    let (store, path) = open_store(url)?;
    let size = std::fs::metadata(file)?.len();
    let started = Instant::now();
    let mut writer =
        BufWriter::with_capacity(store, path, part_bytes).with_max_concurrency(concurrency);
    let mut reader = ReaderStream::with_capacity(tokio::fs::File::open(file).await?, 1 << 20);
    while let Some(chunk) = reader.next().await {
        writer.put(chunk?).await?;
    }
    writer.shutdown().await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "raw_upload_mbps={:.1} raw_upload_s={secs:.2}",
        size as f64 / MB / secs
    );
    Ok(())
}

async fn download(url: &str, size: u64) -> Result<(), AnyError> {
    let (store, path) = open_store(url)?;
    let started = Instant::now();
    // The gateway's own GET-to-stream (a local file read 1 MiB at a time), so that the two
    // sides differ only by the HTTP hop.
    let mut body = strata_claimcheck::store::stream_get_result(store.get(&path).await?);
    let mut read = 0u64;
    while let Some(chunk) = body.next().await {
        read += chunk?.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    if read != size {
        return Err(format!("read back {read} bytes, expected {size}").into());
    }
    store.delete(&path).await?;
    println!(
        "raw_download_mbps={:.1} raw_download_s={secs:.2}",
        size as f64 / MB / secs
    );
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), AnyError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["generate", file, bytes] => generate(file, bytes.parse()?),
        ["upload", url, file, rest @ ..] => {
            let part_bytes = rest.first().map_or(Ok(8 << 20), |v| v.parse())?;
            let concurrency = rest.get(1).map_or(Ok(2), |v| v.parse())?;
            upload(url, file, part_bytes, concurrency).await
        }
        ["download", url, bytes] => download(url, bytes.parse()?).await,
        _ => Err(usage()),
    }
}
