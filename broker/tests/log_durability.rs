//! Log engine durability on real files: corruption repair, a full disk (real tmpfs), the zeroed
//! tail of durable appends, and flush.messages / flush.ms moving the recovery point.

use std::path::Path;

use bytes::Bytes;
use strata_broker::log::{Durability, LogManager, LogManagerConfig};
use strata_format::BatchIter;

mod common;

use common::*;

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

/// Rolls move the recovery point (acks=1 traffic included), so an unclean start rescans only
/// the active segment; a segment rebuilt by recovery keeps its max timestamp across the next
/// start (it lost it: its time index lacked the entry a roll writes), so timestamp lookups and
/// `retention.ms` still see it.
#[tokio::test]
async fn rolls_advance_the_recovery_point_and_rebuilt_segments_keep_their_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    // No index entries inside segments: each closed segment's time index holds only the
    // entry its close writes.
    manager
        .create_topic(
            "t",
            1,
            overrides(&[
                ("segment.bytes", "1024"),
                ("index.interval.bytes", "1048576"),
            ]),
            false,
        )
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    let base_ts = now_ms() - 60_000;
    for i in 0..30 {
        log.append(
            batch_with(1, 300, base_ts + 1000 * i, (-1, -1, -1)),
            Durability::Written,
        )
        .await
        .unwrap();
    }
    let active_base: i64 = segment_files(&dir.path().join("t-0"), "log")
        .last()
        .unwrap()
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(active_base >= 20, "{active_base}");
    let mut waited = 0;
    while log.recovery_point() < active_base && waited < 500 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        waited += 1;
    }
    assert_eq!(
        log.recovery_point(),
        active_base,
        "the recovery point follows the closed segments"
    );
    drop((log, manager)); // unclean stop
    let partition_dir = dir.path().join("t-0");

    // Force every segment to be rebuilt (no checkpoint: recovery point 0), then stop cleanly
    // and start again.
    let _ = std::fs::remove_file(dir.path().join("recovery-point-offset-checkpoint"));
    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    assert_eq!(log.recovery_point(), 30, "recovered data was fsynced");
    manager.shutdown().await.unwrap();
    drop((log, manager));
    let timeindexes = segment_files(&partition_dir, "timeindex");
    assert!(timeindexes.len() >= 10, "{timeindexes:?}");
    for closed in &timeindexes[..timeindexes.len() - 1] {
        assert_eq!(
            std::fs::metadata(closed).unwrap().len(),
            12,
            "one entry (the max timestamp) in {}",
            closed.display()
        );
    }
    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    for i in [0, 5, 17, 29] {
        assert_eq!(
            log.offset_for_timestamp(base_ts + 1000 * i).unwrap(),
            Some((i, base_ts + 1000 * i)),
            "lookup of record {i}'s timestamp"
        );
    }
    assert_eq!(log.max_timestamp().unwrap().1, base_ts + 29_000);
}

/// A failed fsync stops the partition: Linux marks the failed pages clean, so a later fsync
/// would "succeed" without writing them. Appends are refused with a storage error (nothing
/// acknowledged that is not durable), reads go on, the recovery point stays, no clean-shutdown
/// marker is written, and a restart recovers the log from disk and takes appends again.
#[tokio::test]
async fn a_failed_fsync_stops_appends_until_a_restart_recovers_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager.create_topic("t", 1, overrides(&[]), false).unwrap();
    let log = manager.partition("t", 0).unwrap();
    for _ in 0..3 {
        log.append(batch(2, 100), Durability::Fsync).await.unwrap();
    }
    assert_eq!(log.recovery_point(), 6);
    log.fail_next_fsync();
    let failed = log.append(batch(2, 100), Durability::Fsync).await;
    assert!(
        matches!(&failed, Err(e) if e.kafka_error_code() == 56),
        "{failed:?}"
    );
    for durability in [Durability::Written, Durability::Fsync] {
        let refused = log.append(batch(1, 100), durability).await;
        assert!(
            matches!(&refused, Err(e) if e.kafka_error_code() == 56 && e.to_string().contains("restart")),
            "{refused:?}"
        );
    }
    assert_eq!(
        log.recovery_point(),
        6,
        "nothing vouched durable after the failure"
    );
    assert_eq!(read_all(&log).last().unwrap().1, 7, "reads go on");
    assert!(manager.shutdown().await.is_err());
    drop((log, manager));
    assert!(!dir.path().join(".clean_shutdown").exists());

    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    let end = log.log_end_offset();
    assert!(end >= 6, "every acknowledged record is there: {end}");
    let next = log.append(batch(1, 100), Durability::Fsync).await.unwrap();
    assert_eq!(next.base_offset, end);
}

/// An offset-index entry whose offset was lowered (bit rot that keeps the entries increasing,
/// so the index still loads) must not make reads skip records: the batch at the entry's
/// position does not start at its offset, and the read falls back to a scan of the segment.
#[tokio::test]
async fn a_damaged_index_entry_never_makes_a_read_skip_records() {
    let dir = tempfile::tempdir().unwrap();
    let manager = open(dir.path()).await;
    manager
        .create_topic("t", 1, overrides(&[("index.interval.bytes", "1")]), false)
        .unwrap();
    let log = manager.partition("t", 0).unwrap();
    for _ in 0..10 {
        log.append(batch(2, 50), Durability::Written).await.unwrap();
    }
    manager.shutdown().await.unwrap();
    drop((log, manager));
    // Entries: (2, p1), (4, p2), (6, p3), ...: (6, p3) becomes (5, p3).
    let index = segment_files(&dir.path().join("t-0"), "index").remove(0);
    let mut bytes = std::fs::read(&index).unwrap();
    assert_eq!(u32::from_be_bytes(bytes[16..20].try_into().unwrap()), 6);
    bytes[16..20].copy_from_slice(&5u32.to_be_bytes());
    std::fs::write(&index, &bytes).unwrap();

    let manager = open(dir.path()).await;
    let log = manager.partition("t", 0).unwrap();
    let read = log.read(5, 1).unwrap();
    let first = BatchIter::new(read.records).next().unwrap();
    assert_eq!(
        (first.base_offset(), first.last_offset()),
        (4, 5),
        "the batch holding offset 5"
    );
    assert_eq!(read_all(&log).len(), 10);
}
