//! The Rust client library: resolve claim tickets into verified byte streams, from the object
//! store directly or over HTTP, and call the upload APIs.
//!
//! [`VerifiedStream`] hashes every byte it yields; at the end of the payload it checks size and
//! SHA-256 against the ticket and yields an error instead of a clean end on mismatch, so a
//! consumer that reads to the end never silently accepts a corrupted payload.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{ClaimError, Result};
use crate::http::errors::error_from_body;
use crate::resumable::{NewUpload, PartInfo, UploadState, UploadStatus};
use crate::store::ClaimStore;
use crate::ticket::{ClaimId, ClaimReceipt, ClaimTicket, UploadId, parse_sha256_hex};
use crate::upload::ByteStream;

/// Resolves a consumed ticket record (headers and/or JSON value) into a [`ClaimTicket`].
pub fn resolve_ticket<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    value: &[u8],
) -> Result<ClaimTicket> {
    ClaimTicket::from_record(headers, value)
}

/// A payload stream that verifies size and SHA-256 as it is read (error at the end on mismatch).
pub struct VerifiedStream {
    inner: ByteStream,
    hasher: Sha256,
    received: u64,
    expected_size: u64,
    expected_sha256: [u8; 32],
    finished: bool,
}

impl VerifiedStream {
    pub fn new(inner: ByteStream, expected_size: u64, expected_sha256: [u8; 32]) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            received: 0,
            expected_size,
            expected_sha256,
            finished: false,
        }
    }

    fn for_ticket(inner: ByteStream, ticket: &ClaimTicket) -> Result<Self> {
        let sha = parse_sha256_hex(&ticket.sha256)
            .ok_or_else(|| ClaimError::InvalidTicket("sha256 is not 64 hex digits".into()))?;
        Ok(Self::new(inner, ticket.size, sha))
    }

    /// Bytes yielded so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// As a `tokio::io::AsyncRead`.
    pub fn into_async_read(self) -> impl tokio::io::AsyncRead + Send + Unpin {
        tokio_util::io::StreamReader::new(self.map_err(std::io::Error::other))
    }
}

impl Stream for VerifiedStream {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        match self.inner.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.received += chunk.len() as u64;
                if self.received > self.expected_size {
                    self.finished = true;
                    let (expected, actual) = (self.expected_size, self.received);
                    return Poll::Ready(Some(Err(ClaimError::SizeMismatch { expected, actual })));
                }
                self.hasher.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.finished = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                self.finished = true;
                if self.received != self.expected_size {
                    let (expected, actual) = (self.expected_size, self.received);
                    return Poll::Ready(Some(Err(ClaimError::SizeMismatch { expected, actual })));
                }
                let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
                if digest != self.expected_sha256 {
                    return Poll::Ready(Some(Err(ClaimError::DigestMismatch {
                        expected: hex::encode(self.expected_sha256),
                        actual: hex::encode(digest),
                    })));
                }
                Poll::Ready(None)
            }
        }
    }
}

/// Opens a ticket's payload straight from the object store.
pub async fn open_from_store(store: &ClaimStore, ticket: &ClaimTicket) -> Result<VerifiedStream> {
    ticket.validate()?;
    let inner: ByteStream = if ticket.size == 0 {
        futures::stream::empty().boxed()
    } else {
        store.read_payload(ticket.id, None).await?
    };
    VerifiedStream::for_ticket(inner, ticket)
}

/// Metadata answered by `HEAD /v1/claims/{id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimHead {
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
}

/// Options of a reference-mode upload over HTTP.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UploadOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(skip)]
    pub content_type: Option<String>,
    #[serde(skip)]
    pub size: Option<u64>,
    #[serde(skip)]
    pub sha256: Option<String>,
    #[serde(skip)]
    pub headers: Vec<(String, String)>,
}

/// HTTP client of the gateway.
#[derive(Debug, Clone)]
pub struct HttpClaimClient {
    base: url::Url,
    http: reqwest::Client,
}

async fn check(response: reqwest::Response) -> Result<reqwest::Response> {
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let body = response.bytes().await.unwrap_or_default();
    Err(error_from_body(status, &body))
}

impl HttpClaimClient {
    /// `base_url` is the gateway's root, e.g. `http://127.0.0.1:8080`.
    pub fn new(base_url: &str) -> Result<Self> {
        let base = url::Url::parse(base_url).map_err(|e| {
            ClaimError::BadRequest(format!("invalid gateway URL {base_url:?}: {e}"))
        })?;
        Ok(Self {
            base,
            http: reqwest::Client::new(),
        })
    }

    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    fn url(&self, path: &str) -> Result<url::Url> {
        self.base
            .join(path)
            .map_err(|e| ClaimError::BadRequest(format!("bad URL path {path}: {e}")))
    }

    /// Streams and verifies the payload of `ticket` (uses `ticket.uri` when it is absolute).
    pub async fn open(&self, ticket: &ClaimTicket) -> Result<VerifiedStream> {
        ticket.validate()?;
        let url = match url::Url::parse(&ticket.uri) {
            Ok(absolute) if absolute.scheme().starts_with("http") => absolute,
            _ => self.url(&format!("/v1/claims/{}", ticket.id))?,
        };
        let response = check(self.http.get(url).send().await?).await?;
        let inner: ByteStream = response.bytes_stream().map_err(ClaimError::from).boxed();
        VerifiedStream::for_ticket(inner, ticket)
    }

    /// Metadata of a claim.
    pub async fn head(&self, id: ClaimId) -> Result<ClaimHead> {
        let response = self
            .http
            .head(self.url(&format!("/v1/claims/{id}"))?)
            .send()
            .await?;
        if !response.status().is_success() {
            return Err(ClaimError::Remote {
                status: response.status().as_u16(),
                code: "head".into(),
                message: format!("HEAD claim {id}"),
            });
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string()
        };
        Ok(ClaimHead {
            size: header("content-length").parse().unwrap_or(0),
            sha256: header("x-strata-sha256"),
            content_type: header("content-type"),
        })
    }

    /// Streams and verifies a claim by id (metadata from `HEAD`).
    pub async fn get(&self, id: ClaimId) -> Result<(ClaimHead, VerifiedStream)> {
        let head = self.head(id).await?;
        let sha = parse_sha256_hex(&head.sha256)
            .ok_or_else(|| ClaimError::Internal("gateway sent no valid X-Strata-Sha256".into()))?;
        let response = check(
            self.http
                .get(self.url(&format!("/v1/claims/{id}"))?)
                .send()
                .await?,
        )
        .await?;
        let inner: ByteStream = response.bytes_stream().map_err(ClaimError::from).boxed();
        let size = head.size;
        Ok((head, VerifiedStream::new(inner, size, sha)))
    }

    /// Reference-mode upload of a stream.
    pub async fn upload(
        &self,
        topic: &str,
        body: ByteStream,
        options: &UploadOptions,
    ) -> Result<ClaimReceipt> {
        let mut request = self
            .http
            .post(self.url(&format!("/v1/topics/{topic}/claims"))?)
            .query(options)
            .header(
                "content-type",
                options
                    .content_type
                    .as_deref()
                    .unwrap_or("application/octet-stream"),
            );
        if let Some(size) = options.size {
            request = request.header("x-strata-size", size);
        }
        if let Some(sha) = &options.sha256 {
            request = request.header("x-strata-sha256", sha.as_str());
        }
        for (name, value) in &options.headers {
            request = request.header(format!("x-strata-header-{name}"), value.as_str());
        }
        let response = check(
            request
                .body(reqwest::Body::wrap_stream(body))
                .send()
                .await?,
        )
        .await?;
        Ok(response.json().await?)
    }

    pub async fn create_upload(&self, request: &NewUpload) -> Result<UploadState> {
        let response = check(
            self.http
                .post(self.url("/v1/uploads")?)
                .json(request)
                .send()
                .await?,
        )
        .await?;
        Ok(response.json().await?)
    }

    pub async fn upload_status(&self, id: UploadId) -> Result<UploadStatus> {
        let response = check(
            self.http
                .get(self.url(&format!("/v1/uploads/{id}"))?)
                .send()
                .await?,
        )
        .await?;
        Ok(response.json().await?)
    }

    /// Uploads one part (retry-safe: sending part `n` again replaces it).
    pub async fn put_part(
        &self,
        id: UploadId,
        part: u32,
        body: reqwest::Body,
        size: u64,
        sha256: &str,
    ) -> Result<PartInfo> {
        let response = check(
            self.http
                .put(self.url(&format!("/v1/uploads/{id}/parts/{part}"))?)
                .header("content-length", size)
                .header("x-strata-sha256", sha256)
                .body(body)
                .send()
                .await?,
        )
        .await?;
        Ok(response.json().await?)
    }

    pub async fn complete_upload(&self, id: UploadId) -> Result<ClaimReceipt> {
        let response = check(
            self.http
                .post(self.url(&format!("/v1/uploads/{id}/complete"))?)
                .send()
                .await?,
        )
        .await?;
        Ok(response.json().await?)
    }

    pub async fn abort_upload(&self, id: UploadId) -> Result<()> {
        check(
            self.http
                .delete(self.url(&format!("/v1/uploads/{id}"))?)
                .send()
                .await?,
        )
        .await?;
        Ok(())
    }
}
