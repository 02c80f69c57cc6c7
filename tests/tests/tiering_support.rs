//! Helpers shared by the `tiering_*` end-to-end tests (included with `#[path]`; as a test target
//! of its own it holds no tests).
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

#[allow(unused_imports)] // not every test binary that includes this file waits
pub use strata_tests::wait_until;
use strata_tests::{Strata, StrataBuilder, assert_success, kcat, python};

/// `records.py` BASE_TS.
pub const BASE_TS: i64 = 1_700_000_000_000;

pub fn tiered_builder(remote: &str, env: &[(String, String)]) -> StrataBuilder {
    let mut builder = Strata::builder()
        .set("group.initial.rebalance.delay.ms", "0")
        .set("log.retention.check.interval.ms", "500")
        .set("remote.log.manager.task.interval.ms", "1000")
        .arg("--remote")
        .arg(remote);
    for (k, v) in env {
        builder = builder.env(k, v);
    }
    builder
}

pub fn client(args: &[&str]) -> String {
    let out = python("tiering_client.py", args);
    assert_success(&out, &format!("tiering_client.py {}", args.join(" ")))
}

/// A new consumer group (confluent-kafka) reads `n` records produced with `tag` from offset
/// `first`; `tiering_client.py consume` checks them byte for byte. Returns its output.
pub fn consume_checked(
    bootstrap: &str,
    topic: &str,
    n: usize,
    tag: &str,
    group: &str,
    first: i64,
) -> String {
    let out = client(&[
        "consume",
        bootstrap,
        topic,
        &n.to_string(),
        tag,
        group,
        &first.to_string(),
    ]);
    assert!(out.contains(&format!("OK consumed {n} ")), "{out}");
    out
}

pub fn tier_status(strata: &Strata) -> serde_json::Value {
    reqwest::blocking::get(format!("{}/v1/tier/status", strata.http_url()))
        .and_then(|r| r.json())
        .unwrap_or(serde_json::Value::Null)
}

pub fn partition_status(strata: &Strata, topic: &str) -> serde_json::Value {
    tier_status(strata)["partitions"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["topic"] == topic).cloned())
        .unwrap_or(serde_json::Value::Null)
}

/// `.log` files (live segments) in the partition directory.
pub fn local_segments(data_dir: &Path, topic: &str) -> usize {
    std::fs::read_dir(data_dir.join(format!("{topic}-0")))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
                .count()
        })
        .unwrap_or(0)
}

/// Base offset of the active segment: the highest-named `.log` file in the partition directory.
pub fn active_segment_base(data_dir: &Path, topic: &str) -> Option<i64> {
    std::fs::read_dir(data_dir.join(format!("{topic}-0")))
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".log")?.parse::<i64>().ok()
        })
        .max()
}

/// A tiered topic with 20000-byte segments, `records` records produced with `tag` (as
/// `tiering_client.py produce` writes them), and every closed segment uploaded ([`wait_tiered`]).
pub fn tiered_topic_with_records(strata: &Strata, topic: &str, records: i64, tag: &str) {
    strata_tests::create_tiered_topic(strata, topic, 20000);
    client(&[
        "produce",
        &strata.kafka_addr(),
        topic,
        &records.to_string(),
        tag,
    ]);
    wait_tiered(strata, topic, records - 1);
}

/// Waits until everything but the active segment was uploaded and deleted locally: the remote
/// tier ends right before the active segment, nothing waits for upload, and at most one closed
/// segment is still on disk. `last_offset`, the last offset produced, must lie beyond the first
/// segment. (The active segment's size depends on how the producer batched, so the remote tier's
/// end is read from the partition directory, not guessed from `last_offset`.)
pub fn wait_tiered(strata: &Strata, topic: &str, last_offset: i64) {
    wait_tiered_within(strata, topic, last_offset, Duration::from_secs(90));
}

/// [`wait_tiered`] with an explicit limit.
pub fn wait_tiered_within(strata: &Strata, topic: &str, last_offset: i64, limit: Duration) {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let s = partition_status(strata, topic);
        let local = local_segments(strata.data_dir(), topic);
        let active_base = active_segment_base(strata.data_dir(), topic).unwrap_or(0);
        let highest_tiered = s["highest_tiered_offset"].as_i64().unwrap_or(-1);
        if active_base > 0
            && active_base <= last_offset
            && highest_tiered + 1 >= active_base
            && s["upload_lag_bytes"].as_u64() == Some(0)
            && local <= 2
        {
            return;
        }
        if std::time::Instant::now() >= deadline {
            let logs = strata.logs();
            let tail: Vec<&str> = logs.lines().rev().take(60).collect();
            panic!(
                "timed out after {limit:?} waiting until {topic} up to offset {last_offset} is \
                 uploaded and gone locally: {local} local segments, the active one from offset \
                 {active_base}, status {s}\nbroker log tail:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn list_offset(strata: &Strata, topic: &str, spec: i64) -> i64 {
    let out = kcat(
        &[
            "-Q",
            "-b",
            &strata.kafka_addr(),
            "-t",
            &format!("{topic}:0:{spec}"),
        ],
        b"",
    );
    let text = assert_success(&out, "kcat -Q");
    text.trim()
        .rsplit(' ')
        .next()
        .and_then(|o| o.parse().ok())
        .unwrap_or_else(|| panic!("no offset in {text:?}"))
}

/// kcat, a new consumer from the beginning: offsets 0..n and timestamps in order.
pub fn kcat_reads_everything(strata: &Strata, topic: &str, n: usize) {
    let out = kcat(
        &[
            "-C",
            "-b",
            &strata.kafka_addr(),
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%o %T\n",
        ],
        b"",
    );
    let text = assert_success(&out, "kcat -C");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), n, "kcat read {} records", lines.len());
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            format!("{i} {}", BASE_TS + i as i64),
            "kcat record {i}"
        );
    }
}
