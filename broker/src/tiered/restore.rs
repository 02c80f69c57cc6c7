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
//!
//! A restore that cannot finish (the object store unreachable at start, a topic record
//! unreadable) is retried every task interval and at every start until it does. Meanwhile
//! [`RestoreGate`] refuses to create the topics it has yet to bring back (every topic while the
//! bucket cannot be listed) with LEADER_NOT_AVAILABLE, which clients retry: a topic created
//! under such a name would get a new id, and the restore would then skip it, its remote history
//! out of reach. Once the bucket answers, the broker also raises its manifest writer epoch past
//! the bucket's (at start it could not read it).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use strata_tiering::keys;
use uuid::Uuid;

use crate::log::{LogError, TopicCreationGate, TopicMetadata};

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

/// What a restore from the bucket still has to bring back (shown by `strata tier status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PendingRestore {
    /// Nothing: no restore, or it finished.
    #[default]
    Nothing,
    /// The bucket could not be listed yet: any topic may be in it.
    EveryTopic,
    /// These topics (listed, not restored yet).
    Topics(BTreeSet<String>),
}

impl PendingRestore {
    pub fn is_nothing(&self) -> bool {
        *self == PendingRestore::Nothing
    }

    fn holds(&self, topic: &str) -> bool {
        match self {
            PendingRestore::Nothing => false,
            PendingRestore::EveryTopic => true,
            PendingRestore::Topics(topics) => topics.contains(topic),
        }
    }
}

/// The restore's progress, shared with [`RestoreGate`].
pub(crate) type SharedPendingRestore = Arc<Mutex<PendingRestore>>;

/// Why the last restore attempt did not finish; `None` once one did (or none failed).
pub(crate) type SharedRestoreError = Arc<Mutex<Option<String>>>;

/// Refuses to create a topic the unfinished restore may still bring back.
pub(crate) struct RestoreGate {
    pub(crate) pending: SharedPendingRestore,
    pub(crate) last_error: SharedRestoreError,
}

impl TopicCreationGate for RestoreGate {
    fn may_create(&self, topic: &str) -> Result<(), LogError> {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if !pending.holds(topic) {
            return Ok(());
        }
        let reason = match *pending {
            PendingRestore::EveryTopic => {
                let last_error = self
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                match last_error.as_deref() {
                    Some(error) => format!(
                        "the restore from the remote tier has not read the bucket yet \
                         (is the object store reachable? last error: {error})"
                    ),
                    None => "the restore from the remote tier has not read the bucket yet \
                             (is the object store reachable?)"
                        .to_string(),
                }
            }
            _ => "the remote tier holds a topic of this name that is not restored yet".to_string(),
        };
        Err(LogError::RestorePending {
            topic: topic.to_string(),
            reason,
        })
    }
}

fn set_pending(ts: &TieredStorage, pending: PendingRestore) {
    *ts.state
        .pending_restore
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = pending;
}

/// The newest record of every topic in the bucket, and the names of topics whose record could
/// not be read.
async fn read_records(ts: &TieredStorage) -> anyhow::Result<(Vec<TopicRecord>, BTreeSet<String>)> {
    let remote = ts.rlm.remote();
    let root = keys::format_topics_root(&remote.prefix);
    let listing = remote.store.list_with_delimiter(Some(&root)).await?;
    // Deleted topics (their remote data may still be going) are never restored.
    let deleted: std::collections::HashSet<(String, Uuid)> =
        ts.rlm.tombstoned_topics().await?.into_iter().collect();
    let mut newest: BTreeMap<String, TopicRecord> = BTreeMap::new();
    let mut unreadable = BTreeSet::new();
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
                unreadable.insert(topic);
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
/// to finish an interrupted restore), keeping `TierState::pending_restore` up to date.
pub(crate) async fn restore_from_bucket(ts: &TieredStorage) -> anyhow::Result<()> {
    let marker = restore_marker(&ts.data_dir);
    if !marker.exists() {
        std::fs::write(&marker, b"")?;
    }
    let (records, unreadable) = read_records(ts).await?;
    // The bucket answers: out-rank whoever wrote its manifests before (unknown at start if the
    // store was down then).
    if !raise_past_bucket_epoch(ts).await {
        anyhow::bail!("the bucket's manifest writer epochs could not be read");
    }
    let mut pending: BTreeSet<String> = records
        .iter()
        .map(|r| r.name.clone())
        .filter(|name| ts.log.topic(name).is_none())
        .chain(unreadable)
        .collect();
    set_pending(ts, PendingRestore::Topics(pending.clone()));
    for record in records {
        if ts.log.topic(&record.name).is_some() {
            continue;
        }
        match restore_topic(ts, &record).await {
            Ok(()) => {
                pending.remove(&record.name);
                set_pending(ts, PendingRestore::Topics(pending.clone()));
            }
            Err(error) => {
                tracing::error!(topic = %record.name, error = %format!("{error:#}"), "restoring topic failed; retried every task interval");
            }
        }
    }
    if !pending.is_empty() {
        anyhow::bail!(
            "{} topic(s) not restored yet: {}",
            pending.len(),
            pending.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    std::fs::remove_file(&marker)?;
    set_pending(ts, PendingRestore::Nothing);
    Ok(())
}

/// Keeps the error of an unfinished restore attempt for the refusals it causes.
fn record_attempt(ts: &TieredStorage, attempt: &anyhow::Result<()>) {
    *ts.state
        .restore_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = attempt.as_ref().err().map(|e| format!("{e:#}"));
}

/// At start: restore when the data directory has no topics or an earlier restore did not
/// finish. Until it has, the topics it may bring back cannot be created.
pub(crate) async fn restore_at_start(ts: &TieredStorage) {
    if !ts.log.topics().is_empty() && !restore_marker(&ts.data_dir).exists() {
        return;
    }
    set_pending(ts, PendingRestore::EveryTopic);
    let attempt = restore_from_bucket(ts).await;
    record_attempt(ts, &attempt);
    if let Err(error) = attempt {
        tracing::error!(error = %format!("{error:#}"), "restore from the remote tier unfinished; starting without it and retrying every task interval");
    }
}

/// Every task interval while a restore is unfinished: try again; once it finishes, expose the
/// restored topics' remote history at once. Ends when the restore is done.
pub(crate) async fn retry_unfinished_restore(ts: Arc<TieredStorage>) {
    if !restore_marker(&ts.data_dir).exists() {
        return;
    }
    let finished = every_task_interval_until_done(&ts, || async {
        let attempt = restore_from_bucket(&ts).await;
        record_attempt(&ts, &attempt);
        match attempt {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"),
                    "restore from the remote tier still unfinished; retrying");
                false
            }
        }
    })
    .await;
    if finished {
        tracing::info!("restore from the remote tier finished");
        super::gate::refresh(&ts).await;
        super::retention::expose_remote_log_starts(&ts).await;
    }
}

/// Runs `attempt` every task interval, the first time one interval from now, until it answers
/// true (then returns true) or the tier stops (false). Stopping cuts an attempt short, which is
/// as safe as a crash: what it retries is redone at the next start.
async fn every_task_interval_until_done<F, Fut>(ts: &TieredStorage, mut attempt: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let mut tick = tokio::time::interval(ts.settings.task_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = ts.cancelled().cancelled() => return false,
            _ = tick.tick() => {}
        }
        let done = tokio::select! {
            _ = ts.cancelled().cancelled() => return false,
            done = attempt() => done,
        };
        if done {
            return true;
        }
    }
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

/// Raises this broker's manifest writer epoch past the bucket's highest: a broker restored on an
/// empty data directory has a fresh broker epoch (and one restored earlier may have written with
/// an epoch above its own), yet must out-rank the previous writer. False when the bucket could
/// not be read. Reads the bucket once per process: after that this broker is the one raising
/// the epochs.
pub(crate) async fn raise_past_bucket_epoch(ts: &TieredStorage) -> bool {
    if ts.state.bucket_epoch_known.load(Ordering::Acquire) {
        return true;
    }
    match highest_writer_epoch(ts.rlm.remote()).await {
        Ok(highest) => {
            let epoch = ts.rlm.raise_writer_epoch(highest + 1);
            ts.state.bucket_epoch_known.store(true, Ordering::Release);
            tracing::info!(epoch, bucket = highest, "manifest writer epoch");
            true
        }
        Err(error) => {
            tracing::warn!(error = %format!("{error:#}"), "cannot read the remote tier's manifest epochs yet; retrying every task interval (uploads to manifests of a higher epoch are refused until then)");
            false
        }
    }
}

/// Until [`raise_past_bucket_epoch`] succeeds: try again every task interval.
pub(crate) async fn retry_bucket_epoch(ts: Arc<TieredStorage>) {
    every_task_interval_until_done(&ts, || raise_past_bucket_epoch(&ts)).await;
}

/// The highest manifest writer epoch in the bucket (0 when empty).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogManager, LogManagerConfig};

    #[tokio::test]
    async fn topics_an_unfinished_restore_may_bring_back_cannot_be_created() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogManager::open(LogManagerConfig::new(dir.path()))
            .await
            .unwrap();
        let pending = SharedPendingRestore::default();
        let last_error = SharedRestoreError::default();
        log.set_topic_creation_gate(Arc::new(RestoreGate {
            pending: pending.clone(),
            last_error: last_error.clone(),
        }));
        let create = |name: &str| log.create_topic(name, 1, BTreeMap::new(), false);

        *pending.lock().unwrap() = PendingRestore::EveryTopic;
        let refused = create("orders").unwrap_err();
        assert_eq!(refused.kafka_error_code(), 5, "LEADER_NOT_AVAILABLE");
        assert!(refused.is_retryable());
        assert!(
            refused.to_string().contains("object store reachable"),
            "{refused}"
        );
        *last_error.lock().unwrap() = Some("NoSuchBucket: bucket nope".into());
        let refused = create("orders").unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("last error: NoSuchBucket: bucket nope"),
            "the store's own error is named: {refused}"
        );

        *pending.lock().unwrap() = PendingRestore::Topics(BTreeSet::from(["orders".to_string()]));
        let refused = create("orders").unwrap_err();
        assert!(
            refused.to_string().contains("not restored yet"),
            "{refused}"
        );
        create("payments").expect("a name the bucket does not hold");

        *pending.lock().unwrap() = PendingRestore::Nothing;
        create("orders").expect("restore finished");
        assert!(matches!(
            create("payments"),
            Err(LogError::TopicAlreadyExists(_))
        ));
    }
}
