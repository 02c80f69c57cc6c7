//! The export as an HTTP job on a running broker (`POST /v1/exports`, `GET /v1/exports/{id}`):
//! a tiered topic whose history is mostly in the remote tier is exported while the broker keeps
//! serving, split into several files, read back with pyarrow and compared with what was
//! produced (keys, values, headers byte for byte; timestamps as a Kafka consumer reads them);
//! bad requests fail before the job starts; claim payloads are checked with `verify_claims`.
//! The S3 variant exports a topic tiered to S3 into S3 and corrupts one object.

#[path = "export_support.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use strata_tests::s3::S3Target;
use strata_tests::{Strata, Tool, assert_success, python, require};
use support::*;

fn tiering_broker() -> strata_tests::StrataBuilder {
    Strata::builder()
        .set("log.retention.check.interval.ms", "500")
        .set("remote.log.manager.task.interval.ms", "1000")
}

fn error_message(body: &serde_json::Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn http_export_of_a_mostly_remote_topic_reads_back_byte_for_byte() {
    if !require(Tool::Kcat) || !require(Tool::Python) {
        return;
    }
    let strata = tiering_broker().start();
    let topic = "audit-http";
    let local_start = produce_mostly_remote(&strata, topic, 1500);
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("export");

    // The routes are documented in the OpenAPI document.
    let doc: serde_json::Value =
        reqwest::blocking::get(format!("{}/v1/openapi.json", strata.http_url()))
            .unwrap()
            .json()
            .unwrap();
    assert!(doc["paths"]["/v1/exports"]["post"].is_object());
    assert!(doc["paths"]["/v1/exports/{id}"]["get"].is_object());
    assert!(doc["paths"]["/v1/exports"]["get"].is_object());

    // Bad requests fail before a job exists.
    let (status, body) = post_export(
        &strata,
        json!({"topic": topic, "from_offset": 0, "to_offset": 99999, "out": out}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("[0, 1500)"), "{body}");
    let blocker = temp.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let (status, body) = post_export(
        &strata,
        json!({"topic": topic, "from_offset": 0, "to_offset": 1, "out": blocker.join("sub")}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("a-file"), "{body}");
    let (status, body) = post_export(
        &strata,
        json!({"topic": "nope", "from_offset": 0, "to_offset": 1, "out": out}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("nope"), "{body}");
    let (status, body) = post_export(
        &strata,
        json!({"topic": topic, "from_offset": 0, "to_offset": 1, "out": out,
               "value_format": "yaml"}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(error_message(&body).contains("value_format"), "{body}");
    assert!(!out.join("manifest.json").exists());

    // Values as text: offset 1's value is not UTF-8 (see `value`), so the job fails naming it
    // and leaves no Parquet file behind.
    let text_out = temp.path().join("as-text");
    let (status, body) = post_export(
        &strata,
        json!({"topic": topic, "from_offset": 0, "to_offset": 10, "out": text_out,
               "value_format": "utf8"}),
    );
    assert_eq!(status, 202, "{body}");
    let job = wait_for_job(
        &strata,
        body["id"].as_str().unwrap(),
        Duration::from_secs(60),
    );
    assert_eq!(job["state"], "failed", "{job}");
    let error = job["errors"][0].as_str().unwrap_or_default();
    assert!(
        error.contains("offset 1:") && error.contains("not valid UTF-8"),
        "{job}"
    );
    let parquet_files = std::fs::read_dir(&text_out)
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
                .count()
        })
        .unwrap_or(0);
    assert_eq!(parquet_files, 0);

    let (status, body) = post_export(
        &strata,
        json!({"topic": topic, "from_offset": 0, "to_time": "2100-01-01T00:00:00Z",
               "out": out, "max_file_bytes": 16384}),
    );
    assert_eq!(status, 202, "{body}");
    // The answer already holds the resolved range of the job.
    assert_eq!(body["offsets_total"], 1500, "{body}");
    assert_eq!(body["partitions"][0]["to_offset"], 1499, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    let job = wait_for_job(&strata, &id, Duration::from_secs(120));
    assert_eq!(job["state"], "succeeded", "{job}\n{}", strata.logs());
    assert_eq!(job["records_done"], 1500);
    assert_eq!(job["offsets_done"], 1500);
    assert_eq!(job["offsets_total"], 1500);
    assert!(job["log_bytes_read"].as_u64().unwrap() > 0);
    assert_eq!(job["partitions"][0]["done"], true);

    // The listing holds both jobs, newest first, without manifests.
    let listed: serde_json::Value =
        reqwest::blocking::get(format!("{}/v1/exports", strata.http_url()))
            .unwrap()
            .json()
            .unwrap();
    let listed = listed["exports"].as_array().unwrap();
    let states: Vec<(&str, &str)> = listed
        .iter()
        .map(|j| (j["id"].as_str().unwrap(), j["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states.len(), 2, "{listed:?}");
    assert_eq!(states[0], (id.as_str(), "succeeded"), "{listed:?}");
    assert_eq!(states[1].1, "failed", "{listed:?}");
    assert!(listed.iter().all(|j| j["manifest"].is_null()), "{listed:?}");

    let files = job["manifest"]["files"].as_array().unwrap();
    assert!(files.len() > 2, "split by size: {} file(s)", files.len());
    let names: Vec<&str> = files.iter().map(|f| f["file"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "file names sort in offset order");
    let records: u64 = files.iter().map(|f| f["records"].as_u64().unwrap()).sum();
    assert_eq!(records, 1500);
    eprintln!(
        "local log starts at {local_start}; {} file(s) exported",
        files.len()
    );

    let doc = read_parquet(&out);
    check_rows(&doc, topic, 0, 1499);
    check_timestamps(&doc, &consumed_timestamps(&strata, topic));
    assert_success(
        &strata_export(&["verify", out.to_str().unwrap()]),
        "strata export verify",
    );
    // A second job to the same destination is refused: it holds a complete export.
    let (status, body) = post_export(
        &strata,
        json!({"topic": topic, "from_offset": 0, "to_offset": 10, "out": out}),
    );
    assert_eq!(status, 202, "{body}");
    let job = wait_for_job(
        &strata,
        body["id"].as_str().unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(job["state"], "failed");
    assert!(
        job["errors"][0]
            .as_str()
            .unwrap()
            .contains("complete export"),
        "{job}"
    );
}

#[test]
fn http_export_says_when_history_expired() {
    if !require(Tool::Kcat) || !require(Tool::Python) {
        return;
    }
    let strata = tiering_broker().start();
    let topic = "expiring";
    let out = python(
        "tiering_client.py",
        &[
            "create",
            &strata.kafka_addr(),
            topic,
            "segment.bytes=20000",
            "retention.bytes=1",
        ],
    );
    assert_success(&out, "create topic");
    produce(&strata, topic, 0..1500, "none");
    let data_dir = strata.data_dir().to_path_buf();
    wait_until(
        "retention deletes early segments",
        Duration::from_secs(60),
        || first_local_offset(&data_dir, topic) > 0,
    );
    let start = first_local_offset(&data_dir, topic);
    let temp = tempfile::tempdir().unwrap();
    let (status, body) = post_export(
        &strata,
        json!({"topic": topic, "from_offset": 0, "to_offset": 1499, "out": temp.path()}),
    );
    assert_eq!(status, 400, "{body}");
    let message = error_message(&body);
    assert!(message.contains("expired"), "{message}");
    assert!(message.contains(&format!("[{start}, 1500)")), "{message}");

    // The same by time: from before the first record left is expired history, not a range
    // that silently starts at the log start.
    let (status, body) = post_export(
        &strata,
        json!({"topic": topic, "from_time": "2000-01-01T00:00:00Z", "to_offset": 1499,
               "out": temp.path()}),
    );
    assert_eq!(status, 400, "{body}");
    let message = error_message(&body);
    assert!(
        message.contains("expired") && message.contains(&format!("[{start}, ")),
        "{message}"
    );
}

/// `DELETE /v1/exports/{id}` on a running job: it stops within the file it was writing, leaves
/// its finished files and the partial manifest (no temporary file), is forgotten, and posting
/// the same request again resumes it: every record exactly once, and the manifest verifies.
#[test]
fn a_cancelled_http_export_leaves_finished_files_and_resumes_without_duplicates() {
    if !require(Tool::Kcat) || !require(Tool::Python) {
        return;
    }
    // Cold reads throttled by the broker's fetch quota, so that the job is still running when
    // it is cancelled.
    let strata = tiering_broker()
        .set("remote.log.manager.fetch.max.bytes.per.second", "3000")
        .start();
    let topic = "cancelled";
    produce_mostly_remote(&strata, topic, 1500);
    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("export");
    let request = json!({"topic": topic, "from_offset": 0, "to_offset": 1499, "out": out,
                         "max_file_bytes": 2048});
    let (status, body) = post_export(&strata, request.clone());
    assert_eq!(status, 202, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    wait_until(
        "the job finishes its first file",
        Duration::from_secs(60),
        || get_export(&strata, &id).1["partitions"][0]["files_done"].as_u64() >= Some(1),
    );

    let (status, job) = delete_export(&strata, &id);
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["state"], "cancelled", "{job}");
    assert!(
        job["errors"][0].as_str().unwrap().contains("resumes it"),
        "{job}"
    );
    let records_before = job["records_done"].as_u64().unwrap();
    eprintln!("cancelled after {records_before} record(s)");
    assert!(
        records_before < 1500,
        "cancelled too late to show anything: {job}"
    );
    assert_eq!(
        get_export(&strata, &id).0,
        404,
        "a deleted job is forgotten"
    );
    let metrics = strata.metrics();
    let finished = |state: &str| {
        strata_tests::metric_value(
            &metrics,
            &format!("strata_export_jobs_finished_total{{state=\"{state}\"}}"),
        )
    };
    assert_eq!(finished("cancelled"), 1.0, "{metrics}");
    assert_eq!(
        strata_tests::metric_value(&metrics, "strata_export_jobs_running"),
        0.0
    );

    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n == "manifest.json"), "{names:?}");
    assert!(!names.iter().any(|n| n.ends_with(".tmp")), "{names:?}");
    let partial: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.partial.json")).unwrap()).unwrap();
    let mut recorded: Vec<String> = partial["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap().to_string())
        .collect();
    let mut parquet: Vec<String> = names
        .into_iter()
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    recorded.sort();
    parquet.sort();
    assert!(!recorded.is_empty());
    assert_eq!(
        parquet, recorded,
        "only the finished files are at the destination"
    );

    // The same request again resumes at the first offset not yet exported.
    let (status, body) = post_export(&strata, request);
    assert_eq!(status, 202, "{body}");
    let job = wait_for_job(
        &strata,
        body["id"].as_str().unwrap(),
        Duration::from_secs(300),
    );
    assert_eq!(job["state"], "succeeded", "{job}\n{}", strata.logs());
    let files = job["manifest"]["files"].as_array().unwrap();
    assert_eq!(&files[0]["file"], &partial["files"][0]["file"]);
    // The metrics count each finished file once, across the cancelled run and the resume.
    let metrics = strata.metrics();
    let value = |name: &str| strata_tests::metric_value(&metrics, name);
    assert_eq!(
        value("strata_export_jobs_finished_total{state=\"succeeded\"}"),
        1.0
    );
    assert_eq!(value("strata_export_records_total"), 1500.0, "{metrics}");
    let bytes: u64 = files.iter().map(|f| f["bytes"].as_u64().unwrap()).sum();
    assert_eq!(value("strata_export_written_bytes_total"), bytes as f64);
    let doc = read_parquet(&out);
    check_rows(&doc, topic, 0, 1499);
    assert_success(
        &strata_export(&["verify", out.to_str().unwrap()]),
        "strata export verify",
    );
}

fn verify_with_env(target: &S3Target, url: &str) -> std::process::Output {
    let mut command = std::process::Command::new(strata_tests::strata_bin());
    command.args(["export", "verify", url]);
    for (k, v) in target.env() {
        command.env(k, v);
    }
    strata_tests::run_with_timeout(&mut command, Duration::from_secs(120))
}

#[test]
fn s3_tiered_topic_exported_to_s3_verifies_and_catches_a_corrupted_object() {
    let Some(target) = S3Target::from_env() else {
        return;
    };
    if !require(Tool::Kcat) || !require(Tool::Python) {
        return;
    }
    let mut builder = tiering_broker()
        .arg("--remote")
        .arg(target.unique_url("export-tier"));
    for (k, v) in target.env() {
        builder = builder.env(&k, &v);
    }
    let strata = builder.start();
    let topic = "audit-s3";
    let local_start = produce_mostly_remote(&strata, topic, 1500);
    let out_url = target.unique_url("export-out");
    let (status, body) = post_export(
        &strata,
        json!({"topic": topic, "from_offset": 0, "to_offset": 1499, "out": out_url,
               "max_file_bytes": 16384}),
    );
    assert_eq!(status, 202, "{body}");
    let job = wait_for_job(
        &strata,
        body["id"].as_str().unwrap(),
        Duration::from_secs(180),
    );
    assert_eq!(job["state"], "succeeded", "{job}\n{}", strata.logs());
    assert_eq!(job["records_done"], 1500);
    eprintln!("local log starts at {local_start}");

    assert_success(
        &verify_with_env(&target, &out_url),
        "strata export verify s3://",
    );
    let temp = tempfile::tempdir().unwrap();
    let out_prefix = format!(
        "{}/",
        out_url.trim_start_matches(&format!("s3://{}/", target.bucket))
    );
    let count: usize = target
        .objects("download", &out_prefix, &[temp.path().to_str().unwrap()])
        .trim()
        .parse()
        .unwrap();
    let files = job["manifest"]["files"].as_array().unwrap().len();
    assert_eq!(
        count,
        files + 1,
        "the Parquet files and manifest.json, nothing else"
    );
    let doc = read_parquet(temp.path());
    check_rows(&doc, topic, 0, 1499);
    check_timestamps(&doc, &consumed_timestamps(&strata, topic));

    let corrupted = target.objects("corrupt", &out_prefix, &[]);
    let out = verify_with_env(&target, &out_url);
    assert!(!out.status.success(), "verify passed a corrupted object");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let name = corrupted.trim().rsplit('/').next().unwrap().to_string();
    assert!(
        stderr.contains("MISMATCH") && stderr.contains(&name),
        "{stderr}"
    );
}

fn upload_claim(strata: &Strata, topic: &str, body: Vec<u8>) -> serde_json::Value {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/topics/{topic}/claims", strata.http_url()))
        .header("content-type", "application/octet-stream")
        .body(body)
        .send()
        .expect("claim upload");
    assert_eq!(response.status().as_u16(), 201);
    response.json().expect("claim receipt")
}

#[test]
fn verify_claims_lists_missing_and_corrupted_payloads() {
    if !require(Tool::Python) {
        return;
    }
    let mut strata = Strata::start();
    let topic = "receipts";
    let receipts: Vec<serde_json::Value> = (0..3u8)
        .map(|i| upload_claim(&strata, topic, vec![i; 100_000 + i as usize]))
        .collect();
    let payload = |r: &serde_json::Value| {
        strata
            .data_dir()
            .join("remote/claimcheck/claims")
            .join(r["id"].as_str().unwrap())
            .join("payload")
    };
    // One payload gone, one with the right size and the wrong bytes.
    std::fs::remove_file(payload(&receipts[1])).unwrap();
    std::fs::write(payload(&receipts[2]), vec![9u8; 100_002]).unwrap();

    let temp = tempfile::tempdir().unwrap();
    let out = temp.path().join("http");
    let (status, body) = post_export(
        &strata,
        json!({"topic": topic, "from_offset": 0, "to_time": "2100-01-01T00:00:00Z",
               "out": out, "verify_claims": true}),
    );
    assert_eq!(status, 202, "{body}");
    let job = wait_for_job(
        &strata,
        body["id"].as_str().unwrap(),
        Duration::from_secs(60),
    );
    assert_eq!(job["state"], "failed", "{job}");
    let errors = job["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{job}");
    assert!(errors.iter().any(|e| {
        let e = e.as_str().unwrap();
        e.contains(receipts[1]["id"].as_str().unwrap()) && e.contains("missing")
    }));
    assert!(errors.iter().any(|e| {
        let e = e.as_str().unwrap();
        e.contains(receipts[2]["id"].as_str().unwrap()) && e.contains("SHA-256")
    }));
    let claims = &job["manifest"]["claims"];
    assert_eq!(claims["tickets"], 3);
    assert_eq!(claims["verified"], true);
    let failed_offsets: Vec<i64> = claims["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["offset"].as_i64().unwrap())
        .collect();
    assert_eq!(
        failed_offsets,
        vec![
            receipts[1]["offset"].as_i64().unwrap(),
            receipts[2]["offset"].as_i64().unwrap()
        ]
    );

    // The ticket fields are columns of the export.
    let doc = read_parquet(&out);
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for receipt in &receipts {
        let row = rows
            .iter()
            .find(|r| r["offset"] == receipt["offset"] && r["partition"] == receipt["partition"])
            .expect("the ticket's record");
        for field in ["id", "uri", "size", "sha256"] {
            assert_eq!(row["claim"][field], receipt[field], "{field}");
        }
    }

    // The CLI on the stopped broker: the same findings, a non-zero exit.
    strata.stop();
    let data = strata.data_dir().to_str().unwrap().to_string();
    let cli_out = temp.path().join("cli");
    let out = strata_export(&[
        "--data-dir",
        &data,
        "--topic",
        topic,
        "--from-offset",
        "0",
        "--to-time",
        "2100-01-01T00:00:00Z",
        "--verify-claims",
        "--out",
        cli_out.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("CLAIM MISMATCH").count(), 2, "{stderr}");
}
