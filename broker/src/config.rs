//! Strata's configuration: its own settings (where data lives, what it listens on, where the
//! remote tier is) plus broker configs under Kafka's own names (`log.segment.bytes`,
//! `auto.create.topics.enable`, ...).
//!
//! Sources, lowest precedence first: built-in defaults, the TOML file (`--config`), `STRATA_*`
//! environment variables, command-line flags. Kafka-named broker configs come from the file's
//! `[broker]` table (nested tables and dotted keys are flattened: `[broker.log] segment.bytes = 1`
//! is `log.segment.bytes`) and from `--set KEY=VALUE` / `STRATA_SET`. Unknown keys and bad values
//! are rejected at start with a message naming the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::log::{LogError, TOPIC_CONFIGS, TopicConfig};

/// Strata's defaults: everything on one machine with nothing else installed.
pub const DEFAULT_DATA_DIR: &str = "./data";
pub const DEFAULT_KAFKA_LISTEN: &str = "127.0.0.1:9092";
pub const DEFAULT_HTTP_LISTEN: &str = "127.0.0.1:8080";

/// A configuration error: always names the key (or file) and says what is accepted.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("unknown config key `{key}`{hint}")]
    UnknownKey { key: String, hint: String },
    #[error("invalid value {value:?} for `{key}`: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
}

/// What the value of a broker config must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// A whole number within `[min, max]`.
    Long {
        min: i64,
        max: i64,
    },
    Bool,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
    /// Free text.
    Text,
}

/// A Kafka-named broker config Strata understands.
#[derive(Debug, Clone, Copy)]
pub struct BrokerConfigDef {
    pub name: &'static str,
    pub default: &'static str,
    pub kind: ConfigKind,
    pub doc: &'static str,
}

const fn long(min: i64, max: i64) -> ConfigKind {
    ConfigKind::Long { min, max }
}
const I32: i64 = i32::MAX as i64;
const I64: i64 = i64::MAX;

/// The broker-only configs Strata accepts, with Kafka's names, defaults and meaning. The broker
/// defaults of topic configs (`log.segment.bytes`, `log.retention.ms`, `message.max.bytes`, ...)
/// are the synonyms in the log engine's [`TOPIC_CONFIGS`] registry, the one place they are defined.
pub static BROKER_CONFIGS: &[BrokerConfigDef] = &[
    BrokerConfigDef {
        name: "node.id",
        default: "0",
        kind: long(0, I32),
        doc: "This broker's id, as clients see it in Metadata.",
    },
    BrokerConfigDef {
        name: "advertised.listeners",
        default: "",
        kind: ConfigKind::Text,
        doc: "host:port clients are told to connect to; empty means the Kafka listener's bound address.",
    },
    BrokerConfigDef {
        name: "auto.create.topics.enable",
        default: "true",
        kind: ConfigKind::Bool,
        doc: "Create a topic when a client asks for metadata of an unknown one.",
    },
    BrokerConfigDef {
        name: "num.partitions",
        default: "1",
        kind: long(1, 100_000),
        doc: "Partitions of an auto-created topic.",
    },
    BrokerConfigDef {
        name: "default.replication.factor",
        default: "1",
        kind: long(1, 1),
        doc: "Strata is a single node: always 1.",
    },
    BrokerConfigDef {
        name: "socket.request.max.bytes",
        default: "104857600",
        kind: long(1024, I32),
        doc: "Largest request frame accepted; larger frames close the connection before allocation.",
    },
    BrokerConfigDef {
        name: "fetch.max.bytes",
        default: "57671680",
        kind: long(1024, I32),
        doc: "Most record bytes the broker puts in one Fetch response, whatever the client asks (the first batch always goes out whole).",
    },
    BrokerConfigDef {
        name: "connections.max.idle.ms",
        default: "600000",
        kind: long(1000, I64),
        doc: "Idle connections are closed after this long, as are connections whose client reads none of its response for this long.",
    },
    BrokerConfigDef {
        name: "group.min.session.timeout.ms",
        default: "6000",
        kind: long(1, I32),
        doc: "Smallest session timeout a group member may ask for.",
    },
    BrokerConfigDef {
        name: "group.max.session.timeout.ms",
        default: "1800000",
        kind: long(1, I32),
        doc: "Largest session timeout a group member may ask for.",
    },
    BrokerConfigDef {
        name: "group.initial.rebalance.delay.ms",
        default: "3000",
        kind: long(0, I32),
        doc: "Wait this long for more members before the first rebalance of an empty group.",
    },
    BrokerConfigDef {
        name: "offsets.retention.minutes",
        default: "10080",
        kind: long(1, I32),
        doc: "Committed offsets are kept this long after their group lost its last member (or, for consumers that commit without joining a group, after the commit); a group with members keeps its offsets.",
    },
    BrokerConfigDef {
        name: "offsets.retention.check.interval.ms",
        default: "600000",
        kind: long(1, I64),
        doc: "How often expired committed offsets are removed.",
    },
    BrokerConfigDef {
        name: "log.retention.check.interval.ms",
        default: "300000",
        kind: long(1, I64),
        doc: "How often the log engine looks for segments to delete under retention.",
    },
    BrokerConfigDef {
        name: "remote.log.storage.system.enable",
        default: "true",
        kind: ConfigKind::Bool,
        doc: "Master switch of the remote tier; topics opt in with remote.storage.enable.",
    },
    BrokerConfigDef {
        name: "remote.log.manager.copier.thread.pool.size",
        default: "2",
        kind: long(1, 1024),
        doc: "Segment uploads run at most this many at a time.",
    },
    BrokerConfigDef {
        name: "remote.log.manager.copy.max.bytes.per.second",
        default: "9223372036854775807",
        kind: long(1, I64),
        doc: "Upload byte-rate quota: bytes per second over all segment uploads (Long.MAX_VALUE: none). Dynamic: change it with IncrementalAlterConfigs on the broker; waiting uploads follow at once.",
    },
    BrokerConfigDef {
        name: "remote.log.manager.fetch.max.bytes.per.second",
        default: "9223372036854775807",
        kind: long(1, I64),
        doc: "Cold-read byte-rate quota: bytes per second downloaded from the remote tier by all cold reads, read-ahead included (Long.MAX_VALUE: none). A throttled fetch answers within its max.wait.ms with what is ready; hot fetches and produces are not affected. Dynamic, like the upload quota.",
    },
    BrokerConfigDef {
        name: "remote.fetch.max.wait.ms",
        default: "500",
        kind: long(1, I32),
        doc: "How long a Fetch below the local log start waits for the remote tier at least, even when the client asks for less (fetch.max.wait.ms=0); a read not done by then is answered with no records and keeps warming the cache for the retry.",
    },
    BrokerConfigDef {
        name: "remote.log.reader.threads",
        default: "16",
        kind: long(1, 1024),
        doc: "Object-store requests (ranged GETs of chunks and footers) cold reads have in flight at most; the pool is shared by all cold reads and separate from uploads. An object store serves one stream at a fraction of its bandwidth, so sequential replay needs many at once.",
    },
    BrokerConfigDef {
        name: "remote.log.read.ahead.chunks",
        default: "4",
        kind: long(0, 1024),
        doc: "Chunks (4 MiB of batches each) a sequential cold read downloads ahead of what the consumer asked for, to hide the object store's latency; at least two more fetches' worth for consumers with large fetches (0: none). They wait in the memory chunk cache.",
    },
    BrokerConfigDef {
        name: "remote.log.chunk.compression",
        default: "zstd",
        kind: ConfigKind::Choice(&["zstd", "lz4", "none"]),
        doc: "How segment chunks the producer did not compress are compressed in the remote tier: zstd (smallest), lz4 (least CPU on upload and cold reads), none.",
    },
    BrokerConfigDef {
        name: "remote.log.manager.task.interval.ms",
        default: "30000",
        kind: long(1, I64),
        doc: "How often remote retention and upload catch-up run.",
    },
    BrokerConfigDef {
        name: "remote.log.manager.idle.upload.backlog.bytes",
        default: "2147483648",
        kind: long(-1, I64),
        doc: "Segment encoders (which read, check and compress closed segments for upload) run at Linux's idle CPU priority, SCHED_IDLE, only on CPU time produce and fetch leave, while the closed segments waiting for upload (all partitions) total at most this many bytes; above it they run at nice 10, so that uploads catch up on a busy machine before remote.log.manager.max.upload.lag.bytes refuses producers. -1: always nice 10. Idle priority needs a process that may leave it again (root or CAP_SYS_NICE); without that, nice 10 throughout.",
    },
    BrokerConfigDef {
        name: "remote.log.manager.max.upload.lag.bytes",
        default: "10737418240",
        kind: long(1, I64),
        doc: "Produce to a tiered partition fails (KAFKA_STORAGE_ERROR) while more than this many bytes of its closed segments wait for upload: a stalled object store cannot fill the disk.",
    },
    BrokerConfigDef {
        name: "remote.log.manager.reconcile.interval.ms",
        default: "3600000",
        kind: long(1000, I64),
        doc: "How often the remote tier is checked for orphaned objects and unfinished deletes (also at start).",
    },
    BrokerConfigDef {
        name: "remote.log.manager.orphan.grace.ms",
        default: "3600000",
        kind: long(0, I64),
        doc: "Remote objects no manifest references (abandoned uploads), and multipart uploads interrupted by a crash, are deleted or aborted by reconcile once older than this.",
    },
    BrokerConfigDef {
        name: "remote.log.index.file.cache.total.size.bytes",
        default: "1073741824",
        kind: long(1, I64),
        doc: "Disk budget of the cold-read chunk cache (in <data-dir>/tier-cache; none in front of a local-directory remote tier). A chunk is written there when it is downloaded a second time.",
    },
    BrokerConfigDef {
        name: "remote.log.chunk.cache.memory.bytes",
        default: "268435456",
        kind: long(0, I64),
        doc: "Memory budget of the cold-read chunk cache: downloaded chunks (4 MiB of batches each), read-ahead included, wait here for their readers. Keep it above (remote.log.read.ahead.chunks + 2) chunks per concurrent cold reader: one reader's read-ahead is cut to what the cache holds (so that its chunks are not evicted before they are read), and concurrent readers share it (0: no cache, no read-ahead).",
    },
    // The claim-check gateway (defaults = strata_claimcheck::ClaimCheckConfig::default(); checked by a test in claims/settings.rs).
    BrokerConfigDef {
        name: "claimcheck.enable",
        default: "true",
        kind: ConfigKind::Bool,
        doc: "Serve the claim-check API (/v1/topics/{t}/claims, /v1/claims/{id}, /v1/uploads) and run its payload GC.",
    },
    BrokerConfigDef {
        name: "claimcheck.max.upload.bytes",
        default: "68719476736",
        kind: long(0, I64),
        doc: "Largest payload accepted by any claim upload (reference, chunked, CSV, resumable total).",
    },
    BrokerConfigDef {
        name: "claimcheck.multipart.part.bytes",
        default: "8388608",
        kind: long(5_242_880, I32),
        doc: "Object-store multipart part size of claim uploads; memory per upload is about (concurrency + 1) parts.",
    },
    BrokerConfigDef {
        name: "claimcheck.multipart.concurrency",
        default: "2",
        kind: long(1, 64),
        doc: "Multipart parts of one claim upload in flight at once.",
    },
    BrokerConfigDef {
        name: "claimcheck.chunk.bytes",
        default: "524288",
        kind: long(1, I32),
        doc: "Record value size of chunk-mode uploads (?mode=chunked).",
    },
    BrokerConfigDef {
        name: "claimcheck.upload.expiry",
        default: "24h",
        kind: ConfigKind::Text,
        doc: "Resumable uploads not completed within this time (e.g. 30m, 24h) are removed.",
    },
    BrokerConfigDef {
        name: "claimcheck.upload.max.part.bytes",
        default: "1073741824",
        kind: long(1, I64),
        doc: "Largest part of a resumable upload.",
    },
    BrokerConfigDef {
        name: "claimcheck.gc.grace",
        default: "1h",
        kind: ConfigKind::Text,
        doc: "A claim payload without a live ticket is deleted only once older than this (e.g. 10s, 1h).",
    },
    BrokerConfigDef {
        name: "claimcheck.gc.interval.ms",
        default: "300000",
        kind: long(100, I64),
        doc: "How often the claim GC runs (expired tickets' payloads, abandoned uploads).",
    },
    BrokerConfigDef {
        name: "claimcheck.max.concurrent.requests",
        default: "32",
        kind: long(1, 100_000),
        doc: "Claim-check requests handled at once; more get 429.",
    },
    BrokerConfigDef {
        name: "claimcheck.max.requests.per.second",
        default: "0",
        kind: long(0, I32),
        doc: "Claim-check requests accepted per second (bursts of the same size); more get 429 rate_limited with Retry-After. 0 means no limit.",
    },
    BrokerConfigDef {
        name: "claimcheck.max.header.bytes",
        default: "16384",
        kind: long(256, I32),
        doc: "Total request header size accepted by the claim-check API; more get 431.",
    },
    BrokerConfigDef {
        name: "claimcheck.spool.dir",
        default: "",
        kind: ConfigKind::Text,
        doc: "Where CSV uploads are spooled before they are split; empty means <data-dir>/claims-spool.",
    },
    BrokerConfigDef {
        name: "claimcheck.public.url",
        default: "",
        kind: ConfigKind::Text,
        doc: "Base URL written into tickets' uri (<url>/v1/claims/<id>); empty means the HTTP listener's address.",
    },
];

/// Looks up a broker config definition by its Kafka name.
pub fn broker_config_def(name: &str) -> Option<&'static BrokerConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

/// Whether `name` is the broker-level synonym of a topic config (`log.segment.bytes`, ...).
pub fn is_topic_config_synonym(name: &str) -> bool {
    TOPIC_CONFIGS
        .iter()
        .any(|def| def.synonyms.iter().any(|s| s.name == name))
}

/// Checks one broker config value. Broker-only keys are checked here; topic-config synonyms are
/// checked together by [`validate_topic_defaults`].
pub fn validate_broker_config(key: &str, value: &str) -> Result<(), ConfigError> {
    if is_topic_config_synonym(key) {
        return Ok(());
    }
    let def = broker_config_def(key).ok_or_else(|| ConfigError::UnknownKey {
        key: key.to_string(),
        hint: unknown_key_hint(key),
    })?;
    let invalid = |reason: String| ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason,
    };
    match def.kind {
        ConfigKind::Long { min, max } => {
            let n: i64 = value
                .trim()
                .parse()
                .map_err(|_| invalid("expected a whole number".into()))?;
            if n < min || n > max {
                return Err(invalid(format!("must be between {min} and {max}")));
            }
        }
        ConfigKind::Bool => {
            if !matches!(value, "true" | "false") {
                return Err(invalid("expected true or false".into()));
            }
        }
        ConfigKind::Choice(choices) => {
            if !choices.contains(&value) {
                return Err(invalid(format!("expected one of {}", choices.join(", "))));
            }
        }
        ConfigKind::Text => {}
    }
    Ok(())
}

/// Validates the broker defaults of topic configs the way topics will resolve them.
fn validate_topic_defaults(broker: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    TopicConfig::resolve(broker, &BTreeMap::new())
        .map(|_| ())
        .map_err(|error| match error {
            LogError::InvalidConfig { key, reason } => ConfigError::InvalidValue {
                value: broker.get(&key).cloned().unwrap_or_default(),
                key,
                reason,
            },
            other => ConfigError::InvalidValue {
                key: "broker".into(),
                value: String::new(),
                reason: other.to_string(),
            },
        })
}

/// Adds the default of every topic config's first broker synonym, unless some synonym of it was
/// given (Kafka gives `log.roll.ms` precedence over `log.roll.hours`, so printing a default for
/// one would hide the other).
fn fill_topic_defaults(broker: &mut BTreeMap<String, String>) {
    for def in TOPIC_CONFIGS {
        let Some(first) = def.synonyms.first() else {
            continue;
        };
        let given = def.synonyms.iter().any(|s| broker.contains_key(s.name));
        if !given && first.scale == 1 && broker_config_def(first.name).is_none() {
            broker.insert(first.name.to_string(), def.default.to_string());
        }
    }
}

fn unknown_key_hint(key: &str) -> String {
    let synonyms = TOPIC_CONFIGS
        .iter()
        .flat_map(|def| def.synonyms.iter().map(|s| s.name));
    let close: Vec<&str> = BROKER_CONFIGS
        .iter()
        .map(|d| d.name)
        .chain(synonyms)
        .filter(|name| {
            let last = key.rsplit('.').next().unwrap_or(key);
            name.ends_with(last) || name.contains(key)
        })
        .take(3)
        .collect();
    if close.is_empty() {
        "; `strata serve --print-config` lists every key".to_string()
    } else {
        format!("; did you mean {}?", close.join(" or "))
    }
}

/// The contents of a `--config` TOML file. Every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    data_dir: Option<PathBuf>,
    kafka_listen: Option<String>,
    http_listen: Option<String>,
    remote: Option<String>,
    log_format: Option<String>,
    #[serde(default)]
    broker: toml::Table,
}

/// Values given on the command line or in `STRATA_*` variables (clap merges the two).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub kafka_listen: Option<String>,
    pub http_listen: Option<String>,
    pub remote: Option<String>,
    pub log_format: Option<String>,
    /// `KEY=VALUE` broker configs.
    pub set: Vec<String>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The effective configuration `strata serve` runs with.
#[derive(Debug, Clone, Serialize)]
pub struct StrataConfig {
    pub data_dir: PathBuf,
    pub kafka_listen: SocketAddr,
    pub http_listen: SocketAddr,
    /// The remote tier's URL (`file://...`, `s3://bucket/prefix`, `gs://...`, `az://...`).
    pub remote: String,
    pub log_format: LogFormat,
    /// Kafka-named broker configs: every known key, defaults filled in.
    pub broker: BTreeMap<String, String>,
}

impl StrataConfig {
    /// Builds the effective configuration: defaults, then the file, then env/flags.
    pub fn load(file: Option<&Path>, overrides: Overrides) -> Result<Self, ConfigError> {
        let file_config = match file {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };

        let data_dir = overrides
            .data_dir
            .or(file_config.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let kafka_listen = parse_addr(
            "kafka_listen",
            overrides
                .kafka_listen
                .or(file_config.kafka_listen)
                .as_deref()
                .unwrap_or(DEFAULT_KAFKA_LISTEN),
        )?;
        let http_listen = parse_addr(
            "http_listen",
            overrides
                .http_listen
                .or(file_config.http_listen)
                .as_deref()
                .unwrap_or(DEFAULT_HTTP_LISTEN),
        )?;
        let remote = match overrides.remote.or(file_config.remote) {
            Some(url) => {
                validate_remote_url(&url)?;
                url
            }
            None => format!("file://{}", data_dir.join("remote").display()),
        };
        let log_format = match overrides
            .log_format
            .or(file_config.log_format)
            .as_deref()
            .unwrap_or("text")
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError::InvalidValue {
                    key: "log_format".into(),
                    value: other.into(),
                    reason: "expected text or json".into(),
                });
            }
        };

        let mut broker: BTreeMap<String, String> = BROKER_CONFIGS
            .iter()
            .map(|d| (d.name.to_string(), d.default.to_string()))
            .collect();
        let mut given = BTreeMap::new();
        flatten_table("", &file_config.broker, &mut given)?;
        for pair in &overrides.set {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| ConfigError::InvalidValue {
                    key: "--set".into(),
                    value: pair.clone(),
                    reason: "expected KEY=VALUE, e.g. --set log.segment.bytes=1048576".into(),
                })?;
            given.insert(key.trim().to_string(), value.trim().to_string());
        }
        for (key, value) in given {
            validate_broker_config(&key, &value)?;
            broker.insert(key, value);
        }
        validate_topic_defaults(&broker)?;
        fill_topic_defaults(&mut broker);

        Ok(Self {
            data_dir,
            kafka_listen,
            http_listen,
            remote,
            log_format,
            broker,
        })
    }

    /// The effective configuration as a TOML document that `--config` accepts back.
    pub fn to_toml(&self) -> String {
        let mut out = String::from("# strata effective configuration\n");
        out.push_str(&format!(
            "data_dir = {}\nkafka_listen = \"{}\"\nhttp_listen = \"{}\"\nremote = {}\nlog_format = \"{}\"\n\n[broker]\n",
            toml_string(&self.data_dir.display().to_string()),
            self.kafka_listen,
            self.http_listen,
            toml_string(&self.remote),
            match self.log_format {
                LogFormat::Text => "text",
                LogFormat::Json => "json",
            }
        ));
        for (key, value) in &self.broker {
            let def = broker_config_def(key);
            let numeric_or_bool = match def.map(|d| d.kind) {
                Some(ConfigKind::Long { .. } | ConfigKind::Bool) => true,
                Some(_) => false,
                None => value.parse::<i64>().is_ok() || value == "true" || value == "false",
            };
            let rendered = if numeric_or_bool {
                value.clone()
            } else {
                toml_string(value)
            };
            out.push_str(&format!("\"{key}\" = {rendered}\n"));
        }
        out
    }

    /// A broker config's effective value (every known key has one).
    pub fn broker_value(&self, key: &str) -> Option<&str> {
        self.broker.get(key).map(String::as_str)
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// `[broker.log] segment.bytes = 1` and `"log.segment.bytes" = 1` both become `log.segment.bytes`.
fn flatten_table(
    prefix: &str,
    table: &toml::Table,
    out: &mut BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let text = match value {
            toml::Value::Table(inner) => {
                flatten_table(&full, inner, out)?;
                continue;
            }
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(ConfigError::InvalidValue {
                    key: full,
                    value: other.to_string(),
                    reason: "expected a string, a whole number or a boolean".into(),
                });
            }
        };
        out.insert(full, text);
    }
    Ok(())
}

fn parse_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| ConfigError::InvalidValue {
        key: key.into(),
        value: value.into(),
        reason: "expected IP:PORT, e.g. 127.0.0.1:9092".into(),
    })
}

fn validate_remote_url(url: &str) -> Result<(), ConfigError> {
    let scheme = url.split_once("://").map(|(s, _)| s);
    match scheme {
        Some("file" | "s3" | "s3a" | "gs" | "az" | "abfs" | "abfss" | "memory") => Ok(()),
        _ => Err(ConfigError::InvalidValue {
            key: "remote".into(),
            value: url.into(),
            reason: "expected a URL such as file://./data/remote, s3://bucket/prefix, gs://bucket/prefix or az://container/prefix".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn defaults_are_zero_config() {
        let config = StrataConfig::load(None, Overrides::default()).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert_eq!(config.kafka_listen.to_string(), "127.0.0.1:9092");
        assert_eq!(config.http_listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.remote, "file://./data/remote");
        assert_eq!(config.broker_value("log.segment.bytes"), Some("1073741824"));
    }

    #[test]
    fn file_then_overrides_take_precedence() {
        let file = write(
            "data_dir = \"/var/lib/strata\"\nkafka_listen = \"127.0.0.1:19092\"\n[broker]\n\"log.segment.bytes\" = 2048\n[broker.log.retention]\nms = 1000\n",
        );
        let overrides = Overrides {
            kafka_listen: Some("127.0.0.1:29092".into()),
            set: vec!["log.retention.ms=5000".into()],
            ..Default::default()
        };
        let config = StrataConfig::load(Some(file.path()), overrides).unwrap();
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/strata"));
        assert_eq!(config.kafka_listen.to_string(), "127.0.0.1:29092");
        assert_eq!(config.remote, "file:///var/lib/strata/remote");
        assert_eq!(config.broker_value("log.segment.bytes"), Some("2048"));
        assert_eq!(config.broker_value("log.retention.ms"), Some("5000"));
    }

    #[test]
    fn unknown_and_bad_keys_are_named() {
        let err = StrataConfig::load(
            None,
            Overrides {
                set: vec!["log.segment.byte=1".into()],
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`log.segment.byte`"), "{err}");

        let err = StrataConfig::load(
            None,
            Overrides {
                set: vec!["log.segment.bytes=big".into()],
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`log.segment.bytes`") && err.contains("integer"),
            "{err}"
        );

        let file = write("data_dri = \"x\"\n");
        let err = StrataConfig::load(Some(file.path()), Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("data_dri"), "{err}");
    }

    #[test]
    fn printed_config_loads_back_identically() {
        let config = StrataConfig::load(
            None,
            Overrides {
                set: vec!["auto.create.topics.enable=false".into()],
                remote: Some("s3://bucket/prefix".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let file = write(&config.to_toml());
        let again = StrataConfig::load(Some(file.path()), Overrides::default()).unwrap();
        assert_eq!(again.broker, config.broker);
        assert_eq!(again.remote, "s3://bucket/prefix");
        assert_eq!(again.kafka_listen, config.kafka_listen);
    }

    #[test]
    fn remote_url_scheme_is_checked() {
        let err = StrataConfig::load(
            None,
            Overrides {
                remote: Some("ftp://x".into()),
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("`remote`") && err.contains("s3://"), "{err}");
    }
}
