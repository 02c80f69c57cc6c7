//! (stub: API shape only, implementation in progress)
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{ConfigEntry, ConfigOp, LocalDeletionGate, LogError, PartitionLog, SegmentEvent};

/// How the log manager runs.
#[derive(Debug, Clone)]
pub struct LogManagerConfig {
    pub data_dir: PathBuf,
    /// Broker-level log settings under Kafka's broker names (`log.segment.bytes`, ...).
    pub broker_defaults: BTreeMap<String, String>,
    /// `log.retention.check.interval.ms` (Kafka default 5 minutes).
    pub retention_check_interval: Duration,
    /// How often idle active segments are checked against `segment.ms` and `flush.ms`.
    pub roll_check_interval: Duration,
    /// How often the recovery-point checkpoint is written (`log.flush.offset.checkpoint.interval.ms`).
    pub checkpoint_interval: Duration,
}

impl LogManagerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            broker_defaults: BTreeMap::new(),
            retention_check_interval: Duration::from_secs(300),
            roll_check_interval: Duration::from_secs(10),
            checkpoint_interval: Duration::from_secs(60),
        }
    }
}

/// A topic as the log knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicMetadata {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub partitions: i32,
    pub overrides: BTreeMap<String, String>,
}

/// Owns every partition log under one data directory.
pub struct LogManager {
    events: tokio::sync::broadcast::Sender<SegmentEvent>,
}

impl LogManager {
    pub async fn open(_cfg: LogManagerConfig) -> Result<Arc<Self>, LogError> {
        Ok(Arc::new(Self {
            events: tokio::sync::broadcast::channel(1024).0,
        }))
    }
    pub fn create_topic(
        &self,
        _name: &str,
        _partitions: i32,
        _overrides: BTreeMap<String, String>,
        _validate_only: bool,
    ) -> Result<TopicMetadata, LogError> {
        Err(LogError::ShuttingDown)
    }
    pub fn delete_topic(&self, _name: &str) -> Result<(), LogError> {
        Err(LogError::ShuttingDown)
    }
    pub fn create_partitions(
        &self,
        _name: &str,
        _new_total: i32,
        _validate_only: bool,
    ) -> Result<(), LogError> {
        Err(LogError::ShuttingDown)
    }
    pub fn topics(&self) -> Vec<TopicMetadata> {
        Vec::new()
    }
    pub fn topic(&self, _name: &str) -> Option<TopicMetadata> {
        None
    }
    pub fn topic_by_id(&self, _id: uuid::Uuid) -> Option<TopicMetadata> {
        None
    }
    pub fn partition(&self, _topic: &str, _partition: i32) -> Option<Arc<PartitionLog>> {
        None
    }
    pub fn describe_topic_config(&self, _name: &str) -> Result<Vec<ConfigEntry>, LogError> {
        Ok(Vec::new())
    }
    pub fn alter_topic_config(
        &self,
        _name: &str,
        _ops: Vec<ConfigOp>,
        _validate_only: bool,
    ) -> Result<(), LogError> {
        Ok(())
    }
    pub fn subscribe_segment_events(&self) -> tokio::sync::broadcast::Receiver<SegmentEvent> {
        self.events.subscribe()
    }
    pub fn set_local_deletion_gate(&self, _gate: Arc<dyn LocalDeletionGate>) {}
    pub async fn shutdown(&self) -> Result<(), LogError> {
        Ok(())
    }
}
