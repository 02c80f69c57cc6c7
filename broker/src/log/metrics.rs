//! Prometheus metrics of the log engine, with the meanings of Kafka's `kafka.log` MBeans:
//! per-partition size, segment count and offsets (`Log`), fsync rate and time
//! (`LogFlushStats`), plus what operators of this engine ask about: refused or failed appends
//! by cause (a full disk among them), segment rolls and `compression.type` re-compressions.
//!
//! Counters live in one [`LogMetrics`] the partitions share; the per-partition gauges are read
//! at scrape time by [`LogCollector`], so an idle broker pays nothing for them.

use std::sync::{Arc, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use super::{LogError, LogManager};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FailureLabels {
    /// [`failure_reason`] of the error.
    pub reason: &'static str,
}

/// Counters shared by every partition of one [`LogManager`].
pub struct LogMetrics {
    /// One observation per group-commit fsync (Kafka's `LogFlushRateAndTimeMs`).
    pub flush_seconds: Histogram,
    pub append_failures: Family<FailureLabels, Counter>,
    pub segment_rolls: Counter,
    pub recompressed_batches: Counter,
}

impl Default for LogMetrics {
    fn default() -> Self {
        Self {
            // 50 µs .. ~13 s: a page-cache fdatasync up to a disk in trouble.
            flush_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 18)),
            append_failures: Family::default(),
            segment_rolls: Counter::default(),
            recompressed_batches: Counter::default(),
        }
    }
}

impl LogMetrics {
    pub(crate) fn append_failed(&self, error: &LogError) {
        self.append_failures
            .get_or_create(&FailureLabels {
                reason: failure_reason(error),
            })
            .inc();
    }
}

/// A short, stable label for why an append did not happen.
pub fn failure_reason(error: &LogError) -> &'static str {
    match error {
        _ if error.is_disk_full() => "disk_full",
        LogError::Storage { .. } | LogError::DataDirectory(_) => "storage",
        LogError::NotDurable { .. } => "fsync_failed",
        LogError::CorruptMessage(_) => "corrupt_message",
        LogError::MessageTooLarge { .. } => "message_too_large",
        LogError::InvalidTimestamp(_) => "invalid_timestamp",
        LogError::InvalidRecord(_) => "invalid_record",
        LogError::OutOfOrderSequence { .. } => "out_of_order_sequence",
        LogError::InvalidProducerEpoch { .. } => "invalid_producer_epoch",
        LogError::ShuttingDown => "shutting_down",
        _ => "other",
    }
}

impl LogManager {
    /// Registers the engine's counters and its per-partition gauges under `log_`.
    pub fn register_metrics(self: &Arc<Self>, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("log");
        let metrics = self.metrics();
        registry.register_with_unit(
            "flush_duration",
            "Time of each group-commit fsync of a partition's log (count: fsyncs)",
            Unit::Seconds,
            metrics.flush_seconds.clone(),
        );
        registry.register(
            "append_failures",
            "Appends refused or failed, by reason (disk_full, storage, corrupt_message, message_too_large, ...)",
            metrics.append_failures.clone(),
        );
        registry.register(
            "segment_rolls",
            "Active segments closed and replaced by a new one",
            metrics.segment_rolls.clone(),
        );
        registry.register(
            "recompressed_batches",
            "Batches re-compressed into the topic's compression.type before being stored",
            metrics.recompressed_batches.clone(),
        );
        registry.register_collector(Box::new(LogCollector {
            log: Arc::downgrade(self),
        }));
    }
}

/// Per-partition gauges, read from the partitions at scrape time.
#[derive(Debug)]
struct LogCollector {
    /// Weak: the registry outlives nothing it should keep alive.
    log: Weak<LogManager>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

impl Collector for LogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(log) = self.log.upgrade() else {
            return Ok(());
        };
        let mut rows = Vec::new();
        for topic in log.topics() {
            for partition in 0..topic.partitions {
                if let Some(log) = log.partition(&topic.name, partition) {
                    let labels = PartitionLabels {
                        topic: topic.name.clone(),
                        partition,
                    };
                    rows.push((labels, log.stats()));
                }
            }
        }
        type Field = fn(&super::partition_log::PartitionStats) -> i64;
        let gauges: [(&str, &str, Option<Unit>, Field); 4] = [
            (
                "partition_size",
                "Bytes of the partition's local segment files (Kafka's Log Size)",
                Some(Unit::Bytes),
                |s| s.size_bytes as i64,
            ),
            (
                "partition_segments",
                "Local segments of the partition, the active one included (NumLogSegments)",
                None,
                |s| s.segments as i64,
            ),
            (
                "partition_start_offset",
                "The log start offset clients see (LogStartOffset)",
                None,
                |s| s.log_start_offset,
            ),
            (
                "partition_end_offset",
                "The offset the next appended record gets (LogEndOffset)",
                None,
                |s| s.log_end_offset,
            ),
        ];
        for (name, help, unit, field) in gauges {
            let mut family =
                encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for (labels, stats) in &rows {
                ConstGauge::new(field(stats)).encode(family.encode_family(labels)?)?;
            }
        }
        Ok(())
    }
}
