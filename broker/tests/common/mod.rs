//! Helpers shared by the log engine integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use strata_broker::log::{LogManager, LogManagerConfig, PartitionLog};
use strata_format::BatchIter;
use strata_format::testing::BatchBuilder;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Record i's value is `value_size` bytes of `i % 251`, its timestamp `timestamp + i`.
pub fn batch_with(
    count: usize,
    value_size: usize,
    timestamp: i64,
    producer: (i64, i16, i32),
) -> Bytes {
    BatchBuilder::new()
        .records(count)
        .values(move |i| Bytes::from(vec![(i % 251) as u8; value_size]))
        .timestamp(timestamp)
        .timestamp_step(1)
        .producer(producer.0, producer.1, producer.2)
        .build()
}

pub fn batch(count: usize, value_size: usize) -> Bytes {
    batch_with(count, value_size, now_ms(), (-1, -1, -1))
}

pub fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub async fn open(dir: &Path) -> Arc<LogManager> {
    LogManager::open(LogManagerConfig::new(dir)).await.unwrap()
}

/// Reads the whole partition, checking dense offsets; returns (base, last) per batch.
pub fn read_all(log: &PartitionLog) -> Vec<(i64, i64)> {
    let mut offset = log.log_start_offset();
    let mut batches = Vec::new();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 64 * 1024).unwrap();
        assert!(!read.records.is_empty());
        for batch in BatchIter::new(read.records) {
            batch.validate().unwrap();
            assert_eq!(batch.base_offset(), offset);
            batches.push((batch.base_offset(), batch.last_offset()));
            offset = batch.next_offset();
        }
    }
    batches
}

pub fn segment_files(dir: &Path, extension: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}
