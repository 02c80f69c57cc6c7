//! Test helpers of the transform engine: a real partition log with a transform chain, an
//! in-memory claim store, records as kafka-protocol decodes them.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Compression, Record, RecordSet, TimestampType};
use strata_claimcheck::{ClaimCheckConfig, ClaimStore};

use super::batch::encode;
use super::{FETCH_RESOLVE, SmtEngine};
use crate::log::{Durability, LogManager, LogManagerConfig, PartitionLog};

/// A one-partition topic `t` with a ClaimCheck chain (records of 1 KiB and more become
/// tickets) and fetch-side resolution, on an in-memory claim store.
pub struct Fixture {
    _dir: tempfile::TempDir,
    _manager: Arc<LogManager>,
    pub log: Arc<PartitionLog>,
    pub engine: Arc<SmtEngine>,
    pub store: ClaimStore,
}

pub async fn fixture(configs: &[(&str, &str)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let manager = LogManager::open(LogManagerConfig::new(dir.path()))
        .await
        .unwrap();
    let overrides: BTreeMap<String, String> = [
        ("transforms", "cc"),
        ("transforms.cc.type", "ClaimCheck"),
        ("transforms.cc.threshold.bytes", "1024"),
        (FETCH_RESOLVE, "true"),
    ]
    .iter()
    .chain(configs)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    manager.create_topic("t", 1, overrides, false).unwrap();
    let log = manager.partition("t", 0).unwrap();
    let store = ClaimStore::new(Arc::new(object_store::memory::InMemory::new()), "c").unwrap();
    let engine = Arc::new(SmtEngine::with_claims(
        store.clone(),
        ClaimCheckConfig::default(),
    ));
    Fixture {
        _dir: dir,
        _manager: manager,
        log,
        engine,
        store,
    }
}

pub fn record(offset: i64, timestamp: i64, value: &[u8], headers: &[(&str, &[u8])]) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        // As decoded: no base sequence (-1) plus the offset delta.
        sequence: (offset as i32).wrapping_sub(1),
        timestamp,
        key: None,
        value: Some(Bytes::copy_from_slice(value)),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    StrBytes::from_string(k.to_string()),
                    Some(Bytes::copy_from_slice(v)),
                )
            })
            .collect::<IndexMap<_, _>>(),
    }
}

pub fn batch_of(records: Vec<Record>) -> Bytes {
    encode(&RecordSet {
        version: 2,
        compression: Compression::None,
        records,
    })
    .unwrap()
}

/// Produces `records` as one batch through the topic's chain.
pub async fn produce(f: &Fixture, records: Vec<Record>) {
    crate::smt::append(
        Some(&f.engine),
        &f.log,
        batch_of(records),
        Durability::Written,
    )
    .await
    .unwrap();
}
