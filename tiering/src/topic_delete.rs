//! Topic deletion in the remote tier: every object of a deleted topic goes, and a broker
//! restored from the bucket never brings the topic back.
//!
//! ```text
//!  1. PUT    topics/<topic>-<id>/deleted.json     (tombstone; before the broker deletes locally)
//!  2. the manager stops the topic's uploads and forgets its manifests
//!  3. DELETE every other object under topics/<topic>-<id>/  (segments, manifests, topic.json)
//!  4. DELETE the tombstone
//! ```
//!
//! A crash anywhere after 1 leaves the tombstone, so restore skips the topic and the next start
//! (or periodic pass) repeats 2-4 ([`tombstoned_topics`]); every step is safe to repeat. The
//! topic id is part of every key, so a topic re-created under the same name is untouched.

use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Result, TieringError};
use crate::keys;
use crate::store::RemoteStore;

const TOMBSTONE_VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
struct Tombstone {
    version: u32,
    topic: String,
    topic_id: Uuid,
    deleted_ms: i64,
}

/// Step 1: the tombstone.
pub(crate) async fn write_tombstone(
    remote: &RemoteStore,
    topic: &str,
    topic_id: Uuid,
) -> Result<()> {
    let key = keys::format_topic_tombstone(&remote.prefix, topic, topic_id);
    let body = serde_json::to_vec(&Tombstone {
        version: TOMBSTONE_VERSION,
        topic: topic.to_string(),
        topic_id,
        deleted_ms: crate::now_ms(),
    })
    .map_err(|e| TieringError::corrupt("tombstone", &key, e))?;
    remote
        .store
        .put(&key, PutPayload::from(body))
        .await
        .map_err(|e| TieringError::store("write tombstone", &key, e))?;
    Ok(())
}

/// Takes the tombstone back (the broker could not delete the topic locally after all).
pub(crate) async fn remove_tombstone(
    remote: &RemoteStore,
    topic: &str,
    topic_id: Uuid,
) -> Result<()> {
    let key = keys::format_topic_tombstone(&remote.prefix, topic, topic_id);
    match remote.store.delete(&key).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(TieringError::store("delete tombstone", &key, e)),
    }
}

/// Steps 3 and 4: deletes every object of the topic, the tombstone last. Returns how many
/// objects were deleted.
pub(crate) async fn delete_topic_objects(
    remote: &RemoteStore,
    topic: &str,
    topic_id: Uuid,
) -> Result<usize> {
    let dir = keys::format_topic_dir(&remote.prefix, topic, topic_id);
    let tombstone = keys::format_topic_tombstone(&remote.prefix, topic, topic_id);
    let listed: Vec<Path> = remote
        .store
        .list(Some(&dir))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|e| TieringError::store("list topic", &dir, e))?;
    let doomed: Vec<object_store::Result<Path>> = listed
        .into_iter()
        .filter(|key| *key != tombstone)
        .map(Ok)
        .collect();
    let count = doomed.len();
    let mut results = remote
        .store
        .delete_stream(futures::stream::iter(doomed).boxed());
    while let Some(result) = results.next().await {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(TieringError::store("delete topic object", &dir, e)),
        }
    }
    remove_tombstone(remote, topic, topic_id).await?;
    Ok(count)
}

/// Topics whose tombstone is in the bucket: deletions to finish, topics never to restore.
pub async fn tombstoned_topics(remote: &RemoteStore) -> Result<Vec<(String, Uuid)>> {
    let root = keys::format_topics_root(&remote.prefix);
    let listing = remote
        .store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| TieringError::store("list topics", &root, e))?;
    let mut found = Vec::new();
    for dir in listing.common_prefixes {
        let Some((topic, topic_id)) = dir.filename().and_then(keys::parse_topic_dir) else {
            continue;
        };
        let key = keys::format_topic_tombstone(&remote.prefix, &topic, topic_id);
        match remote.store.head(&key).await {
            Ok(_) => found.push((topic, topic_id)),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(TieringError::store("read tombstone", &key, e)),
        }
    }
    Ok(found)
}
