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
//!
//! **Expiry (`offsets.retention.minutes`, Kafka's KIP-211 rules).** Offsets of a group with
//! members never expire. A group whose members all left is *empty since* that moment, recorded
//! durably ([`Membership`]); its offsets expire `retention` after that moment or after their own
//! commit, whichever is later. Offsets of a group that never had members here (standalone
//! consumers that `assign` and commit) expire `retention` after their commit. A group that had
//! members when the broker stopped counts as empty from the next start (its members are gone;
//! Kafka's coordinator failover does the same once their sessions expire). Expired offsets are
//! removed durably before they disappear from memory.
//!
//! **Deleted topics.** Deleting a topic journals one entry that removes its offsets from every
//! group, so neither memory nor replay keeps them for a topic later created under the same name.
//! Commits check that their partitions exist under the same lock that orders the journal
//! ([`OffsetStore::commit_existing`]), so a commit racing the deletion cannot outlive it.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::log::now_ms;

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
    /// The group gained its first member (`empty_since_ms: None`) or lost its last one.
    Membership {
        group: String,
        empty_since_ms: Option<i64>,
    },
    /// Offsets removed by `offsets.retention.minutes`.
    Expire {
        group: String,
        partitions: Vec<(String, i32)>,
    },
    /// Offsets removed by an OffsetDelete request.
    DeleteOffsets {
        group: String,
        partitions: Vec<(String, i32)>,
    },
    /// The topic was deleted: every group's offsets of it are gone, so that a topic created
    /// later under the same name starts without them (Kafka does the same).
    DeleteTopic {
        topic: String,
    },
}

/// Whether a group has members, as far as offset expiry is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    Active,
    /// Wall-clock milliseconds since which the group has had no members.
    EmptySince(i64),
}

impl Membership {
    fn empty_since_ms(self) -> Option<i64> {
        match self {
            Membership::Active => None,
            Membership::EmptySince(ms) => Some(ms),
        }
    }
}

/// One offset removed by expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
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

/// What the journal holds, in memory.
#[derive(Debug, Default)]
struct Journaled {
    offsets: HashMap<String, GroupOffsets>,
    membership: HashMap<String, Membership>,
}

/// The committed offsets of every group, in memory, backed by the journal.
pub struct OffsetStore {
    journal: Arc<Mutex<File>>,
    /// Held from deciding a change to applying it in memory, so that the journal's order is the
    /// order of the changes (an expiry never removes a commit that raced it).
    changes: tokio::sync::Mutex<()>,
    offsets: Mutex<HashMap<String, GroupOffsets>>,
    membership: Mutex<HashMap<String, Membership>>,
}

impl OffsetStore {
    /// Opens (replays and compacts) the journal in `state_dir`.
    pub fn open(state_dir: &Path) -> Result<Self, OffsetStoreError> {
        std::fs::create_dir_all(state_dir)
            .map_err(io_context(format!("create {}", state_dir.display())))?;
        let path = state_dir.join(JOURNAL_FILE);
        let mut journaled = replay(&path)?;
        // Members do not survive a restart: a group active at the stop is empty from now on.
        let now = now_ms();
        for membership in journaled.membership.values_mut() {
            if *membership == Membership::Active {
                *membership = Membership::EmptySince(now);
            }
        }
        let offsets = &journaled.offsets;
        journaled
            .membership
            .retain(|group, _| offsets.contains_key(group));
        compact(state_dir, &path, &journaled)?;
        let Journaled {
            offsets,
            membership,
        } = journaled;
        let journal = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_context(format!("open {}", path.display())))?;
        let committed: usize = offsets.values().map(BTreeMap::len).sum();
        tracing::info!(groups = offsets.len(), committed, path = %path.display(), "consumer offsets replayed");
        Ok(OffsetStore {
            journal: Arc::new(Mutex::new(journal)),
            changes: tokio::sync::Mutex::new(()),
            offsets: Mutex::new(offsets),
            membership: Mutex::new(membership),
        })
    }

    /// Durably records that `group` gained its first member or lost its last one; a no-op when
    /// that is what the journal says already, and for a group that empties without having been
    /// recorded active (its offsets expire by their commit times).
    pub async fn set_membership(
        &self,
        group: &str,
        membership: Membership,
    ) -> Result<(), OffsetStoreError> {
        // Called for every live group ten times a second: settle the common no-op without
        // queueing behind a commit's fsync.
        if self.membership_unchanged(group, membership) {
            return Ok(());
        }
        let _changes = self.changes.lock().await;
        if self.membership_unchanged(group, membership) {
            return Ok(());
        }
        self.append_durably(encode_line(&JournalEntry::Membership {
            group: group.to_owned(),
            empty_since_ms: membership.empty_since_ms(),
        }))
        .await?;
        self.membership
            .lock()
            .expect("membership lock")
            .insert(group.to_owned(), membership);
        Ok(())
    }

    fn membership_unchanged(&self, group: &str, membership: Membership) -> bool {
        let current = self
            .membership
            .lock()
            .expect("membership lock")
            .get(group)
            .copied();
        matches!(
            (current, membership),
            (Some(Membership::Active), Membership::Active)
                | (
                    Some(Membership::EmptySince(_)) | None,
                    Membership::EmptySince(_)
                )
        )
    }

    /// Removes, durably, every offset that `retention` has expired at `now_ms` (see the module
    /// doc); groups in `active` (with members right now) keep theirs.
    pub async fn expire(
        &self,
        now_ms: i64,
        retention: std::time::Duration,
        active: &std::collections::HashSet<String>,
    ) -> Result<Vec<ExpiredOffset>, OffsetStoreError> {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let _changes = self.changes.lock().await;
        let expired: Vec<ExpiredOffset> = {
            let offsets = self.offsets.lock().expect("offsets lock");
            let mut membership = self.membership.lock().expect("membership lock");
            // Forget the membership of groups that have no offsets left and no members.
            membership.retain(|group, m| *m == Membership::Active || offsets.contains_key(group));
            offsets
                .iter()
                .filter(|(group, _)| !active.contains(*group))
                .filter(|(group, _)| membership.get(*group) != Some(&Membership::Active))
                .flat_map(|(group, group_offsets)| {
                    let empty_since = membership.get(group).and_then(|m| m.empty_since_ms());
                    group_offsets
                        .iter()
                        .filter(move |(_, committed)| {
                            let base = committed
                                .commit_timestamp_ms
                                .max(empty_since.unwrap_or(i64::MIN));
                            base.saturating_add(retention_ms) <= now_ms
                        })
                        .map(move |((topic, partition), committed)| ExpiredOffset {
                            group: group.clone(),
                            topic: topic.clone(),
                            partition: *partition,
                            offset: committed.offset,
                        })
                })
                .collect()
        };
        if expired.is_empty() {
            return Ok(expired);
        }
        let mut by_group: BTreeMap<&str, Vec<(String, i32)>> = BTreeMap::new();
        for e in &expired {
            by_group
                .entry(&e.group)
                .or_default()
                .push((e.topic.clone(), e.partition));
        }
        let lines: String = by_group
            .iter()
            .map(|(group, partitions)| {
                encode_line(&JournalEntry::Expire {
                    group: (*group).to_owned(),
                    partitions: partitions.clone(),
                })
            })
            .collect();
        self.append_durably(lines).await?;
        let mut offsets = self.offsets.lock().expect("offsets lock");
        for (group, partitions) in by_group {
            remove_in_memory(&mut offsets, group, &partitions);
        }
        Ok(expired)
    }

    /// Durably records `commits` for `group`; returns once they are fsynced.
    pub async fn commit(
        &self,
        group: &str,
        commits: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), OffsetStoreError> {
        self.commit_existing(group, commits, |_, _| true)
            .await
            .map(|_| ())
    }

    /// [`Self::commit`] of the partitions for which `exists(topic, partition)` holds; returns the
    /// others, which are not committed. `exists` is asked in the journal's order of changes, so
    /// a commit racing [`Self::delete_topic`] either comes before the deletion (and goes with
    /// it) or sees the topic gone: a deleted topic's offsets are never brought back.
    pub async fn commit_existing(
        &self,
        group: &str,
        commits: Vec<(String, i32, CommittedOffset)>,
        exists: impl Fn(&str, i32) -> bool,
    ) -> Result<Vec<(String, i32)>, OffsetStoreError> {
        if commits.is_empty() {
            return Ok(Vec::new());
        }
        let _changes = self.changes.lock().await;
        let (commits, missing): (Vec<_>, Vec<_>) = commits
            .into_iter()
            .partition(|(topic, partition, _)| exists(topic, *partition));
        let missing: Vec<(String, i32)> = missing
            .into_iter()
            .map(|(topic, partition, _)| (topic, partition))
            .collect();
        if commits.is_empty() {
            return Ok(missing);
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
        Ok(missing)
    }

    /// Durably forgets every group's offsets of `topic` (the topic was deleted); returns the
    /// groups that had some.
    pub async fn delete_topic(&self, topic: &str) -> Result<Vec<String>, OffsetStoreError> {
        let _changes = self.changes.lock().await;
        let groups: Vec<String> = {
            let offsets = self.offsets.lock().expect("offsets lock");
            offsets
                .iter()
                .filter(|(_, group_offsets)| group_offsets.keys().any(|(t, _)| t == topic))
                .map(|(group, _)| group.clone())
                .collect()
        };
        if groups.is_empty() {
            return Ok(groups);
        }
        self.append_durably(encode_line(&JournalEntry::DeleteTopic {
            topic: topic.to_owned(),
        }))
        .await?;
        remove_topic_in_memory(&mut self.offsets.lock().expect("offsets lock"), topic);
        Ok(groups)
    }

    /// Durably forgets the committed offsets of `partitions` (`(topic, partition)`) of `group`;
    /// partitions without one are ignored.
    pub async fn delete_offsets(
        &self,
        group: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), OffsetStoreError> {
        if partitions.is_empty() {
            return Ok(());
        }
        let _changes = self.changes.lock().await;
        self.append_durably(encode_line(&JournalEntry::DeleteOffsets {
            group: group.to_owned(),
            partitions: partitions.clone(),
        }))
        .await?;
        remove_in_memory(
            &mut self.offsets.lock().expect("offsets lock"),
            group,
            &partitions,
        );
        Ok(())
    }

    /// Durably forgets every offset of `group`.
    pub async fn delete_group(&self, group: &str) -> Result<(), OffsetStoreError> {
        let _changes = self.changes.lock().await;
        self.append_durably(encode_line(&JournalEntry::DeleteGroup {
            group: group.to_owned(),
        }))
        .await?;
        self.offsets.lock().expect("offsets lock").remove(group);
        self.membership
            .lock()
            .expect("membership lock")
            .remove(group);
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

    /// Every topic some group has an offset of.
    pub fn topics(&self) -> std::collections::BTreeSet<String> {
        let offsets = self.offsets.lock().expect("offsets lock");
        offsets
            .values()
            .flat_map(|g| g.keys().map(|(topic, _)| topic.clone()))
            .collect()
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

fn remove_in_memory(
    offsets: &mut HashMap<String, GroupOffsets>,
    group: &str,
    partitions: &[(String, i32)],
) {
    if let Some(group_offsets) = offsets.get_mut(group) {
        for key in partitions {
            group_offsets.remove(key);
        }
        if group_offsets.is_empty() {
            offsets.remove(group);
        }
    }
}

fn remove_topic_in_memory(offsets: &mut HashMap<String, GroupOffsets>, topic: &str) {
    for group_offsets in offsets.values_mut() {
        group_offsets.retain(|(t, _), _| t != topic);
    }
    offsets.retain(|_, group_offsets| !group_offsets.is_empty());
}

fn encode_line(entry: &JournalEntry) -> String {
    let json = serde_json::to_string(entry).expect("journal entries serialize");
    format!("{:08x} {json}\n", strata_format::crc32c(json.as_bytes()))
}

fn decode_line(line: &str) -> Option<JournalEntry> {
    let (crc, json) = line.split_once(' ')?;
    let crc = u32::from_str_radix(crc, 16).ok()?;
    if strata_format::crc32c(json.as_bytes()) != crc {
        return None;
    }
    serde_json::from_str(json).ok()
}

fn replay(path: &Path) -> Result<Journaled, OffsetStoreError> {
    let mut journaled = Journaled::default();
    let Journaled {
        offsets,
        membership,
    } = &mut journaled;
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(journaled),
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
                membership.remove(&group);
            }
            JournalEntry::Membership {
                group,
                empty_since_ms,
            } => {
                let state = empty_since_ms.map_or(Membership::Active, Membership::EmptySince);
                membership.insert(group, state);
            }
            JournalEntry::Expire { group, partitions }
            | JournalEntry::DeleteOffsets { group, partitions } => {
                remove_in_memory(offsets, &group, &partitions);
            }
            JournalEntry::DeleteTopic { topic } => remove_topic_in_memory(offsets, &topic),
        }
    }
    Ok(journaled)
}

fn compact(
    state_dir: &Path,
    path: &PathBuf,
    journaled: &Journaled,
) -> Result<(), OffsetStoreError> {
    let tmp = state_dir.join(format!("{JOURNAL_FILE}.tmp"));
    let mut file = File::create(&tmp).map_err(io_context(format!("create {}", tmp.display())))?;
    let mut contents = String::new();
    for (group, membership) in &journaled.membership {
        contents.push_str(&encode_line(&JournalEntry::Membership {
            group: group.clone(),
            empty_since_ms: membership.empty_since_ms(),
        }));
    }
    for (group, group_offsets) in &journaled.offsets {
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
    async fn deleted_offsets_stay_deleted_after_reopen_and_the_rest_survive() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = OffsetStore::open(dir.path()).unwrap();
            store
                .commit(
                    "g",
                    vec![("a".into(), 0, committed(3)), ("a".into(), 1, committed(4))],
                )
                .await
                .unwrap();
            store
                .delete_offsets("g", vec![("a".into(), 0), ("missing".into(), 0)])
                .await
                .unwrap();
            assert_eq!(store.fetch("g", "a", 0), None);
            assert_eq!(store.fetch("g", "a", 1), Some(committed(4)));
        }
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.fetch("g", "a", 0), None);
        assert_eq!(store.fetch("g", "a", 1), Some(committed(4)));
        store
            .delete_offsets("g", vec![("a".into(), 1)])
            .await
            .unwrap();
        assert!(
            !store.has_group("g"),
            "a group with no offsets left is gone"
        );
        drop(store);
        assert!(!OffsetStore::open(dir.path()).unwrap().has_group("g"));
    }

    #[tokio::test]
    async fn a_deleted_topic_loses_its_offsets_in_every_group_for_good() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = OffsetStore::open(dir.path()).unwrap();
            store
                .commit(
                    "g1",
                    vec![("t".into(), 0, committed(5)), ("u".into(), 0, committed(6))],
                )
                .await
                .unwrap();
            store
                .commit("g2", vec![("t".into(), 1, committed(7))])
                .await
                .unwrap();
            let mut groups = store.delete_topic("t").await.unwrap();
            groups.sort();
            assert_eq!(groups, vec!["g1".to_string(), "g2".to_string()]);
            assert_eq!(store.fetch("g1", "t", 0), None);
            assert_eq!(store.fetch("g1", "u", 0), Some(committed(6)));
            assert!(!store.has_group("g2"), "g2 had offsets of t only");
            // The topic is created again and g2 commits to it: that offset is the new topic's.
            store
                .commit("g2", vec![("t".into(), 0, committed(1))])
                .await
                .unwrap();
            // Deleting a topic nobody committed to journals nothing.
            assert!(store.delete_topic("never").await.unwrap().is_empty());
        }
        for reopen in ["replayed journal", "compacted journal"] {
            let store = OffsetStore::open(dir.path()).unwrap();
            assert_eq!(store.fetch("g1", "t", 0), None, "{reopen}");
            assert_eq!(store.fetch("g2", "t", 1), None, "{reopen}");
            assert_eq!(store.fetch("g1", "u", 0), Some(committed(6)), "{reopen}");
            assert_eq!(store.fetch("g2", "t", 0), Some(committed(1)), "{reopen}");
        }
    }

    /// A crash between a topic's deletion and the removal of its offsets leaves them; the
    /// start-up pass removes the offsets of every topic that is gone, for good.
    #[tokio::test]
    async fn offsets_of_topics_missing_at_start_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = OffsetStore::open(dir.path()).unwrap();
            store
                .commit(
                    "g1",
                    vec![
                        ("gone".into(), 0, committed(5)),
                        ("kept".into(), 0, committed(6)),
                    ],
                )
                .await
                .unwrap();
            store
                .commit("g2", vec![("gone".into(), 3, committed(7))])
                .await
                .unwrap();
        }
        let coordinator =
            super::super::GroupCoordinator::open(dir.path(), Default::default()).unwrap();
        let removed = coordinator
            .forget_offsets_of_missing_topics(|topic| topic == "kept")
            .await
            .unwrap();
        assert_eq!(removed, vec!["gone".to_string()]);
        drop(coordinator);
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.topics(), ["kept".to_string()].into());
        assert_eq!(store.fetch("g1", "kept", 0), Some(committed(6)));
        assert!(!store.has_group("g2"));
    }

    #[tokio::test]
    async fn commits_to_partitions_that_do_not_exist_are_not_stored() {
        let dir = tempfile::tempdir().unwrap();
        let store = OffsetStore::open(dir.path()).unwrap();
        let missing = store
            .commit_existing(
                "g",
                vec![("t".into(), 0, committed(3)), ("t".into(), 9, committed(4))],
                |topic, partition| topic == "t" && partition == 0,
            )
            .await
            .unwrap();
        assert_eq!(missing, vec![("t".to_string(), 9)]);
        assert_eq!(store.fetch("g", "t", 0), Some(committed(3)));
        assert_eq!(store.fetch("g", "t", 9), None);
        drop(store);
        assert_eq!(
            OffsetStore::open(dir.path()).unwrap().fetch("g", "t", 9),
            None
        );
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

    fn committed_at(offset: i64, commit_timestamp_ms: i64) -> CommittedOffset {
        CommittedOffset {
            commit_timestamp_ms,
            ..committed(offset)
        }
    }

    const RETENTION: std::time::Duration = std::time::Duration::from_secs(60);
    const RETENTION_MS: i64 = 60_000;

    /// Runs an expiry at `now` with the groups in `active` holding members; what it removed.
    async fn expire_at(
        store: &OffsetStore,
        now: i64,
        active: &[&str],
    ) -> Vec<(String, String, i32, i64)> {
        let active = active.iter().map(|g| g.to_string()).collect();
        store
            .expire(now, RETENTION, &active)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.group, e.topic, e.partition, e.offset))
            .collect()
    }

    #[tokio::test]
    async fn offsets_of_consumers_without_members_expire_by_commit_time_and_stay_expired() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = OffsetStore::open(dir.path()).unwrap();
            store
                .commit(
                    "lone",
                    vec![
                        ("t".into(), 0, committed_at(5, 1_000)),
                        ("t".into(), 1, committed_at(7, 5_000)),
                    ],
                )
                .await
                .unwrap();
            let now = 1_000 + RETENTION_MS - 1;
            assert!(expire_at(&store, now, &[]).await.is_empty());
            assert_eq!(
                expire_at(&store, now + 1, &[]).await,
                vec![("lone".into(), "t".into(), 0, 5)]
            );
            assert_eq!(store.fetch("lone", "t", 0), None);
            assert_eq!(store.fetch("lone", "t", 1), Some(committed_at(7, 5_000)));
            // Members right now (the coordinator's view) keep a group's offsets whatever their age.
            assert!(expire_at(&store, i64::MAX, &["lone"]).await.is_empty());
        }
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(
            store.fetch("lone", "t", 0),
            None,
            "the expiry was journaled"
        );
        assert_eq!(store.fetch("lone", "t", 1), Some(committed_at(7, 5_000)));
        assert_eq!(
            expire_at(&store, i64::MAX, &[]).await,
            vec![("lone".into(), "t".into(), 1, 7)]
        );
        assert!(store.groups().is_empty());
        drop(store);
        assert!(OffsetStore::open(dir.path()).unwrap().groups().is_empty());
    }

    #[tokio::test]
    async fn a_group_keeps_its_offsets_while_it_has_members_and_for_the_retention_after() {
        let dir = tempfile::tempdir().unwrap();
        let store = OffsetStore::open(dir.path()).unwrap();
        store
            .commit("g", vec![("t".into(), 0, committed_at(3, 1_000))])
            .await
            .unwrap();
        store.set_membership("g", Membership::Active).await.unwrap();
        assert!(
            expire_at(&store, i64::MAX, &[]).await.is_empty(),
            "a group with members keeps old offsets"
        );
        // Emptied long after the commit: the retention counts from then.
        let emptied = 1_000_000;
        store
            .set_membership("g", Membership::EmptySince(emptied))
            .await
            .unwrap();
        let at = emptied + RETENTION_MS;
        assert!(expire_at(&store, at - 1, &[]).await.is_empty());
        assert_eq!(
            expire_at(&store, at, &[]).await,
            vec![("g".into(), "t".into(), 0, 3)]
        );
    }

    #[tokio::test]
    async fn a_group_with_members_at_the_stop_counts_as_emptied_at_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = OffsetStore::open(dir.path()).unwrap();
            store
                .commit("g", vec![("t".into(), 0, committed_at(3, 1_000))])
                .await
                .unwrap();
            store.set_membership("g", Membership::Active).await.unwrap();
        }
        let opened = now_ms();
        let store = OffsetStore::open(dir.path()).unwrap();
        assert!(
            expire_at(&store, opened, &[]).await.is_empty(),
            "an old commit of a group active at the stop outlives the restart"
        );
        assert_eq!(
            expire_at(&store, now_ms() + RETENTION_MS + 1_000, &[]).await,
            vec![("g".into(), "t".into(), 0, 3)]
        );
    }
}
