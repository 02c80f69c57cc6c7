//! Crash repair and bucket discovery.
//!
//! `reconcile_partition` makes a partition's remote state clean again after any crash:
//!
//! 1. list the partition's segment objects (first, so that every object seen was created after
//!    its `CopySegmentStarted` entry, which the manifest read next therefore contains);
//! 2. `CopySegmentStarted` entries older than the grace period and not being written by this
//!    process are abandoned attempts: -> `DeleteSegmentStarted`;
//! 3. finish every `DeleteSegmentStarted` (delete object, drop entry) — also repairs a crash
//!    between a retention manifest write and the object deletes;
//! 4. objects referenced by no entry at all and older than the grace period are orphans: delete.
//!
//! Unfinished multipart uploads left by a crash are invisible to object listings: on S3, GCS and
//! Azure each upload leaves a marker while it runs, and [`RemoteLogManager::reconcile`] aborts
//! those older than the grace period that this process is not running (`multipart.rs`). On the
//! local-directory backend a killed process leaves the upload's staging file (`<key>#<n>`, which
//! no listing shows): step 5 removes those of the partition older than the grace period.
//!
//! [`RemoteLogManager::reconcile`]: crate::RemoteLogManager::reconcile

use std::collections::HashSet;

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use uuid::Uuid;

use crate::error::{Result, TieringError};
use crate::keys::{self, PartitionId};
use crate::manifest::SegmentState;
use crate::manifest_cache::ManifestCache;
use crate::retention::complete_deletes;
use crate::store::RemoteStore;

/// What reconcile repaired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub partitions: usize,
    pub abandoned_uploads: usize,
    pub deletes_finished: usize,
    pub orphans_deleted: usize,
    /// Multipart uploads of interrupted writes aborted (whole store, not per partition).
    pub multipart_uploads_aborted: usize,
}

impl ReconcileReport {
    pub(crate) fn add(&mut self, o: &ReconcileReport) {
        self.partitions += o.partitions;
        self.abandoned_uploads += o.abandoned_uploads;
        self.deletes_finished += o.deletes_finished;
        self.orphans_deleted += o.orphans_deleted;
        self.multipart_uploads_aborted += o.multipart_uploads_aborted;
    }
}

pub(crate) async fn reconcile_partition(
    remote: &RemoteStore,
    manifests: &ManifestCache,
    p: &PartitionId,
    in_flight: &HashSet<Uuid>,
    grace_ms: i64,
    now_ms: i64,
) -> Result<ReconcileReport> {
    let dir = keys::format_segments_dir(&remote.prefix, p);
    let objects: Vec<_> = remote
        .store
        .list(Some(&dir))
        .try_collect()
        .await
        .map_err(|e| TieringError::store("list segments", &dir, e))?;
    let mut report = ReconcileReport {
        partitions: 1,
        ..Default::default()
    };
    let Some(_) = manifests.refresh(p).await? else {
        // No manifest: nothing is readable, every object is an orphan.
        for o in objects
            .iter()
            .filter(|o| now_ms - o.last_modified.timestamp_millis() >= grace_ms)
        {
            remote.store.delete(&o.location).await.ok();
            report.orphans_deleted += 1;
        }
        return Ok(report);
    };
    let (abandoned, v) = manifests
        .update(p, |m| {
            let stale: Vec<Uuid> = m
                .segments
                .iter()
                .filter(|s| s.state == SegmentState::CopySegmentStarted)
                .filter(|s| {
                    !in_flight.contains(&s.upload_id) && now_ms - s.state_changed_ms >= grace_ms
                })
                .map(|s| s.upload_id)
                .collect();
            m.begin_delete(&stale, now_ms)?;
            Ok(stale.len())
        })
        .await?;
    report.abandoned_uploads = abandoned;
    let referenced: HashSet<&str> = v
        .manifest
        .segments
        .iter()
        .map(|s| s.object_key.as_str())
        .collect();
    let orphans: Vec<_> = objects
        .iter()
        .filter(|o| keys::parse_segment(&remote.prefix, &o.location).is_some())
        .filter(|o| !referenced.contains(o.location.as_ref()))
        .filter(|o| now_ms - o.last_modified.timestamp_millis() >= grace_ms)
        .map(|o| o.location.clone())
        .collect();
    report.deletes_finished = complete_deletes(remote, manifests, p).await?;
    for o in orphans {
        match remote.store.delete(&o).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {
                tracing::info!(key = %o, "deleted orphan segment object");
                report.orphans_deleted += 1;
            }
            Err(e) => return Err(TieringError::store("delete orphan", &o, e)),
        }
    }
    let grace = std::time::Duration::from_millis(grace_ms.max(0) as u64);
    let sweeper = remote.clone();
    report.orphans_deleted +=
        tokio::task::spawn_blocking(move || sweeper.remove_stale_staging_files(&dir, grace).0)
            .await
            .unwrap_or(0);
    Ok(report)
}

/// Every partition with a manifest under the prefix (restore from bucket).
pub(crate) async fn list_partitions(remote: &RemoteStore) -> Result<Vec<PartitionId>> {
    let root = keys::format_topics_root(&remote.prefix);
    let topics = remote
        .store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| TieringError::store("list topics", &root, e))?;
    let mut out = Vec::new();
    for topic_dir in topics.common_prefixes {
        let parts = remote
            .store
            .list_with_delimiter(Some(&topic_dir))
            .await
            .map_err(|e| TieringError::store("list partitions", &topic_dir, e))?;
        for dir in parts.common_prefixes {
            if let Some(p) = keys::parse_partition_dir(&remote.prefix, &dir) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
