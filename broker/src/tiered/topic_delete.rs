//! DeleteTopics and the remote tier: a deleted topic's remote data goes with it, and a broker
//! restored from the bucket never brings it back.
//!
//! ```text
//!  DeleteTopics(T) ─▶ before_delete: T has (or may have) remote data?
//!                       no  ─▶ local delete only
//!                       yes ─▶ tombstone in the bucket (bounded wait; the store down ->
//!                              KAFKA_STORAGE_ERROR, T is kept)
//!                  ─▶ log.delete_topic(T)
//!                  ─▶ after_delete: deleted ─▶ spawned: RemoteLogManager::delete_topic
//!                                   failed  ─▶ tombstone taken back
//!  every task interval (and at start): tombstones in the bucket ─▶ finish those deletions
//! ```
//!
//! The tombstone comes first so that a crash at any later point leaves the bucket saying "this
//! topic is deleted": restore (`restore.rs`) skips it and [`finish_deletions`] completes it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use uuid::Uuid;

use crate::kafka::handlers::admin_topics::TopicDeletion;
use crate::log::TopicMetadata;

use super::TieredStorage;

/// KAFKA_STORAGE_ERROR: retriable, the admin client may try again once the store answers.
const KAFKA_STORAGE_ERROR: i16 = 56;
/// Bound on writing the tombstone while a DeleteTopics request waits.
const TOMBSTONE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a deletion waits for an upload of the topic that is already running.
const UPLOAD_WAIT: Duration = Duration::from_secs(60);

/// The [`TopicDeletion`] hook of the remote tier.
pub struct RemoteTopicDeletion {
    pub(crate) ts: Arc<TieredStorage>,
    /// Topics whose tombstone was written by `before_delete` and not yet acted on.
    marked: Mutex<HashSet<Uuid>>,
}

impl RemoteTopicDeletion {
    pub(crate) fn new(ts: Arc<TieredStorage>) -> Self {
        Self {
            ts,
            marked: Mutex::default(),
        }
    }

    /// Whether the topic has, or may soon have, objects in the bucket.
    fn may_have_remote_data(&self, topic: &TopicMetadata) -> bool {
        let tiered = self
            .ts
            .log
            .partition(&topic.name, 0)
            .is_some_and(|log| log.config().remote_storage_enable);
        let seen_remote = self
            .ts
            .state
            .lock()
            .keys()
            .any(|(name, _)| *name == topic.name);
        let published = self
            .ts
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&topic.name);
        tiered || seen_remote || published
    }
}

#[async_trait::async_trait]
impl TopicDeletion for RemoteTopicDeletion {
    async fn before_delete(&self, topic: &TopicMetadata) -> Result<(), (i16, String)> {
        // Waits for a `topic.json` write in flight, and stops later ones until `after_delete`.
        self.ts.deleting_topics.lock().await.insert(topic.topic_id);
        let outcome = self.mark_deleted(topic).await;
        if outcome.is_err() {
            self.ts.deleting_topics.lock().await.remove(&topic.topic_id);
        }
        outcome
    }

    async fn after_delete(&self, topic: &TopicMetadata, deleted: bool) {
        self.act_on_mark(topic, deleted).await;
        self.ts.deleting_topics.lock().await.remove(&topic.topic_id);
    }
}

impl RemoteTopicDeletion {
    /// The tombstone, when the topic has or may have remote data.
    async fn mark_deleted(&self, topic: &TopicMetadata) -> Result<(), (i16, String)> {
        if !self.may_have_remote_data(topic) {
            return Ok(());
        }
        let mark = self.ts.rlm.mark_topic_deleted(&topic.name, topic.topic_id);
        let error = match tokio::time::timeout(TOMBSTONE_TIMEOUT, mark).await {
            Ok(Ok(())) => {
                self.marked
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(topic.topic_id);
                return Ok(());
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("no answer within {TOMBSTONE_TIMEOUT:?}"),
        };
        tracing::warn!(topic = %topic.name, %error, "topic not deleted: the remote tier cannot record the deletion");
        Err((
            KAFKA_STORAGE_ERROR,
            format!(
                "topic {} has data in the remote tier and its deletion could not be recorded \
                 there ({error}); the topic is kept, retry when the object store answers",
                topic.name
            ),
        ))
    }

    /// Deletes the remote data of a topic deleted locally, or takes the tombstone back.
    async fn act_on_mark(&self, topic: &TopicMetadata, deleted: bool) {
        let marked = self
            .marked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&topic.topic_id);
        if !marked {
            return;
        }
        let rlm = self.ts.rlm.clone();
        if !deleted {
            if let Err(error) = rlm.unmark_topic_deleted(&topic.name, topic.topic_id).await {
                // Harmless: `finish_deletions` removes the tombstone of a topic that is live.
                tracing::warn!(topic = %topic.name, %error, "taking back the remote tombstone failed");
            }
            return;
        }
        self.ts
            .state
            .lock()
            .retain(|(name, _), _| *name != topic.name);
        self.ts
            .published
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&topic.name);
        let (name, topic_id) = (topic.name.clone(), topic.topic_id);
        tokio::spawn(async move {
            if let Err(error) = rlm.delete_topic(&name, topic_id, UPLOAD_WAIT).await {
                tracing::warn!(topic = %name, %error, "deleting the topic's remote data failed; retried at the next task interval");
            }
        });
    }
}

/// Finishes every deletion whose tombstone is in the bucket (a crash or an outage interrupted
/// it). A tombstone of a topic that is live in the log is stale (the local delete failed and
/// taking it back failed too) and is removed instead.
pub(crate) async fn finish_deletions(ts: &TieredStorage) {
    let tombstoned = match ts.rlm.tombstoned_topics().await {
        Ok(list) => list,
        Err(error) => {
            tracing::debug!(%error, "listing remote tombstones failed");
            return;
        }
    };
    for (topic, topic_id) in tombstoned {
        let live = ts
            .log
            .topic(&topic)
            .is_some_and(|meta| meta.topic_id == topic_id);
        let result = if live {
            ts.rlm
                .unmark_topic_deleted(&topic, topic_id)
                .await
                .map(|_| 0)
        } else {
            ts.rlm.delete_topic(&topic, topic_id, UPLOAD_WAIT).await
        };
        if let Err(error) = result {
            tracing::warn!(topic, %topic_id, %error, "finishing a remote topic deletion failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use futures::TryStreamExt;
    use object_store::ObjectStore;
    use strata_tiering::faults::FaultyStore;

    use super::*;
    use crate::kafka::handlers::admin_topics::TopicDeletion;
    use crate::log::{LogManager, LogManagerConfig};

    /// A `topic.json` write that was slow to land while the topic was deleted: the deletion
    /// waits for it and then removes it with the rest, so no object of the topic outlives it (a
    /// leftover `topic.json` without a tombstone would bring the topic back at a restore).
    #[tokio::test]
    async fn a_topic_metadata_write_racing_a_delete_leaves_nothing_in_the_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogManager::open(LogManagerConfig::new(dir.path()))
            .await
            .unwrap();
        let configs = BTreeMap::from([("remote.storage.enable".into(), "true".into())]);
        log.create_topic("doomed", 1, configs, false).unwrap();
        let meta = log.topic("doomed").unwrap();
        let store = Arc::new(FaultyStore::new(Arc::new(
            object_store::memory::InMemory::new(),
        )));
        let faults = store.faults.clone();
        let rlm = strata_tiering::RemoteLogManager::new(
            store.clone(),
            "remote",
            strata_tiering::TieringConfig::default(),
        )
        .unwrap();
        let ts = Arc::new(TieredStorage {
            rlm,
            log: log.clone(),
            state: Arc::default(),
            data_dir: dir.path().to_path_buf(),
            published: Mutex::default(),
            deleting_topics: tokio::sync::Mutex::default(),
            settings: super::super::TierSettings::from_broker_configs(&BTreeMap::new()),
            cancel: tokio_util::sync::CancellationToken::new(),
            tasks: Mutex::default(),
        });

        // The metadata write takes a second to land; everything after it is quick.
        faults.put_delay(Duration::from_millis(1000));
        let publish = tokio::spawn({
            let (ts, meta) = (ts.clone(), meta.clone());
            async move { super::super::restore::publish_topic(&ts, &meta).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        faults.put_delay(Duration::ZERO);

        let hook = RemoteTopicDeletion::new(ts.clone());
        hook.before_delete(&meta).await.unwrap();
        log.delete_topic("doomed").unwrap();
        hook.after_delete(&meta, true).await;
        publish.await.unwrap();
        // The remote deletion runs in the background; give it time to finish.
        let mut left = Vec::new();
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = store
                .list(None)
                .map_ok(|object| object.location.to_string())
                .try_collect::<Vec<_>>()
                .await
                .unwrap();
            if left.is_empty() {
                break;
            }
        }
        assert!(left.is_empty(), "objects left in the bucket: {left:?}");
        // Once deleted, the topic's metadata is never written again.
        super::super::restore::publish_topic(&ts, &meta).await;
        let left: Vec<_> = store.list(None).try_collect().await.unwrap();
        assert!(left.is_empty(), "{left:?}");
    }
}
