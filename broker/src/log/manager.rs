//! The log manager: the data directory, topic metadata, every partition, and the background
//! work (idle rolls, `flush.ms`, retention, recovery-point checkpoints).
//!
//! Data directory:
//! ```text
//! <data>/meta.properties                    format version; a mismatch refuses to start
//! <data>/.lock                              held (flock) while a process uses the directory
//! <data>/topics.json                        all topics (name, id, partitions, overrides)
//! <data>/recovery-point-offset-checkpoint   per-partition fsynced offsets
//! <data>/.clean_shutdown                    present only after a clean shutdown
//! <data>/<topic>-<partition>/               one PartitionLog each
//! ```
//! Crash consistency of metadata: `topics.json` is replaced atomically (temp + fsync + rename +
//! fsync dir). Creating a topic makes its directories first and publishes it in `topics.json`
//! last; deleting unpublishes first and removes directories after. Directories without a topic
//! are therefore leftovers of an interrupted create/delete and are removed at startup.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::metrics::LogMetrics;
use super::partition_log::{SharedByPartitions, sync_dir};
use super::recovery::load_partition;
use super::{
    AllowAllCreations, AllowAllDeletions, ConfigEntry, ConfigOp, LocalDeletionGate, LogError,
    PartitionLog, SegmentEvent, SharedGate, TopicConfig, TopicCreationGate, apply_config_ops,
    now_ms,
};

const DATA_FORMAT_VERSION: u32 = 1;
const META_FILE: &str = "meta.properties";
const TOPICS_FILE: &str = "topics.json";
const CHECKPOINT_FILE: &str = "recovery-point-offset-checkpoint";
const CLEAN_SHUTDOWN_FILE: &str = ".clean_shutdown";

/// How the log manager runs.
#[derive(Debug, Clone)]
pub struct LogManagerConfig {
    pub data_dir: PathBuf,
    /// Broker-level log settings under Kafka's broker names (`log.segment.bytes`, ...).
    pub broker_defaults: BTreeMap<String, String>,
    /// `log.retention.check.interval.ms` (Kafka default 5 minutes).
    pub retention_check_interval: Duration,
    /// How often idle active segments are checked against `segment.ms` and `flush.ms`.
    pub roll_check_interval: Duration,
    /// How often the recovery-point checkpoint is written (`log.flush.offset.checkpoint.interval.ms`).
    pub checkpoint_interval: Duration,
}

impl LogManagerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            broker_defaults: BTreeMap::new(),
            retention_check_interval: Duration::from_secs(300),
            roll_check_interval: Duration::from_secs(10),
            checkpoint_interval: Duration::from_secs(60),
        }
    }
}

/// A topic as the log knows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicMetadata {
    pub name: String,
    pub topic_id: uuid::Uuid,
    pub partitions: i32,
    pub overrides: BTreeMap<String, String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct TopicsFile {
    version: u32,
    topics: Vec<TopicMetadata>,
}

struct TopicEntry {
    metadata: TopicMetadata,
    partitions: Vec<Arc<PartitionLog>>,
}

/// Owns every partition log under one data directory. Shared as `Arc<LogManager>`.
pub struct LogManager {
    config: LogManagerConfig,
    topics: RwLock<HashMap<String, TopicEntry>>,
    /// Serialises metadata changes (create/delete/alter) so `topics.json` writes do not race.
    metadata_lock: Mutex<()>,
    events: broadcast::Sender<SegmentEvent>,
    gate: SharedGate,
    creation_gate: RwLock<Arc<dyn TopicCreationGate>>,
    metrics: Arc<LogMetrics>,
    cancel: CancellationToken,
    _dir_lock: File,
}

/// Writes `path` atomically: temp file, (fsync), rename, (fsync directory).
pub(crate) fn write_atomically(path: &Path, contents: &[u8], sync: bool) -> std::io::Result<()> {
    let temp = PathBuf::from(format!("{}.tmp", path.display()));
    let mut file = File::create(&temp)?;
    file.write_all(contents)?;
    if sync {
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)?;
    if sync && let Some(dir) = path.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

fn storage(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> LogError {
    let context = context.into();
    move |e| LogError::storage(context, e)
}

/// Kafka's topic naming rules.
pub(crate) fn validate_topic_name(name: &str) -> Result<(), LogError> {
    let invalid = |reason: &str| {
        Err(LogError::InvalidTopic {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return invalid("the empty string is not allowed");
    }
    if name == "." || name == ".." {
        return invalid("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return invalid("longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid("only ASCII alphanumerics, '.', '_' and '-' are allowed");
    }
    Ok(())
}

fn partition_dir(data_dir: &Path, topic: &str, partition: i32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

impl LogManager {
    /// Opens (creating if needed) the data directory, recovers every partition and starts the
    /// background tasks. Must be called inside a tokio runtime.
    pub async fn open(config: LogManagerConfig) -> Result<Arc<Self>, LogError> {
        let opened = tokio::task::spawn_blocking(move || Self::open_blocking(config))
            .await
            .map_err(|e| LogError::storage("opening the log", std::io::Error::other(e)))??;
        let manager = Arc::new(opened);
        Self::spawn_background(&manager);
        Ok(manager)
    }

    fn open_blocking(config: LogManagerConfig) -> Result<LogManager, LogError> {
        let data_dir = config.data_dir.clone();
        std::fs::create_dir_all(&data_dir)
            .map_err(storage(format!("creating {}", data_dir.display())))?;
        let lock =
            File::create(data_dir.join(".lock")).map_err(storage("creating the lock file"))?;
        // Retry briefly: a forked child (e.g. `mount` spawned by another thread) may share the
        // lock's file description for a moment before its exec closes it.
        let deadline = std::time::Instant::now() + Duration::from_millis(500);
        while lock.try_lock().is_err() {
            if std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            return Err(LogError::DataDirectory(format!(
                "{} is in use by another process",
                data_dir.display()
            )));
        }
        check_meta_properties(&data_dir)?;
        let topics_file = read_topics(&data_dir)?;
        let clean = data_dir.join(CLEAN_SHUTDOWN_FILE).exists();
        let checkpoints = read_checkpoint(&data_dir);
        let events = broadcast::channel(4096).0;
        let default_gate: Arc<dyn LocalDeletionGate> = Arc::new(AllowAllDeletions);
        let gate: SharedGate = Arc::new(RwLock::new(default_gate));
        let metrics = Arc::new(LogMetrics::default());
        let shared = SharedByPartitions {
            events: events.clone(),
            gate: gate.clone(),
            metrics: metrics.clone(),
        };
        let started = std::time::Instant::now();
        let mut topics = HashMap::new();
        let mut known_dirs = std::collections::HashSet::new();
        for metadata in topics_file {
            let topic_config = Arc::new(TopicConfig::resolve(
                &config.broker_defaults,
                &metadata.overrides,
            )?);
            let mut partitions = Vec::new();
            for partition in 0..metadata.partitions {
                let dir = partition_dir(&data_dir, &metadata.name, partition);
                known_dirs.insert(dir.clone());
                std::fs::create_dir_all(&dir)
                    .map_err(storage(format!("creating {}", dir.display())))?;
                write_partition_metadata(&dir, metadata.topic_id, false)?;
                let recovery_point = checkpoints
                    .get(&(metadata.name.clone(), partition))
                    .copied()
                    .unwrap_or(0);
                let recovered = load_partition(&dir, &topic_config, recovery_point, clean)?;
                partitions.push(Arc::new(PartitionLog::new(
                    metadata.name.clone(),
                    partition,
                    metadata.topic_id,
                    dir,
                    topic_config.clone(),
                    recovered.state,
                    recovered.recovery_point,
                    shared.clone(),
                )));
            }
            topics.insert(
                metadata.name.clone(),
                TopicEntry {
                    metadata,
                    partitions,
                },
            );
        }
        remove_orphan_dirs(&data_dir, &known_dirs);
        // From here on a crash is unclean until the next clean shutdown.
        if clean {
            std::fs::remove_file(data_dir.join(CLEAN_SHUTDOWN_FILE))
                .map_err(storage("removing the clean-shutdown marker"))?;
            sync_dir(&data_dir).map_err(storage("fsyncing the data directory"))?;
        }
        tracing::info!(data_dir = %data_dir.display(), topics = topics.len(), clean_shutdown = clean,
            elapsed_ms = started.elapsed().as_millis() as u64, "log manager opened");
        Ok(LogManager {
            config,
            topics: RwLock::new(topics),
            metadata_lock: Mutex::new(()),
            events,
            gate,
            creation_gate: RwLock::new(Arc::new(AllowAllCreations)),
            metrics,
            cancel: CancellationToken::new(),
            _dir_lock: lock,
        })
    }

    fn spawn_background(manager: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(manager);
        let cancel = manager.cancel.clone();
        let (roll_every, retention_every, checkpoint_every) = (
            manager.config.roll_check_interval,
            manager.config.retention_check_interval,
            manager.config.checkpoint_interval,
        );
        tokio::spawn(async move {
            let mut roll =
                tokio::time::interval_at(tokio::time::Instant::now() + roll_every, roll_every);
            let mut retention = tokio::time::interval_at(
                tokio::time::Instant::now() + retention_every,
                retention_every,
            );
            let mut checkpoint = tokio::time::interval_at(
                tokio::time::Instant::now() + checkpoint_every,
                checkpoint_every,
            );
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = roll.tick() => {
                        let Some(manager) = weak.upgrade() else { return };
                        let now = now_ms();
                        for partition in manager.all_partitions() {
                            if let Err(error) = partition.maybe_roll_idle(now) {
                                tracing::warn!(topic = %partition.topic(), partition = partition.partition(), %error, "idle roll failed");
                            }
                            if let Err(error) = partition.maybe_flush_by_time(now).await {
                                tracing::warn!(topic = %partition.topic(), partition = partition.partition(), %error, "flush.ms flush failed");
                            }
                        }
                    }
                    _ = retention.tick() => {
                        let Some(manager) = weak.upgrade() else { return };
                        let partitions = manager.all_partitions();
                        let _ = tokio::task::spawn_blocking(move || {
                            let now = now_ms();
                            for partition in partitions {
                                partition.apply_retention(now);
                            }
                        }).await;
                    }
                    _ = checkpoint.tick() => {
                        let Some(manager) = weak.upgrade() else { return };
                        let _ = tokio::task::spawn_blocking(move || {
                            if let Err(error) = manager.write_checkpoint() {
                                tracing::warn!(%error, "writing the recovery-point checkpoint failed");
                            }
                        }).await;
                    }
                }
            }
        });
    }

    fn all_partitions(&self) -> Vec<Arc<PartitionLog>> {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        topics
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    fn write_checkpoint(&self) -> Result<(), LogError> {
        let partitions = self.all_partitions();
        let mut text = format!("0\n{}\n", partitions.len());
        for partition in &partitions {
            text.push_str(&format!(
                "{} {} {}\n",
                partition.topic(),
                partition.partition(),
                partition.recovery_point()
            ));
        }
        write_atomically(
            &self.config.data_dir.join(CHECKPOINT_FILE),
            text.as_bytes(),
            true,
        )
        .map_err(storage("writing the recovery-point checkpoint"))
    }

    fn persist_topics(&self, topics: &HashMap<String, TopicEntry>) -> Result<(), LogError> {
        let mut list: Vec<TopicMetadata> = topics.values().map(|t| t.metadata.clone()).collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        let json = serde_json::to_vec_pretty(&TopicsFile {
            version: DATA_FORMAT_VERSION,
            topics: list,
        })
        .map_err(|e| LogError::storage("encoding topics", std::io::Error::other(e)))?;
        write_atomically(&self.config.data_dir.join(TOPICS_FILE), &json, true)
            .map_err(storage("writing topics.json"))
    }

    fn open_new_partition(
        &self,
        metadata: &TopicMetadata,
        partition: i32,
        config: &Arc<TopicConfig>,
    ) -> Result<Arc<PartitionLog>, LogError> {
        let dir = partition_dir(&self.config.data_dir, &metadata.name, partition);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(storage(format!("clearing stale {}", dir.display())))?;
        }
        std::fs::create_dir_all(&dir).map_err(storage(format!("creating {}", dir.display())))?;
        self.open_new_partition_in(metadata, partition, config)
    }

    /// Opens a new partition in its (existing, fresh) directory.
    fn open_new_partition_in(
        &self,
        metadata: &TopicMetadata,
        partition: i32,
        config: &Arc<TopicConfig>,
    ) -> Result<Arc<PartitionLog>, LogError> {
        let dir = partition_dir(&self.config.data_dir, &metadata.name, partition);
        write_partition_metadata(&dir, metadata.topic_id, true)?;
        let recovered = load_partition(&dir, config, 0, true)?;
        sync_dir(&dir).map_err(storage("fsyncing partition directory"))?;
        Ok(Arc::new(PartitionLog::new(
            metadata.name.clone(),
            partition,
            metadata.topic_id,
            dir,
            config.clone(),
            recovered.state,
            recovered.recovery_point,
            SharedByPartitions {
                events: self.events.clone(),
                gate: self.gate.clone(),
                metrics: self.metrics.clone(),
            },
        )))
    }

    /// CreateTopics. Errors: TOPIC_ALREADY_EXISTS, INVALID_TOPIC_EXCEPTION, INVALID_PARTITIONS,
    /// INVALID_CONFIG. With `validate_only` nothing is written.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<TopicMetadata, LogError> {
        validate_topic_name(name)?;
        if partitions < 1 {
            return Err(LogError::InvalidPartitions(format!(
                "number of partitions must be at least 1, got {partitions}"
            )));
        }
        let config = Arc::new(TopicConfig::resolve(
            &self.config.broker_defaults,
            &overrides,
        )?);
        let _guard = self.metadata_lock.lock().unwrap_or_else(|p| p.into_inner());
        if self
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name)
        {
            return Err(LogError::TopicAlreadyExists(name.to_string()));
        }
        let creation_gate = self
            .creation_gate
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        creation_gate.may_create(name)?;
        let metadata = TopicMetadata {
            name: name.to_string(),
            topic_id: uuid::Uuid::new_v4(),
            partitions,
            overrides,
        };
        if validate_only {
            return Ok(metadata);
        }
        let logs = (0..partitions)
            .map(|p| self.open_new_partition(&metadata, p, &config))
            .collect::<Result<Vec<_>, _>>()?;
        sync_dir(&self.config.data_dir).map_err(storage("fsyncing the data directory"))?;
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        topics.insert(
            name.to_string(),
            TopicEntry {
                metadata: metadata.clone(),
                partitions: logs,
            },
        );
        if let Err(error) = self.persist_topics(&topics) {
            topics.remove(name);
            return Err(error);
        }
        tracing::info!(topic = name, topic_id = %metadata.topic_id, partitions, "created topic");
        Ok(metadata)
    }

    /// Restore from the remote tier: recreates a topic with its original id and configs, each
    /// partition's empty local log starting at `next_offsets[partition]` (the offset after the
    /// last remote record). Errors as [`Self::create_topic`].
    pub fn restore_topic(
        &self,
        metadata: TopicMetadata,
        next_offsets: &[i64],
    ) -> Result<(), LogError> {
        validate_topic_name(&metadata.name)?;
        let config = Arc::new(TopicConfig::resolve(
            &self.config.broker_defaults,
            &metadata.overrides,
        )?);
        let _guard = self.metadata_lock.lock().unwrap_or_else(|p| p.into_inner());
        let name = metadata.name.clone();
        {
            let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
            if topics.contains_key(&name)
                || topics
                    .values()
                    .any(|t| t.metadata.topic_id == metadata.topic_id)
            {
                return Err(LogError::TopicAlreadyExists(name));
            }
        }
        let mut logs = Vec::new();
        for partition in 0..metadata.partitions {
            let dir = partition_dir(&self.config.data_dir, &name, partition);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)
                .map_err(storage(format!("creating {}", dir.display())))?;
            let start = next_offsets
                .get(partition as usize)
                .copied()
                .unwrap_or(0)
                .max(0);
            write_atomically(
                &dir.join(super::partition_log::LOG_START_FILE),
                start.to_string().as_bytes(),
                true,
            )
            .map_err(storage("persisting the log start offset"))?;
            logs.push(self.open_new_partition_in(&metadata, partition, &config)?);
        }
        sync_dir(&self.config.data_dir).map_err(storage("fsyncing the data directory"))?;
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        topics.insert(
            name.clone(),
            TopicEntry {
                metadata: metadata.clone(),
                partitions: logs,
            },
        );
        if let Err(error) = self.persist_topics(&topics) {
            topics.remove(&name);
            return Err(error);
        }
        tracing::info!(topic = %name, topic_id = %metadata.topic_id, partitions = metadata.partitions, "restored topic");
        Ok(())
    }

    /// DeleteTopics: unpublishes the topic durably, then removes its directories.
    pub fn delete_topic(&self, name: &str) -> Result<(), LogError> {
        let _guard = self.metadata_lock.lock().unwrap_or_else(|p| p.into_inner());
        let entry = {
            let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
            let entry = topics
                .remove(name)
                .ok_or_else(|| LogError::UnknownTopicOrPartition {
                    topic: name.to_string(),
                    partition: -1,
                })?;
            if let Err(error) = self.persist_topics(&topics) {
                topics.insert(name.to_string(), entry);
                return Err(error);
            }
            entry
        };
        for partition in entry.partitions {
            let dir = partition.dir().to_path_buf();
            let doomed = PathBuf::from(format!(
                "{}.{}-delete",
                dir.display(),
                entry.metadata.topic_id.simple()
            ));
            if std::fs::rename(&dir, &doomed).is_ok() {
                let _ = std::fs::remove_dir_all(&doomed);
            }
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// CreatePartitions: grows the topic to `new_total` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        new_total: i32,
        validate_only: bool,
    ) -> Result<(), LogError> {
        let _guard = self.metadata_lock.lock().unwrap_or_else(|p| p.into_inner());
        let (metadata, config) = {
            let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
            let entry = topics
                .get(name)
                .ok_or_else(|| LogError::UnknownTopicOrPartition {
                    topic: name.to_string(),
                    partition: -1,
                })?;
            (entry.metadata.clone(), entry.partitions[0].config())
        };
        if new_total <= metadata.partitions {
            return Err(LogError::InvalidPartitions(format!(
                "topic currently has {} partitions, {new_total} would not be an increase",
                metadata.partitions
            )));
        }
        if validate_only {
            return Ok(());
        }
        let new_logs = (metadata.partitions..new_total)
            .map(|p| self.open_new_partition(&metadata, p, &config))
            .collect::<Result<Vec<_>, _>>()?;
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let entry = topics.get_mut(name).expect("held under metadata lock");
        entry.metadata.partitions = new_total;
        entry.partitions.extend(new_logs);
        self.persist_topics(&topics)
    }

    pub fn topics(&self) -> Vec<TopicMetadata> {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        let mut list: Vec<_> = topics.values().map(|t| t.metadata.clone()).collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    pub fn topic(&self, name: &str) -> Option<TopicMetadata> {
        self.topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .map(|t| t.metadata.clone())
    }

    pub fn topic_by_id(&self, id: uuid::Uuid) -> Option<TopicMetadata> {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        topics
            .values()
            .find(|t| t.metadata.topic_id == id)
            .map(|t| t.metadata.clone())
    }

    /// The directory holding every partition's log (the broker's one log dir).
    pub(crate) fn metrics(&self) -> &Arc<LogMetrics> {
        &self.metrics
    }

    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)
            .cloned()
    }

    /// DescribeConfigs for a topic: every known config with its value and source.
    pub fn describe_topic_config(&self, name: &str) -> Result<Vec<ConfigEntry>, LogError> {
        let partition =
            self.partition(name, 0)
                .ok_or_else(|| LogError::UnknownTopicOrPartition {
                    topic: name.to_string(),
                    partition: -1,
                })?;
        Ok(partition.config().describe())
    }

    /// IncrementalAlterConfigs semantics (for legacy AlterConfigs pass
    /// [`replace_all_ops`](super::replace_all_ops)). Applied to every partition at once.
    pub fn alter_topic_config(
        &self,
        name: &str,
        ops: Vec<ConfigOp>,
        validate_only: bool,
    ) -> Result<(), LogError> {
        let _guard = self.metadata_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let entry = topics
            .get(name)
            .ok_or_else(|| LogError::UnknownTopicOrPartition {
                topic: name.to_string(),
                partition: -1,
            })?;
        let overrides = apply_config_ops(&entry.metadata.overrides, &ops)?;
        let config = Arc::new(TopicConfig::resolve(
            &self.config.broker_defaults,
            &overrides,
        )?);
        if validate_only {
            return Ok(());
        }
        let previous = entry.metadata.overrides.clone();
        topics.get_mut(name).expect("present").metadata.overrides = overrides;
        if let Err(error) = self.persist_topics(&topics) {
            topics.get_mut(name).expect("present").metadata.overrides = previous;
            return Err(error);
        }
        for partition in &topics[name].partitions {
            partition.set_config(config.clone());
        }
        tracing::info!(topic = name, "altered topic config");
        Ok(())
    }

    pub fn subscribe_segment_events(&self) -> broadcast::Receiver<SegmentEvent> {
        self.events.subscribe()
    }

    /// Installs the check every topic creation passes (CreateTopics, auto-creation); restoring
    /// a topic ([`LogManager::restore_topic`]) does not ask it.
    pub fn set_topic_creation_gate(&self, gate: Arc<dyn TopicCreationGate>) {
        *self
            .creation_gate
            .write()
            .unwrap_or_else(|p| p.into_inner()) = gate;
    }

    pub fn set_local_deletion_gate(&self, gate: Arc<dyn LocalDeletionGate>) {
        *self.gate.write().unwrap_or_else(|p| p.into_inner()) = gate;
    }

    /// Runs retention on every partition now (tests and admin tools; normally periodic).
    pub fn run_retention_now(&self) -> usize {
        let now = now_ms();
        self.all_partitions()
            .iter()
            .map(|p| p.apply_retention(now))
            .sum()
    }

    /// Flushes every partition, writes producer snapshots, the recovery-point checkpoint and the
    /// clean-shutdown marker, and stops background work. Appends after this may fail.
    pub async fn shutdown(&self) -> Result<(), LogError> {
        self.cancel.cancel();
        for partition in self.all_partitions() {
            // Taking the append lock after setting the flag guarantees no append is mid-write.
            partition
                .shut_down
                .store(true, std::sync::atomic::Ordering::Release);
            drop(partition.lock_state());
            partition.trim_zeroed_tail()?;
            partition.flush().await?;
            partition.snapshot_producer_state()?;
        }
        let data_dir = self.config.data_dir.clone();
        self.write_checkpoint()?;
        write_atomically(&data_dir.join(CLEAN_SHUTDOWN_FILE), b"", true)
            .map_err(storage("writing the clean-shutdown marker"))?;
        tracing::info!(data_dir = %data_dir.display(), "log manager shut down cleanly");
        Ok(())
    }
}

impl Drop for LogManager {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn check_meta_properties(data_dir: &Path) -> Result<(), LogError> {
    let path = data_dir.join(META_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let version = text
                .lines()
                .find_map(|line| line.trim().strip_prefix("strata.log.format.version="))
                .and_then(|v| v.trim().parse::<u32>().ok());
            match version {
                Some(DATA_FORMAT_VERSION) => Ok(()),
                Some(other) => Err(LogError::DataDirectory(format!(
                    "{} has log format version {other}; this strata reads version {DATA_FORMAT_VERSION}",
                    path.display()
                ))),
                None => Err(LogError::DataDirectory(format!(
                    "{} has no strata.log.format.version",
                    path.display()
                ))),
            }
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let text =
                format!("# written by strata\nstrata.log.format.version={DATA_FORMAT_VERSION}\n");
            write_atomically(&path, text.as_bytes(), true)
                .map_err(storage("writing meta.properties"))
        }
        Err(error) => Err(LogError::storage("reading meta.properties", error)),
    }
}

fn read_topics(data_dir: &Path) -> Result<Vec<TopicMetadata>, LogError> {
    let path = data_dir.join(TOPICS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let file: TopicsFile = serde_json::from_slice(&bytes).map_err(|e| {
                LogError::DataDirectory(format!("{} is unreadable: {e}", path.display()))
            })?;
            if file.version != DATA_FORMAT_VERSION {
                return Err(LogError::DataDirectory(format!(
                    "{} has unsupported version {}",
                    path.display(),
                    file.version
                )));
            }
            Ok(file.topics)
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(error) => Err(LogError::storage("reading topics.json", error)),
    }
}

fn read_checkpoint(data_dir: &Path) -> HashMap<(String, i32), i64> {
    let Ok(text) = std::fs::read_to_string(data_dir.join(CHECKPOINT_FILE)) else {
        return HashMap::new();
    };
    text.lines()
        .skip(2)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (topic, partition, offset) = (
                fields.next()?,
                fields.next()?.parse().ok()?,
                fields.next()?.parse().ok()?,
            );
            Some(((topic.to_string(), partition), offset))
        })
        .collect()
}

fn write_partition_metadata(dir: &Path, topic_id: uuid::Uuid, sync: bool) -> Result<(), LogError> {
    let path = dir.join("partition.metadata");
    let text = format!("version: 0\ntopic_id: {topic_id}\n");
    if std::fs::read_to_string(&path).is_ok_and(|existing| existing == text) {
        return Ok(());
    }
    write_atomically(&path, text.as_bytes(), sync).map_err(storage("writing partition.metadata"))
}

fn remove_orphan_dirs(data_dir: &Path, known: &std::collections::HashSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() && !known.contains(&path) && path.join("partition.metadata").exists()
            || path.to_string_lossy().ends_with("-delete")
        {
            tracing::warn!(dir = %path.display(), "removing partition directory of no current topic");
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

#[cfg(test)]
mod restore_tests {
    use super::*;

    #[tokio::test]
    async fn restored_topic_keeps_its_id_and_starts_at_the_given_offset() {
        let dir = tempfile::tempdir().unwrap();
        let manager = LogManager::open(LogManagerConfig::new(dir.path()))
            .await
            .unwrap();
        let metadata = TopicMetadata {
            name: "restored".into(),
            topic_id: uuid::Uuid::new_v4(),
            partitions: 2,
            overrides: BTreeMap::from([("remote.storage.enable".into(), "true".into())]),
        };
        manager.restore_topic(metadata.clone(), &[1000, 7]).unwrap();
        assert!(matches!(
            manager.restore_topic(metadata.clone(), &[0, 0]),
            Err(LogError::TopicAlreadyExists(_))
        ));
        let check = |manager: &LogManager| {
            assert_eq!(manager.topic("restored"), Some(metadata.clone()));
            let p0 = manager.partition("restored", 0).unwrap();
            assert_eq!(p0.log_end_offset(), 1000);
            assert_eq!(p0.local_log_start_offset(), 1000);
            assert_eq!(
                manager.partition("restored", 1).unwrap().log_end_offset(),
                7
            );
            assert_eq!(p0.expose_remote_log_start(10), 10);
            assert_eq!(p0.log_start_offset(), 10);
            assert_eq!(p0.local_log_start_offset(), 1000);
        };
        check(&manager);
        manager.shutdown().await.unwrap();
        drop(manager);
        let manager = LogManager::open(LogManagerConfig::new(dir.path()))
            .await
            .unwrap();
        check(&manager);

        // DeleteRecords up to 500 (inside the remote range): after a restart the remote tier
        // may offer its old start again, but the log start never goes below 500.
        let p0 = manager.partition("restored", 0).unwrap();
        assert_eq!(p0.delete_records_before(500).unwrap(), 500);
        assert_eq!(p0.deleted_records_offset(), 500);
        manager.shutdown().await.unwrap();
        drop(manager);
        let manager = LogManager::open(LogManagerConfig::new(dir.path()))
            .await
            .unwrap();
        let p0 = manager.partition("restored", 0).unwrap();
        assert_eq!(p0.deleted_records_offset(), 500);
        assert_eq!(p0.log_start_offset(), 1000, "clamped to local data at open");
        assert_eq!(p0.expose_remote_log_start(10), 500);
        assert_eq!(p0.log_start_offset(), 500);
    }
}
