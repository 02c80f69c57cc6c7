//! ListOffsets -4 (earliest local) and -5 (latest tiered) for the Kafka server.
//!
//! -2 (earliest) needs no hook: the log engine's log start offset *is* the remote log start for
//! tiered partitions (local retention moves only the local log start, and `TieredStorage::start`
//! re-exposes the remote start after a restart). -5 answers from the refresh task's view, so it
//! may trail a just-finished upload by up to one refresh interval.

use std::sync::Arc;

use crate::kafka::TierOffsets;
use crate::log::PartitionLog;

use super::TierState;

pub struct RemoteTierOffsets {
    pub(crate) state: Arc<TierState>,
    /// The broker's data directory (where an unfinished restore leaves its marker).
    pub(crate) data_dir: std::path::PathBuf,
}

impl TierOffsets for RemoteTierOffsets {
    fn earliest_local_offset(&self, log: &PartitionLog) -> i64 {
        log.local_log_start_offset()
    }

    fn latest_tiered_offset(&self, log: &PartitionLog) -> Option<i64> {
        self.state
            .lock()
            .get(&(log.topic().to_string(), log.partition()))
            .map(|view| view.status.highest_tiered_offset)
            .filter(|offset| *offset >= 0)
    }

    fn log_start_settled(&self, log: &PartitionLog) -> bool {
        let state = self.state.lock();
        match state.get(&(log.topic().to_string(), log.partition())) {
            // Not refreshed yet: a tiered partition may have remote history.
            None => !log.config().remote_storage_enable,
            Some(view) if !view.remote_known => false,
            Some(view) => {
                let status = &view.status;
                status.remote_segments == 0
                    || log.log_start_offset()
                        <= status
                            .remote_log_start_offset
                            .max(log.deleted_records_offset())
            }
        }
    }

    fn restoring(&self) -> bool {
        super::restore::restore_marker(&self.data_dir).exists()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::super::PartitionView;
    use super::*;
    use crate::log::{LogManager, LogManagerConfig};
    use crate::tiered::PartitionTierStatus;

    #[tokio::test]
    async fn a_log_start_is_settled_once_the_store_answered_and_it_is_exposed() {
        let dir = tempfile::tempdir().unwrap();
        let manager = LogManager::open(LogManagerConfig::new(dir.path()))
            .await
            .unwrap();
        let tiered = BTreeMap::from([("remote.storage.enable".into(), "true".into())]);
        manager.create_topic("tiered", 1, tiered, false).unwrap();
        manager
            .create_topic("local", 1, BTreeMap::new(), false)
            .unwrap();
        let log = manager.partition("tiered", 0).unwrap();
        let offsets = RemoteTierOffsets {
            state: Arc::default(),
            data_dir: dir.path().to_path_buf(),
        };
        let local = manager.partition("local", 0).unwrap();
        assert!(offsets.log_start_settled(&local), "no remote tier involved");
        assert!(!offsets.log_start_settled(&log), "not refreshed yet");
        let view = |remote_known, remote_log_start_offset| PartitionView {
            status: PartitionTierStatus {
                remote_segments: 3,
                remote_log_start_offset,
                ..Default::default()
            },
            uploaded: BTreeMap::new(),
            remote_known,
        };
        for (remote_known, remote_start, settled) in
            [(false, 0, false), (true, 0, true), (true, -5, false)]
        {
            offsets
                .state
                .lock()
                .insert(("tiered".into(), 0), view(remote_known, remote_start));
            assert_eq!(
                offsets.log_start_settled(&log),
                settled,
                "store answered: {remote_known}, remote start {remote_start}"
            );
        }
        assert!(!offsets.restoring());
        std::fs::write(super::super::restore::restore_marker(dir.path()), b"").unwrap();
        assert!(offsets.restoring());
    }
}
