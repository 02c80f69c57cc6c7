//! Time- and size-based retention of closed segments, and the local-deletion gate.
//!
//! Kafka's rules: only closed segments are deleted, oldest first, and deletion stops at the first
//! segment that must stay (the log is a prefix-deleted sequence, never holed). A segment goes when
//! - it lies entirely below the log start offset (DeleteRecords); no gate is asked, or
//! - `cleanup.policy` has `delete` and its newest record is older than the (local) retention.ms,
//!   or the partition is larger than the (local) retention.bytes even without it;
//!   the [`LocalDeletionGate`](super::LocalDeletionGate) must agree (tiering: "uploaded").
//!
//! With `remote.storage.enable=false` the log start offset moves to the new first segment. With
//! tiering on, local retention only moves the *local* log start: older data lives in the remote
//! tier, whose own retention moves the log start (through `delete_records_before`).

use super::TopicConfig;
use super::partition_log::PartitionLog;

/// What retention needs to know about a closed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentSummary {
    pub base_offset: i64,
    pub next_offset: i64,
    pub size: u64,
    pub max_timestamp: i64,
}

/// How many of the oldest `closed` segments to delete.
pub(crate) fn deletable_prefix(
    closed: &[SegmentSummary],
    total_size: u64,
    log_start_offset: i64,
    config: &TopicConfig,
    now: i64,
    mut gate: impl FnMut(&SegmentSummary) -> bool,
) -> usize {
    let retention_ms = config.effective_local_retention_ms();
    let retention_bytes = config.effective_local_retention_bytes();
    let mut remaining = total_size;
    let mut count = 0;
    for segment in closed {
        let below_start = segment.next_offset <= log_start_offset;
        let expired = config.cleanup_policy_delete
            && ((retention_ms >= 0
                && segment.max_timestamp >= 0
                && now - segment.max_timestamp > retention_ms)
                || (retention_bytes >= 0
                    && remaining.saturating_sub(segment.size) >= retention_bytes as u64));
        if !(below_start || (expired && gate(segment))) {
            break;
        }
        remaining -= segment.size;
        count += 1;
    }
    count
}

impl PartitionLog {
    /// Applies retention once; returns the number of segments deleted.
    pub(crate) fn apply_retention(&self, now: i64) -> usize {
        let config = self.config();
        let gate = self.gate.read().unwrap_or_else(|p| p.into_inner()).clone();
        let deleted = {
            let mut state = self.lock_state();
            let total_size: u64 = state.segments.values().map(|s| s.size()).sum();
            let closed: Vec<SegmentSummary> = state
                .segments
                .values()
                .take(state.segments.len() - 1)
                .map(|s| {
                    let meta = s.meta();
                    SegmentSummary {
                        base_offset: s.base_offset,
                        next_offset: meta.next_offset,
                        size: meta.size,
                        // Kafka's largestTimestamp: records without timestamps age by the
                        // file's modification time.
                        max_timestamp: if meta.max_timestamp >= 0 {
                            meta.max_timestamp
                        } else {
                            s.last_modified_ms().unwrap_or(-1)
                        },
                    }
                })
                .collect();
            let count = deletable_prefix(
                &closed,
                total_size,
                state.log_start_offset,
                &config,
                now,
                |s| {
                    gate.may_delete_locally(
                        &self.topic,
                        self.partition,
                        s.base_offset,
                        s.next_offset,
                    )
                },
            );
            if count == 0 {
                return 0;
            }
            let new_first = closed
                .get(count)
                .map_or(state.next_offset, |s| s.base_offset);
            let new_first = if count == closed.len() {
                state.active().base_offset
            } else {
                new_first
            };
            let removed: Vec<_> = closed[..count]
                .iter()
                .filter_map(|s| state.segments.remove(&s.base_offset))
                .collect();
            if !config.remote_storage_enable && new_first > state.log_start_offset {
                state.log_start_offset = new_first;
                state.producers.remove_below(new_first);
            }
            tracing::info!(topic = %self.topic, partition = self.partition, deleted_segments = count,
                log_start_offset = state.log_start_offset, local_log_start_offset = new_first, "retention deleted segments");
            removed
        };
        let count = deleted.len();
        self.delete_segment_files(deleted);
        count
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn segments() -> Vec<SegmentSummary> {
        (0..4)
            .map(|i| SegmentSummary {
                base_offset: i * 10,
                next_offset: i * 10 + 10,
                size: 100,
                max_timestamp: 1_000 * (i + 1),
            })
            .collect()
    }

    fn config(pairs: &[(&str, &str)]) -> TopicConfig {
        let overrides: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        TopicConfig::resolve(&BTreeMap::new(), &overrides).unwrap()
    }

    #[test]
    fn time_size_start_and_gate() {
        let closed = segments();
        let total = 500; // + 100 in the active segment
        let by_time = config(&[("retention.ms", "2500")]);
        assert_eq!(
            deletable_prefix(&closed, total, 0, &by_time, 5_000, |_| true),
            2
        );
        assert_eq!(
            deletable_prefix(&closed, total, 0, &by_time, 5_000, |s| s.base_offset == 0),
            1
        );
        let by_size = config(&[("retention.bytes", "250")]);
        assert_eq!(
            deletable_prefix(&closed, total, 0, &by_size, 0, |_| true),
            2
        );
        let forever = config(&[("retention.ms", "-1")]);
        assert_eq!(
            deletable_prefix(&closed, total, 25, &forever, 0, |_| false),
            2
        );
        let compact = config(&[("cleanup.policy", "compact"), ("retention.ms", "1")]);
        assert_eq!(
            deletable_prefix(&closed, total, 0, &compact, 99_999, |_| true),
            0
        );
        let tiered = config(&[
            ("remote.storage.enable", "true"),
            ("local.retention.ms", "1500"),
            ("retention.ms", "100000"),
        ]);
        assert_eq!(
            deletable_prefix(&closed, total, 0, &tiered, 4_000, |_| true),
            2
        );
    }
}
