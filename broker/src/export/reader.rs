//! A tier-transparent record iterator over one partition: offsets `from..=to`, from the remote
//! tier below the local log start and from local segments above it, a chunk at a time.
//!
//! Each [`RecordReader::next_chunk`] reads whole batches (at most [`READ_CHUNK_BYTES`], at
//! least one batch) from the offset after the last batch it returned, exactly as a consumer's
//! Fetch would, decodes them with kafka-protocol's `RecordBatchDecoder` and keeps the records in
//! range. Memory is one chunk; the caller decides what to keep.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use strata_format::{BatchIter, RecordBatch, TimestampType};
use strata_tiering::RemoteLogManager;

use super::{ExportError, ExportRecord, TimestampKind};
use crate::log::PartitionLog;

/// Bytes of batches read per step (one batch more when a single batch is larger).
pub const READ_CHUNK_BYTES: usize = 4 << 20;

pub struct RecordReader {
    log: Arc<PartitionLog>,
    remote: Option<RemoteLogManager>,
    /// Next offset to read from (the offset after the last batch returned).
    next: i64,
    /// Last offset to export (inclusive).
    to: i64,
    from: i64,
    chunk_bytes: usize,
}

impl RecordReader {
    /// Records of `log` with offsets in `from..=to`. `remote` serves offsets below the local
    /// log start; without it they are an error.
    pub fn new(
        log: Arc<PartitionLog>,
        remote: Option<RemoteLogManager>,
        from: i64,
        to: i64,
    ) -> Self {
        Self {
            log,
            remote,
            next: from,
            to,
            from,
            chunk_bytes: READ_CHUNK_BYTES,
        }
    }

    /// The offset the next chunk starts from (progress).
    pub fn position(&self) -> i64 {
        self.next
    }

    /// The next records in range (possibly none when a chunk held only control batches),
    /// or `None` once past `to` or at the log end.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<ExportRecord>>, ExportError> {
        if self.next > self.to {
            return Ok(None);
        }
        let bytes = self.read_bytes(self.next).await?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let mut records = Vec::new();
        let mut advanced = false;
        for batch in BatchIter::new(bytes) {
            if batch.next_offset() <= self.next {
                continue;
            }
            self.next = batch.next_offset();
            advanced = true;
            if batch.is_control() {
                continue;
            }
            decode_into(&batch, self.from, self.to, &mut records)?;
            if self.next > self.to {
                break;
            }
        }
        if !advanced {
            return Err(self.missing(self.next));
        }
        Ok(Some(records))
    }

    async fn read_bytes(&self, offset: i64) -> Result<Bytes, ExportError> {
        if offset < self.log.local_log_start_offset() {
            let Some(remote) = &self.remote else {
                return Err(self.missing(offset));
            };
            return match remote
                .read(
                    self.log.topic(),
                    self.log.partition(),
                    offset,
                    self.chunk_bytes,
                )
                .await?
            {
                Some(bytes) => Ok(bytes),
                None => Err(self.missing(offset)),
            };
        }
        let log = self.log.clone();
        let max = self.chunk_bytes;
        let read = tokio::task::spawn_blocking(move || log.read(offset, max))
            .await
            .map_err(|e| ExportError::Io {
                action: "reading",
                path: self.log.dir().to_path_buf(),
                source: std::io::Error::other(e),
            })??;
        Ok(read.records)
    }

    fn missing(&self, offset: i64) -> ExportError {
        ExportError::Missing {
            topic: self.log.topic().to_string(),
            partition: self.log.partition(),
            offset,
        }
    }
}

/// Decodes one batch and appends its records with offsets in `from..=to`.
pub(crate) fn decode_into(
    batch: &RecordBatch,
    from: i64,
    to: i64,
    out: &mut Vec<ExportRecord>,
) -> Result<(), ExportError> {
    let log_append = batch.timestamp_type() == TimestampType::LogAppendTime;
    let mut buf = batch.as_bytes().clone();
    let set = RecordBatchDecoder::decode(&mut buf).map_err(|e| ExportError::Decode {
        offset: batch.base_offset(),
        message: format!("{e:#}"),
    })?;
    for record in set.records {
        if record.offset < from || record.offset > to {
            continue;
        }
        out.push(ExportRecord {
            offset: record.offset,
            timestamp: if log_append {
                batch.max_timestamp()
            } else {
                record.timestamp
            },
            timestamp_type: if log_append {
                TimestampKind::LogAppendTime
            } else {
                TimestampKind::CreateTime
            },
            key: record.key,
            value: record.value,
            headers: record
                .headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            producer_id: record.producer_id,
        });
    }
    Ok(())
}
