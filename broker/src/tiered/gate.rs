//! The local-deletion gate, the produce bound, and the refresh task that feeds both.
//!
//! The log engine asks the gate synchronously, under its partition lock, while the remote tier
//! answers asynchronously from the manifest. So the refresh task asks the remote tier ahead of
//! time, once per second, which closed local segments are covered by `CopySegmentFinished`
//! entries, and the gate answers from that set. The set only ever errs on the side of keeping a
//! segment: a segment closed since the last refresh is simply not in it yet.
//!
//! ```text
//!  gate answer for segment [base, next) of topic T:
//!    T has remote.storage.enable=false            -> delete (plain local retention)
//!    T unknown to the log                         -> keep
//!    refresh saw [base, next) covered remotely    -> delete
//!    remote.log.copy.disable=true and the remote
//!      tier holds nothing (its older data expired) -> delete (retention.* applies)
//!    otherwise                                    -> keep
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::kafka::handlers::produce::AppendAdmission;
use crate::log::{LocalDeletionGate, LogManager, PartitionLog};

use super::{PartitionTierStatus, PartitionView, TierState, TieredStorage, restore};

/// Bound on one object-store call made by the refresh task, so a dead store cannot freeze the
/// gate's view or the upload-lag bound.
const STORE_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// KAFKA_STORAGE_ERROR: retriable, so producers back off and retry while uploads catch up.
const KAFKA_STORAGE_ERROR: i16 = 56;

/// [`LocalDeletionGate`] that lets local retention delete a tiered segment only once uploaded.
pub struct UploadGate {
    log: Weak<LogManager>,
    state: Arc<TierState>,
}

impl UploadGate {
    pub(crate) fn new(log: &Arc<LogManager>, state: &Arc<TierState>) -> Self {
        Self {
            log: Arc::downgrade(log),
            state: state.clone(),
        }
    }
}

impl LocalDeletionGate for UploadGate {
    fn may_delete_locally(&self, topic: &str, partition: i32, base: i64, next: i64) -> bool {
        let tiered = self
            .log
            .upgrade()
            .and_then(|log| log.partition(topic, partition))
            .map(|log| {
                let config = log.config();
                (
                    config.remote_storage_enable,
                    !config.remote_log_copy_disable,
                )
            });
        match tiered {
            Some((false, _)) => true,
            None => false,
            Some((true, copying)) => {
                let state = self.state.lock();
                let Some(view) = state.get(&(topic.to_string(), partition)) else {
                    return false;
                };
                let uploaded = view
                    .uploaded
                    .get(&base)
                    .is_some_and(|covered_next| *covered_next >= next);
                // Read-only tiering (remote.log.copy.disable): local segments are never
                // uploaded and expire under retention.*, but only once the remote tier, older
                // still, holds nothing: deleting one before would leave a hole in the log.
                uploaded || (!copying && view.remote_known && view.status.remote_segments == 0)
            }
        }
    }
}

/// Refuses produce to a tiered partition whose un-uploaded closed segments exceed the bound.
pub struct UploadLagAdmission {
    pub(crate) state: Arc<TierState>,
    pub(crate) max_lag_bytes: u64,
}

impl AppendAdmission for UploadLagAdmission {
    fn admit(&self, log: &PartitionLog) -> Result<(), (i16, String)> {
        let state = self.state.lock();
        let Some(view) = state.get(&(log.topic().to_string(), log.partition())) else {
            return Ok(());
        };
        let lag = view.status.upload_lag_bytes;
        // With `remote.log.copy.disable=true` nothing is uploaded on purpose (Kafka then keeps
        // segments under the total retention): that lag must not refuse producers.
        if !view.status.copy_enabled || lag <= self.max_lag_bytes {
            return Ok(());
        }
        Err((
            KAFKA_STORAGE_ERROR,
            format!(
                "{}-{}: {lag} bytes wait for upload to the remote tier (limit {}, \
                 remote.log.manager.max.upload.lag.bytes); last upload error: {}",
                log.topic(),
                log.partition(),
                self.max_lag_bytes,
                view.status.last_error.as_deref().unwrap_or("none")
            ),
        ))
    }
}

async fn bounded<T>(call: impl Future<Output = strata_tiering::Result<T>>) -> Option<T> {
    match tokio::time::timeout(STORE_CALL_TIMEOUT, call).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(error)) => {
            tracing::debug!(%error, "remote tier call failed during refresh");
            None
        }
        Err(_) => None,
    }
}

/// Bytes of every `.log` file in the partition directory (closed and active segments).
fn local_log_bytes(log: &PartitionLog) -> u64 {
    let Ok(entries) = std::fs::read_dir(log.dir()) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Recomputes every partition's view from the log and the remote tier. Returns true when the
/// set of tiered partitions changed (tiering turned on or off somewhere).
pub(crate) async fn refresh(ts: &TieredStorage) -> bool {
    let remote = bounded(ts.rlm.partition_status()).await;
    let mut store_responsive = remote.is_some();
    let previous: std::collections::HashMap<_, _> = ts.state.lock().clone();
    let mut next = std::collections::HashMap::new();
    for meta in ts.log.topics() {
        let config = match ts.log.partition(&meta.name, 0) {
            Some(log) => log.config(),
            None => continue,
        };
        if config.remote_storage_enable && store_responsive {
            restore::publish_topic(ts, &meta).await;
        }
        for partition in 0..meta.partitions {
            let Some(log) = ts.log.partition(&meta.name, partition) else {
                continue;
            };
            let key = (meta.name.clone(), partition);
            let old = previous.get(&key);
            let remote_status = match &remote {
                Some(list) => list
                    .iter()
                    .find(|s| {
                        s.topic == meta.name
                            && s.partition == partition
                            && s.topic_id == meta.topic_id
                    })
                    .cloned(),
                None => old.map(|v| v.status.remote.clone()),
            };
            let remote_known = remote.is_some() || old.is_some_and(|v| v.remote_known);
            let has_remote = remote_status
                .as_ref()
                .is_some_and(|s| s.remote_segments > 0);
            if !config.remote_storage_enable && !has_remote {
                continue;
            }
            ts.rlm
                .register_partition(&meta.name, meta.topic_id, partition);
            let mut uploaded = BTreeMap::new();
            let (mut pending_bytes, mut covered_bytes, mut last_pending) = (0u64, 0u64, None);
            let log_start = log.log_start_offset();
            for segment in log.closed_segments() {
                // What an earlier pass saw uploaded holds only while the remote tier still
                // spans the segment: remote.log.delete.on.disable (or retention) may have
                // removed it since, and a local copy must then wait for a new upload.
                let still_spanned = remote_status.as_ref().is_some_and(|r| {
                    r.remote_segments > 0
                        && r.remote_log_start_offset <= segment.base_offset
                        && segment.next_offset - 1 <= r.highest_tiered_offset
                });
                let known = still_spanned
                    && old
                        .and_then(|v| v.uploaded.get(&segment.base_offset))
                        .is_some_and(|n| *n >= segment.next_offset);
                let covered = known
                    || (store_responsive
                        && bounded(async {
                            Ok(ts
                                .rlm
                                .may_delete_locally(
                                    &meta.name,
                                    partition,
                                    segment.base_offset,
                                    segment.next_offset,
                                )
                                .await)
                        })
                        .await
                        .unwrap_or_else(|| {
                            // One slow answer is enough: skip the store for the rest of this pass.
                            store_responsive = false;
                            false
                        }));
                if covered {
                    uploaded.insert(segment.base_offset, segment.next_offset);
                    covered_bytes += segment.size_bytes;
                } else if segment.next_offset > log_start {
                    pending_bytes += segment.size_bytes;
                    last_pending = Some(segment.next_offset - 1);
                }
            }
            let mut remote_status = remote_status.unwrap_or_default();
            // The upload queue and its last error are known locally: shown even while the
            // store does not answer (when the bucket's part above is stale).
            let pid = strata_tiering::PartitionId::new(&meta.name, meta.topic_id, partition);
            if let Some(upload) = ts.rlm.upload_state(&pid) {
                remote_status.queued_segments = upload.queued_segments;
                remote_status.queued_bytes = upload.queued_bytes;
                remote_status.last_error = upload.last_error;
                remote_status.last_upload_ms = upload.last_upload_ms;
            }
            let highest = if remote_status.remote_segments > 0 {
                remote_status.highest_tiered_offset
            } else {
                -1
            };
            let local_bytes = local_log_bytes(&log);
            let status = PartitionTierStatus {
                topic: meta.name.clone(),
                partition,
                topic_id: meta.topic_id,
                tiered: config.remote_storage_enable,
                copy_enabled: config.remote_storage_enable && !config.remote_log_copy_disable,
                local_bytes,
                local_only_bytes: local_bytes.saturating_sub(covered_bytes),
                log_start_offset: log_start,
                local_log_start_offset: log.local_log_start_offset(),
                log_end_offset: log.log_end_offset(),
                remote_bytes: remote_status.remote_bytes,
                remote_segments: remote_status.remote_segments as u64,
                remote_log_start_offset: if remote_status.remote_segments > 0 {
                    remote_status.remote_log_start_offset
                } else {
                    -1
                },
                highest_tiered_offset: highest,
                upload_lag_bytes: pending_bytes,
                upload_lag_offsets: last_pending.map_or(0, |last| (last - highest).max(0)),
                queued_segments: remote_status.queued_segments as u64,
                last_error: remote_status.last_error.clone(),
                last_upload_ms: remote_status.last_upload_ms,
                remote: remote_status,
            };
            if status.upload_lag_bytes > 0
                && status.last_error.is_some()
                && old.is_none_or(|v| v.status.last_error.is_none())
            {
                tracing::warn!(topic = %status.topic, partition, lag_bytes = status.upload_lag_bytes,
                    error = status.last_error.as_deref().unwrap_or(""), "uploads to the remote tier are failing; local segments are kept");
            }
            next.insert(
                key,
                PartitionView {
                    status,
                    uploaded,
                    remote_known,
                },
            );
        }
    }
    let tiered = |map: &std::collections::HashMap<(String, i32), PartitionView>| {
        let mut keys: Vec<_> = map
            .iter()
            .filter(|(_, v)| v.status.tiered)
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        keys
    };
    let changed = tiered(&previous) != tiered(&next);
    *ts.state.lock() = next;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogManagerConfig;

    async fn admission_for(copy_enabled: bool) -> Result<(), (i16, String)> {
        let dir = tempfile::tempdir().unwrap();
        let manager = LogManager::open(LogManagerConfig::new(dir.path()))
            .await
            .unwrap();
        manager
            .create_topic("t", 1, BTreeMap::new(), false)
            .unwrap();
        let log = manager.partition("t", 0).unwrap();
        let state = Arc::new(TierState::default());
        state.lock().insert(
            ("t".into(), 0),
            PartitionView {
                status: PartitionTierStatus {
                    topic: "t".into(),
                    tiered: true,
                    copy_enabled,
                    upload_lag_bytes: 10_000,
                    ..Default::default()
                },
                uploaded: BTreeMap::new(),
                remote_known: true,
            },
        );
        let admission = UploadLagAdmission {
            state,
            max_lag_bytes: 1_000,
        };
        admission.admit(&log)
    }

    #[tokio::test]
    async fn upload_lag_over_the_bound_refuses_appends_while_copying_is_on() {
        let (code, message) = admission_for(true).await.unwrap_err();
        assert_eq!(code, KAFKA_STORAGE_ERROR);
        assert!(message.contains("10000 bytes wait for upload"), "{message}");
    }

    #[tokio::test]
    async fn upload_lag_does_not_refuse_appends_when_copying_is_disabled() {
        admission_for(false).await.unwrap();
    }

    /// The gate with `remote.log.copy.disable` (KIP-950): a local segment that was never
    /// uploaded may go under retention.* once the remote tier holds nothing older, never while
    /// it does (a hole) or while the store's answer is unknown; with copying on, only uploaded
    /// segments go.
    #[tokio::test]
    async fn read_only_tiering_deletes_local_segments_only_once_the_remote_tier_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let manager = LogManager::open(LogManagerConfig::new(dir.path()))
            .await
            .unwrap();
        let configs = |copy_disable: &str| {
            BTreeMap::from([
                ("remote.storage.enable".to_string(), "true".to_string()),
                (
                    "remote.log.copy.disable".to_string(),
                    copy_disable.to_string(),
                ),
                ("local.retention.bytes".to_string(), "1".to_string()),
            ])
        };
        manager
            .create_topic("ro", 1, configs("true"), false)
            .unwrap();
        manager
            .create_topic("rw", 1, configs("false"), false)
            .unwrap();
        let state = Arc::new(TierState::default());
        let gate = UploadGate::new(&manager, &state);
        let view = |remote_segments: usize, remote_known: bool| PartitionView {
            status: PartitionTierStatus {
                tiered: true,
                remote_segments: remote_segments as u64,
                ..Default::default()
            },
            uploaded: BTreeMap::from([(0, 100)]),
            remote_known,
        };
        for (topic, remote_segments, remote_known, uploaded_one, other_one) in [
            ("ro", 0, true, true, true),
            ("ro", 3, true, true, false),
            ("ro", 0, false, true, false),
            ("rw", 0, true, true, false),
        ] {
            state
                .lock()
                .insert((topic.into(), 0), view(remote_segments, remote_known));
            assert_eq!(
                gate.may_delete_locally(topic, 0, 0, 100),
                uploaded_one,
                "{topic} {remote_segments} {remote_known}: the uploaded segment"
            );
            assert_eq!(
                gate.may_delete_locally(topic, 0, 100, 200),
                other_one,
                "{topic} {remote_segments} {remote_known}: a local-only segment"
            );
        }
        let ro = manager.topic("ro").unwrap();
        let config = crate::log::TopicConfig::resolve(&BTreeMap::new(), &ro.overrides).unwrap();
        assert_eq!(
            (
                config.effective_local_retention_bytes(),
                config.retention_bytes
            ),
            (-1, -1),
            "retention.* applies to local segments with copying disabled"
        );
        let rw = manager.topic("rw").unwrap();
        let config = crate::log::TopicConfig::resolve(&BTreeMap::new(), &rw.overrides).unwrap();
        assert_eq!(config.effective_local_retention_bytes(), 1);
    }
}
