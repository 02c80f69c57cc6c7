//! Chunk mode (`?mode=chunked`): a payload becomes a run of records on ONE partition.
//!
//! ```text
//!  data record  i = 0..n-1   value = chunk.bytes of payload   headers: claimcheck.chunk.id,
//!                                                                      claimcheck.chunk.index = i
//!  final record              value = JSON summary            headers: claimcheck.chunk.id,
//!                                                                      claimcheck.chunk.final = true,
//!                                                                      claimcheck.chunk.count = n,
//!                                                                      claimcheck.chunk.size,
//!                                                                      claimcheck.chunk.sha256
//!  abort record              value = reason                  headers: claimcheck.chunk.id,
//!                                                                      claimcheck.chunk.aborted = reason
//! ```
//!
//! The count is only known at the end, so it rides on the final record. Data records are
//! appended in batches of [`CHUNKS_PER_APPEND`] as the body streams in (memory: about
//! `(CHUNKS_PER_APPEND + 1) * chunk.bytes`). Records cannot be taken back once appended, so a
//! failure after the first batch (body aborted, size or digest mismatch, limit exceeded) appends
//! an abort record instead: readers ([`crate::reassemble`]) discard the payload on it, and a
//! payload without a final record is never delivered. All records of one payload go to one
//! partition: `?partition=` or the claim id modulo the partition count.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{ClaimError, Result};
use crate::service::ClaimCheckService;
use crate::sink::OutRecord;
use crate::ticket::{ClaimId, RecordPosition};
use crate::upload::{BodyVerifier, ByteStream, ClaimRequest};

/// Record header names of chunk mode.
pub mod chunk_header {
    pub const ID: &str = "claimcheck.chunk.id";
    pub const INDEX: &str = "claimcheck.chunk.index";
    pub const FINAL: &str = "claimcheck.chunk.final";
    pub const COUNT: &str = "claimcheck.chunk.count";
    pub const SIZE: &str = "claimcheck.chunk.size";
    pub const SHA256: &str = "claimcheck.chunk.sha256";
    pub const CONTENT_TYPE: &str = "claimcheck.chunk.content-type";
    pub const ABORTED: &str = "claimcheck.chunk.aborted";
}

/// Data records appended per `append_batch` call.
pub const CHUNKS_PER_APPEND: usize = 4;

/// The answer to a chunk-mode upload (also the JSON value of the final record, minus offsets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkedReceipt {
    pub id: ClaimId,
    pub topic: String,
    pub partition: i32,
    pub first_offset: i64,
    /// Offset of the final record.
    pub final_offset: i64,
    pub chunks: u32,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
}

/// The partition all records of payload `id` go to.
pub fn payload_partition(requested: Option<i32>, id: &ClaimId, partitions: i32) -> i32 {
    requested.unwrap_or_else(|| {
        let bytes = id.as_bytes();
        let n = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        (n % partitions.max(1) as u32) as i32
    })
}

struct ChunkWriter<'a> {
    svc: &'a ClaimCheckService,
    req: &'a ClaimRequest,
    id: ClaimId,
    partition: i32,
    pending: Vec<OutRecord>,
    next_index: u32,
    first_offset: Option<i64>,
}

impl ChunkWriter<'_> {
    fn headers(&self, extra: &[(&str, String)]) -> Vec<(String, Bytes)> {
        let mut headers = self.req.headers.clone();
        headers.push((chunk_header::ID.into(), Bytes::from(self.id.to_string())));
        headers.extend(
            extra
                .iter()
                .map(|(k, v)| (k.to_string(), Bytes::from(v.clone()))),
        );
        headers
    }

    async fn push_chunk(&mut self, value: Bytes) -> Result<()> {
        let headers = self.headers(&[(chunk_header::INDEX, self.next_index.to_string())]);
        self.next_index += 1;
        self.pending.push(OutRecord {
            key: self.req.key.clone(),
            value,
            headers,
        });
        if self.pending.len() >= CHUNKS_PER_APPEND {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<Vec<RecordPosition>> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        let records = std::mem::take(&mut self.pending);
        let positions = self
            .svc
            .sink()
            .append_batch(&self.req.topic, Some(self.partition), records)
            .await?;
        if self.first_offset.is_none() {
            self.first_offset = positions.first().map(|p| p.offset);
        }
        Ok(positions)
    }
}

/// Chunk mode end to end. See the module docs for the record layout and failure handling.
pub async fn produce_chunked(
    svc: &ClaimCheckService,
    req: ClaimRequest,
    body: ByteStream,
) -> Result<ChunkedReceipt> {
    req.validate(svc)?;
    let partitions = svc.sink().partition_count(&req.topic).unwrap_or(1);
    let id = ClaimId::random();
    let mut writer = ChunkWriter {
        svc,
        req: &req,
        id,
        partition: payload_partition(req.partition, &id, partitions),
        pending: Vec::new(),
        next_index: 0,
        first_offset: None,
    };
    match write_chunks(&mut writer, body).await {
        Ok(receipt) => {
            info!(claim = %id, topic = %req.topic, partition = receipt.partition,
                  chunks = receipt.chunks, size = receipt.size, "chunked payload produced");
            Ok(receipt)
        }
        Err(e) => {
            if writer.first_offset.is_some() {
                let reason = e.code().to_string();
                let headers = writer.headers(&[(chunk_header::ABORTED, reason.clone())]);
                let abort = svc
                    .sink()
                    .append(
                        &req.topic,
                        Some(writer.partition),
                        req.key.clone(),
                        Bytes::from(reason),
                        headers,
                    )
                    .await;
                if let Err(abort_err) = abort {
                    warn!(claim = %id, error = %abort_err, "appending chunk abort record failed");
                }
            }
            Err(e)
        }
    }
}

async fn write_chunks(
    writer: &mut ChunkWriter<'_>,
    mut body: ByteStream,
) -> Result<ChunkedReceipt> {
    let chunk_bytes = writer.svc.config().chunk_bytes.max(1);
    let expect = writer
        .req
        .expectations(writer.svc.config().max_upload_bytes);
    let mut verifier = BodyVerifier::default();
    let mut buffer = BytesMut::with_capacity(chunk_bytes);
    while let Some(piece) = body.next().await {
        let mut piece = piece?;
        verifier.update(&piece, &expect)?;
        while !piece.is_empty() {
            let take = (chunk_bytes - buffer.len()).min(piece.len());
            buffer.extend_from_slice(&piece.split_to(take));
            if buffer.len() == chunk_bytes {
                let chunk = std::mem::replace(&mut buffer, BytesMut::with_capacity(chunk_bytes));
                writer.push_chunk(chunk.freeze()).await?;
            }
        }
    }
    let stored = verifier.finish(&expect)?;
    if !buffer.is_empty() {
        writer.push_chunk(buffer.freeze()).await?;
    }
    let mut receipt = ChunkedReceipt {
        id: writer.id,
        topic: writer.req.topic.clone(),
        partition: writer.partition,
        first_offset: -1,
        final_offset: -1,
        chunks: writer.next_index,
        size: stored.size,
        sha256: stored.sha256_hex(),
        content_type: writer.req.content_type.clone(),
    };
    let headers = writer.headers(&[
        (chunk_header::FINAL, "true".into()),
        (chunk_header::COUNT, receipt.chunks.to_string()),
        (chunk_header::SIZE, receipt.size.to_string()),
        (chunk_header::SHA256, receipt.sha256.clone()),
        (chunk_header::CONTENT_TYPE, receipt.content_type.clone()),
    ]);
    let summary = Bytes::from(serde_json::to_vec(&receipt).expect("serializes"));
    writer.pending.push(OutRecord {
        key: writer.req.key.clone(),
        value: summary,
        headers,
    });
    let positions = writer.flush().await?;
    let final_position = positions.last().ok_or_else(|| {
        ClaimError::Internal("sink returned no position for the final record".into())
    })?;
    receipt.final_offset = final_position.offset;
    receipt.first_offset = writer.first_offset.unwrap_or(final_position.offset);
    Ok(receipt)
}
