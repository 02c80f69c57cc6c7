//! Total retention (`retention.ms`, `retention.bytes` over the whole log) applied to the remote
//! part of tiered partitions, `remote.log.delete.on.disable`, and the remote log start at start.
//!
//! One pass over a tiered partition, in this order (an exhaustive match in [`next_step`]):
//!
//! ```text
//!  1. plan      read the manifest; the new log start = end of the expired prefix
//!  2. advance   log engine log start -> plan (DeleteRecords semantics, durable); clients stop
//!               being sent below it
//!  3. delete    RemoteLogManager::run_retention: manifest start moves, then objects go, then
//!               the manifest forgets them (see strata-tiering's retention.rs)
//!  4. settle    if the remote tier moved further than planned, the log start follows
//! ```
//!
//! A crash after 2 leaves data in the bucket below the log start: harmless, the next pass
//! deletes it. A crash inside 3 is repaired by `reconcile` at the next start. `retention.bytes`
//! counts the whole log, so the remote budget is `retention.bytes` minus the local-only bytes.

use std::sync::Arc;

use strata_tiering::manager::RetentionPass;
use strata_tiering::manifest::{Manifest, ManifestStore};
use strata_tiering::{PartitionId, RemoteLogManager};

use crate::log::PartitionLog;

use super::TieredStorage;

/// What a retention pass does next for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Move the log engine's log start to this offset before anything remote is deleted.
    AdvanceLogStart(i64),
    /// The log start already covers the expired prefix: let the remote tier delete it.
    DeleteRemote,
    /// Nothing expired.
    Done,
}

/// The ordering rule: remote objects are deleted only once the log start is past them.
fn next_step(planned_start: Option<i64>, log_start: i64) -> Step {
    match planned_start {
        None => Step::Done,
        Some(start) if start > log_start => Step::AdvanceLogStart(start),
        Some(_) => Step::DeleteRemote,
    }
}

/// The remote log start after expiring segments, as strata-tiering's retention computes it
/// (`None`: nothing expires).
fn plan_log_start(m: &Manifest, retention_ms: i64, retention_bytes: i64, now: i64) -> Option<i64> {
    let (mut total, _) = m.remote_size();
    let mut start = None;
    for s in m.finished() {
        let by_time = retention_ms >= 0 && s.max_timestamp < now.saturating_sub(retention_ms);
        let by_size =
            retention_bytes >= 0 && total.saturating_sub(s.size_bytes) >= retention_bytes as u64;
        if !(by_time || by_size) {
            break;
        }
        total -= s.size_bytes;
        start = Some(s.next_offset);
    }
    start
}

async fn advance_log_start(log: &Arc<PartitionLog>, offset: i64) -> bool {
    let log = log.clone();
    let target = offset.min(log.log_end_offset());
    let moved = tokio::task::spawn_blocking(move || log.delete_records_before(target)).await;
    match moved {
        Ok(Ok(_)) => true,
        Ok(Err(error)) => {
            tracing::warn!(%error, offset, "moving the log start offset failed; remote data kept");
            false
        }
        Err(_) => false,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One retention pass over every partition with remote data.
pub(crate) async fn run(ts: &TieredStorage) {
    let views: Vec<_> = ts.state.lock().values().map(|v| v.status.clone()).collect();
    let manifests = ManifestStore::new(ts.rlm.remote().clone());
    let now = now_ms();
    for status in views.into_iter().filter(|s| s.remote_segments > 0) {
        let Some(log) = ts.log.partition(&status.topic, status.partition) else {
            continue;
        };
        let config = log.config();
        let (topic, partition) = (status.topic.as_str(), status.partition);
        if !config.remote_storage_enable {
            if config.remote_log_delete_on_disable {
                delete_all_remote(ts, &log).await;
            }
            continue;
        }
        if !config.cleanup_policy_delete {
            continue;
        }
        let retention_bytes = if config.retention_bytes >= 0 {
            (config.retention_bytes - status.local_only_bytes as i64).max(0)
        } else {
            -1
        };
        let pid = PartitionId::new(topic, status.topic_id, partition);
        // DeleteRecords moved the log start past remote data: the log start is already there
        // (the ordering rule holds), so only the remote delete is left to do.
        let deleted_below = log.deleted_records_offset();
        let planned = match manifests.load(&pid).await {
            Ok(Some(v)) => plan_log_start(&v.manifest, config.retention_ms, retention_bytes, now)
                .or((deleted_below > v.manifest.log_start_offset
                    && v.manifest.finished().next().is_some())
                .then_some(deleted_below)),
            Ok(None) => None,
            Err(error) => {
                tracing::warn!(topic, partition, %error, "remote retention: cannot read the manifest");
                continue;
            }
        };
        loop {
            match next_step(planned, log.log_start_offset()) {
                Step::Done => break,
                Step::AdvanceLogStart(offset) => {
                    if !advance_log_start(&log, offset).await
                        || log.log_start_offset() < offset.min(log.log_end_offset())
                    {
                        break;
                    }
                }
                Step::DeleteRemote => {
                    let pass = RetentionPass {
                        retention_ms: config.retention_ms,
                        retention_bytes,
                        now_ms: now,
                        deleted_below,
                        // Only what the log start (moved first) already passed.
                        expire_up_to: log.log_start_offset(),
                    };
                    match ts.rlm.run_retention_pass(topic, partition, pass).await {
                        Ok(outcome) => {
                            if outcome.deleted_segments > 0 {
                                tracing::info!(
                                    topic,
                                    partition,
                                    deleted_segments = outcome.deleted_segments,
                                    deleted_bytes = outcome.deleted_bytes,
                                    log_start_offset = outcome.log_start_offset,
                                    "remote retention"
                                );
                            }
                            if outcome.log_start_offset > log.log_start_offset() {
                                advance_log_start(&log, outcome.log_start_offset).await;
                            }
                        }
                        Err(error) => {
                            tracing::warn!(topic, partition, %error, "remote retention failed")
                        }
                    }
                    break;
                }
            }
        }
    }
}

/// `remote.log.delete.on.disable=true` on a topic with tiering off: the log start moves to the
/// local log start first, then every remote segment is deleted.
async fn delete_all_remote(ts: &TieredStorage, log: &Arc<PartitionLog>) {
    let local_start = log.local_log_start_offset();
    if log.log_start_offset() < local_start && !advance_log_start(log, local_start).await {
        return;
    }
    // The gate's view still counts the local segments as uploaded; they are about not to be.
    // Forgotten first, so that tiering turned back on before the next refresh cannot let local
    // retention delete them on the strength of copies that are gone.
    if let Some(view) = ts
        .state
        .lock()
        .get_mut(&(log.topic().to_string(), log.partition()))
    {
        view.uploaded.clear();
    }
    match ts
        .rlm
        .run_retention(log.topic(), log.partition(), -1, 0, now_ms(), -1)
        .await
    {
        Ok(outcome) => {
            tracing::info!(
                topic = log.topic(),
                partition = log.partition(),
                deleted_segments = outcome.deleted_segments,
                "tiering disabled with remote.log.delete.on.disable: remote data deleted"
            );
            // The emptied remote log starts over at the log start, so that the local segments
            // (above the old remote start's end) are uploaded when tiering comes back on,
            // instead of counting as tiered and staying on local disk for good.
            let start = log.log_start_offset();
            if let Err(error) = ts
                .rlm
                .restart_empty_remote_log(log.topic(), log.partition(), start)
                .await
            {
                tracing::warn!(topic = log.topic(), partition = log.partition(), %error, "could not restart the emptied remote log");
            }
        }
        Err(error) => {
            tracing::warn!(topic = log.topic(), partition = log.partition(), %error, "deleting remote data failed")
        }
    }
}

/// At start: the log engine clamped each log start to local data; lower it to the remote log
/// start where the remote tier covers every offset up to the local log start.
pub(crate) async fn expose_remote_log_starts(ts: &TieredStorage) {
    let views: Vec<_> = ts.state.lock().values().map(|v| v.status.clone()).collect();
    for status in views.into_iter().filter(|s| s.remote_segments > 0) {
        if let Some(log) = ts.log.partition(&status.topic, status.partition) {
            expose_remote_log_start(&ts.rlm, &log).await;
        }
    }
}

/// [`expose_remote_log_start`] for every partition whose log start is still above the remote
/// log start the last refresh read from the store: the store did not answer at start (the
/// remote history would otherwise stay out of reach until a restart). A partition whose log
/// start was moved up on purpose (DeleteRecords, retention) is not above its floor.
pub(crate) async fn expose_pending_log_starts(ts: &TieredStorage) {
    let pending: Vec<_> = ts
        .state
        .lock()
        .values()
        .filter(|v| v.remote_known && v.status.remote_segments > 0)
        .map(|v| v.status.clone())
        .collect();
    for status in pending {
        let Some(log) = ts.log.partition(&status.topic, status.partition) else {
            continue;
        };
        let floor = status
            .remote_log_start_offset
            .max(log.deleted_records_offset());
        if log.log_start_offset() > floor {
            let now = expose_remote_log_start(&ts.rlm, &log).await;
            if now <= floor {
                tracing::info!(topic = %status.topic, partition = status.partition, log_start = now,
                    "remote history exposed now that the remote tier answers");
            }
        }
    }
}

/// Lowers one partition's log start to the remote log start when the remote tier covers every
/// offset from there up to the local log start, never below the DeleteRecords point (what the
/// broker serves). Also run by `strata export` on a stopped broker's data directory, so that it
/// exports exactly what the broker would serve. Returns the log start offset in effect.
pub async fn expose_remote_log_start(rlm: &RemoteLogManager, log: &PartitionLog) -> i64 {
    let (topic, partition) = (log.topic(), log.partition());
    let remote_start = rlm
        .remote_log_start_offset(topic, partition)
        .await
        .ok()
        .flatten()
        .unwrap_or(-1);
    let local_start = log.local_log_start_offset();
    if remote_start < 0 || remote_start >= log.log_start_offset() {
        return log.log_start_offset();
    }
    if rlm
        .may_delete_locally(topic, partition, remote_start, local_start)
        .await
    {
        log.expose_remote_log_start(remote_start)
    } else {
        tracing::warn!(
            topic,
            partition,
            remote_start,
            local_start,
            "the remote tier has a gap below the local log start; older remote data is not served"
        );
        log.log_start_offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_start_moves_before_remote_delete() {
        assert_eq!(next_step(None, 0), Step::Done);
        assert_eq!(next_step(Some(100), 0), Step::AdvanceLogStart(100));
        assert_eq!(next_step(Some(100), 100), Step::DeleteRemote);
        assert_eq!(next_step(Some(100), 150), Step::DeleteRemote);
    }
}
