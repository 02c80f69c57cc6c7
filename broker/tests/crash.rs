//! Crash test: a child process (this test binary re-executed with `STRATA_CRASH_CHILD` set)
//! appends with `Durability::Fsync` from several tasks and prints every acknowledged batch; the
//! parent SIGKILLs it at a random moment, reopens the log (running recovery) and checks that
//! every acknowledged batch is present byte for byte, offsets are dense, and nothing is duplicated.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_broker::log::{Durability, LogManager, LogManagerConfig};
use strata_format::testing::BatchBuilder;
use strata_format::{BatchIter, RecordBatch};

const CHILD_ENV: &str = "STRATA_CRASH_CHILD";
const TOPIC: &str = "crash";
const ITERATIONS: usize = 50;

/// A batch whose single record's value starts with a unique id, so duplicates are detectable.
fn batch(id: u64, size: usize) -> Bytes {
    let mut value = id.to_be_bytes().to_vec();
    value.resize(size.max(8), (id % 251) as u8);
    BatchBuilder::new().value(value).build()
}

/// Checksum of everything the log must keep unchanged (all but the base offset).
fn stored_checksum(batch: &[u8]) -> u32 {
    strata_format::crc32c(&batch[8..])
}

/// The child role: runs only when re-executed by `crash_recovery_keeps_every_acknowledged_batch`.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let seed: u64 = std::env::var("STRATA_CRASH_SEED").unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let manager = LogManager::open(LogManagerConfig::new(&dir)).await.unwrap();
        if manager.topic(TOPIC).is_none() {
            let overrides = BTreeMap::from([
                ("segment.bytes".to_string(), "65536".to_string()),
                ("index.interval.bytes".to_string(), "1024".to_string()),
            ]);
            manager.create_topic(TOPIC, 1, overrides, false).unwrap();
        }
        let log = manager.partition(TOPIC, 0).unwrap();
        println!("READY");
        let mut writers = Vec::new();
        for writer in 0..4u64 {
            let log = log.clone();
            writers.push(tokio::spawn(async move {
                for n in 0u64.. {
                    let id = (seed << 32) | (writer << 24) | n;
                    let size = 50 + ((id.wrapping_mul(2654435761)) % 3000) as usize;
                    let records = batch(id, size);
                    let checksum = stored_checksum(&records);
                    let result = log.append(records, Durability::Fsync).await.unwrap();
                    println!(
                        "ACK {} {} {checksum}",
                        result.base_offset, result.last_offset
                    );
                }
            }));
        }
        for writer in writers {
            writer.await.unwrap();
        }
    });
}

#[test]
fn crash_recovery_keeps_every_acknowledged_batch() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let started = Instant::now();
    let mut acknowledged: BTreeMap<i64, (i64, u32)> = BTreeMap::new();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for iteration in 0..ITERATIONS {
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("STRATA_CRASH_SEED", iteration.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        // Kill at a random moment: sometimes during startup/recovery, mostly mid-append.
        let delay = rand::random_range(20..250u64);
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for line in reader.join().unwrap() {
            if let Some(rest) = line.strip_prefix("ACK ") {
                let fields: Vec<i64> = rest.split(' ').map(|f| f.parse().unwrap()).collect();
                let previous = acknowledged.insert(fields[0], (fields[1], fields[2] as u32));
                assert!(
                    previous.is_none(),
                    "offset {} acknowledged twice",
                    fields[0]
                );
            }
        }
        // Reopen (runs recovery) and verify everything acknowledged so far.
        runtime.block_on(async {
            let manager = LogManager::open(LogManagerConfig::new(dir.path()))
                .await
                .unwrap();
            let Some(log) = manager.partition(TOPIC, 0) else {
                assert!(acknowledged.is_empty(), "topic lost after acknowledgements");
                return;
            };
            let mut offset = log.log_start_offset();
            let mut ids = HashSet::new();
            let mut found: BTreeMap<i64, (i64, u32)> = BTreeMap::new();
            while offset < log.log_end_offset() {
                let read = log.read(offset, 1 << 20).unwrap();
                assert!(
                    !read.records.is_empty(),
                    "empty read at {offset} below log end {}",
                    log.log_end_offset()
                );
                for batch in BatchIter::new(read.records.clone()) {
                    batch.validate().unwrap();
                    assert_eq!(batch.base_offset(), offset, "gap or overlap in offsets");
                    let value = RecordBatch::new(batch.as_bytes().clone()).unwrap();
                    let mut bytes = value.as_bytes().clone();
                    let decoded =
                        kafka_protocol::records::RecordBatchDecoder::decode(&mut bytes).unwrap();
                    let id = u64::from_be_bytes(
                        decoded.records[0].value.as_ref().unwrap()[..8]
                            .try_into()
                            .unwrap(),
                    );
                    assert!(ids.insert(id), "record {id} stored twice");
                    found.insert(
                        batch.base_offset(),
                        (batch.last_offset(), stored_checksum(batch.as_bytes())),
                    );
                    offset = batch.next_offset();
                }
            }
            for (base, expected) in &acknowledged {
                assert_eq!(
                    found.get(base),
                    Some(expected),
                    "acknowledged batch at {base} lost or changed (iteration {iteration})"
                );
            }
            if iteration % 5 == 4 {
                manager.shutdown().await.unwrap(); // exercise the clean path too
            }
        });
    }
    assert!(
        acknowledged.len() > 100,
        "too few acknowledgements to mean anything: {}",
        acknowledged.len()
    );
    eprintln!(
        "{ITERATIONS} crashes, {} acknowledged batches verified in {:?}",
        acknowledged.len(),
        started.elapsed()
    );
}
