//! Log engine behaviour on real files: append/read/roll, restarts (clean and unclean), timestamp
//! lookups, validation errors, idempotent producers, retention, corruption repair, an
//! incompatible data directory, a full disk (real tmpfs), and topic administration.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use strata_broker::log::{
    ConfigOp, ConfigSource, Durability, LocalDeletionGate, LogManager, LogManagerConfig,
    PartitionLog, SegmentEvent,
};
use strata_format::BatchIter;
use strata_format::testing::BatchBuilder;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Record i's value is `value_size` bytes of `i % 251`, its timestamp `timestamp + i`.
fn batch_with(count: usize, value_size: usize, timestamp: i64, producer: (i64, i16, i32)) -> Bytes {
    BatchBuilder::new()
        .records(count)
        .values(move |i| Bytes::from(vec![(i % 251) as u8; value_size]))
        .timestamp(timestamp)
        .timestamp_step(1)
        .producer(producer.0, producer.1, producer.2)
        .build()
}

fn batch(count: usize, value_size: usize) -> Bytes {
    batch_with(count, value_size, now_ms(), (-1, -1, -1))
}

fn overrides(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn open(dir: &Path) -> Arc<LogManager> {
    LogManager::open(LogManagerConfig::new(dir)).await.unwrap()
}

/// Reads the whole partition, checking dense offsets; returns (base, last) per batch.
fn read_all(log: &PartitionLog) -> Vec<(i64, i64)> {
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

#[tokio::test]
async fn append_read_roll_and_segment_events() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    let mut events = manager.subscribe_segment_events();
    manager
        .create_topic(
            "t",
            2,
            overrides(&[("segment.bytes", "4096"), ("index.interval.bytes", "512")]),
            false,
        )
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    let mut expected_base = 0;
    for i in 0..200 {
        let result = log
            .append(batch(1 + i % 3, 100), Durability::Written)
            .await
            .unwrap();
        assert_eq!(result.base_offset, expected_base);
        assert!(!result.duplicate);
        expected_base = result.last_offset + 1;
    }
    assert_eq!(log.log_end_offset(), expected_base);
    assert_eq!(log.high_watermark(), expected_base);
    // Every offset is found via the sparse index, in the batch that contains it.
    for offset in 0..expected_base {
        let read = log.read(offset, 1).unwrap(); // max_bytes below one batch: still one batch
        let first = BatchIter::new(read.records).next().unwrap();
        assert!(
            first.base_offset() <= offset && offset <= first.last_offset(),
            "offset {offset}"
        );
    }
    assert!(log.read(expected_base, 1024).unwrap().records.is_empty());
    assert_eq!(
        log.read(expected_base + 1, 1024)
            .unwrap_err()
            .kafka_error_code(),
        1
    );
    let closed = log.closed_segments();
    assert!(
        closed.len() > 3,
        "expected several rolls, got {}",
        closed.len()
    );
    let SegmentEvent::Closed(first) =
        tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
    assert_eq!(first, closed[0]);
    assert_eq!(first.base_offset, 0);
    assert!(
        first.size_bytes <= 4096 && first.log_path.exists() && first.offset_index_path.exists()
    );
    assert_eq!(read_all(&log).last().unwrap().1, expected_base - 1);
}

#[tokio::test]
async fn restarts_clean_and_unclean_keep_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    let topic = manager
        .create_topic("t", 1, overrides(&[("segment.bytes", "8192")]), false)
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    for _ in 0..100 {
        log.append(batch(2, 200), Durability::Fsync).await.unwrap();
    }
    let before = read_all(&log);
    manager.shutdown().await.unwrap();
    drop((log, manager));
    let manager = open(dir.path()).await;
    assert_eq!(manager.topic("t").unwrap(), topic);
    assert_eq!(manager.topic_by_id(topic.topic_id).unwrap().name, "t");
    let log = manager.partition("t", 0).unwrap();
    assert_eq!(read_all(&log), before);
    for _ in 0..50 {
        log.append(batch(1, 300), Durability::Written)
            .await
            .unwrap();
    }
    let before = read_all(&log);
    drop((log, manager)); // no shutdown: unclean
    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    assert_eq!(read_all(&log), before);
    assert_eq!(log.log_end_offset(), 250);
}

#[tokio::test]
async fn timestamps_and_log_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager
        .create_topic("t", 1, overrides(&[("segment.bytes", "2048")]), false)
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    let base = now_ms() - 100_000;
    for i in 0..50 {
        // 4 records per batch, timestamps base + 1000*i + 0..4
        log.append(
            batch_with(4, 50, base + 1_000 * i, (-1, -1, -1)),
            Durability::Written,
        )
        .await
        .unwrap();
    }
    assert_eq!(log.offset_for_timestamp(base - 5).unwrap(), Some((0, base)));
    assert_eq!(
        log.offset_for_timestamp(base + 10_002).unwrap(),
        Some((42, base + 10_002))
    );
    assert_eq!(
        log.offset_for_timestamp(base + 10_005).unwrap(),
        Some((44, base + 11_000))
    );
    assert_eq!(log.offset_for_timestamp(base + 1_000_000).unwrap(), None);
    assert_eq!(log.max_timestamp(), Some((199, base + 49_003)));

    manager
        .create_topic(
            "lat",
            1,
            overrides(&[("message.timestamp.type", "LogAppendTime")]),
            false,
        )
        .unwrap();
    let lat = manager.partition("lat", 0).unwrap();
    let before = now_ms();
    let result = lat
        .append(batch_with(2, 10, 5, (-1, -1, -1)), Durability::Written)
        .await
        .unwrap();
    assert!(result.log_append_time >= before);
    let stored = BatchIter::new(lat.read(0, 1000).unwrap().records)
        .next()
        .unwrap();
    stored.validate().unwrap(); // CRC recomputed
    assert_eq!(stored.max_timestamp(), result.log_append_time);
    assert_eq!(
        stored.timestamp_type(),
        strata_format::TimestampType::LogAppendTime
    );
}

#[tokio::test]
async fn invalid_appends_are_rejected_with_kafka_codes() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager
        .create_topic(
            "t",
            1,
            overrides(&[
                ("max.message.bytes", "2000"),
                ("message.timestamp.before.max.ms", "60000"),
            ]),
            false,
        )
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    let mut corrupt = BytesMut::from(&batch(1, 10)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert_eq!(
        log.append(corrupt.freeze(), Durability::Written)
            .await
            .unwrap_err()
            .kafka_error_code(),
        2
    );
    let torn = batch(1, 10).slice(..40);
    assert_eq!(
        log.append(torn, Durability::Written)
            .await
            .unwrap_err()
            .kafka_error_code(),
        2
    );
    assert_eq!(
        log.append(batch(1, 5000), Durability::Written)
            .await
            .unwrap_err()
            .kafka_error_code(),
        10
    );
    let old = batch_with(1, 10, now_ms() - 3_600_000, (-1, -1, -1));
    assert_eq!(
        log.append(old, Durability::Written)
            .await
            .unwrap_err()
            .kafka_error_code(),
        32
    );
    let future = batch_with(1, 10, now_ms() + 7_200_000, (-1, -1, -1));
    assert_eq!(
        log.append(future, Durability::Written)
            .await
            .unwrap_err()
            .kafka_error_code(),
        32
    );
    assert_eq!(log.log_end_offset(), 0);
    assert_eq!(
        log.append(batch(1, 10), Durability::Written)
            .await
            .unwrap()
            .base_offset,
        0
    );
}

#[tokio::test]
async fn idempotent_producer_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager
        .create_topic("t", 1, overrides(&[("segment.bytes", "1024")]), false)
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    let mut seq = 0;
    for _ in 0..20 {
        log.append(
            batch_with(3, 50, now_ms(), (42, 0, seq)),
            Durability::Written,
        )
        .await
        .unwrap();
        seq += 3;
    }
    let retry = log
        .append(
            batch_with(3, 50, now_ms(), (42, 0, seq - 3)),
            Durability::Written,
        )
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!((retry.base_offset, retry.last_offset), (57, 59));
    assert_eq!(log.log_end_offset(), 60);
    let gap = log
        .append(
            batch_with(1, 50, now_ms(), (42, 0, seq + 5)),
            Durability::Written,
        )
        .await
        .unwrap_err();
    assert_eq!(gap.kafka_error_code(), 45);
    drop((log, manager)); // unclean: state rebuilt from snapshot at last roll + replay
    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    assert!(
        log.append(
            batch_with(3, 50, now_ms(), (42, 0, seq - 3)),
            Durability::Written
        )
        .await
        .unwrap()
        .duplicate
    );
    log.append(
        batch_with(1, 50, now_ms(), (42, 0, seq)),
        Durability::Written,
    )
    .await
    .unwrap();
    let fenced = log
        .append(
            batch_with(1, 50, now_ms(), (42, -1, 0)),
            Durability::Written,
        )
        .await;
    assert!(fenced.is_err());
    manager.shutdown().await.unwrap();
    drop((log, manager)); // clean: state from the shutdown snapshot
    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    assert!(
        log.append(
            batch_with(1, 50, now_ms(), (42, 0, seq)),
            Durability::Written
        )
        .await
        .unwrap()
        .duplicate
    );
}

struct DenyAll;
impl LocalDeletionGate for DenyAll {
    fn may_delete_locally(&self, _: &str, _: i32, _: i64, _: i64) -> bool {
        false
    }
}

#[tokio::test]
async fn retention_gate_and_delete_records() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager
        .create_topic(
            "t",
            1,
            overrides(&[
                ("segment.bytes", "1024"),
                ("retention.bytes", "3000"),
                ("file.delete.delay.ms", "0"),
            ]),
            false,
        )
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    for _ in 0..60 {
        log.append(batch(1, 150), Durability::Written)
            .await
            .unwrap();
    }
    manager.set_local_deletion_gate(Arc::new(DenyAll));
    assert_eq!(manager.run_retention_now(), 0);
    manager.set_local_deletion_gate(Arc::new(strata_broker::log::AllowAllDeletions));
    assert!(manager.run_retention_now() > 0);
    let start = log.log_start_offset();
    assert!(start > 0);
    assert_eq!(log.read(start - 1, 100).unwrap_err().kafka_error_code(), 1);
    assert_eq!(read_all(&log).first().unwrap().0, start);
    let new_start = log.delete_records_before(55).unwrap();
    assert_eq!(new_start, 55);
    assert_eq!(log.read(54, 100).unwrap_err().kafka_error_code(), 1);
    assert_eq!(
        log.delete_records_before(1000)
            .unwrap_err()
            .kafka_error_code(),
        1
    );
    drop((log, manager));
    let manager = open(dir.path()).await;
    assert_eq!(manager.partition("t", 0).unwrap().log_start_offset(), 55);
}

fn segment_files(dir: &Path, extension: &str) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == extension))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn corruption_is_repaired_keeping_everything_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager
        .create_topic(
            "t",
            1,
            overrides(&[("segment.bytes", "4096"), ("index.interval.bytes", "256")]),
            false,
        )
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    for _ in 0..100 {
        log.append(batch(1, 200), Durability::Written)
            .await
            .unwrap();
    }
    let before = read_all(&log);
    manager.shutdown().await.unwrap();
    drop((log, manager));
    let partition_dir = dir.path().join("t-0");

    // Damaged indexes after a clean stop are detected and rebuilt.
    let indexes = segment_files(&partition_dir, "index");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&indexes[0])
        .unwrap();
    file.set_len(file.metadata().unwrap().len() - 3).unwrap();
    std::fs::write(
        &segment_files(&partition_dir, "timeindex")[1],
        b"garbage!garbage!garbage!",
    )
    .unwrap();
    std::fs::write(&indexes[2], [0xffu8; 16]).unwrap();
    let manager = open(dir.path()).await;
    assert_eq!(read_all(&manager.partition("t", 0).unwrap()), before);
    drop(manager); // unclean from here

    // A flipped byte in the second segment: everything before the damaged batch survives.
    std::fs::remove_file(dir.path().join("recovery-point-offset-checkpoint")).ok();
    let logs = segment_files(&partition_dir, "log");
    let mut bytes = std::fs::read(&logs[1]).unwrap();
    let damaged_at = 1000;
    bytes[damaged_at] ^= 0x55;
    std::fs::write(&logs[1], &bytes).unwrap();
    let second_base: i64 = logs[1]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    let after = read_all(&log);
    assert!(after.len() < before.len());
    assert_eq!(&before[..after.len()], &after[..]);
    assert!(
        log.log_end_offset() > second_base,
        "batches of the damaged segment before the damage survive"
    );
    // The log works again: new appends continue densely.
    let next = log.log_end_offset();
    assert_eq!(
        log.append(batch(1, 10), Durability::Fsync)
            .await
            .unwrap()
            .base_offset,
        next
    );
    drop((log, manager));

    // A torn tail (the last batch cut short) is cut at the last whole batch. (The unclean stop
    // left the zeroed tail of the acks=all append above after the batches: cut into the data.)
    let logs = segment_files(&partition_dir, "log");
    let last = logs.last().unwrap();
    let data = data_len(std::fs::read(last).unwrap()) as u64;
    let file = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    file.set_len(data - 7).unwrap();
    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    assert_eq!(log.log_end_offset(), next);
    read_all(&log);
}

#[tokio::test]
async fn incompatible_or_busy_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    let busy = LogManager::open(LogManagerConfig::new(dir.path()))
        .await
        .err()
        .unwrap();
    assert!(busy.to_string().contains("in use"), "{busy}");
    drop(manager);
    std::fs::write(
        dir.path().join("meta.properties"),
        "strata.log.format.version=99\n",
    )
    .unwrap();
    let error = LogManager::open(LogManagerConfig::new(dir.path()))
        .await
        .err()
        .unwrap();
    assert!(error.to_string().contains("version 99"), "{error}");
    assert_eq!(error.kafka_error_code(), 56);
}

#[tokio::test]
async fn topic_administration() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    assert_eq!(
        manager
            .create_topic("bad/name", 1, BTreeMap::new(), false)
            .unwrap_err()
            .kafka_error_code(),
        17
    );
    assert_eq!(
        manager
            .create_topic("t", 0, BTreeMap::new(), false)
            .unwrap_err()
            .kafka_error_code(),
        37
    );
    assert_eq!(
        manager
            .create_topic("t", 1, overrides(&[("segment.bytes", "x")]), false)
            .unwrap_err()
            .kafka_error_code(),
        40
    );
    manager.create_topic("t", 1, BTreeMap::new(), true).unwrap();
    assert!(
        manager.topic("t").is_none(),
        "validate_only must not create"
    );
    manager
        .create_topic("t", 1, overrides(&[("retention.ms", "1000")]), false)
        .unwrap();
    assert_eq!(
        manager
            .create_topic("t", 1, BTreeMap::new(), false)
            .unwrap_err()
            .kafka_error_code(),
        36
    );
    manager
        .alter_topic_config(
            "t",
            vec![
                ConfigOp::Set("retention.bytes".into(), "5".into()),
                ConfigOp::Delete("retention.ms".into()),
            ],
            false,
        )
        .unwrap();
    let entries = manager.describe_topic_config("t").unwrap();
    let retention_bytes = entries
        .iter()
        .find(|e| e.name == "retention.bytes")
        .unwrap();
    assert_eq!(
        (retention_bytes.value.as_deref(), retention_bytes.source),
        (Some("5"), ConfigSource::TopicOverride)
    );
    assert_eq!(
        entries
            .iter()
            .find(|e| e.name == "retention.ms")
            .unwrap()
            .source,
        ConfigSource::Default
    );
    assert_eq!(
        manager.partition("t", 0).unwrap().config().retention_bytes,
        5
    );
    assert_eq!(
        manager
            .alter_topic_config("t", vec![ConfigOp::Set("nope".into(), "1".into())], false)
            .unwrap_err()
            .kafka_error_code(),
        40
    );
    manager.create_partitions("t", 3, false).unwrap();
    assert_eq!(
        manager
            .create_partitions("t", 2, false)
            .unwrap_err()
            .kafka_error_code(),
        37
    );
    assert!(manager.partition("t", 2).is_some());
    drop(manager);
    let manager = open(dir.path()).await;
    assert_eq!(manager.topic("t").unwrap().partitions, 3);
    assert_eq!(
        manager.topic("t").unwrap().overrides,
        overrides(&[("retention.bytes", "5")])
    );
    manager.delete_topic("t").unwrap();
    assert!(manager.topic("t").is_none() && !dir.path().join("t-0").exists());
    manager
        .create_topic("t", 1, BTreeMap::new(), false)
        .unwrap();
    assert_eq!(manager.partition("t", 0).unwrap().log_end_offset(), 0);
}

/// A real full disk: a 2 MiB tmpfs (needs root; skipped with a message otherwise).
#[tokio::test]
async fn full_disk_fails_appends_without_poisoning_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(dir.path())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("skipping: cannot mount a tmpfs here");
        return;
    }
    let result = std::panic::AssertUnwindSafe(async {
        let manager = open(dir.path()).await;
        manager
            .create_topic("t", 1, overrides(&[("segment.bytes", "10485760")]), false)
            .unwrap();
        let log = manager.partition("t", 0).unwrap();
        let filler = dir.path().join("filler");
        std::fs::write(&filler, vec![0u8; 1024 * 1024]).unwrap();
        let mut error = None;
        for _ in 0..10_000 {
            match log.append(batch(1, 4000), Durability::Fsync).await {
                Ok(_) => {}
                Err(e) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let error = error.expect("the disk should fill up");
        assert_eq!(error.kafka_error_code(), 56);
        assert!(error.is_disk_full(), "{error}");
        let end = log.log_end_offset();
        assert_eq!(
            read_all(&log).last().unwrap().1,
            end - 1,
            "reads keep working"
        );
        std::fs::remove_file(&filler).unwrap();
        let result = log.append(batch(1, 4000), Durability::Fsync).await.unwrap();
        assert_eq!(result.base_offset, end, "appends resume with no gap");
        drop((log, manager));
        let manager = open(dir.path()).await;
        assert_eq!(
            read_all(&manager.partition("t", 0).unwrap()).len() as i64,
            end + 1
        );
    });
    let outcome = futures::FutureExt::catch_unwind(result).await;
    let _ = std::process::Command::new("umount")
        .arg(dir.path())
        .status();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// One append of 700 batches is written as 1400 pieces (new base offset + the client's bytes),
/// more than one `pwritev` takes: every byte after the base offset must be the client's own.
#[tokio::test]
async fn a_many_batch_append_keeps_the_client_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager
        .create_topic("many", 1, overrides(&[]), false)
        .unwrap();
    let log = manager.partition("many", 0).unwrap();
    log.append(batch(3, 10), Durability::Written).await.unwrap();

    let sent: Vec<Bytes> = (0..700).map(|i| batch(1 + i % 3, 20 + i)).collect();
    let request = Bytes::from(sent.concat());
    let result = log.append(request, Durability::Fsync).await.unwrap();
    assert_eq!(result.base_offset, 3);
    let records: i64 = (0..700).map(|i| 1 + i % 3).sum();
    assert_eq!(result.last_offset, 3 + records - 1);

    let mut offset = 3;
    let mut stored = Vec::new();
    while offset < log.log_end_offset() {
        for batch in BatchIter::new(log.read(offset, 256 * 1024).unwrap().records) {
            offset = batch.next_offset();
            stored.push(batch);
        }
    }
    assert_eq!(stored.len(), 700);
    let mut expected_base = 3;
    for (sent, stored) in sent.iter().zip(&stored) {
        stored.validate().unwrap();
        assert_eq!(stored.base_offset(), expected_base);
        assert_eq!(
            &stored.as_bytes()[8..],
            &sent[8..],
            "batch at {expected_base}"
        );
        expected_base = stored.next_offset();
    }
}

/// Bytes of whole batches at the start of `bytes` (where a log's data ends).
fn data_len(bytes: Vec<u8>) -> usize {
    let mut batches = BatchIter::new(Bytes::from(bytes));
    batches.by_ref().for_each(drop);
    batches.position()
}

/// The `.log` file holds whole batches and nothing after them.
fn assert_no_tail(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let len = bytes.len();
    assert_eq!(data_len(bytes), len, "{} keeps a tail", path.display());
}

/// Durable appends write zeros ahead of themselves (so that their fsyncs need no file-size
/// commit). The zeros are never part of the log: a roll and a clean stop cut them off, and an
/// unclean stop drops them without taking any segment after them.
#[tokio::test]
async fn the_zeroed_tail_of_durable_appends_is_never_part_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let partition_dir = dir.path().join("t-0");
    let manager = open(dir.path()).await;
    manager
        .create_topic("t", 1, overrides(&[("segment.bytes", "65536")]), false)
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    for _ in 0..60 {
        log.append(batch(4, 1000), Durability::Fsync).await.unwrap();
    }
    let before = read_all(&log);
    let logs = segment_files(&partition_dir, "log");
    assert!(
        logs.len() >= 3,
        "expected rolls, got {} segments",
        logs.len()
    );
    logs[..logs.len() - 1]
        .iter()
        .for_each(|closed| assert_no_tail(closed));
    let active = std::fs::read(logs.last().unwrap()).unwrap();
    let active_len = active.len();
    let data = data_len(active.clone());
    assert!(
        active_len > data && active_len - data <= 1 << 20,
        "active segment: {active_len} bytes in the file for {data} of batches"
    );
    assert!(active[data..].iter().all(|&b| b == 0));

    // Unclean stop: the tail is dropped, every acknowledged batch is there.
    drop((log, manager));
    // A closed segment with zeros after its batches (a crash right after a roll, before the
    // cut reached the disk) is scanned too, and keeps the segments after it.
    std::fs::remove_file(dir.path().join("recovery-point-offset-checkpoint")).ok();
    let first = std::fs::OpenOptions::new()
        .append(true)
        .open(&logs[0])
        .unwrap();
    std::io::Write::write_all(&mut &first, &[0u8; 8192]).unwrap();
    drop(first);
    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    assert_eq!(read_all(&log), before);
    logs.iter().for_each(|path| assert_no_tail(path));

    // Appends go on densely; a clean stop leaves no tail behind.
    let next = log.log_end_offset();
    let appended = log.append(batch(2, 100), Durability::Fsync).await.unwrap();
    assert_eq!(appended.base_offset, next);
    manager.shutdown().await.unwrap();
    drop((log, manager));
    segment_files(&partition_dir, "log")
        .iter()
        .for_each(|path| assert_no_tail(path));
    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    assert_eq!(log.log_end_offset(), appended.last_offset + 1);
    assert_eq!(&read_all(&log)[..before.len()], &before[..]);
}

/// `flush.messages` and `flush.ms` make acks=1 (`Durability::Written`) appends durable without
/// an fsync per append: the recovery point (offset below which everything is fsynced) moves
/// after that many messages, or once the oldest unflushed write is that old; with neither
/// set low, it stays behind.
#[tokio::test]
async fn flush_messages_and_flush_ms_advance_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LogManagerConfig::new(dir.path());
    config.roll_check_interval = std::time::Duration::from_millis(50);
    let manager = LogManager::open(config).await.unwrap();
    for (name, settings) in [
        ("by-count", overrides(&[("flush.messages", "5")])),
        ("by-time", overrides(&[("flush.ms", "200")])),
        ("neither", overrides(&[])),
    ] {
        manager.create_topic(name, 1, settings, false).unwrap();
    }
    let (by_count, by_time, neither) = (
        manager.partition("by-count", 0).unwrap(),
        manager.partition("by-time", 0).unwrap(),
        manager.partition("neither", 0).unwrap(),
    );

    // flush.messages=5: two records, then two more, stay unflushed; the fifth flushes them all.
    for _ in 0..2 {
        by_count
            .append(batch(2, 100), Durability::Written)
            .await
            .unwrap();
    }
    assert_eq!(by_count.recovery_point(), 0);
    by_count
        .append(batch(1, 100), Durability::Written)
        .await
        .unwrap();
    assert_eq!(by_count.recovery_point(), 5);

    // flush.ms=200: not flushed at once, flushed by the periodic check soon after 200 ms.
    let started = std::time::Instant::now();
    by_time
        .append(batch(3, 100), Durability::Written)
        .await
        .unwrap();
    neither
        .append(batch(3, 100), Durability::Written)
        .await
        .unwrap();
    assert_eq!(by_time.recovery_point(), 0);
    while by_time.recovery_point() < 3 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "flush.ms=200 never flushed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(200),
        "flushed before flush.ms: {:?}",
        started.elapsed()
    );
    // The default flush.ms (Long.MAX, as in Kafka) leaves acks=1 data to the OS.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(neither.recovery_point(), 0);
    assert_eq!(neither.log_end_offset(), 3);
}

/// A full offset or time index rolls the segment even far below `segment.bytes`, as in Kafka;
/// every rolled segment's indexes fit `segment.index.bytes` and every record stays readable.
#[tokio::test]
async fn a_full_index_rolls_the_segment() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    // 48 bytes: 6 offset-index entries (8 bytes) or 4 time-index entries (12 bytes); every
    // batch gets an entry (index.interval.bytes=1).
    manager
        .create_topic(
            "t",
            1,
            overrides(&[("segment.index.bytes", "48"), ("index.interval.bytes", "1")]),
            false,
        )
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    let base = now_ms();
    for i in 0..20 {
        log.append(
            batch_with(1, 50, base + i, (-1, -1, -1)),
            Durability::Written,
        )
        .await
        .unwrap();
    }
    let partition_dir = dir.path().join("t-0");
    let logs = segment_files(&partition_dir, "log");
    assert!(
        logs.len() >= 20usize.div_ceil(6),
        "20 indexed batches in {} segment(s)",
        logs.len()
    );
    // Closed segments (all but the active one) hold at most what their indexes can address,
    // and their trimmed indexes are within the limit.
    for extension in ["index", "timeindex"] {
        let files = segment_files(&partition_dir, extension);
        for file in &files[..files.len() - 1] {
            let len = std::fs::metadata(file).unwrap().len();
            assert!(len <= 48, "{} is {len} bytes", file.display());
        }
    }
    let batches = read_all(&log);
    assert_eq!(batches.len(), 20);
    assert_eq!(batches.last().unwrap().1, 19);
    drop((log, manager));
    // And after a restart.
    let manager = open(dir.path()).await;
    assert_eq!(read_all(&manager.partition("t", 0).unwrap()).len(), 20);
}
