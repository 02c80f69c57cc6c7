//! Restore from the bucket: topic metadata in the bucket, topics recreated from it.
//!
//! Every tiered topic's metadata (name, id, partition count, config overrides) is kept in
//! `topics/<topic>-<topic_id>/topic.json` (key format in `strata_tiering::keys`), rewritten when
//! it changes. A broker that starts on a data directory without topics lists those objects and
//! recreates each topic with its original id and configs; each partition's local log starts at
//! the remote highest tiered offset + 1, and `TieredStorage::start` then exposes the remote log
//! start, so consumers read the whole remote history from offset 0 (or wherever it starts).
//! When one name has several ids in the bucket (deleted and recreated), the newest wins; a topic
//! with a tombstone (`deleted.json`, see `topic_delete.rs`) is never restored.

use std::collections::BTreeMap;

use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use strata_tiering::keys;
use uuid::Uuid;

use crate::log::TopicMetadata;

use super::TieredStorage;

const TOPIC_RECORD_VERSION: u32 = 1;

/// The JSON stored in `topic.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct TopicRecord {
    version: u32,
    name: String,
    topic_id: Uuid,
    partitions: i32,
    overrides: BTreeMap<String, String>,
    updated_ms: i64,
}

/// Writes the topic's `topic.json` unless this process already wrote the same metadata, or the
/// topic is no longer live (deleted, or being deleted, since the caller looked it up).
pub(crate) async fn publish_topic(ts: &TieredStorage, meta: &TopicMetadata) {
    let deleting = ts.deleting_topics.lock().await;
    let live = ts
        .log
        .topic(&meta.name)
        .is_some_and(|now| now.topic_id == meta.topic_id);
    if !live || deleting.contains(&meta.topic_id) {
        return;
    }
    if ts
        .published
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&meta.name)
        == Some(meta)
    {
        return;
    }
    let remote = ts.rlm.remote();
    let key = keys::format_topic_meta(&remote.prefix, &meta.name, meta.topic_id);
    let record = TopicRecord {
        version: TOPIC_RECORD_VERSION,
        name: meta.name.clone(),
        topic_id: meta.topic_id,
        partitions: meta.partitions,
        overrides: meta.overrides.clone(),
        updated_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    };
    let Ok(bytes) = serde_json::to_vec_pretty(&record) else {
        return;
    };
    let put = remote.store.put(&key, PutPayload::from(bytes));
    match tokio::time::timeout(std::time::Duration::from_secs(5), put).await {
        Ok(Ok(_)) => {
            tracing::info!(topic = %meta.name, key = %key, "topic metadata written to the remote tier");
            ts.published
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(meta.name.clone(), meta.clone());
        }
        Ok(Err(error)) => {
            tracing::warn!(topic = %meta.name, %error, "writing topic metadata failed")
        }
        Err(_) => tracing::warn!(topic = %meta.name, "writing topic metadata timed out"),
    }
}

/// The newest record of every topic in the bucket, and how many records could not be read.
async fn read_records(ts: &TieredStorage) -> anyhow::Result<(Vec<TopicRecord>, usize)> {
    let remote = ts.rlm.remote();
    let root = keys::format_topics_root(&remote.prefix);
    let listing = remote.store.list_with_delimiter(Some(&root)).await?;
    // Deleted topics (their remote data may still be going) are never restored.
    let deleted: std::collections::HashSet<(String, Uuid)> =
        ts.rlm.tombstoned_topics().await?.into_iter().collect();
    let mut newest: BTreeMap<String, TopicRecord> = BTreeMap::new();
    let mut unreadable = 0;
    for dir in listing.common_prefixes {
        let Some(name) = dir.filename() else { continue };
        let Some((topic, topic_id)) = keys::parse_topic_dir(name) else {
            continue;
        };
        if deleted.contains(&(topic.clone(), topic_id)) {
            tracing::info!(topic, %topic_id, "remote topic was deleted; not restored");
            continue;
        }
        let key = keys::format_topic_meta(&remote.prefix, &topic, topic_id);
        let bytes = match remote.store.get(&key).await {
            Ok(got) => got.bytes().await?,
            Err(object_store::Error::NotFound { .. }) => {
                tracing::warn!(topic, %topic_id, "remote topic without topic.json; not restored");
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let record: TopicRecord = match serde_json::from_slice(&bytes) {
            Ok(record) => record,
            Err(error) => {
                // One damaged record must not cost the other topics their restore.
                tracing::error!(key = %key, %error, "unreadable topic.json; topic not restored");
                unreadable += 1;
                continue;
            }
        };
        if record.version != TOPIC_RECORD_VERSION || record.name != topic {
            tracing::warn!(key = %key, version = record.version, "unknown topic.json; not restored");
            continue;
        }
        if newest
            .get(&topic)
            .is_none_or(|r| r.updated_ms < record.updated_ms)
        {
            newest.insert(topic, record);
        }
    }
    Ok((newest.into_values().collect(), unreadable))
}

/// Present while a restore from the bucket has not finished: the next start goes on with it
/// (a restore stopped halfway, by a crash or a store error, would otherwise never finish, as
/// restoring starts only on a data directory without topics).
pub(crate) fn restore_marker(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("restore-from-bucket.pending")
}

/// Recreates every topic the bucket knows that the log lacks (on an empty data directory, or
/// to finish an interrupted restore).
pub(crate) async fn restore_from_bucket(ts: &TieredStorage) -> anyhow::Result<()> {
    let marker = restore_marker(&ts.data_dir);
    std::fs::write(&marker, b"")?;
    let (records, mut failed) = read_records(ts).await?;
    for record in records {
        if ts.log.topic(&record.name).is_some() {
            continue;
        }
        if let Err(error) = restore_topic(ts, &record).await {
            tracing::error!(topic = %record.name, error = %format!("{error:#}"), "restoring topic failed; retried at the next start");
            failed += 1;
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} topic(s) not restored yet");
    }
    std::fs::remove_file(&marker)?;
    Ok(())
}

async fn restore_topic(ts: &TieredStorage, record: &TopicRecord) -> anyhow::Result<()> {
    let mut next_offsets = Vec::new();
    for partition in 0..record.partitions {
        ts.rlm
            .register_partition(&record.name, record.topic_id, partition);
        let highest = ts
            .rlm
            .highest_tiered_offset(&record.name, partition)
            .await?;
        // Remote retention may have deleted every segment: the log still goes on after
        // the offsets it once held (the manifest's log start), never reusing them.
        let remote_start = ts
            .rlm
            .remote_log_start_offset(&record.name, partition)
            .await?
            .unwrap_or(0);
        next_offsets.push((highest + 1).max(remote_start));
    }
    let meta = TopicMetadata {
        name: record.name.clone(),
        topic_id: record.topic_id,
        partitions: record.partitions,
        overrides: record.overrides.clone(),
    };
    ts.log.restore_topic(meta.clone(), &next_offsets)?;
    ts.published
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(meta.name.clone(), meta);
    tracing::info!(topic = %record.name, topic_id = %record.topic_id, partitions = record.partitions,
        ?next_offsets, "topic restored from the remote tier");
    Ok(())
}

/// The highest manifest writer epoch in the bucket (0 when empty): a broker restored on an
/// empty data directory has a fresh broker epoch and must still out-rank the previous writer.
pub async fn highest_writer_epoch(remote: &strata_tiering::RemoteStore) -> anyhow::Result<u64> {
    let manifests = strata_tiering::manifest::ManifestStore::new(remote.clone());
    let root = keys::format_topics_root(&remote.prefix);
    let mut highest = 0;
    let topics = remote.store.list_with_delimiter(Some(&root)).await?;
    for topic_dir in topics.common_prefixes {
        let partitions = remote.store.list_with_delimiter(Some(&topic_dir)).await?;
        for dir in partitions.common_prefixes {
            let Some(pid) = keys::parse_partition_dir(&remote.prefix, &dir) else {
                continue;
            };
            if let Some(v) = manifests.load(&pid).await? {
                highest = highest.max(v.manifest.writer_epoch);
            }
        }
    }
    Ok(highest)
}
