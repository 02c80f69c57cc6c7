//! The sparse time index of one segment: (max timestamp so far, offset of the batch carrying it),
//! appended whenever an offset index entry is and the max timestamp grew, plus a final entry when
//! the segment closes. Like the offset index it lives in memory and the file is a rebuildable
//! cache (see `offset_index.rs`).
//!
//! Its last entry is the segment's max timestamp, which retention and ListOffsets(-3) need without
//! reading the log: that is what keeps a clean start O(segments).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::offset_index::IndexDamage;

const ENTRY_SIZE: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    pub timestamp: i64,
    pub offset: i64,
}

pub(crate) struct TimeIndex {
    path: PathBuf,
    base_offset: i64,
    entries: Vec<TimeEntry>,
    max_entries: usize,
    persisted: usize,
}

impl TimeIndex {
    pub fn new(path: PathBuf, base_offset: i64, max_bytes: u64) -> Self {
        Self {
            path,
            base_offset,
            entries: Vec::new(),
            max_entries: (max_bytes as usize / ENTRY_SIZE).max(1),
            persisted: 0,
        }
    }

    /// Loads and sanity-checks a time index; `next_offset` bounds the entry offsets.
    pub fn load(
        path: PathBuf,
        base_offset: i64,
        max_bytes: u64,
        next_offset: Option<i64>,
    ) -> Result<Self, IndexDamage> {
        let bytes = std::fs::read(&path)?;
        if bytes.len() % ENTRY_SIZE != 0 {
            return Err(IndexDamage::BadSize(bytes.len() as u64));
        }
        let mut index = Self::new(path, base_offset, max_bytes);
        for (i, chunk) in bytes.chunks_exact(ENTRY_SIZE).enumerate() {
            let timestamp = i64::from_be_bytes(chunk[0..8].try_into().expect("8 bytes"));
            let relative = u32::from_be_bytes(chunk[8..12].try_into().expect("4 bytes"));
            let entry = TimeEntry {
                timestamp,
                offset: base_offset + i64::from(relative),
            };
            if let Some(last) = index.entries.last()
                && (entry.timestamp <= last.timestamp || entry.offset < last.offset)
            {
                return Err(IndexDamage::NotIncreasing(i));
            }
            if let Some(next) = next_offset
                && entry.offset >= next
            {
                return Err(IndexDamage::BeyondLog(i, entry.offset as u64, next as u64));
            }
            index.entries.push(entry);
        }
        index.persisted = index.entries.len();
        Ok(index)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }
    pub fn last(&self) -> Option<TimeEntry> {
        self.entries.last().copied()
    }

    /// Appends when `timestamp` is larger than the last entry's.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) {
        if self
            .entries
            .last()
            .is_none_or(|last| timestamp > last.timestamp && offset >= last.offset)
        {
            self.entries.push(TimeEntry { timestamp, offset });
        }
    }

    /// The offset to start scanning from to find the first batch with max timestamp >= `target`:
    /// every batch up to the last entry below `target` is older than `target`.
    pub fn scan_start(&self, target: i64) -> i64 {
        let index = self.entries.partition_point(|e| e.timestamp < target);
        if index == 0 {
            self.base_offset
        } else {
            self.entries[index - 1].offset
        }
    }

    pub fn persist(&mut self, file: &File) -> io::Result<()> {
        if self.persisted == self.entries.len()
            && file.metadata()?.len() == (self.persisted * ENTRY_SIZE) as u64
        {
            return Ok(());
        }
        let mut buffer = Vec::with_capacity((self.entries.len() - self.persisted) * ENTRY_SIZE);
        for entry in &self.entries[self.persisted..] {
            buffer.extend_from_slice(&entry.timestamp.to_be_bytes());
            buffer.extend_from_slice(&((entry.offset - self.base_offset) as u32).to_be_bytes());
        }
        file.write_all_at(&buffer, (self.persisted * ENTRY_SIZE) as u64)?;
        file.set_len((self.entries.len() * ENTRY_SIZE) as u64)?;
        self.persisted = self.entries.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_start_skips_older_entries() {
        let mut index = TimeIndex::new(PathBuf::from("x"), 100, 1200);
        assert_eq!(index.scan_start(5), 100);
        index.maybe_append(1_000, 100);
        index.maybe_append(900, 105); // not larger: ignored
        index.maybe_append(2_000, 110);
        index.maybe_append(3_000, 120);
        assert_eq!(index.scan_start(500), 100);
        assert_eq!(index.scan_start(1_000), 100);
        assert_eq!(index.scan_start(1_001), 100);
        assert_eq!(index.scan_start(2_500), 110);
        assert_eq!(index.scan_start(9_999), 120);
        assert_eq!(index.last().unwrap().timestamp, 3_000);
    }
}
