//! Helpers shared by the `export_*` end-to-end tests (included with `#[path]`; as a test target
//! of its own it holds no tests).
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[allow(unused_imports)] // not every test binary that includes this file waits
pub use strata_tests::wait_until;
use strata_tests::{Strata, assert_success, kcat, run_with_timeout, strata_bin, venv_python};

/// Reads every Parquet file of an export with pyarrow; prints one JSON object per row
/// (bytes as hex) sorted by offset, plus the schema's type names.
pub const READ_PARQUET: &str = r#"
import json, sys, glob, os
import pyarrow.parquet as pq
rows = []
types = None
for path in sorted(glob.glob(os.path.join(sys.argv[1], "*.parquet"))):
    table = pq.read_table(path)
    types = {f.name: str(f.type) for f in table.schema}
    for r in table.to_pylist():
        rows.append({
            "topic": r["topic"], "partition": r["partition"], "offset": r["offset"],
            "ts_ms": int(round(r["timestamp"].timestamp() * 1000)), "ts_type": r["timestamp_type"],
            "key": None if r["key"] is None else r["key"].hex(),
            "value": None if r["value"] is None else r["value"].hex(),
            "headers": [[h["key"], None if h["value"] is None else h["value"].hex()] for h in r["headers"]],
            "claim": r["claim"],
        })
rows.sort(key=lambda r: (r["partition"], r["offset"]))
print(json.dumps({"types": types, "rows": rows}))
"#;

pub fn read_parquet(dir: &Path) -> serde_json::Value {
    let out = run_with_timeout(
        Command::new(venv_python())
            .args(["-c", READ_PARQUET])
            .arg(dir),
        Duration::from_secs(120),
    );
    let text = assert_success(&out, "pyarrow read");
    serde_json::from_str(&text).expect("pyarrow output is JSON")
}

pub fn strata_export(args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(strata_bin()).arg("export").args(args),
        Duration::from_secs(120),
    )
}

pub fn key(i: usize) -> String {
    format!("key-{i}")
}

/// Values with bytes a text pipeline would mangle (no newline: kcat splits lines).
pub fn value(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.extend((0..(i % 40) as u8).map(|b| b.wrapping_mul(37).wrapping_add(128)));
    v.retain(|b| *b != b'\n');
    v
}

/// kcat batches of at most 8 kB, so that they fit small test segments.
pub fn produce(strata: &Strata, topic: &str, range: std::ops::Range<usize>, codec: &str) {
    let mut input = Vec::new();
    for i in range {
        input.extend(key(i).as_bytes());
        input.push(b'\t');
        input.extend(value(i));
        input.push(b'\n');
    }
    produce_lines(
        strata,
        topic,
        &input,
        &[
            "-z",
            codec,
            "-H",
            "origin=export-test",
            "-X",
            "batch.size=8000",
        ],
    );
}

/// kcat produces `key\tvalue\n` lines to partition 0 of `topic`, with `extra` kcat flags.
pub fn produce_lines(strata: &Strata, topic: &str, lines: &[u8], extra: &[&str]) {
    let addr = strata.kafka_addr();
    let mut args = vec!["-b", &addr, "-P", "-t", topic, "-p", "0", "-K", "\t"];
    args.extend_from_slice(extra);
    let out = kcat(&args, lines);
    assert_success(&out, &format!("kcat produce to {topic} {extra:?}"));
}

pub fn check_rows(doc: &serde_json::Value, topic: &str, from: usize, to: usize) {
    let rows = doc["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), to - from + 1, "exported row count");
    for (row, i) in rows.iter().zip(from..=to) {
        assert_eq!(row["topic"], topic);
        assert_eq!(row["partition"], 0);
        assert_eq!(row["offset"], i as i64);
        assert_eq!(row["ts_type"], "CreateTime");
        assert_eq!(row["key"], hex(key(i).as_bytes()), "key at offset {i}");
        assert_eq!(row["value"], hex(&value(i)), "value at offset {i}");
        assert_eq!(
            row["headers"],
            serde_json::json!([["origin", hex(b"export-test")]]),
            "headers at offset {i}"
        );
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn flip_one_byte(dir: &Path) {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a parquet file");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&file, bytes).unwrap();
}

/// The base offset of the partition's first local segment.
pub fn first_local_offset(data_dir: &Path, topic: &str) -> i64 {
    std::fs::read_dir(data_dir.join(format!("{topic}-0")))
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_suffix(".log")?.parse::<i64>().ok()
                })
                .min()
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("HTTP client")
}

/// `POST /v1/exports`; returns (status, body).
pub fn post_export(strata: &Strata, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = http()
        .post(format!("{}/v1/exports", strata.http_url()))
        .json(&body)
        .send()
        .expect("POST /v1/exports");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(serde_json::Value::Null))
}

/// `DELETE /v1/exports/{id}`; returns (status, body).
pub fn delete_export(strata: &Strata, id: &str) -> (u16, serde_json::Value) {
    let response = http()
        .delete(format!("{}/v1/exports/{id}", strata.http_url()))
        .send()
        .expect("DELETE /v1/exports/{id}");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(serde_json::Value::Null))
}

/// `GET /v1/exports/{id}`; returns (status, body).
pub fn get_export(strata: &Strata, id: &str) -> (u16, serde_json::Value) {
    let response = http()
        .get(format!("{}/v1/exports/{id}", strata.http_url()))
        .send()
        .expect("GET /v1/exports/{id}");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(serde_json::Value::Null))
}

/// Polls `GET /v1/exports/{id}` until the job is no longer running; returns its last status.
pub fn wait_for_job(strata: &Strata, id: &str, limit: Duration) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let response = http()
            .get(format!("{}/v1/exports/{id}", strata.http_url()))
            .send()
            .expect("GET /v1/exports/{id}");
        assert_eq!(response.status().as_u16(), 200);
        let status: serde_json::Value = response.json().expect("job status JSON");
        if status["state"] != "running" {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "export job still running: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every record's (offset, timestamp ms) as a Kafka consumer (kcat) sees it, from offset 0.
pub fn consumed_timestamps(strata: &Strata, topic: &str) -> Vec<(i64, i64)> {
    let out = kcat(
        &[
            "-C",
            "-b",
            &strata.kafka_addr(),
            "-t",
            topic,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%o %T\n",
        ],
        b"",
    );
    assert_success(&out, "kcat -C timestamps")
        .lines()
        .map(|l| {
            let (o, t) = l.split_once(' ').expect("offset timestamp");
            (o.parse().unwrap(), t.parse().unwrap())
        })
        .collect()
}

/// The Parquet rows' timestamps equal what a consumer reads.
pub fn check_timestamps(doc: &serde_json::Value, consumed: &[(i64, i64)]) {
    let rows = doc["rows"].as_array().expect("rows");
    for row in rows {
        let offset = row["offset"].as_i64().unwrap();
        let want = consumed
            .iter()
            .find(|(o, _)| *o == offset)
            .unwrap_or_else(|| panic!("offset {offset} not consumed"));
        assert_eq!(row["ts_ms"].as_i64(), Some(want.1), "timestamp at {offset}");
    }
}

/// A tiered topic (20 kB segments) with `records` records produced, once its early segments
/// have left local disk; returns the first offset still local.
pub fn produce_mostly_remote(strata: &Strata, topic: &str, records: usize) -> i64 {
    strata_tests::create_tiered_topic(strata, topic, 20000);
    produce(strata, topic, 0..records, "none");
    let data_dir = strata.data_dir().to_path_buf();
    wait_until(
        "early segments leave local disk",
        Duration::from_secs(90),
        || first_local_offset(&data_dir, topic) > 400,
    );
    first_local_offset(&data_dir, topic)
}
