//! `strata connect PROPERTIES_FILE`: a small Kafka-Connect-style runner with two connectors,
//! `DirectorySource` and `DirectorySink`, configured by a `.properties` file.
//!
//! # Choice: how the runner talks to Strata
//! * Payload bytes go through the claim-check HTTP gateway (`claimcheck.gateway.url`): the
//!   source uploads each file with the **resumable** upload API (streamed, SHA-256 checked) and
//!   the gateway appends the ticket with acks=all; the sink streams each payload back through
//!   `strata_claimcheck::client::HttpClaimClient` (size and SHA-256 verified). Memory stays
//!   bounded for multi-GB files, which a record-based path could not promise.
//! * Records go over the Kafka protocol (`bootstrap.servers`), with the `kafka-protocol`
//!   crate's request and response types on a `TcpStream` (`kafka.rs`): Produce (acks=all) for
//!   CSV rows, Fetch for the sink. There is no Rust Kafka client dependency.
//!
//! The transform chain of the file (`transforms=...`, docs/transforms.md) applies to the
//! records the runner produces (CSV rows) and to the records the sink consumes, before their
//! payload is written. Claim-check transforms need `claimcheck.store.url` (the broker's remote
//! tier URL, e.g. `file:///var/lib/strata/remote`): the runner then reads and writes the same
//! claim store as the gateway.
//!
//! # Delivery guarantees (see source.rs and sink.rs)
//! * Source: a file moves to `done.dir` only after its ticket (or every row) was acknowledged.
//!   Reference mode is exactly-once across crashes: the upload id is saved before the upload,
//!   and a restart resumes it (a completed upload answers with its receipt, no second ticket).
//!   CSV mode re-sends a half-sent file after a crash: consumers may see its rows twice.
//! * Sink: each payload is written to a temp file, fsynced and renamed to a name derived from
//!   topic, partition and offset (`<topic>-<partition>-<offset>[-<key>]`); the offsets file is
//!   written after, so a restart re-delivers at most the last files, to the same names.

pub mod kafka;
pub mod sink;
pub mod source;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use strata_claimcheck::{ClaimCheckConfig, ClaimStore};
use strata_connect_smt::{TransformChain, TransformContext, TransformKind, parse_properties};

/// The connector settings of a properties file (transform keys are read by the chain).
#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    pub name: String,
    pub class: ConnectorClass,
    pub bootstrap: String,
    pub gateway: String,
    pub topic: String,
    pub props: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorClass {
    DirectorySource,
    DirectorySink,
}

impl ConnectorConfig {
    pub fn from_properties(props: BTreeMap<String, String>) -> anyhow::Result<Self> {
        let get = |key: &str| props.get(key).map(|v| v.trim().to_string());
        let class = match get("connector.class").as_deref() {
            Some("DirectorySource" | "strata.DirectorySource") => ConnectorClass::DirectorySource,
            Some("DirectorySink" | "strata.DirectorySink") => ConnectorClass::DirectorySink,
            other => {
                bail!("connector.class: expected DirectorySource or DirectorySink, got {other:?}")
            }
        };
        let topic = match class {
            ConnectorClass::DirectorySource => get("topic"),
            ConnectorClass::DirectorySink => get("topics").or_else(|| get("topic")),
        }
        .context("topic (source) / topics (sink) is required")?;
        Ok(Self {
            name: get("name").context("name is required")?,
            class,
            bootstrap: get("bootstrap.servers").unwrap_or_else(|| "127.0.0.1:9092".into()),
            gateway: crate::http::base_url(
                &get("claimcheck.gateway.url").unwrap_or_else(|| "http://127.0.0.1:8080".into()),
            )
            .map_err(|reason| anyhow::anyhow!("claimcheck.gateway.url: {reason}"))?,
            topic,
            props,
        })
    }

    pub fn get(&self, key: &str) -> Option<String> {
        self.props.get(key).map(|v| v.trim().to_string())
    }

    pub fn dir(&self, key: &str) -> anyhow::Result<PathBuf> {
        let dir = PathBuf::from(
            self.get(key)
                .with_context(|| format!("{key} is required"))?,
        );
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating {key} {}", dir.display()))?;
        Ok(dir)
    }

    pub fn u64_or(&self, key: &str, default: u64) -> anyhow::Result<u64> {
        self.get(key).map_or(Ok(default), |v| {
            v.parse().with_context(|| format!("{key}: '{v}'"))
        })
    }

    /// The transform chain of the file; claim-check transforms use `claimcheck.store.url`.
    pub fn chain(&self) -> anyhow::Result<TransformChain> {
        let ctx = match self.get("claimcheck.store.url") {
            Some(url) => {
                let remote = strata_tiering::RemoteStore::from_url(&url)
                    .with_context(|| format!("claimcheck.store.url {url}"))?;
                let prefix = remote.prefix.clone().join(crate::claims::CLAIMS_PREFIX);
                let store = ClaimStore::new(remote.store.clone(), prefix.as_ref())?;
                TransformContext::with_claim_store(store, ClaimCheckConfig::default())
            }
            None => TransformContext::default(),
        };
        TransformChain::from_properties(&self.props, &ctx).map_err(|e| anyhow::anyhow!(e))
    }
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut f, bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A `ClaimCheck` stage in a source's own chain would store payloads the broker never hears of:
/// its claim GC keeps a payload only while it knows where the ticket is, and would delete these
/// after `claimcheck.gc.grace`. The topic's own chain (topic configs) does the same with positions
/// recorded.
fn refuse_untracked_claims(config: &ConnectorConfig, chain: &TransformChain) -> anyhow::Result<()> {
    if config.class == ConnectorClass::DirectorySource && chain.contains(TransformKind::ClaimCheck)
    {
        anyhow::bail!(
            "a ClaimCheck transform in a source connector's chain is not supported: the broker's \
             claim GC would delete its payloads while their tickets are in the topic. Put the \
             ClaimCheck chain on the topic instead (`kafka-configs --alter --entity-type topics \
             --entity-name {} --add-config transforms=...`, see docs/transforms.md): the broker \
             then externalizes the values and keeps their payloads for as long as the tickets live",
            config.topic
        );
    }
    Ok(())
}

/// Runs the connector described by `file` until SIGINT/SIGTERM.
pub async fn run(file: &Path) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let props = parse_properties(&text).map_err(|e| anyhow::anyhow!(e))?;
    let config = ConnectorConfig::from_properties(props)?;
    let chain = config.chain().context("invalid transform chain")?;
    refuse_untracked_claims(&config, &chain)?;
    tracing::info!(name = %config.name, class = ?config.class, topic = %config.topic,
        transforms = ?chain.aliases().collect::<Vec<_>>(), "connector starting");
    let work = async {
        match config.class {
            ConnectorClass::DirectorySource => source::run(&config, &chain).await,
            ConnectorClass::DirectorySink => sink::run(&config, &chain).await,
        }
    };
    tokio::select! {
        result = work => result,
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); Ok(()) }
    }
}
