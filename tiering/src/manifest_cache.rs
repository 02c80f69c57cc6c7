//! Cached manifests and the one read-modify-write loop that changes them.
//!
//! Each partition has an async mutex around its cached `Versioned` manifest, so writers inside
//! this process (uploader, retention, reconcile) take turns instead of racing each other; writers
//! in other processes are fenced by the conditional PUT in `ManifestStore::save`. When a save
//! loses (`Conflict`), the cache is dropped, the manifest re-read and the mutation re-applied.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{Result, TieringError};
use crate::keys::PartitionId;
use crate::manifest::{Manifest, ManifestStore, Versioned};

type Slot = Arc<tokio::sync::Mutex<Option<Arc<Versioned>>>>;

const MAX_CONFLICT_RETRIES: usize = 5;

#[derive(Debug)]
pub(crate) struct ManifestCache {
    pub(crate) store: ManifestStore,
    /// This writer's epoch: raised (never lowered) once the bucket's highest is known.
    epoch: AtomicU64,
    slots: Mutex<HashMap<PartitionId, Slot>>,
}

impl ManifestCache {
    pub(crate) fn new(store: ManifestStore, epoch: u64) -> Self {
        Self {
            store,
            epoch: AtomicU64::new(epoch),
            slots: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Raises this writer's epoch to at least `epoch`; returns the epoch now in use.
    pub(crate) fn raise_epoch(&self, epoch: u64) -> u64 {
        self.epoch.fetch_max(epoch, Ordering::AcqRel).max(epoch)
    }

    fn slot(&self, p: &PartitionId) -> Slot {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(p.clone()).or_default().clone()
    }

    /// Drops the cached manifests of a topic (it was deleted).
    pub(crate) fn forget_topic(&self, topic_id: uuid::Uuid) {
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|p, _| p.topic_id != topic_id);
    }

    /// The cached manifest, loading it on first use. `None`: the partition has no manifest.
    pub(crate) async fn get(&self, p: &PartitionId) -> Result<Option<Arc<Versioned>>> {
        let slot = self.slot(p);
        let mut cur = slot.lock().await;
        if cur.is_none() {
            *cur = self.store.load(p).await?.map(Arc::new);
        }
        Ok(cur.clone())
    }

    /// Re-read from the bucket (another writer may have changed it).
    pub(crate) async fn refresh(&self, p: &PartitionId) -> Result<Option<Arc<Versioned>>> {
        let slot = self.slot(p);
        let mut cur = slot.lock().await;
        *cur = self.store.load(p).await?.map(Arc::new);
        Ok(cur.clone())
    }

    /// Apply `f` to the current manifest and write the result with a fenced PUT. `f` may run more
    /// than once (after a lost race it sees the newer manifest) so it must only touch its argument.
    /// Nothing is written when `f` leaves the manifest unchanged.
    pub(crate) async fn update<R>(
        &self,
        p: &PartitionId,
        mut f: impl FnMut(&mut Manifest) -> Result<R>,
    ) -> Result<(R, Arc<Versioned>)> {
        let slot = self.slot(p);
        let mut cur = slot.lock().await;
        for attempt in 0..MAX_CONFLICT_RETRIES {
            let base = match cur.clone() {
                Some(v) => v,
                None => Arc::new(self.store.load_or_empty(p, self.epoch()).await?),
            };
            let mut next = base.manifest.clone();
            let r = f(&mut next)?;
            if next == base.manifest {
                if base.version.is_some() {
                    *cur = Some(base.clone());
                }
                return Ok((r, base));
            }
            match self
                .store
                .save(&base, next, self.epoch(), crate::now_ms())
                .await
            {
                Ok(v) => {
                    let v = Arc::new(v);
                    *cur = Some(v.clone());
                    return Ok((r, v));
                }
                Err(TieringError::Conflict { .. }) => {
                    tracing::info!(partition = %p, attempt, "manifest changed underneath us; re-reading");
                    *cur = None;
                }
                Err(e) => {
                    *cur = None;
                    return Err(e);
                }
            }
        }
        Err(TieringError::Conflict {
            key: self.store.key(p).to_string(),
        })
    }
}
