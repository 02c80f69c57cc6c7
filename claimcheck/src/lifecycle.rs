//! Payload lifecycle: delete claim payloads once no live ticket points to them, and remove
//! what failed or abandoned uploads left behind.
//!
//! # Invariant: a payload a ticket still points to is never deleted
//!
//! A claim is deleted only when **both** hold:
//! 1. its id is absent from [`LiveClaims::live_claims`], which the broker guarantees covers every
//!    ticket still readable in either tier; and
//! 2. every object of the claim is older than `gc.grace`.
//!
//! The pass lists the objects **first** and asks for the live set **second**. A claim whose
//! ticket was appended before the live query is in the set. A claim whose ticket is appended
//! after it was stored by [`crate::upload`], which refuses to append a ticket more than
//! `gc.grace / 2` after storing the payload, so that payload is younger than `gc.grace` and
//! condition 2 keeps it. Deletion removes the payload before the sidecar, so an interrupted
//! deletion leaves a lone sidecar that the next pass removes.
//!
//! # Reasons
//!
//! ```text
//!  claim being published (payload stored, ticket not yet appended)  keep (counted Young)
//!  claim in live set ............................................ keep (Live)
//!  claim younger than gc.grace .................................. keep (Young)
//!  meta.json has a ticket position .............................. delete: TicketExpired
//!  meta.json without ticket position ............................ delete: NeverTicketed
//!  payload without meta.json .................................... delete: PayloadWithoutMetadata
//!  meta.json without payload .................................... delete: MetadataWithoutPayload
//!  upload state older than upload.expiry ........................ delete: UploadExpired
//!  completed upload's receipt older than upload.expiry .......... delete: UploadReceiptExpired
//!  upload objects without state or receipt, older than expiry ... delete: UploadLeftovers
//!  upload with a part being written or a complete running ....... keep, however old
//! ```
//!
//! Dry-run mode (`strata claims gc --dry-run`) computes the same plan and deletes nothing.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::Result;
use crate::resumable::delete_upload_objects;
use crate::service::ClaimCheckService;
use crate::sink::LiveClaims;
use crate::store::{ClaimMeta, ObjectKey};
use crate::ticket::{ClaimId, RecordPosition, UploadId};

/// Why an object set goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum GcReason {
    /// Its ticket was appended (at `position`) and has left the log in both tiers.
    TicketExpired {
        position: RecordPosition,
    },
    /// The payload was stored but no ticket was ever appended (failed or interrupted upload).
    NeverTicketed,
    PayloadWithoutMetadata,
    MetadataWithoutPayload,
    UploadExpired,
    UploadReceiptExpired,
    UploadLeftovers,
}

/// What the GC removes (or would remove, in dry-run mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GcTarget {
    Claim { id: ClaimId },
    Upload { id: UploadId },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcAction {
    #[serde(flatten)]
    pub target: GcTarget,
    #[serde(flatten)]
    pub reason: GcReason,
    pub bytes: u64,
    pub age_secs: u64,
}

/// Result of one GC pass.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub actions: Vec<GcAction>,
    pub kept_live: usize,
    pub kept_young: usize,
    /// Deletions that failed (the next pass retries them).
    pub errors: Vec<String>,
}

#[derive(Default)]
struct ClaimObjects {
    payload_bytes: Option<u64>,
    has_meta: bool,
    newest_ms: i64,
}

#[derive(Default)]
struct UploadObjects {
    state_ms: Option<i64>,
    has_receipt: bool,
    bytes: u64,
    newest_ms: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn age(now: i64, then_ms: i64) -> Duration {
    Duration::from_millis(now.saturating_sub(then_ms).max(0) as u64)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClaimVerdict {
    KeepLive,
    KeepYoung,
    Delete,
}

/// Keep or delete a claim; the exhaustive form of the module's invariant.
fn claim_verdict(is_live: bool, age: Duration, grace: Duration) -> ClaimVerdict {
    match (is_live, age >= grace) {
        (true, _) => ClaimVerdict::KeepLive,
        (false, false) => ClaimVerdict::KeepYoung,
        (false, true) => ClaimVerdict::Delete,
    }
}

/// One GC pass. With `live: None` only uploads are considered (claims need the live set).
pub async fn collect_garbage(
    svc: &ClaimCheckService,
    live: Option<&dyn LiveClaims>,
    dry_run: bool,
) -> Result<GcReport> {
    let mut report = GcReport {
        dry_run,
        ..Default::default()
    };
    let now = now_ms();
    if let Some(live) = live {
        collect_claims(svc, live, dry_run, now, &mut report).await?;
    }
    collect_uploads(svc, dry_run, now, &mut report).await?;
    info!(
        dry_run,
        deleted = report.actions.len(),
        kept_live = report.kept_live,
        kept_young = report.kept_young,
        errors = report.errors.len(),
        "claim GC pass"
    );
    Ok(report)
}

async fn collect_claims(
    svc: &ClaimCheckService,
    live: &dyn LiveClaims,
    dry_run: bool,
    now: i64,
    report: &mut GcReport,
) -> Result<()> {
    let mut claims: BTreeMap<ClaimId, ClaimObjects> = BTreeMap::new();
    let mut listing = svc.store().list_claim_objects();
    while let Some((key, meta)) = listing.try_next().await? {
        let modified = meta.last_modified.timestamp_millis();
        let (id, is_payload) = match key {
            ObjectKey::ClaimPayload(id) => (id, true),
            ObjectKey::ClaimMeta(id) => (id, false),
            _ => continue,
        };
        let entry = claims.entry(id).or_default();
        entry.newest_ms = entry.newest_ms.max(modified);
        if is_payload {
            entry.payload_bytes = Some(meta.size);
        } else {
            entry.has_meta = true;
        }
    }
    // Claims being published now are skipped: their payload may look old (S3 dates a multipart
    // object from its first part) while their ticket is not appended yet. Taken before the live
    // set: a publish that ended before this recorded its position before the live query.
    let publishing = svc.claims_publishing();
    // Only now ask for the live set: see the module docs for why the order matters.
    let live_ids: HashSet<ClaimId> = live.live_claims_for_gc(dry_run).await?;
    let grace = svc.config().gc_grace;
    for (id, objects) in claims {
        let claim_age = age(now, objects.newest_ms);
        if publishing.contains(&id) {
            report.kept_young += 1;
            continue;
        }
        match claim_verdict(live_ids.contains(&id), claim_age, grace) {
            ClaimVerdict::KeepLive => {
                report.kept_live += 1;
                continue;
            }
            ClaimVerdict::KeepYoung => {
                report.kept_young += 1;
                continue;
            }
            ClaimVerdict::Delete => {}
        }
        let reason = match (objects.payload_bytes, objects.has_meta) {
            (Some(_), true) => match svc.store().claim_meta(id).await {
                Ok(Some(ClaimMeta {
                    ticket_position: Some(position),
                    ..
                })) => GcReason::TicketExpired { position },
                Ok(_) => GcReason::NeverTicketed,
                Err(e) => {
                    report
                        .errors
                        .push(format!("claim {id}: reading meta.json: {e}"));
                    continue;
                }
            },
            (Some(_), false) => GcReason::PayloadWithoutMetadata,
            (None, _) => GcReason::MetadataWithoutPayload,
        };
        if !dry_run {
            if let Err(e) = svc.store().delete_claim(id).await {
                warn!(claim = %id, error = %e, "deleting claim failed");
                report.errors.push(format!("claim {id}: {e}"));
                continue;
            }
            info!(claim = %id, ?reason, "claim payload deleted");
        }
        report.actions.push(GcAction {
            target: GcTarget::Claim { id },
            reason,
            bytes: objects.payload_bytes.unwrap_or(0),
            age_secs: claim_age.as_secs(),
        });
    }
    Ok(())
}

async fn collect_uploads(
    svc: &ClaimCheckService,
    dry_run: bool,
    now: i64,
    report: &mut GcReport,
) -> Result<()> {
    let mut uploads: BTreeMap<UploadId, UploadObjects> = BTreeMap::new();
    let mut listing = svc.store().list_upload_objects();
    while let Some((key, meta)) = listing.try_next().await? {
        let modified = meta.last_modified.timestamp_millis();
        let entry = match key {
            ObjectKey::UploadState(id)
            | ObjectKey::UploadReceipt(id)
            | ObjectKey::UploadPart(id, _) => uploads.entry(id).or_default(),
            _ => continue,
        };
        entry.newest_ms = entry.newest_ms.max(modified);
        entry.bytes += meta.size;
        match key {
            ObjectKey::UploadState(_) => entry.state_ms = Some(modified),
            ObjectKey::UploadReceipt(_) => entry.has_receipt = true,
            _ => {}
        }
    }
    let expiry = svc.config().upload_expiry;
    for (id, objects) in uploads {
        // Expiry counts from the session's creation; leftovers from their newest object.
        let upload_age = age(now, objects.state_ms.unwrap_or(objects.newest_ms));
        // A part being written or a complete in progress: not abandoned, however old.
        if upload_age < expiry || svc.upload_busy(id) {
            continue;
        }
        let reason = match (objects.state_ms.is_some(), objects.has_receipt) {
            (true, _) => GcReason::UploadExpired,
            (false, true) => GcReason::UploadReceiptExpired,
            (false, false) => GcReason::UploadLeftovers,
        };
        if !dry_run {
            if let Err(e) = delete_upload_objects(svc, id, true).await {
                report.errors.push(format!("upload {id}: {e}"));
                continue;
            }
            info!(upload = %id, ?reason, "expired upload removed");
        }
        report.actions.push(GcAction {
            target: GcTarget::Upload { id },
            reason,
            bytes: objects.bytes,
            age_secs: upload_age.as_secs(),
        });
    }
    Ok(())
}

/// Runs a GC pass every `every` until the returned handle is aborted. Pass `live: None` to only
/// expire uploads (e.g. while the broker cannot answer live claims yet).
pub fn spawn_maintenance(
    svc: ClaimCheckService,
    live: Option<Arc<dyn LiveClaims>>,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if let Err(e) = collect_garbage(&svc, live.as_deref(), false).await {
                warn!(error = %e, "claim GC pass failed");
            }
        }
    })
}
