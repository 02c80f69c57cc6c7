//! The per-partition remote manifest: the source of truth for what the bucket holds.
//!
//! One JSON object per partition (`keys::format_manifest`) lists the partition's remote
//! segments, the remote log start offset and a snapshot of the topic config. A broker with an
//! empty data directory lists the manifests to learn every tiered partition and serves their
//! history from them alone.
//!
//! # Segment states (KIP-405)
//!
//! ```text
//!   (absent) --begin_copy--> CopySegmentStarted --finish_copy--> CopySegmentFinished
//!                                   |                                  |
//!                   abandoned attempt (reconcile)              retention (begin_delete)
//!                                   v                                  v
//!                            DeleteSegmentStarted <--------------------+
//!                                   |  objects deleted
//!                                   v
//!                            DeleteSegmentFinished == entry removed from the manifest
//! ```
//!
//! Only `CopySegmentFinished` entries are ever read or counted as tiered. Legal transitions are
//! the exhaustive [`SegmentState::can_transition`] match.
//!
//! # Crash consistency
//!
//! * Upload: the `CopySegmentStarted` entry is written *before* the object, and flipped to
//!   `CopySegmentFinished` only after the object is complete. A crash in between leaves a Started
//!   entry (and maybe an object or an unfinished multipart upload) that nobody reads and that
//!   `reconcile` removes.
//! * Retention: the remote log start offset moves forward and the entries become
//!   `DeleteSegmentStarted` in one manifest write *before* any object is deleted, so a reader never
//!   chases an object that is gone. A crash after that write is finished by `reconcile`.
//!
//! # Fencing
//!
//! Every write is a conditional PUT: `PutMode::Create` for the first version and
//! `PutMode::Update(etag)` after. Two writers that read the same version can never both win; the
//! loser gets [`TieringError::Conflict`]. On top of that the manifest records the `writer_epoch` of
//! its last writer and a writer with a lower epoch is refused ([`TieringError::Fenced`]), so a
//! deposed leader stops writing as soon as it re-reads.

use std::collections::BTreeMap;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, TieringError};
use crate::keys::{self, PartitionId};
use crate::store::RemoteStore;

/// The manifest version this code writes.
pub const CURRENT_VERSION: u32 = 1;
/// Every version this code can read. Each has a fixture under `fixtures/`.
pub const KNOWN_VERSIONS: &[u32] = &[1];

/// KIP-405 remote segment states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SegmentState {
    CopySegmentStarted,
    CopySegmentFinished,
    DeleteSegmentStarted,
    /// Terminal; such entries are removed from the manifest rather than stored.
    DeleteSegmentFinished,
}

impl SegmentState {
    /// The ordering rules of the remote segment lifecycle, as one exhaustive match.
    pub fn can_transition(from: Option<SegmentState>, to: SegmentState) -> bool {
        use SegmentState::*;
        match (from, to) {
            (None, CopySegmentStarted) => true,
            (None, CopySegmentFinished | DeleteSegmentStarted | DeleteSegmentFinished) => false,
            (Some(CopySegmentStarted), CopySegmentFinished | DeleteSegmentStarted) => true,
            (Some(CopySegmentStarted), CopySegmentStarted | DeleteSegmentFinished) => false,
            (Some(CopySegmentFinished), DeleteSegmentStarted) => true,
            (
                Some(CopySegmentFinished),
                CopySegmentStarted | CopySegmentFinished | DeleteSegmentFinished,
            ) => false,
            (Some(DeleteSegmentStarted), DeleteSegmentFinished) => true,
            (
                Some(DeleteSegmentStarted),
                CopySegmentStarted | CopySegmentFinished | DeleteSegmentStarted,
            ) => false,
            (Some(DeleteSegmentFinished), _) => false,
        }
    }
}

/// One remote segment (one upload attempt of one local segment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteSegment {
    pub base_offset: i64,
    /// One past the last offset in the segment.
    pub next_offset: i64,
    pub max_timestamp: i64,
    /// Bytes of record batches in the segment (the local `.log` size).
    pub size_bytes: u64,
    /// Bytes of the object (chunks after compression + footer + trailer). 0 until finished.
    pub stored_bytes: u64,
    pub upload_id: Uuid,
    pub object_key: String,
    pub state: SegmentState,
    pub chunk_count: u32,
    /// CRC32C of the footer bytes; each chunk's CRC is in the footer.
    pub footer_crc32c: u32,
    pub footer_offset: u64,
    pub footer_len: u32,
    /// Wall clock (ms) of the last state change, used to age out abandoned attempts.
    pub state_changed_ms: i64,
}

impl RemoteSegment {
    pub fn is_readable(&self) -> bool {
        self.state == SegmentState::CopySegmentFinished
    }
}

/// Version-1 manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    /// Epoch of the last writer; writers with a lower epoch are fenced.
    pub writer_epoch: u64,
    /// Remote log start offset: offsets below it are gone from the remote tier.
    pub log_start_offset: i64,
    /// Sorted by `base_offset`, then by state change time.
    pub segments: Vec<RemoteSegment>,
    /// Topic configs at the last write (e.g. `retention.ms`), for restore-from-bucket.
    #[serde(default)]
    pub topic_config: BTreeMap<String, String>,
    pub updated_ms: i64,
}

/// Decode any known manifest version into the current in-memory form.
pub fn decode(key: &str, bytes: &[u8]) -> Result<Manifest> {
    #[derive(Deserialize)]
    struct Probe {
        version: u32,
    }
    let bad = |detail: String| TieringError::Manifest {
        key: key.to_string(),
        detail,
    };
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("no version field: {e}")))?;
    match probe.version {
        1 => serde_json::from_slice(bytes).map_err(|e| bad(format!("bad v1 manifest: {e}"))),
        v => Err(bad(format!(
            "unknown manifest version {v} (known: {KNOWN_VERSIONS:?})"
        ))),
    }
}

impl Manifest {
    pub fn empty(p: &PartitionId, writer_epoch: u64) -> Self {
        Self {
            version: CURRENT_VERSION,
            topic: p.topic.clone(),
            topic_id: p.topic_id,
            partition: p.partition,
            writer_epoch,
            log_start_offset: 0,
            segments: Vec::new(),
            topic_config: BTreeMap::new(),
            updated_ms: 0,
        }
    }

    pub fn partition_id(&self) -> PartitionId {
        PartitionId::new(self.topic.clone(), self.topic_id, self.partition)
    }

    /// Finished (readable) segments in offset order.
    pub fn finished(&self) -> impl Iterator<Item = &RemoteSegment> {
        self.segments.iter().filter(|s| s.is_readable())
    }

    /// Offset of the last tiered record, or -1 when nothing is tiered (ListOffsets -5).
    pub fn highest_tiered_offset(&self) -> i64 {
        self.finished()
            .map(|s| s.next_offset - 1)
            .max()
            .unwrap_or(-1)
    }

    /// Remote bytes and segment count of finished segments.
    pub fn remote_size(&self) -> (u64, usize) {
        self.finished()
            .fold((0, 0), |(b, n), s| (b + s.size_bytes, n + 1))
    }

    /// The first finished segment that holds `offset` or, if `offset` falls in a gap, the next one.
    pub fn segment_for_offset(&self, offset: i64) -> Option<&RemoteSegment> {
        self.finished().find(|s| s.next_offset > offset)
    }

    /// True when finished segments cover every offset of `[base, next)` (gaps allowed between
    /// adjacent segments only if no offset is missing).
    pub fn covers(&self, base: i64, next: i64) -> bool {
        let mut cursor = base;
        for s in self.finished() {
            if s.base_offset > cursor {
                break;
            }
            cursor = cursor.max(s.next_offset);
            if cursor >= next {
                return true;
            }
        }
        cursor >= next
    }

    /// Moves the entry of `upload_id` to `to`. Re-applying a transition the entry already made
    /// is a no-op: [`ManifestCache::update`](crate::manifest_cache::ManifestCache) re-applies a
    /// change after a conflict, and the conflict may be our own earlier write, saved by the
    /// store although its answer was lost (a 5xx that object_store retried into a 412).
    fn set_state(
        &mut self,
        upload_id: Uuid,
        to: SegmentState,
        now_ms: i64,
    ) -> Result<&mut RemoteSegment> {
        let key = self.partition_id().to_string();
        let mut matching = self
            .segments
            .iter_mut()
            .filter(|s| s.upload_id == upload_id);
        let seg = matching.next().ok_or_else(|| TieringError::Manifest {
            key: key.clone(),
            detail: format!("no segment with upload id {upload_id}"),
        })?;
        if matching.next().is_some() {
            return Err(TieringError::Manifest {
                key,
                detail: format!("upload id {upload_id} appears more than once"),
            });
        }
        if seg.state == to {
            return Ok(seg);
        }
        if !SegmentState::can_transition(Some(seg.state), to) {
            return Err(TieringError::Manifest {
                key,
                detail: format!(
                    "illegal transition {:?} -> {to:?} for upload {upload_id}",
                    seg.state
                ),
            });
        }
        seg.state = to;
        seg.state_changed_ms = now_ms;
        Ok(seg)
    }

    /// Add a `CopySegmentStarted` entry. Returns `Ok(false)` when a finished segment with the same
    /// range already exists (idempotent retry: nothing to do).
    pub fn begin_copy(&mut self, seg: RemoteSegment) -> Result<bool> {
        debug_assert!(SegmentState::can_transition(None, seg.state));
        // Our own entry, saved by a write whose answer was lost (see `set_state`): begun already.
        if let Some(ours) = self.segments.iter().find(|s| s.upload_id == seg.upload_id) {
            return Ok(ours.state == SegmentState::CopySegmentStarted);
        }
        // Only readable entries count: Started ones are dead attempts (the caller retires them) and
        // DeleteSegmentStarted ones are already below the log start or on their way out.
        for s in self.finished() {
            if s.base_offset == seg.base_offset && s.next_offset == seg.next_offset {
                return Ok(false);
            }
            if s.base_offset < seg.next_offset && seg.base_offset < s.next_offset {
                return Err(TieringError::Overlap {
                    partition: self.partition_id().to_string(),
                    base_offset: seg.base_offset,
                    next_offset: seg.next_offset,
                    other_base: s.base_offset,
                    other_next: s.next_offset,
                });
            }
        }
        if seg.next_offset <= self.log_start_offset {
            return Ok(false);
        }
        let at = self
            .segments
            .partition_point(|s| s.base_offset <= seg.base_offset);
        self.segments.insert(at, seg);
        Ok(true)
    }

    /// Flip a started upload to `CopySegmentFinished`, recording the object's layout.
    pub fn finish_copy(&mut self, done: &RemoteSegment, now_ms: i64) -> Result<()> {
        let seg = self.set_state(done.upload_id, SegmentState::CopySegmentFinished, now_ms)?;
        let state_changed_ms = seg.state_changed_ms;
        *seg = RemoteSegment {
            state: SegmentState::CopySegmentFinished,
            state_changed_ms,
            ..done.clone()
        };
        Ok(())
    }

    /// Mark entries `DeleteSegmentStarted` (the caller advances the log start offset in the same
    /// write when the entries were readable).
    pub fn begin_delete(&mut self, upload_ids: &[Uuid], now_ms: i64) -> Result<()> {
        for id in upload_ids {
            self.set_state(*id, SegmentState::DeleteSegmentStarted, now_ms)?;
        }
        Ok(())
    }

    /// Once every segment is deleted or on its way out, the remote log may start over at
    /// `offset` (lower than its old start): `remote.log.delete.on.disable` emptied it, and the
    /// local segments from the broker's log start on must be uploadable when tiering comes back
    /// on. Returns false (and changes nothing) while a segment is readable or being copied.
    pub fn restart_empty_at(&mut self, offset: i64) -> bool {
        let empty = self
            .segments
            .iter()
            .all(|s| s.state == SegmentState::DeleteSegmentStarted);
        if empty {
            self.log_start_offset = offset;
        }
        empty
    }

    /// Advance the remote log start offset (never backwards).
    pub fn advance_log_start(&mut self, offset: i64) {
        self.log_start_offset = self.log_start_offset.max(offset);
    }

    /// Remove `DeleteSegmentStarted` entries whose objects are gone (== `DeleteSegmentFinished`).
    /// Ids no longer listed were removed by an earlier write of this same change.
    pub fn finish_delete(&mut self, upload_ids: &[Uuid], now_ms: i64) -> Result<()> {
        for id in upload_ids {
            if self.segments.iter().any(|s| s.upload_id == *id) {
                self.set_state(*id, SegmentState::DeleteSegmentFinished, now_ms)?;
            }
        }
        self.segments
            .retain(|s| s.state != SegmentState::DeleteSegmentFinished);
        Ok(())
    }
}

/// Reads and fenced writes of manifests.
#[derive(Debug, Clone)]
pub struct ManifestStore {
    remote: RemoteStore,
}

/// A manifest plus the version it was read at (`None`: not yet in the bucket).
#[derive(Debug, Clone)]
pub struct Versioned {
    pub manifest: Manifest,
    pub version: Option<UpdateVersion>,
}

impl ManifestStore {
    pub fn new(remote: RemoteStore) -> Self {
        Self { remote }
    }

    pub fn key(&self, p: &PartitionId) -> Path {
        keys::format_manifest(&self.remote.prefix, p)
    }

    /// Read the partition's manifest, or `None` if it has none.
    pub async fn load(&self, p: &PartitionId) -> Result<Option<Versioned>> {
        let key = self.key(p);
        let got = match self.remote.store.get(&key).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(TieringError::store("get manifest", &key, e)),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| TieringError::store("read manifest", &key, e))?;
        let manifest = decode(key.as_ref(), &bytes)?;
        Ok(Some(Versioned {
            manifest,
            version: Some(version),
        }))
    }

    /// Load, or start an empty manifest for `p` (not written until [`ManifestStore::save`]).
    pub async fn load_or_empty(&self, p: &PartitionId, epoch: u64) -> Result<Versioned> {
        Ok(self.load(p).await?.unwrap_or_else(|| Versioned {
            manifest: Manifest::empty(p, epoch),
            version: None,
        }))
    }

    /// Fenced write: succeeds only if the object is still at `prev.version`.
    pub async fn save(
        &self,
        prev: &Versioned,
        mut next: Manifest,
        epoch: u64,
        now_ms: i64,
    ) -> Result<Versioned> {
        let key = self.key(&next.partition_id());
        if prev.manifest.writer_epoch > epoch {
            return Err(TieringError::Fenced {
                key: key.to_string(),
                manifest_epoch: prev.manifest.writer_epoch,
                our_epoch: epoch,
            });
        }
        next.version = CURRENT_VERSION;
        next.writer_epoch = epoch;
        next.updated_ms = now_ms;
        let body = serde_json::to_vec_pretty(&next).map_err(|e| TieringError::Manifest {
            key: key.to_string(),
            detail: format!("encode: {e}"),
        })?;
        let mode = match &prev.version {
            None => PutMode::Create,
            Some(v) => PutMode::Update(v.clone()),
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .remote
            .store
            .put_opts(&key, PutPayload::from(body), opts)
            .await
        {
            Ok(r) => {
                tracing::debug!(key = %key, segments = next.segments.len(), log_start = next.log_start_offset, "manifest written");
                Ok(Versioned {
                    manifest: next,
                    version: Some(UpdateVersion {
                        e_tag: r.e_tag,
                        version: r.version,
                    }),
                })
            }
            // A vanished base manifest (bucket wiped or restored) is a lost race as well: S3
            // implementations answer a conditional update of a missing key with 412 or 404.
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. }
                | object_store::Error::NotFound { .. },
            ) => {
                tracing::info!(key = %key, "manifest write lost a race");
                Err(TieringError::Conflict {
                    key: key.to_string(),
                })
            }
            Err(e) => Err(TieringError::store("put manifest", &key, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn seg(base: i64, next: i64, state: SegmentState) -> RemoteSegment {
        RemoteSegment {
            base_offset: base,
            next_offset: next,
            max_timestamp: base * 10,
            size_bytes: 100,
            stored_bytes: 0,
            upload_id: Uuid::new_v4(),
            object_key: format!("k{base}"),
            state,
            chunk_count: 1,
            footer_crc32c: 0,
            footer_offset: 0,
            footer_len: 0,
            state_changed_ms: 0,
        }
    }

    #[test]
    fn parses_every_known_version() {
        for v in KNOWN_VERSIONS {
            let text = match v {
                1 => include_str!("../fixtures/manifest_v1.json"),
                _ => panic!("add a fixture for manifest version {v}"),
            };
            let m = decode("fixture", text.as_bytes()).unwrap();
            assert_eq!(m.topic, "orders");
            assert_eq!(m.highest_tiered_offset(), 199);
            assert_eq!(m.log_start_offset, 0);
        }
        assert!(
            decode("x", br#"{"version": 99}"#)
                .unwrap_err()
                .to_string()
                .contains("unknown manifest version 99")
        );
    }

    #[test]
    fn transitions_are_exhaustive_and_ordered() {
        use SegmentState::*;
        let all = [
            CopySegmentStarted,
            CopySegmentFinished,
            DeleteSegmentStarted,
            DeleteSegmentFinished,
        ];
        let legal: Vec<_> = std::iter::once(None)
            .chain(all.iter().copied().map(Some))
            .flat_map(|f| all.iter().map(move |t| (f, *t)))
            .filter(|(f, t)| SegmentState::can_transition(*f, *t))
            .collect();
        assert_eq!(
            legal,
            vec![
                (None, CopySegmentStarted),
                (Some(CopySegmentStarted), CopySegmentFinished),
                (Some(CopySegmentStarted), DeleteSegmentStarted),
                (Some(CopySegmentFinished), DeleteSegmentStarted),
                (Some(DeleteSegmentStarted), DeleteSegmentFinished),
            ]
        );
    }

    #[test]
    fn copy_and_delete_lifecycle() {
        let p = PartitionId::new("t", Uuid::new_v4(), 0);
        let mut m = Manifest::empty(&p, 1);
        let a = seg(0, 100, SegmentState::CopySegmentStarted);
        assert!(m.begin_copy(a.clone()).unwrap());
        assert_eq!(m.highest_tiered_offset(), -1, "started is not readable");
        assert!(!m.covers(0, 100));
        m.finish_copy(&a, 5).unwrap();
        assert!(m.covers(0, 100) && m.covers(10, 50) && !m.covers(0, 101));
        // idempotent retry of the same range
        assert!(
            !m.begin_copy(seg(0, 100, SegmentState::CopySegmentStarted))
                .unwrap()
        );
        // overlap is an error
        assert!(matches!(
            m.begin_copy(seg(50, 150, SegmentState::CopySegmentStarted)),
            Err(TieringError::Overlap { .. })
        ));
        let b = seg(100, 200, SegmentState::CopySegmentStarted);
        m.begin_copy(b.clone()).unwrap();
        m.finish_copy(&b, 6).unwrap();
        assert!(m.covers(0, 200));
        assert_eq!(m.segment_for_offset(150).unwrap().base_offset, 100);
        m.begin_delete(&[a.upload_id], 7).unwrap();
        m.advance_log_start(100);
        assert_eq!(m.segment_for_offset(0).unwrap().base_offset, 100);
        assert!(
            m.finish_copy(&a, 8).is_err(),
            "delete-started cannot go back"
        );
        m.finish_delete(&[a.upload_id], 9).unwrap();
        assert_eq!(m.segments.len(), 1);
        assert!(
            !m.begin_copy(seg(0, 100, SegmentState::CopySegmentStarted))
                .unwrap(),
            "below log start"
        );
    }

    /// `ManifestCache::update` re-applies a change after a conflict; when the conflict is our
    /// own earlier write (saved, answer lost), every step must come out the same, never a
    /// second entry for one upload id that a later delete could confuse with the first.
    #[test]
    fn re_applying_a_saved_change_is_a_no_op() {
        let p = PartitionId::new("t", Uuid::new_v4(), 0);
        let mut m = Manifest::empty(&p, 1);
        let a = seg(0, 100, SegmentState::CopySegmentStarted);
        assert!(m.begin_copy(a.clone()).unwrap());
        let saved = m.clone();
        assert!(m.begin_copy(a.clone()).unwrap(), "still ours to upload");
        assert_eq!(m, saved, "no second entry");
        m.finish_copy(&a, 5).unwrap();
        let saved = m.clone();
        m.finish_copy(&a, 6).unwrap();
        assert_eq!(m, saved);
        assert!(
            !m.begin_copy(a.clone()).unwrap(),
            "finished: nothing to upload"
        );
        m.begin_delete(&[a.upload_id], 7).unwrap();
        m.advance_log_start(100);
        let saved = m.clone();
        m.begin_delete(&[a.upload_id], 8).unwrap();
        assert_eq!(m, saved);
        m.finish_delete(&[a.upload_id], 9).unwrap();
        assert!(m.segments.is_empty());
        m.finish_delete(&[a.upload_id], 10).unwrap();
        assert!(m.segments.is_empty());

        // A manifest that lists one upload id twice is refused rather than half-applied.
        let b = seg(100, 200, SegmentState::CopySegmentStarted);
        m.segments = vec![b.clone(), b.clone()];
        assert!(matches!(
            m.begin_delete(&[b.upload_id], 11),
            Err(TieringError::Manifest { .. })
        ));
    }

    #[tokio::test]
    async fn racing_writers_exactly_one_wins() {
        let remote = RemoteStore::from_url("memory://").unwrap();
        let ms = ManifestStore::new(remote);
        let p = PartitionId::new("t", Uuid::new_v4(), 3);
        // both start from "absent"
        let v0 = ms.load_or_empty(&p, 1).await.unwrap();
        let r1 = ms.save(&v0, v0.manifest.clone(), 1, 1).await;
        let r2 = ms.save(&v0, v0.manifest.clone(), 1, 1).await;
        assert!(r1.is_ok() ^ r2.is_ok());
        let v1 = ms.load(&p).await.unwrap().unwrap();
        let (a, b) = tokio::join!(
            ms.save(&v1, v1.manifest.clone(), 1, 2),
            ms.save(&v1, v1.manifest.clone(), 1, 2)
        );
        assert!(a.is_ok() ^ b.is_ok());
        assert!(matches!(
            a.err().or(b.err()),
            Some(TieringError::Conflict { .. })
        ));
        // a lower epoch is fenced
        let v2 = ms.load(&p).await.unwrap().unwrap();
        let v3 = ms.save(&v2, v2.manifest.clone(), 5, 3).await.unwrap();
        assert!(matches!(
            ms.save(&v3, v3.manifest.clone(), 4, 4).await,
            Err(TieringError::Fenced { .. })
        ));
    }
}
