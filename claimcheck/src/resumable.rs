//! Resumable uploads: a payload sent as numbered parts over several requests, possibly with
//! retries and reconnects, then turned into a claim in one step.
//!
//! ```text
//!   POST /v1/uploads ──► Open ──PUT parts/{n} (any order, retry = overwrite)──► Open
//!                         │                                                     │
//!                         ├── DELETE ──► (all objects removed)                  │
//!                         ├── older than upload.expiry ──► removed by the GC    │
//!                         └──────────── POST complete ──► Completing ──► Completed (receipt.json)
//! ```
//!
//! * Parts are staged as objects `uploads/<id>/parts/<n>`, each streamed with bounded memory
//!   (`PUT` of part n again replaces it: retries are safe). Numbering is 1-based and must be
//!   contiguous at completion.
//! * Complete streams the parts in order into `claims/<claim id>/payload` (again bounded memory,
//!   SHA-256 recomputed over the whole payload and checked against the declared `sha256`/`size`),
//!   then appends the ticket exactly like a direct upload ([`crate::upload`]).
//! * Complete is idempotent: the receipt is saved as `receipt.json` before the parts and state
//!   are deleted, and a repeated complete answers it again. A per-process guard rejects a second
//!   concurrent complete of the same upload with `409`.
//! * Expiry is measured from `state.json`'s creation; the lifecycle GC deletes every object of an
//!   expired upload ([`crate::lifecycle`]).

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{ClaimError, Result};
use crate::service::ClaimCheckService;
use crate::store::ObjectKey;
use crate::ticket::{ClaimId, ClaimReceipt, UploadId, now_rfc3339, parse_sha256_hex};
use crate::upload::{
    BodyExpectations, ByteStream, ClaimRequest, StoredObject, publish_stored_claim,
    write_object_streaming,
};

/// Highest part number (as S3).
pub const MAX_PART_NUMBER: u32 = 10_000;

/// `POST /v1/uploads` request body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewUpload {
    pub topic: String,
    #[serde(default)]
    pub partition: Option<i32>,
    #[serde(default)]
    pub key: Option<String>,
    /// Extra record headers for the ticket record.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub content_type: Option<String>,
    /// Expected total size, checked at completion.
    #[serde(default)]
    pub size: Option<u64>,
    /// Expected SHA-256 (hex) of the whole payload, checked at completion.
    #[serde(default)]
    pub sha256: Option<String>,
}

/// `uploads/<id>/state.json`, also the answer to `POST /v1/uploads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    pub version: u32,
    pub upload_id: UploadId,
    #[serde(flatten)]
    pub request: NewUpload,
    pub created_at: String,
    pub expires_at: String,
    pub max_part_bytes: u64,
    /// The id the claim gets when the upload completes, fixed at creation so that a complete
    /// repeated after a crash (or a lost answer) finds the ticket already appended. Absent in
    /// sessions opened by earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_id: Option<ClaimId>,
}

/// A staged part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartInfo {
    pub part: u32,
    pub size: u64,
    /// Present in the answer to `PUT`; not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// `GET /v1/uploads/{id}`: what is there, to resume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadStatus {
    pub upload_id: UploadId,
    pub state: Option<UploadState>,
    pub parts: Vec<PartInfo>,
    pub receipt: Option<ClaimReceipt>,
}

impl UploadState {
    fn claim_request(&self) -> Result<ClaimRequest> {
        let r = &self.request;
        Ok(ClaimRequest {
            topic: r.topic.clone(),
            partition: r.partition,
            key: r.key.clone().map(Bytes::from),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), Bytes::from(v.clone())))
                .collect(),
            content_type: r
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
            expected_size: r.size,
            expected_sha256: match &r.sha256 {
                Some(hex) => {
                    Some(parse_sha256_hex(hex).ok_or_else(|| {
                        ClaimError::BadRequest("sha256 is not 64 hex digits".into())
                    })?)
                }
                None => None,
            },
        })
    }
}

/// Opens an upload session.
pub async fn create_upload(svc: &ClaimCheckService, request: NewUpload) -> Result<UploadState> {
    let state = UploadState {
        version: 1,
        upload_id: UploadId::random(),
        request,
        created_at: now_rfc3339(),
        expires_at: humantime::format_rfc3339_millis(
            SystemTime::now() + svc.config().upload_expiry,
        )
        .to_string(),
        max_part_bytes: svc.config().max_part_bytes,
        claim_id: Some(ClaimId::random()),
    };
    state.claim_request()?.validate(svc)?;
    svc.store()
        .put_json(ObjectKey::UploadState(state.upload_id), &state)
        .await?;
    info!(upload = %state.upload_id, topic = %state.request.topic, "resumable upload opened");
    Ok(state)
}

async fn open_state(svc: &ClaimCheckService, id: UploadId) -> Result<UploadState> {
    svc.store()
        .get_json(ObjectKey::UploadState(id))
        .await?
        .ok_or_else(|| ClaimError::NotFound(format!("upload {id}")))
}

/// Stores part `part` (replacing an earlier attempt).
pub async fn put_part(
    svc: &ClaimCheckService,
    id: UploadId,
    part: u32,
    body: ByteStream,
    expected_size: Option<u64>,
    expected_sha256: Option<[u8; 32]>,
) -> Result<PartInfo> {
    if !(1..=MAX_PART_NUMBER).contains(&part) {
        return Err(ClaimError::BadRequest(format!(
            "part number must be 1..={MAX_PART_NUMBER}"
        )));
    }
    // Before the checks below: a complete cannot start (and list the parts) from here on.
    let _writing = svc.begin_part(id)?;
    if svc
        .store()
        .get_json::<ClaimReceipt>(ObjectKey::UploadReceipt(id))
        .await?
        .is_some()
    {
        return Err(ClaimError::Conflict(format!(
            "upload {id} is already completed"
        )));
    }
    open_state(svc, id).await?;
    let config = svc.config();
    let expect = BodyExpectations {
        size: expected_size,
        sha256: expected_sha256,
        max_bytes: config.max_part_bytes,
    };
    let stored = write_object_streaming(
        svc.store().object_store(),
        &svc.store().path(ObjectKey::UploadPart(id, part)),
        body,
        config.multipart_part_bytes,
        config.multipart_concurrency,
        &expect,
    )
    .await?;
    Ok(PartInfo {
        part,
        size: stored.size,
        sha256: Some(stored.sha256_hex()),
    })
}

async fn list_parts(svc: &ClaimCheckService, id: UploadId) -> Result<Vec<PartInfo>> {
    let mut parts: Vec<PartInfo> = svc
        .store()
        .list_one_upload(id)
        .try_filter_map(|(key, meta)| async move {
            Ok(match key {
                ObjectKey::UploadPart(upload, part) if upload == id => Some(PartInfo {
                    part,
                    size: meta.size,
                    sha256: None,
                }),
                _ => None,
            })
        })
        .try_collect()
        .await?;
    parts.sort_by_key(|p| p.part);
    Ok(parts)
}

/// State, staged parts and receipt of an upload.
pub async fn upload_status(svc: &ClaimCheckService, id: UploadId) -> Result<UploadStatus> {
    let state: Option<UploadState> = svc.store().get_json(ObjectKey::UploadState(id)).await?;
    let receipt: Option<ClaimReceipt> = svc.store().get_json(ObjectKey::UploadReceipt(id)).await?;
    if state.is_none() && receipt.is_none() {
        return Err(ClaimError::NotFound(format!("upload {id}")));
    }
    let parts = list_parts(svc, id).await?;
    Ok(UploadStatus {
        upload_id: id,
        state,
        parts,
        receipt,
    })
}

/// Turns the staged parts into a claim; returns the receipt and whether this call created it
/// (`false`: an earlier complete did).
pub async fn complete_upload(
    svc: &ClaimCheckService,
    id: UploadId,
) -> Result<(ClaimReceipt, bool)> {
    let _completing = svc.begin_completing(id)?;
    if let Some(receipt) = svc
        .store()
        .get_json::<ClaimReceipt>(ObjectKey::UploadReceipt(id))
        .await?
    {
        return Ok((receipt, false));
    }
    let state = open_state(svc, id).await?;
    let claim = state.claim_id.unwrap_or_else(ClaimId::random);
    if let Some(receipt) = appended_receipt(svc, claim).await? {
        // An earlier complete appended the ticket and then died (or lost its answer).
        info!(upload = %id, claim = %claim, "upload already published; answering with its ticket");
        finish_upload(svc, id, &receipt).await?;
        return Ok((receipt, false));
    }
    let request = state.claim_request()?;
    let parts = list_parts(svc, id).await?;
    if let Some((i, p)) = parts
        .iter()
        .enumerate()
        .find(|(i, p)| p.part as usize != i + 1)
    {
        return Err(ClaimError::BadRequest(format!(
            "parts must be numbered 1..n without gaps: part {} is missing (found {})",
            i + 1,
            p.part
        )));
    }
    let total: u64 = parts.iter().map(|p| p.size).sum();
    if total > svc.config().max_upload_bytes {
        return Err(ClaimError::PayloadTooLarge {
            limit: svc.config().max_upload_bytes,
        });
    }
    let store = svc.store().clone();
    let concatenated: ByteStream = futures::stream::iter(parts.into_iter().map(|p| p.part))
        .then(move |part| {
            let store = store.clone();
            async move {
                store
                    .read_object(ObjectKey::UploadPart(id, part), None)
                    .await
            }
        })
        .try_flatten()
        .boxed();
    let _publishing = svc.begin_publishing(claim);
    let config = svc.config();
    let stored: StoredObject = write_object_streaming(
        svc.store().object_store(),
        &svc.store().path(ObjectKey::ClaimPayload(claim)),
        concatenated,
        config.multipart_part_bytes,
        config.multipart_concurrency,
        &request.expectations(config.max_upload_bytes),
    )
    .await?;
    let receipt = publish_stored_claim(svc, claim, &request, stored, Instant::now()).await?;
    finish_upload(svc, id, &receipt).await?;
    info!(upload = %id, claim = %claim, "resumable upload completed");
    Ok((receipt, true))
}

/// The receipt of `claim` if its ticket was appended (its sidecar records where).
async fn appended_receipt(svc: &ClaimCheckService, claim: ClaimId) -> Result<Option<ClaimReceipt>> {
    Ok(svc.store().claim_meta(claim).await?.and_then(|meta| {
        let position = meta.ticket_position?;
        Some(ClaimReceipt {
            ticket: meta.ticket(),
            partition: position.partition,
            offset: position.offset,
        })
    }))
}

/// Saves the receipt, then drops the parts and state. If the receipt cannot be saved the
/// session stays as it is, so that a repeated complete finds the ticket through the claim.
async fn finish_upload(
    svc: &ClaimCheckService,
    id: UploadId,
    receipt: &ClaimReceipt,
) -> Result<()> {
    if let Err(e) = svc
        .store()
        .put_json(ObjectKey::UploadReceipt(id), receipt)
        .await
    {
        warn!(upload = %id, error = %e, "saving the upload receipt failed; the session is kept for a repeated complete");
        return Ok(());
    }
    delete_upload_objects(svc, id, false).await
}

/// Aborts an upload: deletes its state, parts and receipt.
pub async fn abort_upload(svc: &ClaimCheckService, id: UploadId) -> Result<()> {
    if svc.upload_busy(id) {
        return Err(ClaimError::Conflict(format!(
            "upload {id} is being written or completed; abort it once that request is done"
        )));
    }
    let status = upload_status(svc, id).await?;
    let published = match status.state.as_ref().and_then(|s| s.claim_id) {
        Some(claim) => appended_receipt(svc, claim).await?.is_some(),
        None => false,
    };
    if status.receipt.is_some() || published {
        return Err(ClaimError::Conflict(format!(
            "upload {id} is already completed"
        )));
    }
    delete_upload_objects(svc, id, true).await
}

/// Deletes staged parts and state (and the receipt when `including_receipt`).
pub(crate) async fn delete_upload_objects(
    svc: &ClaimCheckService,
    id: UploadId,
    including_receipt: bool,
) -> Result<()> {
    for part in list_parts(svc, id).await? {
        svc.store()
            .delete_quietly(ObjectKey::UploadPart(id, part.part))
            .await?;
    }
    svc.store()
        .delete_quietly(ObjectKey::UploadState(id))
        .await?;
    if including_receipt {
        svc.store()
            .delete_quietly(ObjectKey::UploadReceipt(id))
            .await?;
    }
    Ok(())
}

/// How long until an upload created at `created` expires (zero when already expired).
pub fn remaining(created: SystemTime, expiry: Duration) -> Duration {
    (created + expiry)
        .duration_since(SystemTime::now())
        .unwrap_or_default()
}
