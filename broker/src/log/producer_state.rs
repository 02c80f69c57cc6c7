//! Idempotent-producer state, after Kafka's `ProducerStateManager`.
//!
//! For each producer id: its epoch and the metadata (first/last sequence, first/last offset) of
//! its last [`CACHED_BATCHES`] batches. An append is checked against it under the partition's
//! append lock and the state is updated only after the write succeeded, so state and log never
//! disagree. A retried batch that matches a cached one is answered with the original offsets and
//! not written again.
//!
//! Crash consistency: the state is a pure function of the log. Snapshots (`<offset>.snapshot`,
//! state as of that offset) are written at segment roll and clean shutdown; recovery loads the
//! newest snapshot at or below the recovered log end and replays the batches after it.
//!
//! Snapshot file: `STPS` magic, u16 version, u32 CRC-32C of the rest, u32 count, then per producer
//! `i64 pid, i16 epoch, u8 n, n * (i32 first_seq, i32 last_seq, i64 first_offset, i64 last_offset)`.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::Path;

use strata_format::{RecordBatch, increment_sequence};

use super::LogError;

/// Kafka keeps the last five batches per producer (`max.in.flight.requests.per.connection` <= 5).
pub(crate) const CACHED_BATCHES: usize = 5;
const SNAPSHOT_MAGIC: &[u8; 4] = b"STPS";
const SNAPSHOT_VERSION: u16 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMetadata>,
}

/// The verdict on an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SequenceCheck {
    /// Not idempotent, or next in sequence: append it.
    Append,
    /// A retry of a batch already in the log, at these offsets.
    Duplicate { first_offset: i64, last_offset: i64 },
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateManager {
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Checks `batch` against the producer's state (Kafka's `ProducerAppendInfo.checkSequence`).
    pub fn check(&self, batch: &RecordBatch) -> Result<SequenceCheck, LogError> {
        if !batch.has_producer_id() {
            return Ok(SequenceCheck::Append);
        }
        let producer_id = batch.producer_id();
        let (epoch, first, last) = (
            batch.producer_epoch(),
            batch.base_sequence(),
            batch.last_sequence(),
        );
        let Some(entry) = self.producers.get(&producer_id) else {
            // Unknown producer (new, or its state expired with retention): accept any sequence,
            // as Kafka does since KIP-360.
            return Ok(SequenceCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(LogError::InvalidProducerEpoch {
                producer_id,
                current_epoch: entry.epoch,
                received_epoch: epoch,
            });
        }
        if epoch > entry.epoch {
            // A bumped epoch restarts the sequence at 0.
            if first != 0 {
                return Err(LogError::OutOfOrderSequence {
                    producer_id,
                    expected_sequence: 0,
                    received_sequence: first,
                });
            }
            return Ok(SequenceCheck::Append);
        }
        if let Some(cached) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == first && b.last_sequence == last)
        {
            return Ok(SequenceCheck::Duplicate {
                first_offset: cached.first_offset,
                last_offset: cached.last_offset,
            });
        }
        let Some(previous) = entry.batches.back() else {
            return Ok(SequenceCheck::Append);
        };
        let expected = increment_sequence(previous.last_sequence, 1);
        if first != expected {
            return Err(LogError::OutOfOrderSequence {
                producer_id,
                expected_sequence: expected,
                received_sequence: first,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch that is now in the log at `first_offset..=last_offset`.
    pub fn record(&mut self, batch: &RecordBatch, first_offset: i64, last_offset: i64) {
        if !batch.has_producer_id() {
            return;
        }
        let entry = self
            .producers
            .entry(batch.producer_id())
            .or_insert_with(|| ProducerEntry {
                epoch: batch.producer_epoch(),
                batches: VecDeque::new(),
            });
        if batch.producer_epoch() != entry.epoch {
            entry.epoch = batch.producer_epoch();
            entry.batches.clear();
        }
        if batch.base_sequence() < 0 {
            return;
        }
        entry.batches.push_back(BatchMetadata {
            first_sequence: batch.base_sequence(),
            last_sequence: batch.last_sequence(),
            first_offset,
            last_offset,
        });
        while entry.batches.len() > CACHED_BATCHES {
            entry.batches.pop_front();
        }
    }

    /// Forgets producers whose every cached batch is below the log start (Kafka does the same
    /// when retention removes a producer's last batch).
    pub fn remove_below(&mut self, log_start_offset: i64) {
        self.producers.retain(|_, entry| {
            entry
                .batches
                .back()
                .is_none_or(|b| b.last_offset >= log_start_offset)
        });
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::with_capacity(4 + self.producers.len() * 64);
        body.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<_> = self.producers.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let entry = &self.producers[&id];
            body.extend_from_slice(&id.to_be_bytes());
            body.extend_from_slice(&entry.epoch.to_be_bytes());
            body.push(entry.batches.len() as u8);
            for batch in &entry.batches {
                body.extend_from_slice(&batch.first_sequence.to_be_bytes());
                body.extend_from_slice(&batch.last_sequence.to_be_bytes());
                body.extend_from_slice(&batch.first_offset.to_be_bytes());
                body.extend_from_slice(&batch.last_offset.to_be_bytes());
            }
        }
        let mut out = Vec::with_capacity(10 + body.len());
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&strata_format::crc32c(&body).to_be_bytes());
        out.extend_from_slice(&body);
        out
    }

    /// Decodes a snapshot; `None` for anything damaged (the caller then replays the log).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < 14 || &bytes[0..4] != SNAPSHOT_MAGIC {
            return None;
        }
        if u16::from_be_bytes([bytes[4], bytes[5]]) != SNAPSHOT_VERSION {
            return None;
        }
        let crc = u32::from_be_bytes(bytes[6..10].try_into().ok()?);
        let body = &bytes[10..];
        if strata_format::crc32c(body) != crc {
            return None;
        }
        let mut cursor = Cursor(body);
        let count = cursor.u32()?;
        let mut producers = HashMap::new();
        for _ in 0..count {
            let id = cursor.i64()?;
            let epoch = cursor.i16()?;
            let n = cursor.u8()?;
            let mut batches = VecDeque::new();
            for _ in 0..n {
                batches.push_back(BatchMetadata {
                    first_sequence: cursor.i32()?,
                    last_sequence: cursor.i32()?,
                    first_offset: cursor.i64()?,
                    last_offset: cursor.i64()?,
                });
            }
            producers.insert(id, ProducerEntry { epoch, batches });
        }
        cursor.0.is_empty().then_some(Self { producers })
    }

    /// Writes `<dir>/<offset>.snapshot` atomically (temp + rename). `sync` adds the fsyncs.
    pub fn write_snapshot(&self, dir: &Path, offset: i64, sync: bool) -> io::Result<()> {
        let path = dir.join(super::segment::segment_file_name(offset, "snapshot"));
        super::manager::write_atomically(&path, &self.encode(), sync)
    }
}

struct Cursor<'a>(&'a [u8]);
impl Cursor<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_at_checked(N)?;
        self.0 = rest;
        head.try_into().ok()
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|b| b[0])
    }
    fn i16(&mut self) -> Option<i16> {
        self.take().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Option<i32> {
        self.take().map(i32::from_be_bytes)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_be_bytes)
    }
    fn i64(&mut self) -> Option<i64> {
        self.take().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::validation::test_batches::idempotent_batch;

    fn append(
        state: &mut ProducerStateManager,
        batch: &RecordBatch,
        offset: i64,
    ) -> Result<SequenceCheck, LogError> {
        let verdict = state.check(batch)?;
        if verdict == SequenceCheck::Append {
            state.record(batch, offset, offset + i64::from(batch.last_offset_delta()));
        }
        Ok(verdict)
    }

    #[test]
    fn duplicates_gaps_epochs_and_wrap() {
        let mut state = ProducerStateManager::default();
        assert_eq!(
            append(&mut state, &idempotent_batch(7, 0, 0, 3), 0).unwrap(),
            SequenceCheck::Append
        );
        assert_eq!(
            append(&mut state, &idempotent_batch(7, 0, 3, 2), 3).unwrap(),
            SequenceCheck::Append
        );
        // A retry of the first batch is a duplicate with the original offsets.
        assert_eq!(
            append(&mut state, &idempotent_batch(7, 0, 0, 3), 99).unwrap(),
            SequenceCheck::Duplicate {
                first_offset: 0,
                last_offset: 2
            }
        );
        // A gap is out of order (45), an older epoch is fenced (47).
        assert_eq!(
            append(&mut state, &idempotent_batch(7, 0, 9, 1), 5)
                .unwrap_err()
                .kafka_error_code(),
            45
        );
        assert_eq!(
            append(&mut state, &idempotent_batch(7, 1, 0, 1), 5).unwrap(),
            SequenceCheck::Append
        );
        assert_eq!(
            append(&mut state, &idempotent_batch(7, 0, 1, 1), 6)
                .unwrap_err()
                .kafka_error_code(),
            47
        );
        // A new epoch must start at sequence 0.
        assert_eq!(
            append(&mut state, &idempotent_batch(7, 2, 5, 1), 6)
                .unwrap_err()
                .kafka_error_code(),
            45
        );
        // Sequences wrap at i32::MAX.
        let mut state = ProducerStateManager::default();
        append(&mut state, &idempotent_batch(8, 0, i32::MAX - 1, 2), 0).unwrap();
        assert_eq!(
            append(&mut state, &idempotent_batch(8, 0, 0, 1), 2).unwrap(),
            SequenceCheck::Append
        );
        // Only the last five batches are remembered.
        let mut state = ProducerStateManager::default();
        for i in 0..7 {
            append(&mut state, &idempotent_batch(9, 0, i, 1), i64::from(i)).unwrap();
        }
        assert_eq!(
            append(&mut state, &idempotent_batch(9, 0, 2, 1), 7).unwrap(),
            SequenceCheck::Duplicate {
                first_offset: 2,
                last_offset: 2
            }
        );
        assert!(append(&mut state, &idempotent_batch(9, 0, 1, 1), 7).is_err());
    }

    #[test]
    fn snapshot_round_trip_and_damage() {
        let mut state = ProducerStateManager::default();
        for pid in 0..4 {
            for seq in 0..7 {
                append(
                    &mut state,
                    &idempotent_batch(pid, 3, seq, 1),
                    i64::from(seq) + pid * 100,
                )
                .unwrap();
            }
        }
        let bytes = state.encode();
        assert_eq!(ProducerStateManager::decode(&bytes).unwrap(), state);
        let mut damaged = bytes.clone();
        damaged[20] ^= 1;
        assert!(ProducerStateManager::decode(&damaged).is_none());
        assert!(ProducerStateManager::decode(&bytes[..bytes.len() - 1]).is_none());
    }
}
