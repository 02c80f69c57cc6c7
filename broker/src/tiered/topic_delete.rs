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

    async fn after_delete(&self, topic: &TopicMetadata, deleted: bool) {
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
