//! Durable committed offsets: an fsynced, append-only journal replayed at start.
//!
//! Choice (documented in ARCHITECTURE.md terms): committed offsets live in
//! `<state dir>/consumer_offsets.journal`, not in an internal `__consumer_offsets` topic, so the
//! group coordinator does not depend on record-batch encoding or on the log engine's topic
//! namespace. The durability contract is the same as acks=all: an OffsetCommit is answered only
//! after its journal entries were written and `fsync`ed.
//!
//! Journal format: one entry per line, `<crc32c of json, 8 hex digits> <json>\n`. Replay stops
//! at the first torn or corrupt line (a crash mid-append) and ignores the rest. At open the
//! journal is compacted (latest entry per key) into a temporary file that is fsynced and renamed
//! over the journal, so it does not grow without bound across restarts.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

const JOURNAL_FILE: &str = "consumer_offsets.journal";

/// One committed position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_timestamp_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum JournalEntry {
    Commit {
        group: String,
        topic: String,
        partition: i32,
        committed: CommittedOffset,
    },
    DeleteGroup {
        group: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum OffsetStoreError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

fn io_context(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> OffsetStoreError {
    let context = context.into();
    move |source| OffsetStoreError::Io { context, source }
}

type GroupOffsets = BTreeMap<(String, i32), CommittedOffset>;

/// The committed offsets of every group, in memory, backed by the journal.
pub struct OffsetStore {
    journal: Arc<Mutex<File>>,
    offsets: Mutex<HashMap<String, GroupOffsets>>,
}

impl OffsetStore {
    /// Opens (replays and compacts) the journal in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, OffsetStoreError> {
        std::fs::create_dir_all(state_dir)
            .map_err(io_context(format!("create {}", state_dir.display())))?;
        let path = state_dir.join(JOURNAL_FILE);
        let offsets = replay(&path)?;
        compact(state_dir, &path, &offsets)?;
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_context(format!("open {}", path.display())))?;
        let committed: usize = offsets.values().map(BTreeMap::len).sum();
        tracing::info!(groups = offsets.len(), committed, path = %path.display(), "consumer offsets replayed");
        Ok(OffsetStore {
            journal: Arc::new(Mutex::new(journal)),
            offsets: Mutex::new(offsets),
        })
    }

    /// Durably records `commits` for `group`; returns once they are fsynced.
    pub async fn commit(
        &self,
        group: &str,
        commits: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), OffsetStoreError> {
        if commits.is_empty() {
            return Ok(());
        }
        let mut lines = String::new();
        for (topic, partition, committed) in &commits {
            let entry = JournalEntry::Commit {
                group: group.to_owned(),
                topic: topic.clone(),
                partition: *partition,
                committed: committed.clone(),
            };
            lines.push_str(&encode_line(&entry));
        }
        self.append_durably(lines).await?;
        let mut offsets = self.offsets.lock().expect("offsets lock");
        let group_offsets = offsets.entry(group.to_owned()).or_default();
        for (topic, partition, committed) in commits {
            group_offsets.insert((topic, partition), committed);
        }
        Ok(())
    }

    /// Durably forgets every offset of `group`.
    pub async fn delete_group(&self, group: &str) -> Result<(), OffsetStoreError> {
        self.append_durably(encode_line(&JournalEntry::DeleteGroup {
            group: group.to_owned(),
        }))
        .await?;
        self.offsets.lock().expect("offsets lock").remove(group);
        Ok(())
    }

    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        let offsets = self.offsets.lock().expect("offsets lock");
        offsets
            .get(group)?
            .get(&(topic.to_owned(), partition))
            .cloned()
    }

    /// Every committed offset of `group` as `(topic, partition, offset)`.
    pub fn fetch_all(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        let offsets = self.offsets.lock().expect("offsets lock");
        offsets
            .get(group)
            .map(|g| {
                g.iter()
                    .map(|((t, p), c)| (t.clone(), *p, c.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.offsets
            .lock()
            .expect("offsets lock")
            .get(group)
            .is_some_and(|g| !g.is_empty())
    }

    pub fn groups(&self) -> Vec<String> {
        let offsets = self.offsets.lock().expect("offsets lock");
        offsets
            .iter()
            .filter(|(_, g)| !g.is_empty())
            .map(|(name, _)| name.clone())
            .collect()
    }

    async fn append_durably(&self, lines: String) -> Result<(), OffsetStoreError> {
        let journal = Arc::clone(&self.journal);
        tokio::task::spawn_blocking(move || {
            let mut file = journal.lock().expect("journal lock");
            file.write_all(lines.as_bytes())
                .map_err(io_context("append offsets journal"))?;
            file.sync_data()
                .map_err(io_context("fsync offsets journal"))
        })
        .await
        .map_err(|join| OffsetStoreError::Io {
            context: "offsets journal task".into(),
            source: std::io::Error::other(join),
        })?
    }
}

fn encode_line(entry: &JournalEntry) -> String {
    let json = serde_json::to_string(entry).expect("journal entries serialize");
    format!("{:08x} {json}\n", crc32c::crc32c(json.as_bytes()))
}

fn decode_line(line: &str) -> Option<JournalEntry> {
    let (crc, json) = line.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    if crc32c::crc32c(json.as_bytes()) != crc {
        return None;
    }
    serde_json::from_str(json).ok()
}

fn replay(path: &Path) -> Result<HashMap<String, GroupOffsets>, OffsetStoreError> {
    let mut offsets: HashMap<String, GroupOffsets> = HashMap::new();
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(offsets),
        Err(err) => return Err(io_context(format!("open {}", path.display()))(err)),
    };
    for (line_no, line) in BufReader::new(file).lines().enumerate() {
        let Ok(line) = line else { break };
        let Some(entry) = decode_line(&line) else {
            tracing::warn!(path = %path.display(), line_no, "offsets journal: torn or corrupt entry, ignoring the rest");
            break;
        };
        match entry {
            JournalEntry::Commit {
                group,
                topic,
                partition,
                committed,
            } => {
                offsets
                    .entry(group)
                    .or_default()
                    .insert((topic, partition), committed);
            }
            JournalEntry::DeleteGroup { group } => {
                offsets.remove(&group);
            }
        }
    }
    Ok(offsets)
}

fn compact(
    state_dir: &Path,
    path: &PathBuf,
    offsets: &HashMap<String, GroupOffsets>,
) -> Result<(), OffsetStoreError> {
    let tmp = state_dir.join(format!("{JOURNAL_FILE}.tmp"));
    let mut file = File::create(&tmp).map_err(io_context(format!("create {}", tmp.display())))?;
    let mut contents = String::new();
    for (group, group_offsets) in offsets {
        for ((topic, partition), committed) in group_offsets {
            contents.push_str(&encode_line(&JournalEntry::Commit {
                group: group.clone(),
                topic: topic.clone(),
                partition: *partition,
                committed: committed.clone(),
            }));
        }
    }
    file.write_all(contents.as_bytes())
        .map_err(io_context("write compacted offsets journal"))?;
    file.sync_all()
        .map_err(io_context("fsync compacted offsets journal"))?;
    std::fs::rename(&tmp, path).map_err(io_context("rename compacted offsets journal"))?;
    File::open(state_dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_context(format!("fsync {}", state_dir.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: -1,
            metadata: Some("m".into()),
            commit_timestamp_ms: 1,
        }
    }

    #[tokio::test]
    async fn commits_survive_reopen_and_deletes_are_replayed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = OffsetStore::open(dir.path()).unwrap();
            store
                .commit(
                    "g1",
                    vec![("t".into(), 0, committed(5)), ("t".into(), 1, committed(7))],
                )
                .await
                .unwrap();
            store
                .commit("g1", vec![("t".into(), 0, committed(9))])
                .await
                .unwrap();
            store
                .commit("g2", vec![("t".into(), 0, committed(1))])
                .await
                .unwrap();
            store.delete_group("g2").await.unwrap();
        }
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.fetch("g1", "t", 0), Some(committed(9)));
        assert_eq!(store.fetch("g1", "t", 1), Some(committed(7)));
        assert_eq!(store.fetch("g2", "t", 0), None);
        assert_eq!(store.groups(), vec!["g1".to_string()]);
    }

    #[tokio::test]
    async fn a_torn_tail_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = OffsetStore::open(dir.path()).unwrap();
            store
                .commit("g", vec![("t".into(), 0, committed(3))])
                .await
                .unwrap();
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL_FILE))
            .unwrap();
        file.write_all(b"deadbeef {\"kind\":\"comm").unwrap();
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.fetch("g", "t", 0), Some(committed(3)));
    }
}
