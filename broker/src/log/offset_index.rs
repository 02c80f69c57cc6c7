//! The sparse offset index of one segment: (relative offset, file position) every
//! `index.interval.bytes` of log, so a read seeks near its batch instead of scanning the segment.
//!
//! The entries live in memory (a sorted `Vec`) and are persisted to the `.index` file lazily
//! (on flush, roll and shutdown): the file is only a cache of what a scan of the `.log` would
//! produce, so a stale or damaged index is rebuilt by recovery, never trusted blindly. Entry
//! offsets are batch *base* offsets, so the batch at an entry's position contains every offset
//! from the entry on until the next batch. The file holds exactly the entries (no
//! preallocation), so a closed segment's index needs no trimming.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const ENTRY_SIZE: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OffsetEntry {
    pub offset: i64,
    pub position: u32,
}

/// Why an index file cannot be used (it will be rebuilt).
#[derive(Debug, thiserror::Error)]
pub(crate) enum IndexDamage {
    #[error("index file size {0} is not a multiple of the entry size")]
    BadSize(u64),
    #[error("index entries are not strictly increasing at entry {0}")]
    NotIncreasing(usize),
    #[error("index entry {0} points beyond the log ({1} >= {2})")]
    BeyondLog(usize, u64, u64),
    #[error("reading index: {0}")]
    Io(#[from] io::Error),
}

pub(crate) struct OffsetIndex {
    path: PathBuf,
    base_offset: i64,
    entries: Vec<OffsetEntry>,
    max_entries: usize,
    /// Entries already written to the file.
    persisted: usize,
}

impl OffsetIndex {
    pub fn new(path: PathBuf, base_offset: i64, max_bytes: u64) -> Self {
        Self {
            path,
            base_offset,
            entries: Vec::new(),
            max_entries: (max_bytes as usize / ENTRY_SIZE).max(1),
            persisted: 0,
        }
    }

    /// Loads and sanity-checks an index file against the log size. O(entries), no log reads.
    pub fn load(
        path: PathBuf,
        base_offset: i64,
        max_bytes: u64,
        log_size: u64,
    ) -> Result<Self, IndexDamage> {
        let bytes = std::fs::read(&path)?;
        if bytes.len() % ENTRY_SIZE != 0 {
            return Err(IndexDamage::BadSize(bytes.len() as u64));
        }
        let mut index = Self::new(path, base_offset, max_bytes);
        for (i, chunk) in bytes.chunks_exact(ENTRY_SIZE).enumerate() {
            let relative = u32::from_be_bytes(chunk[0..4].try_into().expect("4 bytes"));
            let position = u32::from_be_bytes(chunk[4..8].try_into().expect("4 bytes"));
            let entry = OffsetEntry {
                offset: base_offset + i64::from(relative),
                position,
            };
            if let Some(last) = index.entries.last()
                && (entry.offset <= last.offset || entry.position <= last.position)
            {
                return Err(IndexDamage::NotIncreasing(i));
            }
            if u64::from(position) >= log_size {
                return Err(IndexDamage::BeyondLog(i, u64::from(position), log_size));
            }
            index.entries.push(entry);
        }
        index.persisted = index.entries.len();
        Ok(index)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }
    pub fn last(&self) -> Option<OffsetEntry> {
        self.entries.last().copied()
    }

    /// Records that the batch starting at `offset` begins at `position`. Ignores entries that
    /// would break monotonicity (cannot happen with a correct caller).
    pub fn append(&mut self, offset: i64, position: u32) {
        if let Some(last) = self.entries.last()
            && (offset <= last.offset || position <= last.position)
        {
            return;
        }
        debug_assert!(offset - self.base_offset <= i64::from(u32::MAX));
        self.entries.push(OffsetEntry { offset, position });
    }

    /// The last entry at or before `offset`; the segment start when there is none.
    pub fn lookup(&self, offset: i64) -> OffsetEntry {
        let index = self.entries.partition_point(|e| e.offset <= offset);
        if index == 0 {
            OffsetEntry {
                offset: self.base_offset,
                position: 0,
            }
        } else {
            self.entries[index - 1]
        }
    }

    /// Writes entries not yet in the file (and cuts anything beyond them).
    pub fn persist(&mut self, file: &File) -> io::Result<()> {
        if self.persisted == self.entries.len()
            && file.metadata()?.len() == (self.persisted * ENTRY_SIZE) as u64
        {
            return Ok(());
        }
        let mut buffer = Vec::with_capacity((self.entries.len() - self.persisted) * ENTRY_SIZE);
        for entry in &self.entries[self.persisted..] {
            buffer.extend_from_slice(&((entry.offset - self.base_offset) as u32).to_be_bytes());
            buffer.extend_from_slice(&entry.position.to_be_bytes());
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
    fn lookup_finds_floor_entry() {
        let mut index = OffsetIndex::new(PathBuf::from("x"), 100, 1024);
        assert_eq!(
            index.lookup(150),
            OffsetEntry {
                offset: 100,
                position: 0
            }
        );
        index.append(110, 4000);
        index.append(120, 8000);
        index.append(115, 9000); // out of order: ignored
        assert_eq!(index.lookup(105).position, 0);
        assert_eq!(index.lookup(110).position, 4000);
        assert_eq!(index.lookup(119).position, 4000);
        assert_eq!(index.lookup(1_000).position, 8000);
    }

    #[test]
    fn persist_and_load_round_trip_and_detect_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let file = File::options()
            .create(true)
            .read(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .unwrap();
        let mut index = OffsetIndex::new(path.clone(), 0, 16);
        index.append(5, 100);
        index.persist(&file).unwrap();
        index.append(9, 200);
        assert!(index.is_full());
        index.persist(&file).unwrap();
        let loaded = OffsetIndex::load(path.clone(), 0, 16, 1000).unwrap();
        assert_eq!(loaded.entries, index.entries);
        assert!(matches!(
            OffsetIndex::load(path.clone(), 0, 16, 150),
            Err(IndexDamage::BeyondLog(..))
        ));
        file.set_len(13).unwrap();
        assert!(matches!(
            OffsetIndex::load(path, 0, 16, 1000),
            Err(IndexDamage::BadSize(13))
        ));
    }
}
