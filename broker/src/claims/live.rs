//! Which claims are live: [`PositionBook`] records where each ticket landed, durably, in the
//! bucket; [`LogLiveClaims`] answers the gateway's [`LiveClaims`] from it and the log.
//!
//! # Choice: a position object per ticket, in the bucket
//!
//! ```text
//!  <claims prefix>/claims/<id>/payload          (gateway)
//!  <claims prefix>/claims/<id>/meta.json        (gateway)
//!  <claims prefix>/claims/<id>/position.json    (here) {version, topic, topic_id, partition,
//!                                                        min_offset, offset: null | n}
//! ```
//!
//! The sink writes `position.json` **before** appending a ticket (`offset: null`, `min_offset` =
//! the partition's log end offset then, a lower bound of where the ticket lands) and again
//! **after** the append (`offset` = the ticket's offset). The bucket is the source of truth: it
//! survives the loss of the data directory and a restore from the bucket, and costs one small
//! PUT pair per ticket. Scanning both tiers for ticket headers at every GC pass was the
//! alternative: exact, but it reads the whole retained history of every topic each pass.
//!
//! # Liveness rule
//!
//! A claim is live iff its topic still exists with the same topic id and that partition, and
//! * the ticket's offset is known and `offset >= log_start_offset` of the partition, or
//! * the offset is unknown (the broker stopped between the append and the second PUT, or the
//!   second PUT failed), and `min_offset >= log_start_offset`: the ticket, if it was appended,
//!   is at or above `min_offset`, so it cannot have left the log before `min_offset` did.
//!
//! `log_start_offset` is [`PartitionLog::log_start_offset`], the **logical** log start: with
//! tiering it is the remote log start (lowered by `tiered/` at start from the manifest), so a
//! ticket still readable from the remote tier is live. Remote retention advances it before
//! deleting remote segments, so an id leaves this set only after its ticket left both tiers.
//!
//! # Limits
//! * Only reference-mode tickets appended by this broker's gateway are tracked (chunk and CSV
//!   modes keep their bytes in the log itself). A ticket record copied to another topic or
//!   cluster by a user (MirrorMaker, a consumer re-producing it) does not keep the payload alive.
//! * A ticket whose offset stayed unknown pins its payload until its partition's log start
//!   passes `min_offset` (extra ids only delay deletion; they never lose a payload).
//! * Until `tiered/` has lowered the log start to the remote log start after a restart, a ticket
//!   only in the remote tier would look expired: `serve.rs` therefore starts the claim GC after
//!   the remote tier, and the GC only deletes payloads older than `claimcheck.gc.grace`.
//! * `position.json` objects of claims whose payload and sidecar are both gone are removed
//!   here, on the pass after the gateway's GC deleted the claim.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use strata_claimcheck::{ClaimId, ClaimStore, LiveClaims, SinkError};
use tracing::{debug, info, warn};

use crate::kafka::TierOffsets;
use crate::log::{LogManager, PartitionLog};

/// Version of `position.json` this broker writes.
pub const POSITION_VERSION: u32 = 1;
const POSITION_FILE: &str = "position.json";
const PUT_ATTEMPTS: u32 = 3;

/// The content of `claims/<id>/position.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TicketPosition {
    pub version: u32,
    pub topic: String,
    pub topic_id: uuid::Uuid,
    pub partition: i32,
    /// The partition's log end offset just before the append: the ticket is at or above it.
    pub min_offset: i64,
    /// The ticket's offset, once the append returned.
    pub offset: Option<i64>,
}

impl TicketPosition {
    /// The lowest offset the ticket can be at.
    pub fn lowest_offset(&self) -> i64 {
        self.offset.unwrap_or(self.min_offset)
    }
}

/// The liveness rule of the module docs, for one ticket, given the partition's topic id and
/// logical log start (`None` when the topic or partition is gone).
pub fn is_live(position: &TicketPosition, partition: Option<(uuid::Uuid, i64)>) -> bool {
    match partition {
        None => false,
        Some((topic_id, _)) if topic_id != position.topic_id => false,
        Some((_, log_start)) => position.lowest_offset() >= log_start,
    }
}

/// Records ticket positions next to their payloads. Cheap to share.
pub struct PositionBook {
    store: Arc<dyn ObjectStore>,
    claims_dir: Path,
    /// Positions whose `offset` is known (they never change), so a GC pass GETs each once.
    known: Mutex<HashMap<ClaimId, TicketPosition>>,
}

impl PositionBook {
    pub fn new(claims: &ClaimStore) -> Self {
        Self {
            store: claims.object_store().clone(),
            claims_dir: claims.prefix().clone().join("claims"),
            known: Mutex::default(),
        }
    }

    /// `<claims prefix>/claims/<id>/position.json`.
    pub fn path(&self, id: ClaimId) -> Path {
        self.claims_dir
            .clone()
            .join(id.to_string())
            .join(POSITION_FILE)
    }

    /// The claim id of a `position.json` path, `None` for any other object.
    pub fn parse_path(&self, path: &Path) -> Option<ClaimId> {
        let parts: Vec<String> = path
            .prefix_match(&self.claims_dir)?
            .map(|p| p.as_ref().to_string())
            .collect();
        match parts.as_slice() {
            [id, file] if file == POSITION_FILE => id.parse().ok(),
            _ => None,
        }
    }

    async fn put(&self, id: ClaimId, position: &TicketPosition) -> Result<(), object_store::Error> {
        let body = serde_json::to_vec(position).expect("position serializes");
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self
                .store
                .put(&self.path(id), PutPayload::from(body.clone()))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if attempt < PUT_ATTEMPTS => {
                    debug!(claim = %id, attempt, error = %e, "writing position.json failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Before the append: a failure here fails the upload (nothing appended yet).
    pub async fn record_pending(&self, id: ClaimId, log: &PartitionLog) -> Result<(), SinkError> {
        let position = TicketPosition {
            version: POSITION_VERSION,
            topic: log.topic().to_string(),
            topic_id: log.topic_id(),
            partition: log.partition(),
            min_offset: log.log_end_offset(),
            offset: None,
        };
        self.put(id, &position).await.map_err(|e| {
            SinkError::Unavailable(format!("recording the ticket position of claim {id}: {e}"))
        })
    }

    /// After the append. A failure only makes the liveness of this claim rest on `min_offset`
    /// (see the module docs), so it is logged, not returned: the ticket is already in the log.
    pub async fn record_appended(&self, id: ClaimId, log: &PartitionLog, offset: i64) {
        let position = TicketPosition {
            version: POSITION_VERSION,
            topic: log.topic().to_string(),
            topic_id: log.topic_id(),
            partition: log.partition(),
            min_offset: offset,
            offset: Some(offset),
        };
        match self.put(id, &position).await {
            Ok(()) => {
                self.lock().insert(id, position);
            }
            Err(error) => {
                warn!(claim = %id, offset, %error, "recording the ticket offset failed; liveness falls back to the pending position");
            }
        }
    }

    /// The append failed: drop the pending marker.
    pub async fn forget(&self, id: ClaimId) {
        self.lock().remove(&id);
        if let Err(error) = self.store.delete(&self.path(id)).await
            && !matches!(error, object_store::Error::NotFound { .. })
        {
            warn!(claim = %id, %error, "deleting a pending position.json failed");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClaimId, TicketPosition>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) async fn read(
        &self,
        id: ClaimId,
    ) -> Result<Option<TicketPosition>, object_store::Error> {
        if let Some(known) = self.lock().get(&id) {
            return Ok(Some(known.clone()));
        }
        let bytes = match self.store.get(&self.path(id)).await {
            Ok(got) => got.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let position: TicketPosition = match serde_json::from_slice(&bytes) {
            Ok(p) => p,
            Err(error) => {
                // Unreadable: keep the claim (a corrupt record must never free a payload).
                warn!(claim = %id, %error, "corrupt position.json; keeping the claim");
                return Ok(Some(TicketPosition {
                    version: 0,
                    topic: String::new(),
                    topic_id: uuid::Uuid::nil(),
                    partition: -1,
                    min_offset: i64::MAX,
                    offset: None,
                }));
            }
        };
        if position.offset.is_some() {
            self.lock().insert(id, position.clone());
        }
        Ok(Some(position))
    }
}

/// [`LiveClaims`] over the position book and the log engine's (logical) log start offsets.
pub struct LogLiveClaims {
    pub book: Arc<PositionBook>,
    pub log: Arc<LogManager>,
    /// The remote tier's word on log starts (`LocalOnly` without one).
    pub tier: Arc<dyn TierOffsets>,
}

impl LogLiveClaims {
    /// The partition's topic id and log start, the log start `i64::MIN` (everything live)
    /// while the remote tier may still lower it.
    fn partition_state(&self, topic: &str, partition: i32) -> Option<(uuid::Uuid, i64)> {
        let log = self.log.partition(topic, partition)?;
        let log_start = if self.tier.log_start_settled(&log) {
            log.log_start_offset()
        } else {
            i64::MIN
        };
        Some((log.topic_id(), log_start))
    }
}

#[derive(Default)]
struct Seen {
    position: bool,
    other: bool,
}

#[async_trait]
impl LiveClaims for LogLiveClaims {
    async fn live_claims(&self) -> Result<HashSet<ClaimId>, SinkError> {
        self.live_claims_for_gc(false).await
    }

    async fn live_claims_for_gc(&self, dry_run: bool) -> Result<HashSet<ClaimId>, SinkError> {
        if self.tier.restoring() {
            // A topic missing now may come back with its tickets.
            return Err(SinkError::Unavailable(
                "a restore from the remote tier is unfinished; claims are collected once it is"
                    .into(),
            ));
        }
        let unavailable = |e: object_store::Error| SinkError::Unavailable(e.to_string());
        let mut seen: HashMap<ClaimId, Seen> = HashMap::new();
        let mut listing = self.book.store.list(Some(&self.book.claims_dir));
        while let Some(meta) = listing.try_next().await.map_err(unavailable)? {
            let Some(rest) = meta.location.prefix_match(&self.book.claims_dir) else {
                continue;
            };
            let parts: Vec<String> = rest.map(|p| p.as_ref().to_string()).collect();
            let [id, file] = parts.as_slice() else {
                continue;
            };
            let Ok(id) = id.parse::<ClaimId>() else {
                continue;
            };
            let entry = seen.entry(id).or_default();
            if file == POSITION_FILE {
                entry.position = true;
            } else {
                entry.other = true;
            }
        }
        let mut live = HashSet::new();
        for (id, objects) in seen {
            if !objects.position {
                continue;
            }
            if !objects.other {
                // Payload and sidecar are gone (collected): the position record is an orphan.
                if !dry_run {
                    info!(claim = %id, "removing the position record of a collected claim");
                    self.book.forget(id).await;
                }
                continue;
            }
            let Some(position) = self.book.read(id).await.map_err(unavailable)? else {
                continue;
            };
            let state = if position.version == 0 {
                Some((position.topic_id, i64::MIN)) // corrupt record: keep
            } else {
                self.partition_state(&position.topic, position.partition)
            };
            if is_live(&position, state) {
                live.insert(id);
            } else {
                debug!(claim = %id, topic = %position.topic, partition = position.partition,
                       offset = position.lowest_offset(), "ticket left the log");
            }
        }
        Ok(live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn position(offset: Option<i64>, min_offset: i64, topic_id: uuid::Uuid) -> TicketPosition {
        TicketPosition {
            version: POSITION_VERSION,
            topic: "t".into(),
            topic_id,
            partition: 0,
            min_offset,
            offset,
        }
    }

    #[test]
    fn liveness_rule() {
        let id = uuid::Uuid::new_v4();
        let other = uuid::Uuid::new_v4();
        // Known offset: live while at or above the logical log start.
        assert!(is_live(&position(Some(5), 5, id), Some((id, 5))));
        assert!(is_live(&position(Some(5), 5, id), Some((id, 0))));
        assert!(!is_live(&position(Some(5), 5, id), Some((id, 6))));
        // Unknown offset: judged by the lower bound.
        assert!(is_live(&position(None, 3, id), Some((id, 3))));
        assert!(!is_live(&position(None, 3, id), Some((id, 4))));
        // Topic gone, or deleted and recreated under the same name.
        assert!(!is_live(&position(Some(0), 0, id), None));
        assert!(!is_live(&position(Some(0), 0, id), Some((other, 0))));
    }

    #[test]
    fn position_paths_round_trip() {
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        for prefix in ["", "strata/claimcheck"] {
            let claims = ClaimStore::new(store.clone(), prefix).unwrap();
            let book = PositionBook::new(&claims);
            let id = ClaimId::random();
            let path = book.path(id);
            assert_eq!(book.parse_path(&path), Some(id), "{path}");
            let payload = claims.path(strata_claimcheck::ObjectKey::ClaimPayload(id));
            assert_eq!(book.parse_path(&payload), None);
            assert_eq!(payload.parts().count(), path.parts().count());
        }
    }

    #[test]
    fn past_versions_parse() {
        let v1 = r#"{"version":1,"topic":"t","topic_id":"67e55044-10b1-426f-9247-bb680e5fe0c8","partition":2,"min_offset":7,"offset":null}"#;
        let p: TicketPosition = serde_json::from_str(v1).unwrap();
        assert_eq!((p.partition, p.lowest_offset()), (2, 7));
    }
}
