//! Tiered storage end to end, against the local-directory backend and a real S3 server: segments
//! roll, are uploaded, disappear locally; a new consumer group reads everything from offset 0
//! (from the bucket) byte for byte with confluent-kafka and kcat; ListOffsets -2/-4/-5 and
//! timestamp seeks reach into the remote range; `strata tier status` and `/metrics` show it;
//! a broker on an EMPTY data directory restores the topic from the bucket and serves the whole
//! history, then keeps producing after it.

use std::path::Path;
use std::time::{Duration, Instant};

use strata_tests::s3::S3Target;
use strata_tests::{
    Strata, StrataBuilder, Tool, assert_success, kcat, python, require, run_with_timeout,
    strata_bin,
};

const RECORDS: usize = 3000;
/// `records.py` BASE_TS.
const BASE_TS: i64 = 1_700_000_000_000;

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

pub fn create_tiered_topic(strata: &Strata, topic: &str) {
    client(&[
        "create",
        &strata.kafka_addr(),
        topic,
        "remote.storage.enable=true",
        "segment.bytes=20000",
        "local.retention.bytes=1",
        "retention.ms=-1",
    ]);
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

pub fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits until everything but the active segment was uploaded and deleted locally.
pub fn wait_tiered(strata: &Strata, topic: &str, last_offset: i64) {
    wait_tiered_within(strata, topic, last_offset, Duration::from_secs(90));
}

/// [`wait_tiered`] with an explicit limit.
pub fn wait_tiered_within(strata: &Strata, topic: &str, last_offset: i64, limit: Duration) {
    wait_until("segments are uploaded and gone locally", limit, || {
        let s = partition_status(strata, topic);
        s["highest_tiered_offset"].as_i64().unwrap_or(-1) >= last_offset - 200
            && s["upload_lag_bytes"].as_u64() == Some(0)
            && local_segments(strata.data_dir(), topic) <= 2
    });
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

fn scenario(remote: &str, env: &[(String, String)]) {
    let topic = "tiered-e2e";
    let mut strata = tiered_builder(remote, env).start();
    create_tiered_topic(&strata, topic);
    client(&[
        "produce",
        &strata.kafka_addr(),
        topic,
        &RECORDS.to_string(),
        "a",
    ]);
    wait_tiered(&strata, topic, RECORDS as i64 - 1);

    // ListOffsets: -2 is the remote log start, -4 the local one, -5 the last tiered offset.
    let local_start = list_offset(&strata, topic, -4);
    assert!(local_start > 1000, "local log start {local_start}");
    assert_eq!(list_offset(&strata, topic, -2), 0);
    let tiered = list_offset(&strata, topic, -5);
    assert!(
        tiered >= local_start - 1 && tiered < RECORDS as i64,
        "-5 = {tiered}, -4 = {local_start}"
    );
    assert_eq!(list_offset(&strata, topic, -1), RECORDS as i64);

    // A new consumer group reads everything from offset 0, byte for byte.
    let out = client(&[
        "consume",
        &strata.kafka_addr(),
        topic,
        &RECORDS.to_string(),
        "a",
        "new-group",
    ]);
    assert!(out.contains(&format!("OK consumed {RECORDS}")), "{out}");
    kcat_reads_everything(&strata, topic, RECORDS);
    // A timestamp in the remote range seeks there.
    let out = client(&[
        "seek",
        &strata.kafka_addr(),
        topic,
        &(BASE_TS + 500).to_string(),
    ]);
    assert!(out.contains("OK seek offset=500 "), "{out}");

    // Visibility: the CLI table and the metrics.
    let cli = run_with_timeout(
        std::process::Command::new(strata_bin()).args([
            "tier",
            "status",
            "--http",
            &strata.http_url(),
        ]),
        Duration::from_secs(30),
    );
    let table = assert_success(&cli, "strata tier status");
    assert!(
        table.contains(topic) && table.contains("REMOTE_BYTES"),
        "{table}"
    );
    let metrics = reqwest::blocking::get(format!("{}/metrics", strata.http_url()))
        .and_then(|r| r.text())
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "strata_tier_remote_bytes{{topic=\"{topic}\",partition=\"0\"}}"
        )),
        "{metrics}"
    );

    // Restore: a broker on an empty data directory, same bucket.
    strata.stop();
    let mut restored = tiered_builder(remote, env).start();
    // Everything the bucket holds (the old broker's active segment was never uploaded).
    let remote_records = (tiered + 1).to_string();
    let out = client(&[
        "consume",
        &restored.kafka_addr(),
        topic,
        &remote_records,
        "a",
        "after-restore",
    ]);
    assert!(
        out.contains(&format!("OK consumed {remote_records}")),
        "{out}\n{}",
        restored.logs()
    );
    assert_eq!(list_offset(&restored, topic, -2), 0);
    assert_eq!(list_offset(&restored, topic, -1), tiered + 1);
    // The restored log continues where the bucket ends; new records are served too.
    client(&["produce", &restored.kafka_addr(), topic, "200", "b"]);
    assert_eq!(list_offset(&restored, topic, -1), tiered + 1 + 200);
    restored.restart();
    assert_eq!(list_offset(&restored, topic, -2), 0);
    let out = client(&[
        "consume",
        &restored.kafka_addr(),
        topic,
        &remote_records,
        "a",
        "after-restart",
    ]);
    assert!(out.contains("OK consumed"), "{out}");
}

#[test]
fn tiering_local_directory_backend_round_trip_offsets_status_and_restore() {
    if !require(Tool::Python) || !require(Tool::Kcat) {
        return;
    }
    let remote_dir = tempfile::tempdir().unwrap();
    scenario(&format!("file://{}", remote_dir.path().display()), &[]);
}

#[test]
fn tiering_s3_backend_round_trip_offsets_status_and_restore() {
    if !require(Tool::Python) || !require(Tool::Kcat) {
        return;
    }
    let Some(s3) = S3Target::from_env() else {
        return;
    };
    scenario(&s3.unique_url("tiering-e2e"), &s3.env());
}
