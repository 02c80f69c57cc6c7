//! Small durable facts the Kafka server keeps in its state directory.
//!
//! - `cluster_id`: generated once, reported in Metadata and DescribeCluster.
//! - `broker_epoch`: bumped at every start and used as the leader epoch of every partition, so
//!   leader epochs seen by clients never go backwards across restarts.
//! - `producer_ids`: the end of the last reserved block of producer ids. InitProducerId hands
//!   out ids from memory and persists (fsync) a new block end before crossing the old one, so an
//!   id is never handed out twice, even after `kill -9` (a crash only skips the rest of a block).
//!
//! Every file is replaced atomically: write a temp file, fsync it, rename, fsync the directory.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const CLUSTER_ID_FILE: &str = "cluster_id";
const BROKER_EPOCH_FILE: &str = "broker_epoch";
const PRODUCER_IDS_FILE: &str = "producer_ids";
const PRODUCER_ID_BLOCK: i64 = 1_000;

#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub struct StateFileError {
    context: String,
    #[source]
    source: std::io::Error,
}

fn err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StateFileError {
    let context = context.into();
    move |source| StateFileError { context, source }
}

fn read_value(dir: &Path, name: &str) -> Result<Option<String>, StateFileError> {
    match std::fs::read_to_string(dir.join(name)) {
        Ok(text) => Ok(Some(text.trim().to_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(err(format!("read {}", dir.join(name).display()))(e)),
    }
}

fn write_value_durably(dir: &Path, name: &str, value: &str) -> Result<(), StateFileError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    let mut file = File::create(&tmp).map_err(err(format!("create {}", tmp.display())))?;
    file.write_all(value.as_bytes())
        .map_err(err(format!("write {}", tmp.display())))?;
    file.sync_all()
        .map_err(err(format!("fsync {}", tmp.display())))?;
    std::fs::rename(&tmp, &target).map_err(err(format!("rename to {}", target.display())))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(err(format!("fsync {}", dir.display())))
}

/// Broker configs changed at runtime through AlterConfigs / IncrementalAlterConfigs: Kafka keeps
/// these in its metadata log so they outlive a restart; we keep them in one JSON file here.
const DYNAMIC_BROKER_CONFIGS_FILE: &str = "dynamic-broker-configs.json";

pub fn load_dynamic_broker_configs(
    state_dir: &Path,
) -> Result<std::collections::BTreeMap<String, String>, StateFileError> {
    let Some(text) = read_value(state_dir, DYNAMIC_BROKER_CONFIGS_FILE)? else {
        return Ok(Default::default());
    };
    serde_json::from_str(&text).map_err(|e| StateFileError {
        context: format!(
            "parse {} (fix or delete the file to drop the dynamic broker configs)",
            state_dir.join(DYNAMIC_BROKER_CONFIGS_FILE).display()
        ),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })
}

pub fn save_dynamic_broker_configs(
    state_dir: &Path,
    configs: &std::collections::BTreeMap<String, String>,
) -> Result<(), StateFileError> {
    let text = serde_json::to_string_pretty(configs).expect("a string map serialises");
    write_value_durably(state_dir, DYNAMIC_BROKER_CONFIGS_FILE, &text)
}

/// The cluster id and this start's broker epoch.
#[derive(Debug, Clone)]
pub struct BrokerIdentity {
    pub cluster_id: String,
    pub broker_epoch: i32,
}

impl BrokerIdentity {
    /// Loads (or creates) the cluster id and durably bumps the broker epoch.
    pub fn load_and_bump(state_dir: &Path) -> Result<Self, StateFileError> {
        std::fs::create_dir_all(state_dir)
            .map_err(err(format!("create {}", state_dir.display())))?;
        let cluster_id = match read_value(state_dir, CLUSTER_ID_FILE)? {
            Some(id) if !id.is_empty() => id,
            _ => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                write_value_durably(state_dir, CLUSTER_ID_FILE, &id)?;
                id
            }
        };
        let previous: i32 = read_value(state_dir, BROKER_EPOCH_FILE)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1);
        let broker_epoch = previous.saturating_add(1);
        write_value_durably(state_dir, BROKER_EPOCH_FILE, &broker_epoch.to_string())?;
        Ok(BrokerIdentity {
            cluster_id,
            broker_epoch,
        })
    }
}

/// Hands out producer ids that are unique across restarts.
pub struct ProducerIdAllocator {
    state_dir: PathBuf,
    /// `(next id to hand out, end of the persisted block (exclusive))`
    range: Mutex<(i64, i64)>,
}

impl ProducerIdAllocator {
    pub fn open(state_dir: &Path) -> Result<Self, StateFileError> {
        std::fs::create_dir_all(state_dir)
            .map_err(err(format!("create {}", state_dir.display())))?;
        let block_end: i64 = read_value(state_dir, PRODUCER_IDS_FILE)?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok(ProducerIdAllocator {
            state_dir: state_dir.to_owned(),
            range: Mutex::new((block_end, block_end)),
        })
    }

    /// The next producer id; persists a new block first when the current one is used up.
    pub fn allocate(&self) -> Result<i64, StateFileError> {
        let mut range = self.range.lock().expect("producer id lock");
        if range.0 >= range.1 {
            let new_end = range.0 + PRODUCER_ID_BLOCK;
            write_value_durably(&self.state_dir, PRODUCER_IDS_FILE, &new_end.to_string())?;
            range.1 = new_end;
        }
        let id = range.0;
        range.0 += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_ids_never_repeat_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let first = ProducerIdAllocator::open(dir.path()).unwrap();
        let a = first.allocate().unwrap();
        let b = first.allocate().unwrap();
        assert_eq!((a, b), (0, 1));
        drop(first);
        let second = ProducerIdAllocator::open(dir.path()).unwrap();
        assert!(second.allocate().unwrap() >= PRODUCER_ID_BLOCK);
    }

    #[test]
    fn broker_epoch_grows_and_cluster_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let one = BrokerIdentity::load_and_bump(dir.path()).unwrap();
        let two = BrokerIdentity::load_and_bump(dir.path()).unwrap();
        assert_eq!(one.cluster_id, two.cluster_id);
        assert_eq!(two.broker_epoch, one.broker_epoch + 1);
    }
}
