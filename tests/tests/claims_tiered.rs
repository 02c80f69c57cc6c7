//! The claim-check gateway on tiered topics and under its limits, against a running `strata`:
//! a ticket whose segment left local disk is still read by topic+offset (through the remote
//! tier's cold-read path, as a consumer's Fetch is) and resolved by `strata claim get`; gateway
//! appends are refused with `503 append_refused` while the remote tier's upload lag is above
//! `remote.log.manager.max.upload.lag.bytes` (as Kafka produce is) and accepted again once it
//! drains; `claimcheck.max.requests.per.second` answers `429 rate_limited` with `Retry-After`.

#[path = "claims_support.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use strata_tests::{
    Strata, StrataBuilder, Tool, assert_success, create_tiered_topic, require, strata_bin,
};
use support::*;

fn tiered_strata(remote: &std::path::Path) -> StrataBuilder {
    Strata::builder()
        .set("log.retention.check.interval.ms", "300")
        .set("remote.log.manager.task.interval.ms", "500")
        .arg("--remote")
        .arg(format!("file://{}", remote.display()))
}

fn partition_status(strata: &Strata, topic: &str) -> Value {
    let status: Value = http()
        .get(format!("{}/v1/tier/status", strata.http_url()))
        .send()
        .and_then(|r| r.json())
        .unwrap_or(Value::Null);
    status["partitions"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["topic"] == topic).cloned())
        .unwrap_or(Value::Null)
}

fn ticket_at(strata: &Strata, topic: &str, offset: i64) -> (u16, Value) {
    let response = http()
        .get(format!(
            "{}/v1/topics/{topic}/partitions/0/records/{offset}/claim",
            strata.http_url()
        ))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

#[test]
fn ticket_whose_segment_left_local_disk_is_read_from_the_remote_tier() {
    if !require(Tool::Python) {
        return;
    }
    let remote = tempfile::tempdir().unwrap();
    let strata = tiered_strata(remote.path()).start();
    let topic = "cold-tickets";
    create_tiered_topic(&strata, topic, 1024);
    let payload_len = 300_000;
    let (status, first) = upload_generated(&strata, topic, "", payload_len, 5);
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["offset"], 0);
    // Each ticket record is a few hundred bytes: a dozen more roll and close many 1 KiB
    // segments, which are uploaded and then deleted locally.
    for i in 0..12u8 {
        let (status, r) = upload_bytes(&strata, topic, "", vec![i; 100]);
        assert_eq!(status, 201, "{r}");
    }
    wait_until(
        "the first ticket's segment is uploaded and gone locally",
        Duration::from_secs(60),
        || partition_status(&strata, topic)["local_log_start_offset"].as_i64() > Some(0),
    );
    let status = partition_status(&strata, topic);
    assert_eq!(status["log_start_offset"], 0, "{status}");

    let (code, receipt) = ticket_at(&strata, topic, 0);
    assert_eq!(code, 200, "{receipt}\n{}", strata.logs());
    assert_eq!(receipt["id"], first["id"]);
    assert_eq!(receipt["sha256"], first["sha256"]);
    assert_eq!(receipt["offset"], 0);
    // A local one still reads locally; past the end is a clear 404.
    let last = status["log_end_offset"].as_i64().unwrap() - 1;
    let (code, local) = ticket_at(&strata, topic, last);
    assert_eq!(
        (code, local["offset"].as_i64()),
        (200, Some(last)),
        "{local}"
    );
    let (code, missing) = ticket_at(&strata, topic, last + 10);
    assert_eq!(code, 404, "{missing}");
    assert_eq!(missing["error"]["code"], "not_found");

    // The CLI resolves the cold ticket and verifies the payload.
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("cold.bin");
    let out = Command::new(strata_bin())
        .args([
            "claim",
            "get",
            "--topic",
            topic,
            "--offset",
            "0",
            "-o",
            output.to_str().unwrap(),
            "-q",
            "--gateway",
            &strata.http_url(),
        ])
        .output()
        .unwrap();
    assert_success(&out, "strata claim get --topic --offset (cold)");
    let bytes = std::fs::read(&output).unwrap();
    assert_eq!(bytes.len() as u64, payload_len);
    assert_eq!(hex(&sha2_digest(&bytes)), generated_sha256(payload_len, 5));
}

fn sha2_digest(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

#[test]
fn gateway_appends_obey_the_upload_lag_bound_like_produce() {
    if !require(Tool::Python) {
        return;
    }
    let remote = tempfile::tempdir().unwrap();
    let strata = tiered_strata(remote.path())
        .set("remote.log.manager.max.upload.lag.bytes", "3000")
        .start();
    let topic = "lagging";
    create_tiered_topic(&strata, topic, 1024);
    // Break the remote tier's part of the bucket (a file where its `topics/` directory must
    // go: even root cannot create directories under a file); the claim objects live under
    // `claimcheck/` and still work, so only the upload lag stops the gateway.
    let topics_dir = remote.path().join("topics");
    let _ = std::fs::remove_dir_all(&topics_dir);
    std::fs::write(&topics_dir, b"not a directory").unwrap();

    let mut accepted = 0;
    let refused = loop {
        let (status, body) = upload_bytes(&strata, topic, "", vec![1u8; 200]);
        match status {
            201 => accepted += 1,
            503 => break body,
            other => panic!("upload answered {other}: {body}"),
        }
        assert!(
            accepted < 200,
            "never refused: {}",
            partition_status(&strata, topic)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(refused["error"]["code"], "append_refused", "{refused}");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("remote.log.manager.max.upload.lag.bytes"),
        "{message}"
    );
    // Chunk mode goes through the same admission, and a refused reference upload left no
    // claim object behind (one payload + meta + position per accepted ticket).
    let (status, chunked) = upload_bytes(&strata, topic, "?mode=chunked", vec![2u8; 5000]);
    assert_eq!(status, 503, "{chunked}");
    assert_eq!(chunked["error"]["code"], "append_refused");
    let payloads = list_files(&remote.path().join("claimcheck"))
        .into_iter()
        .filter(|f| f.ends_with("/payload"))
        .count();
    assert_eq!(payloads, accepted);

    // The store comes back: uploads drain the lag and the gateway accepts again.
    std::fs::remove_file(&topics_dir).unwrap();
    wait_until(
        "the gateway accepts again",
        Duration::from_secs(120),
        || upload_bytes(&strata, topic, "", vec![3u8; 10]).0 == 201,
    );
}

#[test]
fn request_rate_limit_answers_429_json_with_retry_after() {
    let strata = Strata::builder()
        .set("claimcheck.max.requests.per.second", "2")
        .start();
    let url = format!("{}/v1/openapi.json", strata.http_url());
    let client = http();
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..10 {
        let response = client.get(&url).send().unwrap();
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            let retry_after = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .to_string();
            limited = Some((retry_after, response.json::<Value>().unwrap()));
            break;
        }
    }
    let (retry_after, body) = limited.unwrap_or_else(|| panic!("never limited: {statuses:?}"));
    assert!(statuses.starts_with(&[200, 200]), "{statuses:?}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(retry_after.parse::<u64>().unwrap() >= 1, "{retry_after}");
    // The limit refills: after the advertised wait a request goes through again.
    std::thread::sleep(Duration::from_secs(retry_after.parse().unwrap()));
    assert_eq!(client.get(&url).send().unwrap().status().as_u16(), 200);
    // The document says so.
    let doc: Value = client.get(&url).send().unwrap().json().unwrap();
    let description = doc["info"]["description"].as_str().unwrap();
    assert!(
        description.contains("claimcheck.max.requests.per.second"),
        "{description}"
    );
}
