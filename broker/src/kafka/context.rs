//! Everything a request handler can reach: the log, the group coordinator, broker identity and
//! the Kafka-named broker configs.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::group::{GroupCoordinator, GroupTimings};
use crate::log::LogManager;

use super::broker_state::{BrokerIdentity, ProducerIdAllocator};
use super::codec::DEFAULT_MAX_REQUEST_BYTES;
use super::handlers::admin_topics::TopicDeletion;
use super::handlers::fetch::ColdReader;
use super::handlers::list_offsets::{LocalOnly, TierOffsets};
use super::handlers::produce::AppendAdmission;
use super::metrics::KafkaMetrics;

/// What the binary hands the Kafka server at start.
pub struct BrokerContextParams {
    pub log: Arc<LogManager>,
    /// Where the server keeps its own durable state (cluster id, broker epoch, producer-id
    /// block, committed offsets), e.g. `<data dir>/kafka`. Safe inside the log's data dir: the
    /// log engine only ever removes directories that hold a `partition.metadata` file.
    pub state_dir: std::path::PathBuf,
    /// Host and port written into Metadata / FindCoordinator (the address clients dial).
    pub advertised_host: String,
    pub advertised_port: u16,
    /// Kafka-named broker configs (`node.id`, `num.partitions`, `auto.create.topics.enable`,
    /// `socket.request.max.bytes`, `connections.max.idle.ms`, `group.*`, topic defaults ...).
    pub broker_configs: BTreeMap<String, String>,
}

/// Broker configs that take effect while the broker runs and can therefore be changed through
/// AlterConfigs; every other broker config is read once at start-up. The remote tier's byte-rate
/// quotas are dynamic as in Kafka (KIP-956); subsystems follow changes through
/// [`BrokerContext::watch_broker_configs`].
pub const DYNAMIC_BROKER_CONFIGS: &[&str] = &[
    "auto.create.topics.enable",
    "num.partitions",
    "remote.log.manager.copy.max.bytes.per.second",
    "remote.log.manager.fetch.max.bytes.per.second",
];

/// Settings read once from the broker configs.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub node_id: i32,
    pub max_request_bytes: usize,
    pub connections_max_idle: Duration,
}

pub struct BrokerContext {
    pub log: Arc<LogManager>,
    pub groups: Arc<GroupCoordinator>,
    pub producer_ids: ProducerIdAllocator,
    pub identity: BrokerIdentity,
    pub advertised_host: String,
    pub advertised_port: i32,
    pub settings: ServerSettings,
    pub metrics: KafkaMetrics,
    /// Broker configs from the config file, flags and environment, fixed for this run.
    static_broker_configs: BTreeMap<String, String>,
    /// Overrides set through AlterConfigs / IncrementalAlterConfigs (only the keys in
    /// [`DYNAMIC_BROKER_CONFIGS`]); persisted in `state_dir`, so they survive restarts as
    /// Kafka's do, and take precedence over the static value.
    dynamic_broker_configs: RwLock<BTreeMap<String, String>>,
    /// The effective broker configs (static overlaid with dynamic), republished on every change.
    effective_broker_configs: tokio::sync::watch::Sender<BTreeMap<String, String>>,
    state_dir: std::path::PathBuf,
    tier_offsets: RwLock<Arc<dyn TierOffsets>>,
    cold_reader: RwLock<Option<Arc<dyn ColdReader>>>,
    append_admission: RwLock<Option<Arc<dyn AppendAdmission>>>,
    topic_deletion: RwLock<Option<Arc<dyn TopicDeletion>>>,
    /// Per-topic transform chains on produce and fetch (`crate::smt`).
    smt: RwLock<Option<Arc<crate::smt::SmtEngine>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("open broker state: {0}")]
    State(#[from] super::broker_state::StateFileError),
    #[error("open dynamic broker configs: {0}")]
    DynamicConfigs(super::broker_state::StateFileError),
    #[error("open consumer offsets: {0}")]
    Offsets(#[from] crate::group::OffsetStoreError),
}

/// `base` with every key of `overrides` replaced or added.
fn overlay(
    base: &BTreeMap<String, String>,
    overrides: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut merged = base.clone();
    merged.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    merged
}

fn config_or<T: std::str::FromStr>(configs: &BTreeMap<String, String>, key: &str, default: T) -> T {
    configs
        .get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl BrokerContext {
    pub fn open(params: BrokerContextParams) -> Result<Arc<Self>, ContextError> {
        let configs = params.broker_configs;
        let state_dir: &Path = &params.state_dir;
        let timings = GroupTimings {
            min_session_timeout: Duration::from_millis(config_or(
                &configs,
                "group.min.session.timeout.ms",
                6_000,
            )),
            max_session_timeout: Duration::from_millis(config_or(
                &configs,
                "group.max.session.timeout.ms",
                1_800_000,
            )),
            initial_rebalance_delay: Duration::from_millis(config_or(
                &configs,
                "group.initial.rebalance.delay.ms",
                3_000,
            )),
            offsets_retention: Duration::from_secs(
                60 * config_or(&configs, "offsets.retention.minutes", 10_080u64),
            ),
            offsets_retention_check_interval: Duration::from_millis(config_or(
                &configs,
                "offsets.retention.check.interval.ms",
                600_000u64,
            ))
            .max(Duration::from_millis(1)),
        };
        let settings = ServerSettings {
            node_id: config_or(&configs, "node.id", config_or(&configs, "broker.id", 0)),
            max_request_bytes: config_or(
                &configs,
                "socket.request.max.bytes",
                DEFAULT_MAX_REQUEST_BYTES,
            ),
            connections_max_idle: Duration::from_millis(config_or(
                &configs,
                "connections.max.idle.ms",
                600_000,
            )),
        };
        let identity = BrokerIdentity::load_and_bump(state_dir)?;
        let dynamic_broker_configs = super::broker_state::load_dynamic_broker_configs(state_dir)
            .map_err(ContextError::DynamicConfigs)?;
        if !dynamic_broker_configs.is_empty() {
            tracing::info!(configs = ?dynamic_broker_configs, "dynamic broker configs (set through AlterConfigs) in effect");
        }
        tracing::info!(cluster_id = %identity.cluster_id, broker_epoch = identity.broker_epoch,
            node_id = settings.node_id, advertised_host = %params.advertised_host,
            advertised_port = params.advertised_port, "kafka broker identity");
        Ok(Arc::new(BrokerContext {
            log: params.log,
            groups: GroupCoordinator::open(&state_dir.join("groups"), timings)?,
            producer_ids: ProducerIdAllocator::open(state_dir)?,
            identity,
            advertised_host: params.advertised_host,
            advertised_port: i32::from(params.advertised_port),
            settings,
            metrics: KafkaMetrics::default(),
            effective_broker_configs: tokio::sync::watch::channel(overlay(
                &configs,
                &dynamic_broker_configs,
            ))
            .0,
            static_broker_configs: configs,
            dynamic_broker_configs: RwLock::new(dynamic_broker_configs),
            state_dir: params.state_dir.clone(),
            tier_offsets: RwLock::new(Arc::new(LocalOnly)),
            cold_reader: RwLock::new(None),
            append_admission: RwLock::new(None),
            topic_deletion: RwLock::new(None),
            smt: RwLock::new(None),
        }))
    }

    /// Plugs the remote tier into ListOffsets -4 / -5.
    pub fn set_tier_offsets(&self, tier: Arc<dyn TierOffsets>) {
        *self.tier_offsets.write().expect("tier offsets lock") = tier;
    }

    pub fn tier_offsets(&self) -> Arc<dyn TierOffsets> {
        Arc::clone(&self.tier_offsets.read().expect("tier offsets lock"))
    }

    /// Plugs the remote tier into Fetch below the local log start and ListOffsets by timestamp.
    pub fn set_cold_reader(&self, reader: Arc<dyn ColdReader>) {
        *self.cold_reader.write().expect("cold reader lock") = Some(reader);
    }

    pub fn cold_reader(&self) -> Option<Arc<dyn ColdReader>> {
        self.cold_reader.read().expect("cold reader lock").clone()
    }

    /// Lets the remote tier refuse appends (e.g. uploads stalled too long).
    pub fn set_append_admission(&self, admission: Arc<dyn AppendAdmission>) {
        *self
            .append_admission
            .write()
            .expect("append admission lock") = Some(admission);
    }

    pub fn append_admission(&self) -> Option<Arc<dyn AppendAdmission>> {
        self.append_admission
            .read()
            .expect("append admission lock")
            .clone()
    }

    /// Lets the remote tier take part in DeleteTopics (its data goes with the topic).
    pub fn set_topic_deletion(&self, hook: Arc<dyn TopicDeletion>) {
        *self.topic_deletion.write().expect("topic deletion lock") = Some(hook);
    }

    pub fn topic_deletion(&self) -> Option<Arc<dyn TopicDeletion>> {
        self.topic_deletion
            .read()
            .expect("topic deletion lock")
            .clone()
    }

    /// Plugs the Single Message Transform engine into Produce and Fetch.
    pub fn set_smt(&self, engine: Arc<crate::smt::SmtEngine>) {
        *self.smt.write().expect("smt lock") = Some(engine);
    }

    pub fn smt(&self) -> Option<Arc<crate::smt::SmtEngine>> {
        self.smt.read().expect("smt lock").clone()
    }

    pub fn node_id(&self) -> i32 {
        self.settings.node_id
    }

    /// The leader epoch reported for every partition (this start's broker epoch).
    pub fn leader_epoch(&self) -> i32 {
        self.identity.broker_epoch
    }

    /// The effective value of a broker config: a dynamic override, else the static value.
    pub fn broker_config(&self, key: &str) -> Option<String> {
        self.effective_broker_configs.borrow().get(key).cloned()
    }

    pub fn static_broker_configs(&self) -> &BTreeMap<String, String> {
        &self.static_broker_configs
    }

    pub fn dynamic_broker_configs(&self) -> BTreeMap<String, String> {
        self.dynamic_broker_configs
            .read()
            .expect("broker configs lock")
            .clone()
    }

    /// Changes the dynamic broker configs durably: the new set is fsynced to the state dir
    /// before it takes effect, so an acknowledged AlterConfigs survives a crash.
    pub fn update_dynamic_broker_configs(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, String>),
    ) -> Result<(), super::broker_state::StateFileError> {
        let mut current = self
            .dynamic_broker_configs
            .write()
            .expect("broker configs lock");
        let mut updated = current.clone();
        change(&mut updated);
        super::broker_state::save_dynamic_broker_configs(&self.state_dir, &updated)?;
        self.effective_broker_configs
            .send_replace(overlay(&self.static_broker_configs, &updated));
        *current = updated;
        Ok(())
    }

    /// The effective broker configs now and after every dynamic change (AlterConfigs), for
    /// subsystems that apply dynamic configs themselves (the remote tier's quotas).
    pub fn watch_broker_configs(&self) -> tokio::sync::watch::Receiver<BTreeMap<String, String>> {
        self.effective_broker_configs.subscribe()
    }

    pub fn auto_create_topics(&self) -> bool {
        self.broker_config("auto.create.topics.enable")
            .is_none_or(|v| v.trim() != "false")
    }

    pub fn default_num_partitions(&self) -> u32 {
        self.broker_config("num.partitions")
            .and_then(|v| v.trim().parse().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1)
    }
}
