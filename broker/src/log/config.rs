//! Topic configuration with Kafka's names, defaults and broker-level synonyms.
//!
//! Resolution order for every key, as in Kafka: topic override -> broker default (under its
//! broker name, e.g. `log.segment.bytes`) -> Kafka's built-in default. [`TOPIC_CONFIGS`] is the
//! single registry; [`TopicConfig`] is the typed result the engine reads.
//!
//! `cleanup.policy=compact` is accepted (clients create compacted topics routinely) but log
//! compaction is NOT implemented: a compacted topic keeps all its data, and a `compact`-only topic
//! is never deleted by retention (as in Kafka, where compaction replaces time/size retention).

use std::collections::BTreeMap;

use super::LogError;

/// Value type of a config, for validation and DescribeConfigs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    Int,
    Long,
    Double,
    String,
    List,
}

/// Allowed values.
#[derive(Debug, Clone, Copy)]
pub enum Validator {
    None,
    /// Inclusive numeric range.
    Range {
        min: i64,
        max: i64,
    },
    DoubleRange {
        min: f64,
        max: f64,
    },
    /// One of these (case-sensitive, as Kafka).
    OneOf(&'static [&'static str]),
    /// A comma-separated list whose every item is one of these.
    ListOf(&'static [&'static str]),
}

/// A broker-level name for a topic config; `scale` converts its unit to the topic config's
/// (`log.retention.hours` -> `retention.ms` is 3_600_000).
#[derive(Debug, Clone, Copy)]
pub struct Synonym {
    pub name: &'static str,
    pub scale: i64,
}

/// One topic config definition.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    pub name: &'static str,
    /// Broker-level synonyms, highest precedence first (Kafka order: ms, minutes, hours).
    pub synonyms: &'static [Synonym],
    pub kind: ConfigType,
    pub default: &'static str,
    pub validator: Validator,
    pub doc: &'static str,
}

const fn syn(name: &'static str) -> Synonym {
    Synonym { name, scale: 1 }
}
const fn syn_scaled(name: &'static str, scale: i64) -> Synonym {
    Synonym { name, scale }
}
const MAX: &str = "9223372036854775807";
const ANY_LONG: Validator = Validator::Range {
    min: i64::MIN,
    max: i64::MAX,
};
const NON_NEGATIVE: Validator = Validator::Range {
    min: 0,
    max: i64::MAX,
};
const AT_LEAST_ONE: Validator = Validator::Range {
    min: 1,
    max: i64::MAX,
};

macro_rules! def {
    ($name:expr, [$($syn:expr),*], $kind:ident, $default:expr, $validator:expr, $doc:expr) => {
        ConfigDef {
            name: $name,
            synonyms: &[$($syn),*],
            kind: ConfigType::$kind,
            default: $default,
            validator: $validator,
            doc: $doc,
        }
    };
}

/// Every topic config Strata knows, with Kafka's name, broker synonym(s), default and doc.
pub static TOPIC_CONFIGS: &[ConfigDef] = &[
    def!(
        "cleanup.policy",
        [syn("log.cleanup.policy")],
        List,
        "delete",
        Validator::ListOf(&["delete", "compact"]),
        "Retention policy: 'delete' removes old segments; 'compact' is accepted but compaction is not implemented (data is kept)."
    ),
    def!(
        "compression.type",
        [syn("compression.type")],
        String,
        "producer",
        Validator::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        "Codec the topic stores batches with: 'producer' keeps the producer's bytes; any other value recompresses batches sent with another codec (control batches excepted)."
    ),
    def!(
        "compression.gzip.level",
        [syn("compression.gzip.level")],
        Int,
        "-1",
        Validator::OneOf(&["-1", "1", "2", "3", "4", "5", "6", "7", "8", "9"]),
        "Gzip level (1-9, or -1 for the codec's default, 6) of batches the broker compresses when compression.type is gzip."
    ),
    def!(
        "compression.zstd.level",
        [syn("compression.zstd.level")],
        Int,
        "3",
        Validator::Range {
            min: -131072,
            max: 22
        },
        "Zstandard level (negative levels are the fast ones) of batches the broker compresses when compression.type is zstd."
    ),
    def!(
        "delete.retention.ms",
        [syn("log.cleaner.delete.retention.ms")],
        Long,
        "86400000",
        NON_NEGATIVE,
        "How long delete tombstones are kept for compacted topics (compaction not implemented)."
    ),
    def!(
        "file.delete.delay.ms",
        [syn("log.segment.delete.delay.ms")],
        Long,
        "60000",
        NON_NEGATIVE,
        "Time to wait before deleting a segment's files from the filesystem after it left the log."
    ),
    def!(
        "flush.messages",
        [syn("log.flush.interval.messages")],
        Long,
        MAX,
        AT_LEAST_ONE,
        "Force an fsync after this many messages were written with acks=1/0."
    ),
    def!(
        "flush.ms",
        [syn("log.flush.interval.ms")],
        Long,
        MAX,
        NON_NEGATIVE,
        "Force an fsync when the oldest unflushed write is older than this."
    ),
    def!(
        "index.interval.bytes",
        [syn("log.index.interval.bytes")],
        Int,
        "4096",
        Validator::Range {
            min: 0,
            max: i32::MAX as i64
        },
        "Bytes of log between two offset index entries."
    ),
    def!(
        "local.retention.bytes",
        [syn("log.local.retention.bytes")],
        Long,
        "-2",
        Validator::Range {
            min: -2,
            max: i64::MAX
        },
        "Bytes kept on local disk when remote storage is enabled; -2 means use retention.bytes."
    ),
    def!(
        "local.retention.ms",
        [syn("log.local.retention.ms")],
        Long,
        "-2",
        Validator::Range {
            min: -2,
            max: i64::MAX
        },
        "Time kept on local disk when remote storage is enabled; -2 means use retention.ms."
    ),
    def!(
        "max.compaction.lag.ms",
        [syn("log.cleaner.max.compaction.lag.ms")],
        Long,
        MAX,
        AT_LEAST_ONE,
        "Compaction setting (compaction not implemented)."
    ),
    def!(
        "max.message.bytes",
        [syn("message.max.bytes")],
        Int,
        "1048588",
        NON_NEGATIVE,
        "Largest record batch size allowed, in bytes."
    ),
    def!(
        "message.timestamp.after.max.ms",
        [syn("log.message.timestamp.after.max.ms")],
        Long,
        "3600000",
        NON_NEGATIVE,
        "How far in the future a CreateTime batch timestamp may be (Kafka 4.0 default: 1 hour)."
    ),
    def!(
        "message.timestamp.before.max.ms",
        [syn("log.message.timestamp.before.max.ms")],
        Long,
        MAX,
        NON_NEGATIVE,
        "How far in the past a CreateTime batch timestamp may be."
    ),
    def!(
        "message.timestamp.type",
        [syn("log.message.timestamp.type")],
        String,
        "CreateTime",
        Validator::OneOf(&["CreateTime", "LogAppendTime"]),
        "Whether batch timestamps are the producer's (CreateTime) or the broker's append time."
    ),
    def!(
        "min.cleanable.dirty.ratio",
        [syn("log.cleaner.min.cleanable.ratio")],
        Double,
        "0.5",
        Validator::DoubleRange { min: 0.0, max: 1.0 },
        "Compaction setting (compaction not implemented)."
    ),
    def!(
        "min.compaction.lag.ms",
        [syn("log.cleaner.min.compaction.lag.ms")],
        Long,
        "0",
        NON_NEGATIVE,
        "Compaction setting (compaction not implemented)."
    ),
    def!(
        "min.insync.replicas",
        [syn("min.insync.replicas")],
        Int,
        "1",
        Validator::Range {
            min: 1,
            max: i32::MAX as i64
        },
        "Minimum in-sync replicas for acks=all. This single-node broker has one, so above 1 an acks=all produce is refused with NOT_ENOUGH_REPLICAS (acks=0/1 are not affected), as Kafka does when the ISR is too small."
    ),
    def!(
        "preallocate",
        [syn("log.preallocate")],
        Boolean,
        "false",
        Validator::None,
        "Preallocate segment files (ignored)."
    ),
    def!(
        "remote.log.copy.disable",
        [],
        Boolean,
        "false",
        Validator::None,
        "Stop copying new segments to remote storage while keeping remote reads."
    ),
    def!(
        "remote.log.delete.on.disable",
        [],
        Boolean,
        "false",
        Validator::None,
        "Delete remote data when remote storage is disabled for the topic."
    ),
    def!(
        "remote.storage.enable",
        [],
        Boolean,
        "false",
        Validator::None,
        "Tier closed segments to the object store (KIP-405)."
    ),
    def!(
        "retention.bytes",
        [syn("log.retention.bytes")],
        Long,
        "-1",
        ANY_LONG,
        "Maximum partition size before old segments are deleted; -1 means unlimited."
    ),
    def!(
        "retention.ms",
        [
            syn("log.retention.ms"),
            syn_scaled("log.retention.minutes", 60_000),
            syn_scaled("log.retention.hours", 3_600_000)
        ],
        Long,
        "604800000",
        Validator::Range {
            min: -1,
            max: i64::MAX
        },
        "Maximum age of a segment's newest record before the segment is deleted; -1 means forever."
    ),
    def!(
        "segment.bytes",
        [syn("log.segment.bytes")],
        Int,
        "1073741824",
        Validator::Range {
            min: 14,
            max: i32::MAX as i64
        },
        "Segment file size at which the log rolls to a new segment."
    ),
    def!(
        "segment.index.bytes",
        [syn("log.index.size.max.bytes")],
        Int,
        "10485760",
        Validator::Range {
            min: 4,
            max: i32::MAX as i64
        },
        "Maximum offset index size; a full index rolls the segment."
    ),
    def!(
        "segment.jitter.ms",
        [
            syn("log.roll.jitter.ms"),
            syn_scaled("log.roll.jitter.hours", 3_600_000)
        ],
        Long,
        "0",
        NON_NEGATIVE,
        "Random jitter subtracted from segment.ms so partitions do not roll together."
    ),
    def!(
        "segment.ms",
        [syn("log.roll.ms"), syn_scaled("log.roll.hours", 3_600_000)],
        Long,
        "604800000",
        AT_LEAST_ONE,
        "Age after which the active segment rolls even if not full."
    ),
    def!(
        "unclean.leader.election.enable",
        [syn("unclean.leader.election.enable")],
        Boolean,
        "false",
        Validator::None,
        "Replication setting (single node: ignored)."
    ),
];

/// Looks a topic config up by its Kafka name.
pub fn config_def(name: &str) -> Option<&'static ConfigDef> {
    TOPIC_CONFIGS.iter().find(|def| def.name == name)
}

/// Where a config value came from (DescribeConfigs' `config_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic (Kafka DYNAMIC_TOPIC_CONFIG = 1).
    TopicOverride,
    /// From the broker config under the broker name (Kafka STATIC_BROKER_CONFIG = 4).
    BrokerDefault,
    /// Kafka's built-in default (Kafka DEFAULT_CONFIG = 5).
    Default,
}

impl ConfigSource {
    /// The DescribeConfigs v1+ `config_source` code.
    pub fn kafka_code(self) -> i8 {
        match self {
            ConfigSource::TopicOverride => 1,
            ConfigSource::BrokerDefault => 4,
            ConfigSource::Default => 5,
        }
    }
}

/// One row of DescribeConfigs for a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
    pub doc: String,
    pub kind: ConfigType,
}

/// One IncrementalAlterConfigs operation (APPEND/SUBTRACT on lists are expressed as a Set of the
/// resulting list by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOp {
    Set(String, String),
    Delete(String),
}

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampPolicy {
    CreateTime,
    LogAppendTime,
}

/// The typed, validated configuration of one topic.
#[derive(Debug, Clone)]
pub struct TopicConfig {
    pub cleanup_policy_delete: bool,
    pub cleanup_policy_compact: bool,
    pub compression_type: String,
    /// `compression.gzip.level`: -1 (the codec's default) or 1-9.
    pub compression_gzip_level: i32,
    /// `compression.zstd.level`.
    pub compression_zstd_level: i32,
    pub file_delete_delay_ms: i64,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub index_interval_bytes: u64,
    pub local_retention_bytes: i64,
    pub local_retention_ms: i64,
    pub max_message_bytes: usize,
    pub message_timestamp_after_max_ms: i64,
    pub message_timestamp_before_max_ms: i64,
    pub message_timestamp_type: TimestampPolicy,
    pub min_insync_replicas: i32,
    pub remote_log_copy_disable: bool,
    pub remote_log_delete_on_disable: bool,
    pub remote_storage_enable: bool,
    pub retention_bytes: i64,
    pub retention_ms: i64,
    pub segment_bytes: u64,
    pub segment_index_bytes: u64,
    pub segment_jitter_ms: i64,
    pub segment_ms: i64,
    /// Every known key with its resolved value and source, for DescribeConfigs.
    pub resolved: BTreeMap<String, (String, ConfigSource)>,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig::resolve(&BTreeMap::new(), &BTreeMap::new()).expect("Kafka defaults are valid")
    }
}

fn invalid(key: &str, reason: impl Into<String>) -> LogError {
    LogError::InvalidConfig {
        key: key.to_string(),
        reason: reason.into(),
    }
}

fn validate_value(def: &ConfigDef, value: &str) -> Result<(), LogError> {
    let value = value.trim();
    match def.kind {
        ConfigType::Boolean => {
            if !value.eq_ignore_ascii_case("true") && !value.eq_ignore_ascii_case("false") {
                return Err(invalid(def.name, format!("'{value}' is not a boolean")));
            }
        }
        ConfigType::Int | ConfigType::Long => {
            let number: i64 = value
                .parse()
                .map_err(|_| invalid(def.name, format!("'{value}' is not an integer")))?;
            if def.kind == ConfigType::Int && i32::try_from(number).is_err() {
                return Err(invalid(
                    def.name,
                    format!("'{value}' does not fit in an int"),
                ));
            }
            if let Validator::Range { min, max } = def.validator
                && (number < min || number > max)
            {
                return Err(invalid(
                    def.name,
                    format!("{number} is outside [{min}, {max}]"),
                ));
            }
            if let Validator::OneOf(allowed) = def.validator
                && !allowed.contains(&number.to_string().as_str())
            {
                return Err(invalid(
                    def.name,
                    format!("{number} is not one of {}", allowed.join(", ")),
                ));
            }
        }
        ConfigType::Double => {
            let number: f64 = value
                .parse()
                .map_err(|_| invalid(def.name, format!("'{value}' is not a number")))?;
            if let Validator::DoubleRange { min, max } = def.validator
                && !(min..=max).contains(&number)
            {
                return Err(invalid(
                    def.name,
                    format!("{number} is outside [{min}, {max}]"),
                ));
            }
        }
        ConfigType::String => {
            if let Validator::OneOf(allowed) = def.validator
                && !allowed.contains(&value)
            {
                return Err(invalid(
                    def.name,
                    format!("'{value}' is not one of {allowed:?}"),
                ));
            }
        }
        ConfigType::List => {
            if let Validator::ListOf(allowed) = def.validator {
                let items: Vec<&str> = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                if items.is_empty() {
                    return Err(invalid(def.name, "must not be empty"));
                }
                if let Some(bad) = items.iter().find(|item| !allowed.contains(item)) {
                    return Err(invalid(
                        def.name,
                        format!("'{bad}' is not one of {allowed:?}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Validates topic overrides alone: every key must be a known topic config with a valid value.
pub fn validate_overrides(overrides: &BTreeMap<String, String>) -> Result<(), LogError> {
    for (key, value) in overrides {
        if crate::smt::is_smt_config_key(key) {
            continue; // transforms / predicates / claimcheck.fetch.*: checked below
        }
        let def = config_def(key).ok_or_else(|| invalid(key, "unknown topic config"))?;
        validate_value(def, value)?;
    }
    crate::smt::validate_topic_overrides(overrides)
}

impl TopicConfig {
    /// Resolves every config from the topic `overrides` (topic names) and `broker_defaults`
    /// (Kafka broker names; unknown broker keys are ignored since the broker config holds many
    /// non-log settings). Errors name the first bad key.
    pub fn resolve(
        broker_defaults: &BTreeMap<String, String>,
        overrides: &BTreeMap<String, String>,
    ) -> Result<TopicConfig, LogError> {
        validate_overrides(overrides)?;
        let mut resolved = BTreeMap::new();
        for def in TOPIC_CONFIGS {
            let (value, source) = if let Some(value) = overrides.get(def.name) {
                (value.trim().to_string(), ConfigSource::TopicOverride)
            } else if let Some((synonym, value)) = def
                .synonyms
                .iter()
                .find_map(|s| broker_defaults.get(s.name).map(|v| (s, v)))
            {
                let value = if synonym.scale != 1 {
                    let number: i64 = value.trim().parse().map_err(|_| {
                        invalid(synonym.name, format!("'{value}' is not an integer"))
                    })?;
                    number.saturating_mul(synonym.scale).to_string()
                } else {
                    value.trim().to_string()
                };
                validate_value(def, &value).map_err(|error| match error {
                    LogError::InvalidConfig { reason, .. } => invalid(synonym.name, reason),
                    other => other,
                })?;
                (value, ConfigSource::BrokerDefault)
            } else {
                (def.default.to_string(), ConfigSource::Default)
            };
            resolved.insert(def.name.to_string(), (value, source));
        }
        // Transform chain keys (smt/) are kept as set, for DescribeConfigs and the produce path.
        for (key, value) in overrides
            .iter()
            .filter(|(k, _)| crate::smt::is_smt_config_key(k))
        {
            resolved.insert(
                key.clone(),
                (value.trim().to_string(), ConfigSource::TopicOverride),
            );
        }
        let text = |key: &str| resolved[key].0.clone();
        let long = |key: &str| -> i64 { resolved[key].0.parse().expect("validated") };
        let boolean = |key: &str| resolved[key].0.eq_ignore_ascii_case("true");
        let policies = text("cleanup.policy");
        let config = TopicConfig {
            cleanup_policy_delete: policies.split(',').any(|p| p.trim() == "delete"),
            cleanup_policy_compact: policies.split(',').any(|p| p.trim() == "compact"),
            compression_type: text("compression.type"),
            compression_gzip_level: long("compression.gzip.level") as i32,
            compression_zstd_level: long("compression.zstd.level") as i32,
            file_delete_delay_ms: long("file.delete.delay.ms"),
            flush_messages: long("flush.messages"),
            flush_ms: long("flush.ms"),
            index_interval_bytes: long("index.interval.bytes") as u64,
            local_retention_bytes: long("local.retention.bytes"),
            local_retention_ms: long("local.retention.ms"),
            max_message_bytes: long("max.message.bytes") as usize,
            message_timestamp_after_max_ms: long("message.timestamp.after.max.ms"),
            message_timestamp_before_max_ms: long("message.timestamp.before.max.ms"),
            message_timestamp_type: if text("message.timestamp.type") == "LogAppendTime" {
                TimestampPolicy::LogAppendTime
            } else {
                TimestampPolicy::CreateTime
            },
            min_insync_replicas: long("min.insync.replicas") as i32,
            remote_log_copy_disable: boolean("remote.log.copy.disable"),
            remote_log_delete_on_disable: boolean("remote.log.delete.on.disable"),
            remote_storage_enable: boolean("remote.storage.enable"),
            retention_bytes: long("retention.bytes"),
            retention_ms: long("retention.ms"),
            segment_bytes: long("segment.bytes") as u64,
            segment_index_bytes: long("segment.index.bytes") as u64,
            segment_jitter_ms: long("segment.jitter.ms"),
            segment_ms: long("segment.ms"),
            resolved,
        };
        // Kafka's cross-field rule (KIP-405): local retention may not exceed total retention.
        if config.remote_storage_enable {
            let total_ms = config.retention_ms;
            if total_ms >= 0 && config.local_retention_ms > total_ms {
                return Err(invalid(
                    "local.retention.ms",
                    "must not exceed retention.ms",
                ));
            }
            let total_bytes = config.retention_bytes;
            if total_bytes >= 0 && config.local_retention_bytes > total_bytes {
                return Err(invalid(
                    "local.retention.bytes",
                    "must not exceed retention.bytes",
                ));
            }
        }
        if config.cleanup_policy_compact {
            tracing::warn!("cleanup.policy=compact accepted but log compaction is not implemented");
        }
        Ok(config)
    }

    /// Tiering on and copying on: local retention is `local.retention.*`. Otherwise (tiering
    /// off, or read-only with `remote.log.copy.disable`, KIP-950 / KAFKA-17236) local segments
    /// expire under the topic-wide `retention.*`.
    fn local_retention_applies(&self) -> bool {
        self.remote_storage_enable && !self.remote_log_copy_disable
    }

    /// Time-based local deletion bound: `local.retention.ms` when tiering copies (-2 = total).
    pub fn effective_local_retention_ms(&self) -> i64 {
        if self.local_retention_applies() && self.local_retention_ms != -2 {
            self.local_retention_ms
        } else {
            self.retention_ms
        }
    }

    /// Size-based local deletion bound: `local.retention.bytes` when tiering copies (-2 = total).
    pub fn effective_local_retention_bytes(&self) -> i64 {
        if self.local_retention_applies() && self.local_retention_bytes != -2 {
            self.local_retention_bytes
        } else {
            self.retention_bytes
        }
    }

    /// DescribeConfigs rows, in registry order.
    pub fn describe(&self) -> Vec<ConfigEntry> {
        TOPIC_CONFIGS
            .iter()
            .map(|def| {
                let (value, source) = &self.resolved[def.name];
                ConfigEntry {
                    name: def.name.to_string(),
                    value: Some(value.clone()),
                    source: *source,
                    read_only: false,
                    sensitive: false,
                    doc: def.doc.to_string(),
                    kind: def.kind,
                }
            })
            .chain(
                self.resolved
                    .iter()
                    .filter(|(key, _)| config_def(key).is_none())
                    .map(|(key, (value, source))| ConfigEntry {
                        name: key.clone(),
                        value: Some(value.clone()),
                        source: *source,
                        read_only: false,
                        sensitive: false,
                        doc: "Single Message Transform setting (docs/transforms.md).".into(),
                        kind: ConfigType::String,
                    }),
            )
            .collect()
    }
}

/// Applies IncrementalAlterConfigs operations to a copy of `overrides`.
pub fn apply_config_ops(
    overrides: &BTreeMap<String, String>,
    ops: &[ConfigOp],
) -> Result<BTreeMap<String, String>, LogError> {
    let mut next = overrides.clone();
    for op in ops {
        match op {
            ConfigOp::Set(key, value) => {
                next.insert(key.clone(), value.clone());
            }
            ConfigOp::Delete(key) => {
                if config_def(key).is_none() && !crate::smt::is_smt_config_key(key) {
                    return Err(invalid(key, "unknown topic config"));
                }
                next.remove(key);
            }
        }
    }
    validate_overrides(&next)?;
    Ok(next)
}

/// The ops that turn `overrides` into exactly `replacement` (legacy AlterConfigs = replace all).
pub fn replace_all_ops(
    overrides: &BTreeMap<String, String>,
    replacement: &BTreeMap<String, String>,
) -> Vec<ConfigOp> {
    let mut ops: Vec<ConfigOp> = overrides
        .keys()
        .filter(|key| !replacement.contains_key(*key))
        .map(|key| ConfigOp::Delete(key.clone()))
        .collect();
    ops.extend(
        replacement
            .iter()
            .map(|(k, v)| ConfigOp::Set(k.clone(), v.clone())),
    );
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_are_kafkas() {
        let config = TopicConfig::default();
        assert_eq!(config.segment_bytes, 1 << 30);
        assert_eq!(config.retention_ms, 604_800_000);
        assert_eq!(config.max_message_bytes, 1_048_588);
        assert_eq!(config.index_interval_bytes, 4096);
        assert_eq!(config.resolved["retention.ms"].1, ConfigSource::Default);
    }

    #[test]
    fn broker_synonyms_then_overrides() {
        let broker = map(&[("log.retention.hours", "2"), ("log.segment.bytes", "1000")]);
        let config = TopicConfig::resolve(&broker, &map(&[("segment.bytes", "2000")])).unwrap();
        assert_eq!(config.retention_ms, 7_200_000);
        assert_eq!(
            config.resolved["retention.ms"].1,
            ConfigSource::BrokerDefault
        );
        assert_eq!(config.segment_bytes, 2000);
        assert_eq!(
            config.resolved["segment.bytes"].1,
            ConfigSource::TopicOverride
        );
        let broker = map(&[("log.retention.ms", "5"), ("log.retention.hours", "2")]);
        assert_eq!(
            TopicConfig::resolve(&broker, &BTreeMap::new())
                .unwrap()
                .retention_ms,
            5
        );
    }

    #[test]
    fn compression_settings_come_from_the_broker_unless_the_topic_overrides_them() {
        let broker = map(&[
            ("compression.type", "zstd"),
            ("compression.zstd.level", "7"),
        ]);
        let config = TopicConfig::resolve(&broker, &BTreeMap::new()).unwrap();
        assert_eq!(config.compression_type, "zstd");
        assert_eq!(config.compression_zstd_level, 7);
        assert_eq!(config.compression_gzip_level, -1);
        let topic = map(&[
            ("compression.type", "gzip"),
            ("compression.gzip.level", "9"),
        ]);
        let config = TopicConfig::resolve(&broker, &topic).unwrap();
        assert_eq!(config.compression_type, "gzip");
        assert_eq!(config.compression_gzip_level, 9);
        assert_eq!(config.compression_zstd_level, 7);
    }

    #[test]
    fn errors_name_the_key() {
        for (key, value) in [
            ("segment.bytes", "abc"),
            ("no.such.config", "1"),
            ("cleanup.policy", "shred"),
            ("message.timestamp.type", "Now"),
            ("remote.storage.enable", "yes"),
            ("segment.bytes", "1"),
            ("compression.gzip.level", "0"),
            ("compression.zstd.level", "23"),
        ] {
            let error = TopicConfig::resolve(&BTreeMap::new(), &map(&[(key, value)])).unwrap_err();
            assert_eq!(error.kafka_error_code(), 40);
            assert!(
                matches!(&error, LogError::InvalidConfig { key: k, .. } if k == key),
                "{error}"
            );
        }
    }

    #[test]
    fn incremental_ops_and_replace_all() {
        let current = map(&[("retention.ms", "1000"), ("segment.bytes", "5000")]);
        let next = apply_config_ops(
            &current,
            &[
                ConfigOp::Delete("retention.ms".into()),
                ConfigOp::Set("retention.bytes".into(), "10".into()),
            ],
        )
        .unwrap();
        assert_eq!(
            next,
            map(&[("retention.bytes", "10"), ("segment.bytes", "5000")])
        );
        let replacement = map(&[("flush.ms", "10")]);
        let replaced =
            apply_config_ops(&current, &replace_all_ops(&current, &replacement)).unwrap();
        assert_eq!(replaced, replacement);
    }

    #[test]
    fn local_retention_may_not_exceed_total() {
        let overrides = map(&[
            ("remote.storage.enable", "true"),
            ("retention.ms", "1000"),
            ("local.retention.ms", "2000"),
        ]);
        let error = TopicConfig::resolve(&BTreeMap::new(), &overrides).unwrap_err();
        assert!(
            matches!(error, LogError::InvalidConfig { key, .. } if key == "local.retention.ms")
        );
    }
}
