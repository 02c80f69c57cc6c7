//! Chunk mode and CSV split mode through `strata serve`, read back by confluent-kafka consumers:
//! a chunk reassembler stopped halfway and restarted from its safe committed offset, and a CSV
//! file of one million rows arriving as one million records in file order plus the summary.

#[path = "claims_support.rs"]
mod support;

use strata_tests::{Strata, Tool, assert_success, python, require};
use support::*;

#[test]
fn chunked_payloads_reassembled_by_a_consumer_restarted_halfway() {
    if !require(Tool::Python) {
        return;
    }
    let strata = Strata::builder()
        .set("claimcheck.chunk.bytes", "65536")
        .start();
    // Two payloads: 10 and 9 chunks (+ a final record each) on partition 0.
    let sizes = [10 * 65536 - 100, 9 * 65536];
    let mut expected = Vec::new();
    for (i, size) in sizes.iter().enumerate() {
        let (status, receipt) = upload_generated(
            &strata,
            "chunks",
            "?mode=chunked&partition=0",
            *size,
            20 + i as u64,
        );
        assert_eq!(status, 201, "{receipt}");
        assert_eq!(
            receipt["sha256"],
            generated_sha256(*size, 20 + i as u64).as_str()
        );
        expected.push((
            receipt["id"].as_str().unwrap().to_string(),
            *size,
            receipt["sha256"].as_str().unwrap().to_string(),
        ));
    }
    // First run: all of payload 1 (11 records) and 4 chunks of payload 2, then stop.
    let first = python(
        "claims_chunks.py",
        &[&strata.kafka_addr(), "chunks", "reassembler", "15"],
    );
    let first = assert_success(&first, "claims_chunks.py (first run)");
    let line = |(id, size, sha): &(String, u64, String)| format!("PAYLOAD {id} {size} {sha}");
    assert!(first.contains(&line(&expected[0])), "{first}");
    assert!(!first.contains(&expected[1].0), "{first}");
    assert!(
        first.contains("COMMITTED 11"),
        "safe offset is the first chunk of payload 2: {first}"
    );
    // Restart: resumes from the first chunk of payload 2 and delivers it whole.
    let second = python(
        "claims_chunks.py",
        &[&strata.kafka_addr(), "chunks", "reassembler", "0"],
    );
    let second = assert_success(&second, "claims_chunks.py (second run)");
    assert!(second.contains(&line(&expected[1])), "{second}");
    assert!(
        !second.contains(&expected[0].0),
        "payload 1 delivered twice: {second}"
    );
}

#[test]
fn a_csv_of_one_million_rows_becomes_one_million_records_in_order() {
    if !require(Tool::Python) {
        return;
    }
    let strata = Strata::start();
    let rows = 1_000_000u64;
    let mut csv = String::from("id,name,amount\n");
    for i in 1..=rows {
        csv.push_str(&format!("{i},name-{i},{}\n", i * 3));
    }
    let size = csv.len();
    let response = http()
        .post(format!(
            "{}/v1/topics/rows/claims?partition=0",
            strata.http_url()
        ))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let receipt: serde_json::Value = response.json().unwrap();
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["rows"], rows, "{receipt}");
    assert_eq!(receipt["bytes"], size as u64);
    let out = python("claims_csv.py", &[&strata.kafka_addr(), "rows"]);
    let stdout = assert_success(&out, "claims_csv.py");
    let got: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(got["rows"], rows, "{got}");
    assert_eq!(got["first"]["id"], "1");
    assert_eq!(got["first"]["name"], "name-1");
    assert_eq!(got["last"]["id"], rows.to_string());
    assert_eq!(got["last"]["amount"], (rows * 3).to_string());
    assert_eq!(got["summary"]["rows"], rows);
    assert_eq!(got["summary"]["sha256"], receipt["sha256"]);
}
