//! The claim store: payload objects, their metadata sidecars and resumable-upload staging, over
//! any `object_store::ObjectStore` under a prefix.
//!
//! [`ObjectKey`] owns every object key format (`format` / `parse` round-trip):
//!
//! ```text
//! <prefix>/claims/<claim id>/payload          the payload bytes
//! <prefix>/claims/<claim id>/meta.json        ClaimMeta sidecar (size, sha256, content type, ...)
//! <prefix>/uploads/<upload id>/state.json     resumable upload session
//! <prefix>/uploads/<upload id>/parts/<n>      staged part n (10 digits, zero padded)
//! <prefix>/uploads/<upload id>/receipt.json   the receipt of a completed upload (idempotent retry)
//! ```

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResult, GetResultPayload, ObjectMeta, ObjectStore, ObjectStoreExt,
    PutPayload,
};
use serde::{Deserialize, Serialize};

use crate::error::{ClaimError, Result};
use crate::ticket::{ClaimId, ClaimTicket, RecordPosition, TICKET_VERSION, UploadId};

/// Every object the gateway writes, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKey {
    ClaimPayload(ClaimId),
    ClaimMeta(ClaimId),
    UploadState(UploadId),
    UploadPart(UploadId, u32),
    UploadReceipt(UploadId),
}

const CLAIMS: &str = "claims";
const UPLOADS: &str = "uploads";

impl ObjectKey {
    /// The object path of this key under `prefix`.
    pub fn format(&self, prefix: &Path) -> Path {
        match self {
            ObjectKey::ClaimPayload(id) => prefix
                .clone()
                .join(CLAIMS)
                .join(id.to_string())
                .join("payload"),
            ObjectKey::ClaimMeta(id) => prefix
                .clone()
                .join(CLAIMS)
                .join(id.to_string())
                .join("meta.json"),
            ObjectKey::UploadState(id) => prefix
                .clone()
                .join(UPLOADS)
                .join(id.to_string())
                .join("state.json"),
            ObjectKey::UploadPart(id, n) => prefix
                .clone()
                .join(UPLOADS)
                .join(id.to_string())
                .join("parts")
                .join(format!("{n:010}")),
            ObjectKey::UploadReceipt(id) => prefix
                .clone()
                .join(UPLOADS)
                .join(id.to_string())
                .join("receipt.json"),
        }
    }

    /// The key of `path`, `None` for paths outside `prefix` or not written by the gateway.
    pub fn parse(prefix: &Path, path: &Path) -> Option<ObjectKey> {
        let parts: Vec<String> = path
            .prefix_match(prefix)?
            .map(|p| p.as_ref().to_string())
            .collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        match parts.as_slice() {
            [CLAIMS, id, "payload"] => Some(ObjectKey::ClaimPayload(id.parse().ok()?)),
            [CLAIMS, id, "meta.json"] => Some(ObjectKey::ClaimMeta(id.parse().ok()?)),
            [UPLOADS, id, "state.json"] => Some(ObjectKey::UploadState(id.parse().ok()?)),
            [UPLOADS, id, "receipt.json"] => Some(ObjectKey::UploadReceipt(id.parse().ok()?)),
            [UPLOADS, id, "parts", n] if n.len() == 10 && n.bytes().all(|b| b.is_ascii_digit()) => {
                Some(ObjectKey::UploadPart(id.parse().ok()?, n.parse().ok()?))
            }
            _ => None,
        }
    }
}

/// The metadata sidecar stored next to a payload (`meta.json`), read by `HEAD`/`GET` and the GC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimMeta {
    pub version: u32,
    pub id: ClaimId,
    pub topic: String,
    pub uri: String,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub created_at: String,
    /// Where the ticket landed; `None` until the ticket append succeeded.
    pub ticket_position: Option<RecordPosition>,
}

impl ClaimMeta {
    pub fn ticket(&self) -> ClaimTicket {
        ClaimTicket {
            version: TICKET_VERSION,
            id: self.id,
            topic: self.topic.clone(),
            uri: self.uri.clone(),
            size: self.size,
            sha256: self.sha256.clone(),
            content_type: self.content_type.clone(),
            created_at: self.created_at.clone(),
        }
    }

    pub fn from_ticket(ticket: &ClaimTicket, position: Option<RecordPosition>) -> Self {
        Self {
            version: ticket.version,
            id: ticket.id,
            topic: ticket.topic.clone(),
            uri: ticket.uri.clone(),
            size: ticket.size,
            sha256: ticket.sha256.clone(),
            content_type: ticket.content_type.clone(),
            created_at: ticket.created_at.clone(),
            ticket_position: position,
        }
    }
}

/// Payloads, sidecars and upload staging in one object store under one prefix.
#[derive(Debug, Clone)]
pub struct ClaimStore {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

impl ClaimStore {
    /// `prefix` may be empty (`""`): then keys start at `claims/` and `uploads/`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self> {
        let prefix = Path::parse(prefix.trim_matches('/'))
            .map_err(|e| ClaimError::BadRequest(format!("invalid claim store prefix: {e}")))?;
        Ok(Self { store, prefix })
    }

    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    pub fn prefix(&self) -> &Path {
        &self.prefix
    }

    pub fn path(&self, key: ObjectKey) -> Path {
        key.format(&self.prefix)
    }

    pub async fn put_json<T: Serialize>(&self, key: ObjectKey, value: &T) -> Result<()> {
        let body = serde_json::to_vec(value).map_err(|e| ClaimError::Internal(e.to_string()))?;
        self.store
            .put(&self.path(key), PutPayload::from(body))
            .await?;
        Ok(())
    }

    /// Reads a small JSON object; `Ok(None)` when it does not exist.
    pub async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        key: ObjectKey,
    ) -> Result<Option<T>> {
        match self.store.get(&self.path(key)).await {
            Ok(got) => {
                let bytes = got.bytes().await?;
                let value = serde_json::from_slice(&bytes).map_err(|e| {
                    ClaimError::Internal(format!("corrupt {}: {e}", self.path(key)))
                })?;
                Ok(Some(value))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn claim_meta(&self, id: ClaimId) -> Result<Option<ClaimMeta>> {
        self.get_json(ObjectKey::ClaimMeta(id)).await
    }

    /// Deletes one object, treating "already gone" as success.
    pub async fn delete_quietly(&self, key: ObjectKey) -> Result<()> {
        match self.store.delete(&self.path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes a claim's payload, then its sidecar (so a sidecar never outlives its payload's
    /// deletion attempt unnoticed: a lone sidecar is still found and collected by the GC).
    pub async fn delete_claim(&self, id: ClaimId) -> Result<()> {
        self.delete_quietly(ObjectKey::ClaimPayload(id)).await?;
        self.delete_quietly(ObjectKey::ClaimMeta(id)).await
    }

    /// Streams a payload, optionally a byte range of it.
    pub async fn read_payload(
        &self,
        id: ClaimId,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        self.read_object(ObjectKey::ClaimPayload(id), range).await
    }

    pub async fn read_object(
        &self,
        key: ObjectKey,
        range: Option<Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..Default::default()
        };
        let got = self.store.get_opts(&self.path(key), options).await?;
        Ok(stream_get_result(got))
    }

    /// Lists every gateway object under `area` (`"claims"` or `"uploads"`) with its parsed key.
    pub fn list_area(&self, area: &str) -> BoxStream<'static, Result<(ObjectKey, ObjectMeta)>> {
        self.list_under(self.prefix.clone().join(area))
    }

    /// Every object of this store under `dir` (a key prefix below the store's prefix).
    fn list_under(&self, dir: Path) -> BoxStream<'static, Result<(ObjectKey, ObjectMeta)>> {
        let prefix = self.prefix.clone();
        self.store
            .list(Some(&dir))
            .map_err(ClaimError::from)
            .try_filter_map(move |meta| {
                let key = ObjectKey::parse(&prefix, &meta.location);
                futures::future::ready(Ok(key.map(|k| (k, meta))))
            })
            .boxed()
    }

    pub fn list_claim_objects(&self) -> BoxStream<'static, Result<(ObjectKey, ObjectMeta)>> {
        self.list_area(CLAIMS)
    }

    pub fn list_upload_objects(&self) -> BoxStream<'static, Result<(ObjectKey, ObjectMeta)>> {
        self.list_area(UPLOADS)
    }

    /// The objects of one upload (state, parts, receipt): one prefix, not every upload's.
    pub fn list_one_upload(
        &self,
        id: UploadId,
    ) -> BoxStream<'static, Result<(ObjectKey, ObjectMeta)>> {
        self.list_under(self.prefix.clone().join(UPLOADS).join(id.to_string()))
    }
}

/// Read size for objects the store hands over as a local file.
const LOCAL_READ_BYTES: usize = 1 << 20;

/// The bytes of a GET, as a stream. `GetResult::into_stream` reads a local file (the
/// `file://` backend) 8 KiB at a time, each read a blocking task, and each chunk then becomes
/// one HTTP body frame: on a 2-core machine that capped downloads at about half of what the
/// store reads (bench/claimcheck.sh). A local file is read here 1 MiB at a time instead, and
/// [`LOCAL_READ_AHEAD`] reads ahead of the consumer so that the disk reads overlap the socket
/// writes; other backends' streams are passed through as they come.
pub fn stream_get_result(got: GetResult) -> BoxStream<'static, Result<Bytes>> {
    match got.payload {
        GetResultPayload::File(file, _) => {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let range = got.range;
            let reader = async move {
                let mut file = tokio::fs::File::from_std(file);
                file.seek(std::io::SeekFrom::Start(range.start)).await?;
                Ok::<_, std::io::Error>(tokio_util::io::ReaderStream::with_capacity(
                    file.take(range.end - range.start),
                    LOCAL_READ_BYTES,
                ))
            };
            let stream = futures::stream::once(reader)
                .try_flatten()
                .map_err(ClaimError::from)
                .boxed();
            read_ahead(stream, LOCAL_READ_AHEAD)
        }
        GetResultPayload::Stream(stream) => stream.map_err(ClaimError::from).boxed(),
    }
}

/// Local-file chunks read ahead of the consumer (memory: this many times [`LOCAL_READ_BYTES`]).
const LOCAL_READ_AHEAD: usize = 2;

/// Polls `stream` on a task of its own, up to `chunks` items ahead of the returned stream. The
/// task stops when the returned stream is dropped.
fn read_ahead(
    mut stream: BoxStream<'static, Result<Bytes>>,
    chunks: usize,
) -> BoxStream<'static, Result<Bytes>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(chunks);
    tokio::spawn(async move {
        while let Some(item) = stream.next().await {
            let failed = item.is_err();
            if sender.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_file_streams_back_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let content: Vec<u8> = (0..(3 * LOCAL_READ_BYTES + 12_345))
            .map(|i| (i % 253) as u8)
            .collect();
        let path = Path::from("payload");
        store.put(&path, content.clone().into()).await.unwrap();
        for range in [
            0..content.len() as u64,
            1_000..(2 * LOCAL_READ_BYTES as u64 + 7),
        ] {
            let got = store
                .get_opts(
                    &path,
                    object_store::GetOptions {
                        range: Some(range.clone().into()),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            let chunks: Vec<Bytes> = stream_get_result(got).try_collect().await.unwrap();
            assert!(chunks.iter().all(|c| c.len() <= LOCAL_READ_BYTES));
            assert_eq!(
                chunks.concat(),
                content[range.start as usize..range.end as usize]
            );
        }
    }

    #[test]
    fn keys_round_trip() {
        let c = ClaimId::random();
        let u = UploadId::random();
        for prefix in [Path::from(""), Path::from("strata"), Path::from("a/b")] {
            for key in [
                ObjectKey::ClaimPayload(c),
                ObjectKey::ClaimMeta(c),
                ObjectKey::UploadState(u),
                ObjectKey::UploadPart(u, 0),
                ObjectKey::UploadPart(u, 4_000_000_000),
                ObjectKey::UploadReceipt(u),
            ] {
                let path = key.format(&prefix);
                assert_eq!(ObjectKey::parse(&prefix, &path), Some(key), "{path}");
            }
        }
        let p = Path::from("strata");
        assert_eq!(
            ObjectKey::format(&ObjectKey::ClaimPayload(c), &p).to_string(),
            format!("strata/claims/{c}/payload")
        );
        assert_eq!(
            ObjectKey::parse(&p, &Path::from("other/claims/x/payload")),
            None
        );
        assert_eq!(
            ObjectKey::parse(&p, &Path::from("strata/claims/zz/payload")),
            None
        );
        assert_eq!(
            ObjectKey::parse(&p, &Path::from(format!("strata/claims/{c}/extra"))),
            None
        );
    }
}
