//! (stub: API shape only, implementation in progress)
use std::sync::Arc;

use bytes::Bytes;

use super::{AppendResult, Durability, LogError, ReadResult, TopicConfig};

/// One topic partition's log.
pub struct PartitionLog {
    topic: String,
    partition: i32,
    topic_id: uuid::Uuid,
    config: std::sync::RwLock<Arc<TopicConfig>>,
    high_watermark: tokio::sync::watch::Sender<i64>,
}

impl PartitionLog {
    pub async fn append(
        &self,
        _records: Bytes,
        _durability: Durability,
    ) -> Result<AppendResult, LogError> {
        Err(LogError::ShuttingDown)
    }
    pub fn read(&self, _fetch_offset: i64, _max_bytes: usize) -> Result<ReadResult, LogError> {
        Err(LogError::ShuttingDown)
    }
    pub fn high_watermark(&self) -> i64 {
        *self.high_watermark.borrow()
    }
    pub fn log_start_offset(&self) -> i64 {
        0
    }
    pub fn log_end_offset(&self) -> i64 {
        0
    }
    pub fn offset_for_timestamp(&self, _ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        Ok(None)
    }
    pub fn max_timestamp(&self) -> Option<(i64, i64)> {
        None
    }
    pub fn delete_records_before(&self, _offset: i64) -> Result<i64, LogError> {
        Ok(0)
    }
    pub fn subscribe_appends(&self) -> tokio::sync::watch::Receiver<i64> {
        self.high_watermark.subscribe()
    }
    pub fn topic(&self) -> &str {
        &self.topic
    }
    pub fn partition(&self) -> i32 {
        self.partition
    }
    pub fn topic_id(&self) -> uuid::Uuid {
        self.topic_id
    }
    pub fn config(&self) -> Arc<TopicConfig> {
        self.config.read().unwrap().clone()
    }
}
