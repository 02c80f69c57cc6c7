//! Segment events -> uploads, the catch-up scan, and the periodic task loop.
//!
//! A closed segment is offered to the remote tier when its topic has `remote.storage.enable=true`
//! and `remote.log.copy.disable=false`. Events can be missed (the broker was down, tiering was
//! off, the broadcast channel lagged, an upload failed for good), so [`catch_up`] also offers
//! every closed local segment the remote tier lacks: at start, every
//! `remote.log.manager.task.interval.ms`, and at once when tiering is turned on for a topic. Offering a segment twice is harmless (the
//! queue deduplicates it and the manifest makes a re-upload of a finished segment a no-op).

use std::sync::Arc;
use std::time::Instant;

use strata_tiering::SegmentDescriptor;
use tokio::sync::broadcast::error::RecvError;

use crate::log::{ClosedSegment, SegmentEvent, TopicConfig};

use super::{TieredStorage, gate, retention, status, topic_delete};

fn copies(config: &TopicConfig) -> bool {
    config.remote_storage_enable && !config.remote_log_copy_disable
}

pub(crate) fn descriptor(segment: ClosedSegment) -> SegmentDescriptor {
    SegmentDescriptor {
        topic: segment.topic,
        topic_id: segment.topic_id,
        partition: segment.partition,
        base_offset: segment.base_offset,
        next_offset: segment.next_offset,
        max_timestamp: segment.max_timestamp,
        size_bytes: segment.size_bytes,
        log_path: segment.log_path,
        offset_index_path: segment.offset_index_path,
        time_index_path: segment.time_index_path,
    }
}

fn offer(ts: &TieredStorage, segment: ClosedSegment) {
    let Some(log) = ts.log.partition(&segment.topic, segment.partition) else {
        return;
    };
    if log.topic_id() != segment.topic_id || !copies(&log.config()) {
        return;
    }
    tracing::debug!(topic = %segment.topic, partition = segment.partition, base_offset = segment.base_offset,
        next_offset = segment.next_offset, bytes = segment.size_bytes, "segment queued for upload");
    ts.rlm.on_segment_closed(descriptor(segment));
}

/// Offers every closed local segment of a copying partition that the remote tier lacks.
pub(crate) async fn catch_up(ts: &TieredStorage) {
    for meta in ts.log.topics() {
        for partition in 0..meta.partitions {
            let Some(log) = ts.log.partition(&meta.name, partition) else {
                continue;
            };
            if !copies(&log.config()) {
                continue;
            }
            ts.rlm
                .register_partition(&meta.name, meta.topic_id, partition);
            let log_start = log.log_start_offset();
            let closed: Vec<_> = log
                .closed_segments()
                .into_iter()
                .filter(|segment| segment.next_offset > log_start)
                .collect();
            let ranges: Vec<_> = closed
                .iter()
                .map(|segment| (segment.base_offset, segment.next_offset))
                .collect();
            let needed = match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                ts.rlm.needs_upload(&meta.name, partition, &ranges),
            )
            .await
            {
                Ok(Ok(needed)) => needed,
                Ok(Err(error)) => {
                    tracing::warn!(topic = %meta.name, partition, %error, "catch-up: cannot read the manifest");
                    continue;
                }
                Err(_) => continue,
            };
            // Every segment the bucket lacks, not only those above the highest tiered offset:
            // one whose upload failed for good while later ones succeeded is offered again.
            for (segment, needed) in closed.into_iter().zip(needed) {
                if needed {
                    offer(ts, segment);
                }
            }
        }
    }
}

/// Forwards segment events to the remote tier until shutdown.
pub(crate) async fn run_events(ts: Arc<TieredStorage>) {
    let mut events = ts.log.subscribe_segment_events();
    loop {
        tokio::select! {
            _ = ts.cancelled().cancelled() => return,
            event = events.recv() => match event {
                Ok(SegmentEvent::Closed(segment)) => offer(&ts, segment),
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "segment events lagged; scanning local segments");
                    catch_up(&ts).await;
                }
                Err(RecvError::Closed) => return,
            },
        }
    }
}

/// Refresh every second; catch-up and retention every task interval; reconcile every
/// reconcile interval.
pub(crate) async fn run_periodic(ts: Arc<TieredStorage>) {
    let mut tick = tokio::time::interval(ts.settings.refresh_interval);
    let mut last_task = Instant::now();
    let mut last_reconcile = Instant::now();
    let data_dir = ts.data_dir.clone();
    loop {
        tokio::select! {
            _ = ts.cancelled().cancelled() => return,
            _ = tick.tick() => {}
        }
        // Every step is a reconciliation that is safe to cut short (as a crash would, repaired
        // at the next start), so a shutdown does not wait for a hung object store.
        let step = async {
            let flipped = gate::refresh(&ts).await;
            status::write_status_file(&ts.state, &ts.rlm.remote().url, &data_dir);
            if flipped || last_task.elapsed() >= ts.settings.task_interval {
                last_task = Instant::now();
                catch_up(&ts).await;
                retention::expose_pending_log_starts(&ts).await;
                retention::run(&ts).await;
                topic_delete::finish_deletions(&ts).await;
            }
            if last_reconcile.elapsed() >= ts.settings.reconcile_interval {
                last_reconcile = Instant::now();
                if let Err(error) = ts.rlm.reconcile().await {
                    tracing::warn!(%error, "periodic reconcile failed");
                }
            }
        };
        tokio::select! {
            _ = ts.cancelled().cancelled() => return,
            () = step => {}
        }
    }
}
