//! Rebuilds chunk-mode payloads ([`crate::chunked`]) from a consumed record stream.
//!
//! Feed every consumed record to [`Reassembler::push`], in partition-offset order per partition.
//!
//! * **Bounded memory**: chunk bytes are spilled to an anonymous temp file per payload; memory
//!   holds only a small state per incomplete payload.
//! * **Interleaving**: payloads are tracked per `(partition, claim id)`, so several payloads in
//!   flight on one partition are fine.
//! * **Duplicates** (producer retries re-append a batch): a chunk whose index is below the next
//!   expected index is skipped; a gap (index above it) discards the payload; a final record whose
//!   count, size or SHA-256 disagrees with what was assembled discards it too.
//! * **Restart**: [`Reassembler::safe_commit_offset`] is the lowest first offset of any incomplete
//!   payload on the partition (or one past the last record seen): commit that, and after a
//!   restart every incomplete payload is re-read from its first chunk. Continuation chunks whose
//!   payload started before the restart point belong to payloads already delivered: they are
//!   ignored. Delivery is at-least-once: a payload completed after the committed offset may be
//!   delivered again after a restart (deduplicate on the claim id if that matters).
//! * **Abandoned payloads** (producer died without a final or abort record) are dropped once
//!   `abandon_after_records` offsets passed their first chunk (checked when a chunk record
//!   arrives), so the commit offset moves on.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tracing::{debug, warn};

use crate::chunked::chunk_header;
use crate::error::{ClaimError, Result};
use crate::ticket::ClaimId;

/// A consumed record, as the consumer sees it.
#[derive(Debug, Clone, Copy)]
pub struct ConsumedRecord<'a> {
    pub partition: i32,
    pub offset: i64,
    pub headers: &'a [(String, bytes::Bytes)],
    pub value: &'a [u8],
}

/// A complete, verified payload; `file` is positioned at its start.
#[derive(Debug)]
pub struct ReassembledPayload {
    pub id: ClaimId,
    pub partition: i32,
    pub first_offset: i64,
    pub final_offset: i64,
    pub size: u64,
    pub sha256: String,
    pub content_type: String,
    pub file: File,
}

/// What one pushed record meant.
#[derive(Debug)]
pub enum ReassemblyEvent {
    /// Not a chunk-mode record: handle it yourself.
    NotAChunk,
    /// A chunk was stored (or recognised as a duplicate / leftover) and nothing is complete yet.
    Progress,
    /// A payload is complete and verified.
    Payload(ReassembledPayload),
    /// A payload was dropped: aborted by its producer, a gap, a digest mismatch or abandoned.
    Discarded { id: ClaimId, reason: String },
}

struct IncompletePayload {
    first_offset: i64,
    next_index: u32,
    size: u64,
    hasher: Sha256,
    file: File,
}

/// Rebuilds chunked payloads; see the module docs.
pub struct Reassembler {
    spill_dir: PathBuf,
    abandon_after_records: Option<i64>,
    incomplete: HashMap<(i32, ClaimId), IncompletePayload>,
    next_offset: HashMap<i32, i64>,
}

fn header<'a>(record: &ConsumedRecord<'a>, name: &str) -> Option<&'a str> {
    record
        .headers
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
}

fn number<T: std::str::FromStr>(record: &ConsumedRecord<'_>, name: &str) -> Result<T> {
    header(record, name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            ClaimError::Reassembly(format!("record {} lacks a valid {name}", record.offset))
        })
}

impl Reassembler {
    /// Spills chunks into temp files under `spill_dir`.
    pub fn new(spill_dir: impl Into<PathBuf>) -> Self {
        Self {
            spill_dir: spill_dir.into(),
            abandon_after_records: None,
            incomplete: HashMap::new(),
            next_offset: HashMap::new(),
        }
    }

    /// Drop incomplete payloads whose first chunk is more than `records` offsets behind.
    pub fn with_abandon_after_records(mut self, records: i64) -> Self {
        self.abandon_after_records = Some(records);
        self
    }

    /// Number of payloads currently being assembled.
    pub fn incomplete_count(&self) -> usize {
        self.incomplete.len()
    }

    /// The offset a consumer may commit for `partition` (see the module docs); `None` before
    /// any record of the partition was pushed.
    pub fn safe_commit_offset(&self, partition: i32) -> Option<i64> {
        let lowest_incomplete = self
            .incomplete
            .iter()
            .filter(|((p, _), _)| *p == partition)
            .map(|(_, payload)| payload.first_offset)
            .min();
        lowest_incomplete.or_else(|| self.next_offset.get(&partition).copied())
    }

    /// Processes one record.
    pub fn push(&mut self, record: ConsumedRecord<'_>) -> Result<ReassemblyEvent> {
        self.next_offset.insert(record.partition, record.offset + 1);
        let Some(id) = header(&record, chunk_header::ID) else {
            return Ok(ReassemblyEvent::NotAChunk);
        };
        let id: ClaimId = id.parse().map_err(|_| {
            ClaimError::Reassembly(format!("record {} has a malformed chunk id", record.offset))
        })?;
        let slot = (record.partition, id);

        if let Some(reason) = header(&record, chunk_header::ABORTED) {
            self.incomplete.remove(&slot);
            return Ok(ReassemblyEvent::Discarded {
                id,
                reason: format!("aborted by producer: {reason}"),
            });
        }
        if header(&record, chunk_header::FINAL).is_some() {
            return self.finish(slot, &record);
        }

        let index: u32 = number(&record, chunk_header::INDEX)?;
        match self.incomplete.get_mut(&slot) {
            None if index == 0 => {
                let mut file = tempfile::tempfile_in(&self.spill_dir)?;
                file.write_all(record.value)?;
                let mut hasher = Sha256::new();
                hasher.update(record.value);
                self.incomplete.insert(
                    slot,
                    IncompletePayload {
                        first_offset: record.offset,
                        next_index: 1,
                        size: record.value.len() as u64,
                        hasher,
                        file,
                    },
                );
            }
            None => {
                debug!(claim = %id, index, offset = record.offset, "chunk of a payload started before this reader: ignored");
            }
            Some(payload) if index < payload.next_index => {
                debug!(claim = %id, index, offset = record.offset, "duplicate chunk skipped");
            }
            Some(payload) if index == payload.next_index => {
                payload.file.write_all(record.value)?;
                payload.hasher.update(record.value);
                payload.size += record.value.len() as u64;
                payload.next_index += 1;
            }
            Some(payload) => {
                let expected = payload.next_index;
                self.incomplete.remove(&slot);
                return Ok(ReassemblyEvent::Discarded {
                    id,
                    reason: format!("gap: expected chunk {expected}, got {index}"),
                });
            }
        }
        Ok(self
            .abandon_stale(record.partition, record.offset)
            .unwrap_or(ReassemblyEvent::Progress))
    }

    fn finish(
        &mut self,
        slot: (i32, ClaimId),
        record: &ConsumedRecord<'_>,
    ) -> Result<ReassemblyEvent> {
        let (partition, id) = slot;
        let count: u32 = number(record, chunk_header::COUNT)?;
        let size: u64 = number(record, chunk_header::SIZE)?;
        let sha256 = header(record, chunk_header::SHA256)
            .unwrap_or_default()
            .to_string();
        let content_type = header(record, chunk_header::CONTENT_TYPE)
            .unwrap_or_default()
            .to_string();
        let payload = match self.incomplete.remove(&slot) {
            Some(payload) => payload,
            // An empty payload has no data chunks.
            None if count == 0 => IncompletePayload {
                first_offset: record.offset,
                next_index: 0,
                size: 0,
                hasher: Sha256::new(),
                file: tempfile::tempfile_in(&self.spill_dir)?,
            },
            // Duplicate final record, or the payload was delivered before a restart.
            None => return Ok(ReassemblyEvent::Progress),
        };
        let computed = hex::encode(payload.hasher.finalize());
        let problem = if payload.next_index != count {
            Some(format!(
                "final record says {count} chunks, assembled {}",
                payload.next_index
            ))
        } else if payload.size != size {
            Some(format!(
                "final record says {size} bytes, assembled {}",
                payload.size
            ))
        } else if computed != sha256 {
            Some(format!(
                "SHA-256 mismatch: final record says {sha256}, assembled {computed}"
            ))
        } else {
            None
        };
        if let Some(reason) = problem {
            warn!(claim = %id, partition, %reason, "chunked payload discarded");
            return Ok(ReassemblyEvent::Discarded { id, reason });
        }
        let mut file = payload.file;
        file.flush()?;
        file.seek(SeekFrom::Start(0))?;
        Ok(ReassemblyEvent::Payload(ReassembledPayload {
            id,
            partition,
            first_offset: payload.first_offset,
            final_offset: record.offset,
            size,
            sha256: computed,
            content_type,
            file,
        }))
    }

    fn abandon_stale(&mut self, partition: i32, offset: i64) -> Option<ReassemblyEvent> {
        let limit = self.abandon_after_records?;
        let stale = self
            .incomplete
            .iter()
            .filter(|((p, _), payload)| *p == partition && offset - payload.first_offset > limit)
            .map(|(slot, _)| *slot)
            .min_by_key(|slot| self.incomplete[slot].first_offset)?;
        self.incomplete.remove(&stale);
        Some(ReassemblyEvent::Discarded {
            id: stale.1,
            reason: format!("abandoned: no final record within {limit} records"),
        })
    }
}
