//! Cold reads: Fetch below the local log start and ListOffsets by timestamp, from the bucket.
//!
//! Each read runs in its own spawned task on the remote tier's bounded reader pool
//! (`remote.log.reader.threads` object-store requests at a time), so a slow object store never
//! holds a connection task, a hot fetch or a produce: the fetch handler waits at most its
//! `max_wait_ms` (at least `remote.fetch.max.wait.ms`, as Kafka) and answers with no records if
//! the read is not done (the task goes on and warms the chunk cache for the consumer's retry).
//!
//! Errors map to Kafka codes: below the log start (or in a hole) -> OFFSET_OUT_OF_RANGE; a chunk
//! whose CRC does not match -> KAFKA_STORAGE_ERROR (the bytes are never returned); any other
//! remote failure -> KAFKA_STORAGE_ERROR (retriable: clients back off and fetch again).

use std::sync::Arc;

use strata_tiering::{RemoteLogManager, TieringError};

use crate::kafka::handlers::fetch::{ColdRead, ColdReader};
use crate::log::PartitionLog;

const OFFSET_OUT_OF_RANGE: i16 = 1;
const KAFKA_STORAGE_ERROR: i16 = 56;
const REQUEST_TIMED_OUT: i16 = 7;

pub struct RemoteColdReader {
    pub(crate) rlm: RemoteLogManager,
}

fn error_code(log: &PartitionLog, offset: i64, error: &TieringError) -> i16 {
    match error {
        TieringError::OffsetOutOfRange { .. } => OFFSET_OUT_OF_RANGE,
        TieringError::Corrupt { .. } => {
            tracing::error!(topic = log.topic(), partition = log.partition(), offset, %error, "corrupt remote data; refusing to serve it");
            KAFKA_STORAGE_ERROR
        }
        _ => {
            tracing::warn!(topic = log.topic(), partition = log.partition(), offset, %error, "cold read failed");
            KAFKA_STORAGE_ERROR
        }
    }
}

#[async_trait::async_trait]
impl ColdReader for RemoteColdReader {
    async fn read(&self, log: Arc<PartitionLog>, offset: i64, max_bytes: usize) -> ColdRead {
        if offset < log.log_start_offset() {
            return Err(OFFSET_OUT_OF_RANGE);
        }
        let rlm = self.rlm.clone();
        let (topic, partition) = (log.topic().to_string(), log.partition());
        let started = std::time::Instant::now();
        let task =
            tokio::spawn(async move { rlm.read(&topic, partition, offset, max_bytes).await });
        match task.await {
            Ok(Ok(Some(bytes))) => {
                tracing::debug!(
                    topic = log.topic(),
                    partition = log.partition(),
                    offset,
                    bytes = bytes.len(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "cold read"
                );
                Ok(Some(bytes))
            }
            // Nothing remote at or after `offset` although it is below the local log start: a
            // hole (e.g. tiering was off while local retention ran).
            Ok(Ok(None)) => Err(OFFSET_OUT_OF_RANGE),
            Ok(Err(error)) => Err(error_code(&log, offset, &error)),
            Err(join) => {
                tracing::error!(topic = log.topic(), partition = log.partition(), offset, error = %join, "cold read task failed");
                Err(KAFKA_STORAGE_ERROR)
            }
        }
    }

    async fn offset_for_timestamp(
        &self,
        log: Arc<PartitionLog>,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, i16> {
        let rlm = self.rlm.clone();
        let (topic, partition) = (log.topic().to_string(), log.partition());
        // From the log start clients see: the remote tier may still hold records below it
        // (retention deletes them after the log start moved), which must not hide later ones.
        let floor = log.log_start_offset();
        let task = tokio::spawn(async move {
            rlm.offset_for_timestamp_from(&topic, partition, timestamp, floor)
                .await
        });
        // Kafka's remote.list.offsets.request.timeout.ms default: a store that does not
        // answer fails the lookup instead of holding the request forever.
        let answer = tokio::time::timeout(std::time::Duration::from_secs(30), task).await;
        let Ok(answer) = answer else {
            return Err(REQUEST_TIMED_OUT);
        };
        match answer {
            Ok(Ok(found)) => {
                let (log_start, local_start) =
                    (log.log_start_offset(), log.local_log_start_offset());
                Ok(found.filter(|(offset, _)| *offset >= log_start && *offset < local_start))
            }
            Ok(Err(error)) => Err(error_code(&log, timestamp, &error)),
            Err(_) => Err(KAFKA_STORAGE_ERROR),
        }
    }
}
