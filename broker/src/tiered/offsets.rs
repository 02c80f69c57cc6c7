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
}
