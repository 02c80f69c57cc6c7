//! Reference mode: stream a payload into the object store, then append its claim ticket.
//!
//! ```text
//!  body chunks ──► SHA-256 + byte count ──► buffer < part size ──(EOF)──► single PUT
//!                                     └──(part size reached)──► multipart upload, at most
//!                                         `multipart.concurrency` parts in flight
//!  EOF ──► check Content-Length / expected SHA-256 ──mismatch──► abort multipart (nothing visible)
//!      └─ok─► complete ──► meta.json (no position) ──► TicketSink::append ──► meta.json (position)
//!                                                          └─fails─► delete payload + meta
//! ```
//!
//! Invariants:
//! * Memory per upload is bounded by `(multipart.concurrency + 1) * multipart.part.bytes`,
//!   whatever the payload size: no path collects a whole body.
//! * A ticket is appended only after the payload is durably stored (multipart completed) and
//!   verified against every expectation the client declared. Any failure before the append
//!   (body error or client disconnect, size or digest mismatch, limit exceeded) aborts the
//!   multipart upload or deletes the object: no ticket, no object.
//! * The append happens within `gc.grace / 2` of the payload being stored, otherwise the upload
//!   fails and the payload is deleted; the GC only deletes unreferenced payloads older than
//!   `gc.grace`, so it can never delete a payload whose ticket is being appended.
//! * Cancellation: the HTTP layer runs this on a detached task, so a dropped request future never
//!   leaves a multipart upload half-done; a client that disconnects makes the body stream fail,
//!   which aborts.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use tracing::{debug, info, warn};

use crate::error::{ClaimError, Result, SinkError};
use crate::service::ClaimCheckService;
use crate::store::{ClaimMeta, ObjectKey};
use crate::ticket::{
    ClaimId, ClaimReceipt, ClaimTicket, TICKET_VERSION, now_rfc3339, validate_topic,
};

/// A stream of body bytes; an `Err` item means the producer (client) failed or went away.
pub type ByteStream = BoxStream<'static, Result<Bytes>>;

/// What the client declared about the body; checked before anything becomes visible.
#[derive(Debug, Clone, Default)]
pub struct BodyExpectations {
    pub size: Option<u64>,
    pub sha256: Option<[u8; 32]>,
    pub max_bytes: u64,
}

/// Size and digest of a stored object, computed while streaming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredObject {
    pub size: u64,
    pub sha256: [u8; 32],
}

impl StoredObject {
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// Counts and hashes a body, enforcing the size limit and the declared size as bytes arrive.
#[derive(Default)]
pub struct BodyVerifier {
    hasher: Sha256,
    size: u64,
}

impl BodyVerifier {
    pub fn update(&mut self, chunk: &[u8], expect: &BodyExpectations) -> Result<()> {
        self.size += chunk.len() as u64;
        if self.size > expect.max_bytes {
            return Err(ClaimError::PayloadTooLarge {
                limit: expect.max_bytes,
            });
        }
        if let Some(expected) = expect.size
            && self.size > expected
        {
            return Err(ClaimError::SizeMismatch {
                expected,
                actual: self.size,
            });
        }
        self.hasher.update(chunk);
        Ok(())
    }

    /// Final check at end of body.
    pub fn finish(self, expect: &BodyExpectations) -> Result<StoredObject> {
        let sha256: [u8; 32] = self.hasher.finalize().into();
        if let Some(expected) = expect.size
            && expected != self.size
        {
            return Err(ClaimError::SizeMismatch {
                expected,
                actual: self.size,
            });
        }
        if let Some(expected) = expect.sha256
            && expected != sha256
        {
            return Err(ClaimError::DigestMismatch {
                expected: hex::encode(expected),
                actual: hex::encode(sha256),
            });
        }
        Ok(StoredObject {
            size: self.size,
            sha256,
        })
    }
}

/// Streams `body` to `location`: one PUT below `part_bytes`, a multipart upload above it.
/// On any error the multipart upload is aborted and nothing is left at `location`.
pub async fn write_object_streaming(
    store: &Arc<dyn ObjectStore>,
    location: &Path,
    mut body: ByteStream,
    part_bytes: usize,
    concurrency: usize,
    expect: &BodyExpectations,
) -> Result<StoredObject> {
    let mut verifier = BodyVerifier::default();
    let mut small: Vec<Bytes> = Vec::new();
    let mut small_len = 0usize;
    let mut multipart: Option<WriteMultipart> = None;

    let outcome: Result<()> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            verifier.update(&chunk, expect)?;
            match multipart.as_mut() {
                Some(writer) => {
                    writer.wait_for_capacity(concurrency).await?;
                    writer.put(chunk);
                }
                None => {
                    small_len += chunk.len();
                    small.push(chunk);
                    if small_len >= part_bytes {
                        debug!(%location, "payload exceeds one part: switching to multipart upload");
                        let upload = store.put_multipart(location).await?;
                        let mut writer = WriteMultipart::new_with_chunk_size(upload, part_bytes);
                        for buffered in small.drain(..) {
                            writer.put(buffered);
                        }
                        multipart = Some(writer);
                    }
                }
            }
        }
        Ok(())
    }
    .await;

    let verified = outcome.and_then(|()| std::mem::take(&mut verifier).finish(expect));
    match (verified, multipart) {
        (Err(e), Some(writer)) => {
            if let Err(abort_err) = writer.abort().await {
                warn!(%location, error = %abort_err, "aborting multipart upload failed");
            }
            Err(e)
        }
        (Err(e), None) => Err(e),
        (Ok(stored), Some(writer)) => {
            writer.finish().await?;
            Ok(stored)
        }
        (Ok(stored), None) => {
            store.put(location, PutPayload::from_iter(small)).await?;
            Ok(stored)
        }
    }
}

/// Everything about a claim upload except its body.
#[derive(Debug, Clone, Default)]
pub struct ClaimRequest {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    /// Extra record headers (names must not start with `claimcheck.`).
    pub headers: Vec<(String, Bytes)>,
    pub content_type: String,
    pub expected_size: Option<u64>,
    pub expected_sha256: Option<[u8; 32]>,
}

impl ClaimRequest {
    /// Rejects what can be rejected before reading the body.
    pub fn validate(&self, svc: &ClaimCheckService) -> Result<()> {
        validate_topic(&self.topic)?;
        let partitions = svc
            .sink()
            .partition_count(&self.topic)
            .ok_or_else(|| ClaimError::NotFound(format!("topic {:?}", self.topic)))?;
        if let Some(p) = self.partition
            && (p < 0 || p >= partitions)
        {
            return Err(ClaimError::BadRequest(format!(
                "partition {p} out of range: topic {:?} has {partitions}",
                self.topic
            )));
        }
        svc.sink().admit(&self.topic, self.partition)?;
        if let Some(size) = self.expected_size
            && size > svc.config().max_upload_bytes
        {
            return Err(ClaimError::PayloadTooLarge {
                limit: svc.config().max_upload_bytes,
            });
        }
        if let Some((name, _)) = self
            .headers
            .iter()
            .find(|(n, _)| n.starts_with("claimcheck."))
        {
            return Err(ClaimError::BadRequest(format!(
                "header {name:?} is reserved for the ticket contract"
            )));
        }
        Ok(())
    }

    pub fn expectations(&self, max_bytes: u64) -> BodyExpectations {
        BodyExpectations {
            size: self.expected_size,
            sha256: self.expected_sha256,
            max_bytes,
        }
    }
}

/// Reference mode end to end: store the body, then append the ticket. See the module docs.
pub async fn store_claim(
    svc: &ClaimCheckService,
    req: ClaimRequest,
    body: ByteStream,
) -> Result<ClaimReceipt> {
    req.validate(svc)?;
    let id = ClaimId::random();
    let _publishing = svc.begin_publishing(id);
    let config = svc.config();
    let payload_path = svc.store().path(ObjectKey::ClaimPayload(id));
    let stored = write_object_streaming(
        svc.store().object_store(),
        &payload_path,
        body,
        config.multipart_part_bytes,
        config.multipart_concurrency,
        &req.expectations(config.max_upload_bytes),
    )
    .await?;
    publish_stored_claim(svc, id, &req, stored, Instant::now()).await
}

/// Second half of every reference-mode upload (direct or resumable): the payload is stored at
/// `claims/<id>/payload`; write the sidecar and append the ticket, or clean up.
pub(crate) async fn publish_stored_claim(
    svc: &ClaimCheckService,
    id: ClaimId,
    req: &ClaimRequest,
    stored: StoredObject,
    stored_at: Instant,
) -> Result<ClaimReceipt> {
    let ticket = ClaimTicket {
        version: TICKET_VERSION,
        id,
        topic: req.topic.clone(),
        uri: svc.config().claim_uri(&id),
        size: stored.size,
        sha256: stored.sha256_hex(),
        content_type: req.content_type.clone(),
        created_at: now_rfc3339(),
    };
    let result = append_ticket(svc, &ticket, req, stored_at).await;
    match result {
        Ok(position) => {
            let meta = ClaimMeta::from_ticket(&ticket, Some(position));
            if let Err(e) = svc.store().put_json(ObjectKey::ClaimMeta(id), &meta).await {
                // The ticket is live; a sidecar without position is still correct metadata.
                warn!(claim = %id, error = %e, "recording ticket position in meta.json failed");
            }
            info!(claim = %id, topic = %ticket.topic, partition = position.partition,
                  offset = position.offset, size = ticket.size, "claim stored");
            Ok(ClaimReceipt {
                ticket,
                partition: position.partition,
                offset: position.offset,
            })
        }
        // The ticket may be in the log: the payload stays (the broker keeps it live).
        Err(e @ ClaimError::Sink(SinkError::NotDurable(_))) => {
            warn!(claim = %id, error = %e, "ticket written but not made durable; payload kept");
            Err(e)
        }
        Err(e) => {
            warn!(claim = %id, error = %e, "claim not published; deleting payload");
            if let Err(cleanup) = svc.store().delete_claim(id).await {
                warn!(claim = %id, error = %cleanup, "deleting unpublished payload failed; the GC will");
            }
            Err(e)
        }
    }
}

async fn append_ticket(
    svc: &ClaimCheckService,
    ticket: &ClaimTicket,
    req: &ClaimRequest,
    stored_at: Instant,
) -> Result<crate::RecordPosition> {
    svc.store()
        .put_json(
            ObjectKey::ClaimMeta(ticket.id),
            &ClaimMeta::from_ticket(ticket, None),
        )
        .await?;
    if stored_at.elapsed() > svc.config().gc_grace / 2 {
        return Err(ClaimError::Internal(
            "payload stored too long ago to append its ticket safely (gc.grace / 2)".into(),
        ));
    }
    let mut headers = req.headers.clone();
    headers.extend(ticket.to_headers());
    Ok(svc
        .sink()
        .append(
            &ticket.topic,
            req.partition,
            req.key.clone(),
            ticket.to_json(),
            headers,
        )
        .await?)
}
