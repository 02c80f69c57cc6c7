//! Remote retention (`retention.ms`, `retention.bytes` govern the remote copy).
//!
//! Ordering, enforced by the code below and by `SegmentState::can_transition`:
//!
//! ```text
//!  1. one manifest write: expired entries CopySegmentFinished -> DeleteSegmentStarted and the
//!     remote log start offset moves past them      (readers stop seeing them from here on)
//!  2. delete the objects                             (NotFound is fine: a retry after a crash)
//!  3. one manifest write: DeleteSegmentStarted -> DeleteSegmentFinished (entries removed)
//! ```
//!
//! A crash after 1 leaves DeleteSegmentStarted entries; `complete_deletes` (run by reconcile and
//! by the next retention pass) finishes 2 and 3. Objects are never deleted while a manifest still
//! lists them as readable.
//!
//! Semantics: a segment is expired by time when its max timestamp is older than
//! `now - retention.ms`; by size while the remote bytes minus the oldest segment are still
//! `>= retention.bytes` (Kafka's rule, applied to remote bytes; a broker wanting Kafka's
//! whole-log accounting passes `retention.bytes` minus its local-only bytes). Negative = unlimited.
//! Segments wholly below `deleted_below` (the broker's DeleteRecords offset) expire too, and
//! the remote log start moves to at least that offset, even inside a segment, so that neither
//! a restart nor a restore from the bucket serves deleted records again (Kafka's RLM does the
//! same with the log start offset).

use futures::StreamExt;
use object_store::path::Path;
use uuid::Uuid;

use crate::error::{Result, TieringError};
use crate::keys::PartitionId;
use crate::manifest::SegmentState;
use crate::manifest_cache::ManifestCache;
use crate::store::RemoteStore;

/// What a retention pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub deleted_segments: usize,
    pub deleted_bytes: u64,
    pub log_start_offset: i64,
}

/// The rules of one retention pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPass {
    /// Negative: unlimited.
    pub retention_ms: i64,
    /// Negative: unlimited.
    pub retention_bytes: i64,
    pub now_ms: i64,
    /// The broker's DeleteRecords offset (-1: none): segments wholly below it expire.
    pub deleted_below: i64,
    /// No segment ending after this offset expires, whatever the rules say: the broker's log
    /// start, which moved first (the ordering rule) on a plan made from an older manifest. An
    /// upload that finished since must not make this pass delete past it. `i64::MAX`: none.
    pub expire_up_to: i64,
}

pub(crate) async fn run_retention(
    remote: &RemoteStore,
    manifests: &ManifestCache,
    p: &PartitionId,
    pass: RetentionPass,
) -> Result<RetentionOutcome> {
    let RetentionPass {
        retention_ms,
        retention_bytes,
        now_ms,
        deleted_below,
        expire_up_to,
    } = pass;
    if manifests.get(p).await?.is_none() {
        return Ok(RetentionOutcome::default());
    }
    let ((count, bytes), v) = manifests
        .update(p, |m| {
            let (mut total, _) = m.remote_size();
            let mut expired: Vec<Uuid> = Vec::new();
            let mut new_start = m.log_start_offset;
            let mut freed = 0u64;
            for s in m.finished() {
                let by_time =
                    retention_ms >= 0 && s.max_timestamp < now_ms.saturating_sub(retention_ms);
                let by_size = retention_bytes >= 0
                    && total.saturating_sub(s.size_bytes) >= retention_bytes as u64;
                let deleted = s.next_offset <= deleted_below;
                if !(by_time || by_size || deleted) || s.next_offset > expire_up_to {
                    break;
                }
                total -= s.size_bytes;
                freed += s.size_bytes;
                expired.push(s.upload_id);
                new_start = s.next_offset;
            }
            m.begin_delete(&expired, now_ms)?;
            m.advance_log_start(new_start.max(deleted_below));
            Ok((expired.len(), freed))
        })
        .await?;
    if count > 0 {
        tracing::info!(partition = %p, segments = count, bytes, log_start_offset = v.manifest.log_start_offset, "remote retention advanced log start");
    }
    complete_deletes(remote, manifests, p).await?;
    Ok(RetentionOutcome {
        deleted_segments: count,
        deleted_bytes: bytes,
        log_start_offset: v.manifest.log_start_offset,
    })
}

/// Steps 2 and 3 for every `DeleteSegmentStarted` entry of the partition. Returns how many
/// entries were finished.
pub(crate) async fn complete_deletes(
    remote: &RemoteStore,
    manifests: &ManifestCache,
    p: &PartitionId,
) -> Result<usize> {
    let Some(v) = manifests.get(p).await? else {
        return Ok(0);
    };
    let doomed: Vec<(Uuid, String)> = v
        .manifest
        .segments
        .iter()
        .filter(|s| s.state == SegmentState::DeleteSegmentStarted)
        .map(|s| (s.upload_id, s.object_key.clone()))
        .collect();
    if doomed.is_empty() {
        return Ok(0);
    }
    let paths: Vec<object_store::Result<Path>> = doomed
        .iter()
        .map(|(_, k)| Ok(Path::from(k.as_str())))
        .collect();
    let paths = futures::stream::iter(paths).boxed();
    let mut results = remote.store.delete_stream(paths);
    while let Some(r) = results.next().await {
        match r {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(TieringError::store("delete segment", p, e)),
        }
    }
    let ids: Vec<Uuid> = doomed.iter().map(|(id, _)| *id).collect();
    let now = crate::now_ms();
    manifests
        .update(p, |m| {
            let still: Vec<Uuid> = ids
                .iter()
                .copied()
                .filter(|id| {
                    m.segments.iter().any(|s| {
                        s.upload_id == *id && s.state == SegmentState::DeleteSegmentStarted
                    })
                })
                .collect();
            m.finish_delete(&still, now)
        })
        .await?;
    tracing::debug!(partition = %p, segments = ids.len(), "remote segment deletes finished");
    Ok(ids.len())
}
