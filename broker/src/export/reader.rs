//! A tier-transparent record iterator over one partition: offsets `from..=to`, from the remote
//! tier below the local log start and from local segments above it, a chunk at a time.
//!
//! Each [`RecordReader::next_chunk`] reads whole batches (at most [`READ_CHUNK_BYTES`], at
//! least one batch) from the offset after the last batch it returned, exactly as a consumer's
//! Fetch would, checks each batch's CRC, decodes them with kafka-protocol's `RecordBatchDecoder`
//! and keeps the records in range. Memory is one chunk; the caller decides what to keep.

use std::sync::Arc;

use bytes::Bytes;
use strata_format::{BatchIter, RecordBatch, TimestampType};
use strata_tiering::RemoteLogManager;

use super::{ClaimFields, ExportError, ExportRecord, TimestampKind};
use crate::log::{PartitionLog, decode_bounded};

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
    bytes_read: u64,
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
            bytes_read: 0,
        }
    }

    /// Reads at most `bytes` per step (still at least one batch).
    pub fn with_chunk_bytes(mut self, bytes: usize) -> Self {
        self.chunk_bytes = bytes.max(1);
        self
    }

    /// Bytes of record batches read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
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
        let parts = self.read_bytes(self.next).await?;
        // DeleteRecords or retention may move the log start past the reader while it runs, and
        // the remote tier keeps the records below it until its next pass: what the broker no
        // longer serves is not exported either.
        let log_start = self.log.log_start_offset();
        if self.next < log_start {
            return Err(ExportError::Expired {
                topic: self.log.topic().to_string(),
                partition: self.log.partition(),
                log_start,
                log_end: self.log.high_watermark(),
            });
        }
        let bytes: usize = parts.iter().map(Bytes::len).sum();
        if bytes == 0 {
            return Ok(None);
        }
        self.bytes_read += bytes as u64;
        let mut records = Vec::new();
        let mut advanced = false;
        let max_message_bytes = self.log.config().max_message_bytes;
        for batch in parts.into_iter().flat_map(BatchIter::new) {
            if batch.next_offset() <= self.next {
                continue;
            }
            // Before anything from the batch is used: decoding a compressed batch rebuilds it
            // around its inflated records with a fresh CRC, so a rotten one would decode.
            batch.validate().map_err(|problem| ExportError::Corrupt {
                topic: self.log.topic().to_string(),
                partition: self.log.partition(),
                offset: batch.base_offset(),
                problem,
            })?;
            self.next = batch.next_offset();
            advanced = true;
            if batch.is_control() {
                continue;
            }
            decode_into(&batch, self.from, self.to, max_message_bytes, &mut records)?;
            if self.next > self.to {
                break;
            }
        }
        if !advanced {
            return Err(self.missing(self.next));
        }
        Ok(Some(records))
    }

    /// Whole batches from `offset` on, about [`Self::with_chunk_bytes`] of them, in one or
    /// more buffers (a remote read spanning chunks is not joined: it would only be copied).
    async fn read_bytes(&self, offset: i64) -> Result<Vec<Bytes>, ExportError> {
        if offset < self.log.local_log_start_offset() {
            return self.read_remote(offset).await;
        }
        let log = self.log.clone();
        let max = self.chunk_bytes;
        let read = tokio::task::spawn_blocking(move || log.read(offset, max))
            .await
            .map_err(|e| ExportError::Io {
                action: "reading",
                path: self.log.dir().to_path_buf(),
                source: std::io::Error::other(e),
            })?;
        match read {
            Ok(read) => Ok(vec![read.records]),
            // On a running broker local retention may delete the segment between the check
            // above and the read, once the remote tier holds it: read it from there.
            Err(crate::log::LogError::OffsetOutOfRange { .. })
                if offset < self.log.local_log_start_offset() =>
            {
                self.read_remote(offset).await
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn read_remote(&self, offset: i64) -> Result<Vec<Bytes>, ExportError> {
        let Some(remote) = &self.remote else {
            return Err(self.missing(offset));
        };
        let parts = remote
            .read_parts(
                self.log.topic(),
                self.log.partition(),
                offset,
                self.chunk_bytes,
            )
            .await?;
        if parts.is_empty() {
            return Err(self.missing(offset));
        }
        Ok(parts)
    }

    fn missing(&self, offset: i64) -> ExportError {
        ExportError::Missing {
            topic: self.log.topic().to_string(),
            partition: self.log.partition(),
            offset,
        }
    }
}

/// One step of a [`PrefetchedChunks`] stream: the records in range and where the reader is.
pub struct Chunk {
    pub records: Vec<ExportRecord>,
    /// The offset after the last batch read ([`RecordReader::position`]).
    pub position: i64,
    /// Bytes of record batches read so far ([`RecordReader::bytes_read`]).
    pub bytes_read: u64,
}

/// A [`RecordReader`] running ahead in its own task, `depth` chunks at most, so that reading
/// (remote requests, decompression, decoding) overlaps with Parquet encoding.
pub struct PrefetchedChunks {
    chunks: tokio::sync::mpsc::Receiver<Result<Chunk, ExportError>>,
    task: tokio::task::JoinHandle<()>,
}

impl RecordReader {
    pub fn prefetch(mut self, depth: usize) -> PrefetchedChunks {
        let (tx, chunks) = tokio::sync::mpsc::channel(depth.max(1));
        let task = tokio::spawn(async move {
            loop {
                let next = match self.next_chunk().await {
                    Ok(Some(records)) => Ok(Chunk {
                        records,
                        position: self.position(),
                        bytes_read: self.bytes_read(),
                    }),
                    Ok(None) => return,
                    Err(e) => Err(e),
                };
                let failed = next.is_err();
                if tx.send(next).await.is_err() || failed {
                    return;
                }
            }
        });
        PrefetchedChunks { chunks, task }
    }
}

impl PrefetchedChunks {
    /// The next chunk, `None` at the end of the range.
    pub async fn next(&mut self) -> Result<Option<Chunk>, ExportError> {
        self.chunks.recv().await.transpose()
    }
}

impl Drop for PrefetchedChunks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Decodes one batch and appends its records with offsets in `from..=to` (a compressed batch
/// inflates at most 16 x the topic's `max.message.bytes`, see `log::decode_bounded`).
pub(crate) fn decode_into(
    batch: &RecordBatch,
    from: i64,
    to: i64,
    max_message_bytes: usize,
    out: &mut Vec<ExportRecord>,
) -> Result<(), ExportError> {
    let log_append = batch.timestamp_type() == TimestampType::LogAppendTime;
    let set = decode_bounded(batch, max_message_bytes).map_err(|e| ExportError::Decode {
        offset: batch.base_offset(),
        message: e.to_string(),
    })?;
    for record in set.records {
        if record.offset < from || record.offset > to {
            continue;
        }
        let claim = claim_fields(&record.headers, record.value.as_deref());
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
            claim,
        });
    }
    Ok(())
}

/// A claim ticket's fields, for records carrying the `claimcheck.version` header (what the
/// gateway writes); anything else, or a header set that is not a valid ticket, is `None`.
fn claim_fields(
    headers: &kafka_protocol::indexmap::IndexMap<kafka_protocol::protocol::StrBytes, Option<Bytes>>,
    value: Option<&[u8]>,
) -> Option<ClaimFields> {
    use strata_claimcheck::ClaimTicket;
    use strata_claimcheck::ticket::header;
    if !headers.keys().any(|k| k.as_str() == header::VERSION) {
        return None;
    }
    let pairs = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?)));
    let ticket = ClaimTicket::from_record(pairs, value.unwrap_or_default()).ok()?;
    Some(ClaimFields {
        id: ticket.id.to_string(),
        uri: ticket.uri,
        size: ticket.size,
        sha256: ticket.sha256,
    })
}
