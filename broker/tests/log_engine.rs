//! Log engine behaviour on real files: append/read/roll, restarts (clean and unclean), timestamp
//! lookups, validation errors, idempotent producers, retention, an incompatible data directory,
//! topic administration, and index-full rolls. Durability and repair: `log_durability.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use strata_broker::log::{
    ConfigOp, ConfigSource, Durability, LocalDeletionGate, LogManager, LogManagerConfig,
    SegmentEvent,
};
use strata_format::BatchIter;

mod common;

use common::*;

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
    let SegmentEvent::Closed(first) =
        tokio::time::timeout(std::time::Duration::from_secs(5), events.recv())
            .await
            .unwrap()
            .unwrap();
    // Closed segments are listed once fsynced (as their events are sent).
    let mut closed = log.closed_segments();
    for _ in 0..500 {
        if closed.len() > 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        closed = log.closed_segments();
    }
    assert!(
        closed.len() > 3,
        "expected several rolls, got {}",
        closed.len()
    );
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

/// `/metrics` of the engine: partition gauges that match the log, fsyncs counted per group
/// commit, refusals by cause, rolls.
#[tokio::test]
async fn metrics_describe_partitions_fsyncs_refusals_and_rolls() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    let mut registry = prometheus_client::registry::Registry::with_prefix("strata");
    manager.register_metrics(&mut registry);
    manager
        .create_topic(
            "m",
            1,
            overrides(&[("segment.bytes", "4096"), ("max.message.bytes", "2000")]),
            false,
        )
        .unwrap();
    let log = manager.partition("m", 0).unwrap();
    for _ in 0..10 {
        log.append(batch(2, 300), Durability::Written)
            .await
            .unwrap();
    }
    log.append(batch(1, 10), Durability::Fsync).await.unwrap();
    let too_large = log.append(batch(1, 4000), Durability::Written).await;
    assert!(too_large.is_err());
    let mut corrupt = BytesMut::from(&batch(1, 10)[..]);
    let last = corrupt.len() - 1;
    corrupt[last] ^= 0xff;
    assert!(
        log.append(corrupt.freeze(), Durability::Written)
            .await
            .is_err()
    );

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {name} in {text}"))
            .parse()
            .unwrap()
    };
    let labels = "{topic=\"m\",partition=\"0\"}";
    assert_eq!(
        value(&format!("strata_log_partition_end_offset{labels}")),
        21.0
    );
    assert_eq!(
        value(&format!("strata_log_partition_start_offset{labels}")),
        0.0
    );
    let stats = log.stats();
    assert!(stats.segments >= 2, "{stats:?}");
    assert_eq!(
        value(&format!("strata_log_partition_segments{labels}")),
        stats.segments as f64
    );
    let on_disk: u64 = segment_files(&dir.path().join("m-0"), "log")
        .iter()
        .map(|file| std::fs::metadata(file).unwrap().len())
        .sum();
    let size = value(&format!("strata_log_partition_size_bytes{labels}"));
    assert!(
        size >= (21 * 300) as f64 && size <= on_disk as f64,
        "{size} of {on_disk}"
    );
    assert_eq!(
        value("strata_log_segment_rolls_total"),
        (stats.segments - 1) as f64
    );
    assert!(value("strata_log_flush_duration_seconds_count") >= 1.0);
    assert_eq!(
        value("strata_log_append_failures_total{reason=\"message_too_large\"}"),
        1.0
    );
    assert_eq!(
        value("strata_log_append_failures_total{reason=\"corrupt_message\"}"),
        1.0
    );
}

/// A timestamp lookup after DeleteRecords moved the log start into the middle of a segment
/// (and of a batch) answers with the first record at or after the time among those still in
/// the log, as Kafka does: not a later segment's, not a deleted record's.
#[tokio::test]
async fn timestamp_lookup_after_delete_records_inside_a_segment() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager.create_topic("t", 1, overrides(&[]), false).unwrap();
    let log = manager.partition("t", 0).unwrap();
    let base_ts = now_ms() - 100_000;
    // 20 batches of 10 records; record i has timestamp base_ts + i.
    for b in 0..20 {
        log.append(
            batch_with(10, 20, base_ts + 10 * b, (-1, -1, -1)),
            Durability::Written,
        )
        .await
        .unwrap();
    }
    assert_eq!(
        log.offset_for_timestamp(base_ts + 10).unwrap(),
        Some((10, base_ts + 10))
    );
    assert_eq!(log.delete_records_before(55).unwrap(), 55);
    for (target, expected) in [(10, 55), (51, 55), (55, 55), (56, 56), (150, 150)] {
        assert_eq!(
            log.offset_for_timestamp(base_ts + target).unwrap(),
            Some((expected, base_ts + expected)),
            "lookup of base + {target}"
        );
    }
    assert_eq!(log.offset_for_timestamp(base_ts + 200).unwrap(), None);
}

/// Records without timestamps (-1) still age out under `retention.ms`: by the segment file's
/// modification time, as Kafka's `largestTimestamp` does (they were kept forever, and with
/// them every later segment).
#[tokio::test]
async fn retention_ms_ages_segments_without_timestamps_by_file_time() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager
        .create_topic(
            "t",
            1,
            overrides(&[("segment.bytes", "1024"), ("retention.ms", "3600000")]),
            false,
        )
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    for _ in 0..12 {
        log.append(batch_with(1, 300, -1, (-1, -1, -1)), Durability::Written)
            .await
            .unwrap();
    }
    assert_eq!(manager.run_retention_now(), 0, "fresh files are kept");
    let logs = segment_files(&dir.path().join("t-0"), "log");
    assert!(logs.len() >= 4, "{logs:?}");
    let two_hours_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    for old in &logs[..2] {
        std::fs::File::options()
            .write(true)
            .open(old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
    }
    assert_eq!(manager.run_retention_now(), 2);
    let first_kept: i64 = logs[2]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(log.log_start_offset(), first_kept);
}

/// The roll jitter follows the current configs: a topic created with a day of
/// `segment.jitter.ms` under a week of `segment.ms`, then altered to a minute with a second of
/// jitter, rolls after about a minute (it rolled at every append: the day drawn at creation
/// was subtracted from the new minute).
#[tokio::test]
async fn roll_jitter_follows_altered_segment_ms() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager
        .create_topic(
            "t",
            1,
            overrides(&[
                ("segment.ms", "604800000"),
                ("segment.jitter.ms", "86400000"),
            ]),
            false,
        )
        .unwrap();
    manager
        .alter_topic_config(
            "t",
            vec![
                ConfigOp::Set("segment.ms".into(), "60000".into()),
                ConfigOp::Set("segment.jitter.ms".into(), "1000".into()),
            ],
            false,
        )
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    for _ in 0..10 {
        log.append(batch(1, 100), Durability::Written)
            .await
            .unwrap();
    }
    assert_eq!(log.stats().segments, 1, "no roll within the first minute");
}

/// A restart does not restart the `segment.ms` clock of the active segment: it runs from the
/// first batch's timestamp, as Kafka's rollingBasedTimestamp (restarting it kept a low-volume
/// topic restarted more often than `segment.ms` from ever rolling).
#[tokio::test]
async fn segment_ms_clock_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager
        .create_topic("t", 1, overrides(&[("segment.ms", "60000")]), false)
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    let two_minutes_ago = now_ms() - 120_000;
    log.append(
        batch_with(1, 100, two_minutes_ago, (-1, -1, -1)),
        Durability::Written,
    )
    .await
    .unwrap();
    log.append(batch(1, 100), Durability::Written)
        .await
        .unwrap();
    assert_eq!(
        log.stats().segments,
        1,
        "appended a moment ago: no roll yet"
    );
    manager.shutdown().await.unwrap();
    drop((log, manager));

    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    let appended = log
        .append(batch(1, 100), Durability::Written)
        .await
        .unwrap();
    assert_eq!(appended.base_offset, 2);
    assert_eq!(
        log.stats().segments,
        2,
        "the first batch is two minutes old: rolled"
    );
}

/// An append larger than a whole segment is RECORD_LIST_TOO_LARGE (18), as in Kafka; one
/// batch over max.message.bytes is MESSAGE_TOO_LARGE (10).
#[tokio::test]
async fn oversized_appends_get_kafkas_error_codes() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager
        .create_topic(
            "t",
            1,
            overrides(&[("segment.bytes", "2048"), ("max.message.bytes", "1500")]),
            false,
        )
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    let code =
        |result: Result<_, strata_broker::log::LogError>| result.unwrap_err().kafka_error_code();
    assert_eq!(
        code(log.append(batch(1, 1800), Durability::Written).await),
        10
    );
    let mut two = BytesMut::from(&batch(1, 1200)[..]);
    two.extend_from_slice(&batch(1, 1200));
    assert_eq!(
        code(log.append(two.freeze(), Durability::Written).await),
        18
    );
    assert_eq!(log.log_end_offset(), 0);
}
