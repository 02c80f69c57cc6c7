//! `strata export` end to end: produce with kcat to a real broker, stop it, export a range to
//! Parquet, read the files with pyarrow and compare offsets, keys, values and headers byte for
//! byte; `strata export verify` passes, then fails after one byte of a file is flipped. A second
//! test exports a range that lives only in the remote tier (local-directory bucket).

#[path = "export_support.rs"]
mod support;

use std::time::Duration;

use strata_tests::{Strata, Tool, assert_success, kcat, require};
use support::*;

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

    // Offsets 0..=1 to `out`, with `extra` flags.
    let export_first_two = |out: &std::path::Path, extra: &[&str]| {
        let range = ["--from-offset", "0", "--to-offset", "1"];
        let flags = [
            "--data-dir",
            &data,
            "--topic",
            topic,
            "--out",
            out.to_str().unwrap(),
        ];
        strata_export(&[&flags[..], &range, extra].concat())
    };

    // An unwritable destination fails before reading.
    let blocker = temp.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let out = export_first_two(&blocker.join("sub"), &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("a-file"));

    // A zstd level zstd does not have names the range, and creates nothing.
    let bad_level = temp.path().join("bad-level");
    let out = export_first_two(&bad_level, &["--zstd-level", "99"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("zstd level 99 is out of range"), "{stderr}");
    assert!(!bad_level.exists());

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
        // Negative levels parse as levels, not flags.
        "--zstd-level",
        "-1",
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
    // A Parquet file the manifest does not list is named (a reader would take it along).
    let stray = export_dir.join("audit-p00000-00000000000000000450.parquet");
    let first = file["file"].as_str().unwrap();
    std::fs::copy(export_dir.join(first), &stray).unwrap();
    let out = strata_export(&["verify", export_dir.to_str().unwrap()]);
    assert!(!out.status.success(), "verify passed a stray file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("MISMATCH audit-p00000-00000000000000000450.parquet: not in the manifest"),
        "{stderr}"
    );
    std::fs::remove_file(&stray).unwrap();

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
    produce_mostly_remote(&strata, topic, 1500);
    let data_dir = strata.data_dir().to_path_buf();
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

#[test]
fn export_stops_at_the_delete_records_point_though_the_remote_tier_still_holds_older_records() {
    if !require(Tool::Kcat) || !require(Tool::Python) {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let bucket = temp.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let remote = format!("file://{}", bucket.display());
    // No remote retention pass during the test: the bucket keeps what DeleteRecords deleted.
    let mut strata = Strata::builder()
        .set("log.retention.check.interval.ms", "500")
        .set("remote.log.manager.task.interval.ms", "3600000")
        .arg("--remote")
        .arg(&remote)
        .start();
    let topic = "audit-deleted";
    produce_mostly_remote(&strata, topic, 1500);
    let data_dir = strata.data_dir().to_path_buf();
    let out = strata_tests::python(
        "tiering_client.py",
        &["delete-records", &strata.kafka_addr(), topic, "200"],
    );
    assert_eq!(
        assert_success(&out, "DeleteRecords").trim(),
        "OK low watermark 200"
    );
    strata.stop();
    assert!(
        bucket_holds_segment(&bucket, &format!("{:020}-", 0)),
        "the bucket still holds the segment of offset 0"
    );

    let export = |from: &str, out: &std::path::Path| {
        strata_export(&[
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--remote",
            &remote,
            "--topic",
            topic,
            "--from-offset",
            from,
            "--to-offset",
            "1499",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let below = temp.path().join("below");
    let out = export("0", &below);
    assert!(
        !out.status.success(),
        "exported records DeleteRecords deleted"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("expired") && stderr.contains("[200, 1500)"),
        "{stderr}"
    );
    assert!(!below.join("manifest.json").exists());

    // A time before the first record left says so too, rather than starting at 200.
    let by_time = temp.path().join("by-time");
    let out = strata_export(&[
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--remote",
        &remote,
        "--topic",
        topic,
        "--from-time",
        "2000-01-01T00:00:00Z",
        "--to-offset",
        "1499",
        "--out",
        by_time.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "a time range into deleted history");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("expired") && stderr.contains("[200, 1500)"),
        "{stderr}"
    );

    let from_start = temp.path().join("from-start");
    assert_success(&export("200", &from_start), "strata export from 200");
    check_rows(&read_parquet(&from_start), topic, 200, 1499);
}

/// Whether a segment object whose name starts with `name_prefix` is anywhere in `bucket`.
fn bucket_holds_segment(bucket: &std::path::Path, name_prefix: &str) -> bool {
    std::fs::read_dir(bucket).unwrap().flatten().any(|e| {
        let path = e.path();
        if path.is_dir() {
            bucket_holds_segment(&path, name_prefix)
        } else {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with(name_prefix) && name.ends_with(".seg")
        }
    })
}

fn partial_files(dir: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read(dir.join("manifest.partial.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|m| m["files"].as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn export_killed_mid_way_resumes_without_duplicates() {
    if !require(Tool::Kcat) {
        return;
    }
    let mut strata = Strata::start();
    let topic = "resume";
    let records = 60_000;
    produce(&strata, topic, 0..records, "none");
    strata.stop();
    let data = strata.data_dir().to_str().unwrap().to_string();
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("export");
    let args = [
        "export",
        "--data-dir",
        &data,
        "--topic",
        topic,
        "--from-offset",
        "0",
        "--to-offset",
        &(records - 1).to_string(),
        "--max-file-bytes",
        "32768",
        "--out",
        out.to_str().unwrap(),
    ];

    // kill -9 once a few files are complete.
    let mut child = std::process::Command::new(strata_tests::strata_bin())
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while partial_files(&out).len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "export made no progress"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "export finished before it was killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(!out.join("manifest.json").exists());
    let before = partial_files(&out);
    assert!(before.len() >= 3);

    // A different request is refused rather than mixed into the interrupted one.
    let mut other = args.to_vec();
    other[8] = "100";
    let refused = strata_export(&other[1..]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("interrupted export"));

    let out_run = strata_export(&args[1..]);
    assert_success(&out_run, "strata export (resumed)");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    // Files completed before the kill were kept as they were, not written again.
    for (old, new) in before.iter().zip(files) {
        assert_eq!(old, new);
    }
    assert!(!out.join("manifest.partial.json").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let parquet_files = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
        .count();
    assert_eq!(
        parquet_files,
        files.len(),
        "no stray file besides the manifest's"
    );
    // Every offset exactly once, in order, with its content.
    check_rows(&read_parquet(&out), topic, 0, records - 1);
    assert_success(
        &strata_export(&["verify", out.to_str().unwrap()]),
        "strata export verify",
    );
}

/// DuckDB's view of an export made with `--value-format json`: the value column's type and,
/// through JSON path extraction, each document's `i` and `name` by offset.
const READ_JSON_WITH_DUCKDB: &str = r#"
import json, sys, duckdb
files = sys.argv[1] + "/*.parquet"
con = duckdb.connect()
kind = con.execute(f"SELECT typeof(value) FROM read_parquet('{files}') LIMIT 1").fetchone()[0]
rows = con.execute(
    f"SELECT \"offset\", CAST(value->>'$.i' AS BIGINT), value->>'$.name', value::VARCHAR "
    f"FROM read_parquet('{files}') ORDER BY \"offset\""
).fetchall()
print(json.dumps({"type": kind, "rows": rows}))
"#;

/// The JSON document produced at offset `i` (non-ASCII text: the UTF-8 must arrive intact).
fn json_value(i: usize) -> String {
    format!(r#"{{"i": {i}, "name": "Zürich №{i}", "tags": ["a", "ö"]}}"#)
}

#[test]
fn value_formats_json_and_utf8_type_the_column_and_refuse_values_that_do_not_fit() {
    if !require(Tool::Kcat) || !require(Tool::Python) {
        return;
    }
    let mut strata = Strata::start();
    let topic = "events";
    // 0..300 JSON documents, then at 300 a value that is neither UTF-8 nor JSON.
    let mut input: Vec<u8> = (0..300)
        .flat_map(|i| format!("k{i}\t{}\n", json_value(i)).into_bytes())
        .collect();
    input.extend(b"k300\t\xff\xfe not text\n");
    produce_lines(&strata, topic, &input, &[]);
    strata.stop();
    let data = strata.data_dir().to_str().unwrap().to_string();
    let temp = tempfile::tempdir().unwrap();
    let export = |format: &str, to: &str, out: &std::path::Path| {
        strata_export(&[
            "--data-dir",
            &data,
            "--topic",
            topic,
            "--from-offset",
            "0",
            "--to-offset",
            to,
            "--value-format",
            format,
            "--out",
            out.to_str().unwrap(),
        ])
    };

    // JSON: DuckDB sees a JSON column and extracts fields from every document.
    let json_dir = temp.path().join("json");
    assert_success(
        &export("json", "299", &json_dir),
        "export --value-format json",
    );
    let out = strata_tests::run_with_timeout(
        std::process::Command::new(strata_tests::venv_python())
            .args(["-c", READ_JSON_WITH_DUCKDB])
            .arg(&json_dir),
        Duration::from_secs(120),
    );
    let doc: serde_json::Value =
        serde_json::from_str(&assert_success(&out, "duckdb read")).expect("duckdb output");
    assert_eq!(doc["type"], "JSON", "value column type as DuckDB reads it");
    let rows = doc["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 300);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[0], i as i64);
        assert_eq!(row[1], i as i64);
        assert_eq!(row[2], format!("Zürich №{i}"));
        assert_eq!(row[3], json_value(i), "value text at offset {i}");
    }
    assert_success(
        &strata_export(&["verify", json_dir.to_str().unwrap()]),
        "verify json export",
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(json_dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["value_format"], "json");

    // UTF-8 through offset 300: the export fails naming that offset, and leaves no file.
    let utf8_dir = temp.path().join("utf8");
    let out = export("utf8", "300", &utf8_dir);
    assert!(
        !out.status.success(),
        "a non-UTF-8 value was exported as text"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("offset 300") && stderr.contains("not valid UTF-8"),
        "{stderr}"
    );
    assert!(
        stderr.contains("binary"),
        "the error says what to do: {stderr}"
    );
    assert!(!utf8_dir.join("manifest.json").exists());
    let finished: Vec<_> = std::fs::read_dir(&utf8_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".parquet") || name.ends_with(".parquet.tmp"))
        .collect();
    assert!(finished.is_empty(), "{finished:?}");

    // The same range as binary keeps the bytes as produced.
    let binary_dir = temp.path().join("binary");
    assert_success(&export("binary", "300", &binary_dir), "export binary");
    let doc = read_parquet(&binary_dir);
    let rows = doc["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 301);
    assert_eq!(rows[300]["value"], hex(b"\xff\xfe not text"));
    assert_eq!(rows[7]["value"], hex(json_value(7).as_bytes()));
}
