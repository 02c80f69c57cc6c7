//! `strata export` end to end: produce with kcat to a real broker, stop it, export a range to
//! Parquet, read the files with pyarrow and compare offsets, keys, values and headers byte for
//! byte; `strata export verify` passes, then fails after one byte of a file is flipped. A second
//! test exports a range that lives only in the remote tier (local-directory bucket).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use strata_tests::{
    Strata, Tool, assert_success, kcat, python, require, run_with_timeout, strata_bin, venv_python,
};

/// Reads every Parquet file of an export with pyarrow; prints one JSON object per row
/// (bytes as hex) sorted by offset, plus the schema's type names.
const READ_PARQUET: &str = r#"
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
            "ts_ms": int(r["timestamp"].timestamp() * 1000), "ts_type": r["timestamp_type"],
            "key": None if r["key"] is None else r["key"].hex(),
            "value": None if r["value"] is None else r["value"].hex(),
            "headers": [[h["key"], None if h["value"] is None else h["value"].hex()] for h in r["headers"]],
        })
rows.sort(key=lambda r: (r["partition"], r["offset"]))
print(json.dumps({"types": types, "rows": rows}))
"#;

fn read_parquet(dir: &Path) -> serde_json::Value {
    let out = run_with_timeout(
        Command::new(venv_python())
            .args(["-c", READ_PARQUET])
            .arg(dir),
        Duration::from_secs(120),
    );
    let text = assert_success(&out, "pyarrow read");
    serde_json::from_str(&text).expect("pyarrow output is JSON")
}

fn strata_export(args: &[&str]) -> Output {
    run_with_timeout(
        Command::new(strata_bin()).arg("export").args(args),
        Duration::from_secs(120),
    )
}

fn key(i: usize) -> String {
    format!("key-{i}")
}

/// Values with bytes a text pipeline would mangle (no newline: kcat splits lines).
fn value(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}-").into_bytes();
    v.extend((0..(i % 40) as u8).map(|b| b.wrapping_mul(37).wrapping_add(128)));
    v.retain(|b| *b != b'\n');
    v
}

/// kcat batches of at most 8 kB, so that they fit small test segments.
fn produce(strata: &Strata, topic: &str, range: std::ops::Range<usize>, codec: &str) {
    let mut input = Vec::new();
    for i in range {
        input.extend(key(i).as_bytes());
        input.push(b'\t');
        input.extend(value(i));
        input.push(b'\n');
    }
    let out = kcat(
        &[
            "-b",
            &strata.kafka_addr(),
            "-P",
            "-t",
            topic,
            "-p",
            "0",
            "-K",
            "\t",
            "-z",
            codec,
            "-H",
            "origin=export-test",
            "-X",
            "batch.size=8000",
        ],
        &input,
    );
    assert_success(&out, &format!("kcat produce ({codec})"));
}

fn check_rows(doc: &serde_json::Value, topic: &str, from: usize, to: usize) {
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn flip_one_byte(dir: &Path) {
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

#[test]
fn export_local_range_reads_back_byte_for_byte_and_verify_catches_corruption() {
    if !require(Tool::Kcat) {
        return;
    }
    let mut strata = Strata::start();
    let topic = "audit";
    produce(&strata, topic, 0..300, "none");
    produce(&strata, topic, 300..600, "zstd");
    strata.stop();
    let data = strata.data_dir().to_str().unwrap().to_string();
    let temp = tempfile::tempdir().unwrap();

    // A range outside the log names the log's actual range, and writes nothing.
    let bad_out = temp.path().join("bad");
    let out = strata_export(&[
        "--data-dir",
        &data,
        "--topic",
        topic,
        "--from-offset",
        "100",
        "--to-offset",
        "5000",
        "--out",
        bad_out.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("[0, 600)"), "{stderr}");
    assert!(!bad_out.join("manifest.json").exists());

    // An unwritable destination fails before reading.
    let blocker = temp.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let out = strata_export(&[
        "--data-dir",
        &data,
        "--topic",
        topic,
        "--from-offset",
        "0",
        "--to-offset",
        "1",
        "--out",
        blocker.join("sub").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("a-file"));

    // A range across both produce calls (uncompressed and zstd batches).
    let export_dir = temp.path().join("export");
    let out = strata_export(&[
        "--data-dir",
        &data,
        "--topic",
        topic,
        "--partitions",
        "0",
        "--from-offset",
        "250",
        "--to-offset",
        "449",
        "--out",
        export_dir.to_str().unwrap(),
    ]);
    assert_success(&out, "strata export");
    let doc = read_parquet(&export_dir);
    assert_eq!(doc["types"]["timestamp"], "timestamp[ms, tz=UTC]");
    assert_eq!(
        doc["types"]["headers"],
        "list<item: struct<key: string not null, value: binary> not null>"
    );
    check_rows(&doc, topic, 250, 449);

    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export_dir.join("manifest.json")).unwrap()).unwrap();
    let file = &manifest["files"][0];
    assert_eq!(file["first_offset"], 250);
    assert_eq!(file["last_offset"], 449);
    assert_eq!(file["records"], 200);
    assert_eq!(file["sha256"].as_str().map(str::len), Some(64));

    assert_success(
        &strata_export(&["verify", export_dir.to_str().unwrap()]),
        "strata export verify",
    );
    flip_one_byte(&export_dir);
    let out = strata_export(&["verify", export_dir.to_str().unwrap()]);
    assert!(!out.status.success(), "verify passed a corrupted file");
    assert!(String::from_utf8_lossy(&out.stderr).contains("MISMATCH"));

    // Time bounds: everything was produced between these two instants.
    let by_time = temp.path().join("by-time");
    let out = strata_export(&[
        "--data-dir",
        &data,
        "--topic",
        topic,
        "--from-time",
        "2000-01-01T00:00:00Z",
        "--to-time",
        "2100-01-01T00:00:00Z",
        "--out",
        by_time.to_str().unwrap(),
    ]);
    assert_success(&out, "strata export by time");
    check_rows(&read_parquet(&by_time), topic, 0, 599);

    // The broker still starts on the data directory the export opened.
    strata.restart();
    let out = kcat(
        &[
            "-C",
            "-b",
            &strata.kafka_addr(),
            "-t",
            topic,
            "-o",
            "599",
            "-c",
            "1",
            "-e",
            "-q",
            "-f",
            "%k",
        ],
        b"",
    );
    assert_eq!(assert_success(&out, "kcat -C after export"), key(599));
}

/// Waits until the partition's segments below `offset` are gone from local disk.
fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn first_local_offset(data_dir: &Path, topic: &str) -> i64 {
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

#[test]
fn export_reads_a_range_only_the_remote_tier_holds() {
    if !require(Tool::Kcat) || !require(Tool::Python) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let bucket = temp.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let remote = format!("file://{}", bucket.display());
    let mut strata = Strata::builder()
        .set("log.retention.check.interval.ms", "500")
        .set("remote.log.manager.task.interval.ms", "1000")
        .arg("--remote")
        .arg(&remote)
        .start();
    let topic = "audit-tiered";
    let out = python(
        "tiering_client.py",
        &[
            "create",
            &strata.kafka_addr(),
            topic,
            "remote.storage.enable=true",
            "segment.bytes=20000",
            "local.retention.bytes=1",
            "retention.ms=-1",
        ],
    );
    assert_success(&out, "create tiered topic");
    produce(&strata, topic, 0..1500, "none");
    let data_dir = strata.data_dir().to_path_buf();
    wait_until(
        "early segments leave local disk",
        Duration::from_secs(90),
        || first_local_offset(&data_dir, topic) > 400,
    );
    strata.stop();
    let local_start = first_local_offset(&data_dir, topic);
    assert!(local_start > 400, "local log starts at {local_start}");

    // Without the remote tier, the range is outside what the data directory holds.
    let out = strata_export(&[
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--topic",
        topic,
        "--from-offset",
        "10",
        "--to-offset",
        "20",
        "--out",
        temp.path().join("no-remote").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("[{local_start}, ")), "{stderr}");

    let export_dir = temp.path().join("export");
    let out = strata_export(&[
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--remote",
        &remote,
        "--topic",
        topic,
        "--from-offset",
        "10",
        "--to-offset",
        &(local_start + 50).to_string(),
        "--out",
        export_dir.to_str().unwrap(),
    ]);
    assert_success(&out, "strata export (remote range)");
    let doc = read_parquet(&export_dir);
    check_rows(&doc, topic, 10, local_start as usize + 50);
    assert_success(
        &strata_export(&["verify", export_dir.to_str().unwrap()]),
        "strata export verify",
    );
}
