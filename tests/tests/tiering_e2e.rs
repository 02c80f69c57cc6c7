//! Tiered storage end to end, against the local-directory backend and a real S3 server: segments
//! roll, are uploaded, disappear locally; a new consumer group reads everything from offset 0
//! (from the bucket) byte for byte with confluent-kafka and kcat; ListOffsets -2/-4/-5 and
//! timestamp seeks reach into the remote range; `strata tier status` and `/metrics` show it;
//! a broker on an EMPTY data directory restores the topic from the bucket and serves the whole
//! history, then keeps producing after it.

#[path = "tiering_support.rs"]
mod support;

use std::time::{Duration, Instant};

use strata_tests::s3::S3Target;
use strata_tests::{
    Tool, assert_success, create_tiered_topic, metric_value, require, run_with_timeout, strata_bin,
    wait_until,
};
use support::{
    BASE_TS, client, consume_checked, kcat_reads_everything, list_offset, partition_status,
    tiered_builder, wait_tiered,
};

const RECORDS: usize = 3000;
/// `remote.log.chunk.cache.memory.bytes` of the round-trip scenario.
const CACHE_BYTES: u64 = 8 << 20;

/// The value of the sample `name` (with its labels) in a Prometheus text exposition.
fn scenario(remote: &str, env: &[(String, String)]) {
    let topic = "tiered-e2e";
    let mut strata = tiered_builder(remote, env)
        .set(
            "remote.log.chunk.cache.memory.bytes",
            &CACHE_BYTES.to_string(),
        )
        .start();
    create_tiered_topic(&strata, topic, 20000);
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
    // DescribeLogDirs counts local disk only, as in Kafka with KIP-405: once local retention
    // removed the uploaded segments, the partition takes at most about two segments (the active
    // one and one closed segment awaiting the next retention check) of the whole log's
    // 3000 records of at least 40 bytes each.
    let local_bytes = || -> u64 {
        let out = strata_tests::python(
            "kafka_python_log_dirs.py",
            &[&strata.kafka_addr(), topic, "-", "size"],
        );
        let text = assert_success(&out, "kafka_python_log_dirs.py size");
        text.trim().strip_prefix("SIZE ").unwrap().parse().unwrap()
    };
    wait_until(
        "DescribeLogDirs to report only the local part",
        Duration::from_secs(60),
        || {
            let size = local_bytes();
            size > 0 && size <= 2 * 20000
        },
    );

    // A new consumer group reads everything from offset 0, byte for byte.
    consume_checked(&strata.kafka_addr(), topic, RECORDS, "a", "new-group", 0);
    kcat_reads_everything(&strata, topic, RECORDS);
    // A timestamp in the remote range seeks there.
    let out = client(&[
        "seek",
        &strata.kafka_addr(),
        topic,
        &(BASE_TS + 500).to_string(),
    ]);
    assert!(out.contains("OK seek offset=500 "), "{out}");

    // Visibility: the CLI table and the metrics. `--http` takes the listener's `host:port` as
    // `--http-listen` does.
    let cli = run_with_timeout(
        std::process::Command::new(strata_bin()).args([
            "tier",
            "status",
            "--http",
            strata.http_url().trim_start_matches("http://"),
        ]),
        Duration::from_secs(30),
    );
    let table = assert_success(&cli, "strata tier status");
    assert!(
        table.contains(topic) && table.contains("REMOTE_BYTES"),
        "{table}"
    );
    // Read before the metrics: bytes encoded only grow, ahead of the manifest.
    let remote_bytes = partition_status(&strata, topic)["remote_bytes"]
        .as_f64()
        .unwrap();
    let metrics = strata.metrics();
    assert!(
        metrics.contains(&format!(
            "strata_tier_remote_bytes{{topic=\"{topic}\",partition=\"0\"}}"
        )),
        "{metrics}"
    );
    // The cold reads above went through the chunk cache: downloads, and chunks held in memory
    // within the configured budget.
    assert!(
        metric_value(&metrics, "strata_tier_chunk_downloads_total") >= 1.0,
        "{metrics}"
    );
    let held = metric_value(&metrics, "strata_tier_chunk_cache_bytes{tier=\"memory\"}");
    assert!(held > 0.0 && held <= CACHE_BYTES as f64, "{metrics}");
    // Every uploaded segment byte went through an encoder. The backlog never came near its
    // 2 GiB default, so where the broker may use idle CPU priority (root: CI) all ran idle.
    let encoded = |priority: &str| {
        metric_value(
            &metrics,
            &format!("strata_tier_encoded_bytes_total{{priority=\"{priority}\"}}"),
        )
    };
    let (idle, catch_up) = (encoded("idle"), encoded("catch_up"));
    assert!(
        idle + catch_up >= remote_bytes,
        "{remote_bytes} uploaded: {metrics}"
    );
    if running_as_root() {
        assert_eq!(catch_up, 0.0, "{metrics}");
    }

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
    consume_checked(
        &restored.kafka_addr(),
        topic,
        (tiered + 1) as usize,
        "a",
        "after-restart",
        0,
    );
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

/// `remote.log.manager.fetch.max.bytes.per.second` (dynamic, KIP-956), set with
/// IncrementalAlterConfigs: it survives a restart, paces a cold replay while produce and fetch
/// of a hot topic go on unhindered, shows in `/metrics`, and lifting it live lets the replay
/// finish; the replay is byte for byte what was produced.
#[test]
fn fetch_quota_paces_cold_reads_only_and_changes_live() {
    if !require(Tool::Python) {
        return;
    }
    let topic = "quota-cold";
    let remote_dir = tempfile::tempdir().unwrap();
    let remote = format!("file://{}", remote_dir.path().display());
    // Chunks stored as is: the quota is charged on stored bytes, so this makes the remote
    // bytes below what a full replay downloads.
    let mut strata = tiered_builder(&remote, &[])
        .set("remote.log.chunk.compression", "none")
        .start();
    create_tiered_topic(&strata, topic, 20000);
    client(&[
        "produce",
        &strata.kafka_addr(),
        topic,
        &RECORDS.to_string(),
        "q",
    ]);
    wait_tiered(&strata, topic, RECORDS as i64 - 1);
    let remote_bytes = partition_status(&strata, topic)["remote_bytes"]
        .as_u64()
        .unwrap();
    // A replay takes at least 19 s at this rate (one second of burst, then the rest); without
    // the quota it takes well under a second.
    let quota = (remote_bytes / 20).to_string();
    let key = "remote.log.manager.fetch.max.bytes.per.second";
    client(&[
        "broker-config",
        &strata.kafka_addr(),
        "-",
        &format!("{key}={quota}"),
    ]);
    // From the persisted dynamic config at start, with empty chunk caches.
    strata.restart();

    let bootstrap = strata.kafka_addr();
    let started = Instant::now();
    let replay = std::thread::spawn(move || {
        let out = consume_checked(&bootstrap, topic, RECORDS, "q", "quota-replay", 0);
        (out, started.elapsed())
    });
    // Hot traffic while the replay is throttled: produce and read back a topic that is local.
    client(&["produce", &strata.kafka_addr(), "quota-hot", "50", "h"]);
    consume_checked(
        &strata.kafka_addr(),
        "quota-hot",
        50,
        "h",
        "quota-hot-group",
        0,
    );
    let hot_done = started.elapsed();
    // Unthrottled, the replay would be over by now (it takes well under a second).
    std::thread::sleep(Duration::from_secs(5).saturating_sub(hot_done));
    assert!(
        !replay.is_finished(),
        "the cold replay finished within {:?} despite a quota of {quota} B/s for {remote_bytes} bytes",
        started.elapsed()
    );
    let metrics = strata.metrics();
    let throttled = metric_value(&metrics, "strata_tier_fetch_throttle_seconds_total");
    assert!(throttled > 0.0, "{metrics}");

    // Lifted live: the waiting replay goes on at full speed.
    client(&[
        "broker-config",
        &strata.kafka_addr(),
        "-",
        &format!("{key}="),
    ]);
    let (out, took) = replay.join().unwrap();
    assert!(out.contains(&format!("OK consumed {RECORDS}")), "{out}");
    eprintln!(
        "{remote_bytes} remote bytes at {quota} B/s: hot traffic done after {hot_done:?}, \
         quota lifted after 5 s, replay done after {took:?} ({throttled:.1} s throttled)"
    );
    assert!(
        took < Duration::from_secs(17),
        "the replay took {took:?}, the quota was lifted after 5 s: the change did not apply live"
    );
}

fn running_as_root() -> bool {
    let id = std::process::Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&id.stdout).trim() == "0"
}
