//! Single Message Transforms on the broker's produce and fetch paths, with stock
//! confluent-kafka clients (`tests/clients/smt_client.py`):
//! * 20 MB records to a ClaimCheck topic: the log holds tickets only, the bucket the payloads;
//! * fetch-side resolution gives consumers the original bytes; with it off the tickets resolve
//!   through the HTTP gateway;
//! * a bad chain is refused with INVALID_CONFIG naming the key;
//! * key and value tickets stay live while in the log, and their payloads go after retention
//!   removed them and the claim GC ran;
//! * with fetch-side resolution, a consumer gets past bad tickets: ticket headers that form no
//!   ticket are served as produced, a payload that is gone is an error it can seek past.

#[path = "claims_support.rs"]
mod claims_support;

use std::collections::BTreeMap;
use std::time::Duration;

use claims_support::{download_sha256, list_files, local_claims_dir, run_gc, wait_until};
use serde_json::Value;
use strata_tests::{Strata, assert_success, python};

fn client(args: &[&str]) -> Vec<Value> {
    let out = python("smt_client.py", args);
    let text = assert_success(&out, &format!("smt_client.py {}", args[0]));
    text.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn payload_files(strata: &Strata) -> Vec<String> {
    list_files(&local_claims_dir(strata))
        .into_iter()
        .filter(|f| f.ends_with("/payload"))
        .collect()
}

/// Bytes of record batches in the partition's `.log` files. Not the file sizes: after acks=all
/// appends the active segment ends in a zeroed tail that is not part of the log.
fn segment_bytes(strata: &Strata, topic: &str) -> u64 {
    std::fs::read_dir(strata.data_dir().join(format!("{topic}-0")))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| batch_bytes(&std::fs::read(e.path()).unwrap()))
        .sum()
}

/// Length of the whole batches at the start of `log` (each: 8-byte base offset, 4-byte length,
/// then `length` bytes).
fn batch_bytes(log: &[u8]) -> u64 {
    let mut position = 0usize;
    while let Some(header) = log.get(position..position + 12) {
        let length = i32::from_be_bytes(header[8..12].try_into().unwrap());
        let end = position + 12 + length.max(0) as usize;
        if length <= 0 || end > log.len() {
            break;
        }
        position = end;
    }
    position as u64
}

const CHAIN: &[&str] = &[
    "transforms=cc",
    "transforms.cc.type=ClaimCheck",
    "transforms.cc.threshold.bytes=1048576",
    "max.message.bytes=26214400",
];

#[test]
fn twenty_mb_records_become_tickets_and_resolve_on_fetch() {
    let strata = Strata::builder()
        .set("message.max.bytes", "26214400")
        .start();
    let bootstrap = strata.kafka_addr();

    // A bad chain is refused, naming the key.
    let out = python(
        "smt_client.py",
        &[
            "create-bad",
            &bootstrap,
            "bad",
            "transforms=cc",
            "transforms.cc.type=NoSuchTransform",
        ],
    );
    let text = assert_success(&out, "create-bad");
    assert!(
        text.contains("transforms.cc.type") && text.contains("INVALID_CONFIG"),
        "{text}"
    );

    let mut create = vec!["create", bootstrap.as_str(), "big"];
    create.extend_from_slice(CHAIN);
    client(&create);
    let described = client(&["describe", &bootstrap, "big"]);
    assert_eq!(
        described[0]["transforms.cc.type"], "ClaimCheck",
        "{described:?}"
    );

    const SIZE: u64 = 20 * 1024 * 1024;
    let produced = client(&["produce", &bootstrap, "big", "3", &SIZE.to_string(), "11"]);
    assert_eq!(produced.len(), 3);
    // A small record stays inline.
    client(&["produce", &bootstrap, "big", "1", "100", "12"]);

    // The log holds tickets only; the bucket holds the three payloads.
    let on_disk = segment_bytes(&strata, "big");
    assert!(on_disk < 64 * 1024, "log holds {on_disk} bytes");
    let payloads = payload_files(&strata);
    assert_eq!(payloads.len(), 3, "{payloads:?}");
    for p in &payloads {
        let len = std::fs::metadata(local_claims_dir(&strata).join(p))
            .unwrap()
            .len();
        assert_eq!(len, SIZE);
    }
    // Each ticket's position is recorded for the claim GC.
    let positions = list_files(&local_claims_dir(&strata))
        .into_iter()
        .filter(|f| f.ends_with("position.json"))
        .count();
    assert_eq!(positions, 3);

    // Off (default): a stock consumer sees tickets; the gateway resolves them.
    let tickets = client(&["consume", &bootstrap, "big", "4"]);
    for (record, sent) in tickets.iter().zip(&produced) {
        assert_eq!(record["offset"], sent["offset"]);
        let headers = &record["headers"];
        assert_eq!(headers["claimcheck.sha256"], sent["sha256"], "{record}");
        let ticket: Value = serde_json::from_str(record["value"].as_str().unwrap()).unwrap();
        let url = format!(
            "{}/v1/claims/{}",
            strata.http_url(),
            ticket["id"].as_str().unwrap()
        );
        let (size, sha) = download_sha256(&url);
        assert_eq!(
            (size, sha.as_str()),
            (SIZE, sent["sha256"].as_str().unwrap())
        );
    }
    assert_eq!(tickets[3]["size"], 100);

    // On: same offsets, original bytes.
    client(&["alter", &bootstrap, "big", "claimcheck.fetch.resolve=true"]);
    let resolved = client(&["consume", &bootstrap, "big", "4"]);
    for (record, sent) in resolved.iter().zip(&produced) {
        assert_eq!(record["offset"], sent["offset"]);
        assert_eq!(record["size"], SIZE);
        assert_eq!(record["sha256"], sent["sha256"]);
        assert!(record["headers"].get("claimcheck.id").is_none(), "{record}");
    }
    assert_eq!(resolved[3]["size"], 100);

    // A budget below one payload: a clear error for that partition, not wrong bytes.
    client(&[
        "alter",
        &bootstrap,
        "big",
        "claimcheck.fetch.resolve.max.bytes=1048576",
    ]);
    let out = python("smt_client.py", &["consume", &bootstrap, "big", "1"]);
    assert!(
        !out.status.success(),
        "a payload over the budget must not be delivered"
    );
}

#[test]
fn key_and_value_tickets_live_until_retention_then_gc() {
    let strata = Strata::builder()
        .set("log.retention.check.interval.ms", "300")
        .set("claimcheck.gc.grace", "1s")
        .set("claimcheck.gc.interval.ms", "3600000")
        .start();
    let bootstrap = strata.kafka_addr();
    client(&[
        "create",
        &bootstrap,
        "ret",
        "transforms=value,key",
        "transforms.value.type=ClaimCheck",
        "transforms.value.threshold.bytes=100000",
        "transforms.key.type=ClaimCheck",
        "transforms.key.field=key",
        "transforms.key.threshold.bytes=100000",
        "max.message.bytes=2000000",
        "segment.bytes=4096",
        "retention.ms=6000",
    ]);
    // Two records with a 300 KB key and a 400 KB value: four claims.
    let produced = client(&["produce", &bootstrap, "ret", "2", "400000", "21", "300000"]);
    assert_eq!(produced.len(), 2);
    assert_eq!(payload_files(&strata).len(), 4);
    std::thread::sleep(Duration::from_millis(1500)); // older than gc.grace
    let report = run_gc(&strata, false);
    assert_eq!(report["kept_live"], 4, "{report}");
    assert_eq!(payload_files(&strata).len(), 4);

    // Resolution of both fields on fetch.
    client(&["alter", &bootstrap, "ret", "claimcheck.fetch.resolve=true"]);
    let resolved = client(&["consume", &bootstrap, "ret", "2"]);
    for (record, sent) in resolved.iter().zip(&produced) {
        assert_eq!(record["sha256"], sent["sha256"]);
        assert_eq!(record["key_sha256"], sent["key_sha256"]);
    }

    // Age the tickets past retention.ms, roll their segment with small records, wait for the
    // log start to pass them.
    std::thread::sleep(Duration::from_millis(6500));
    let mut fillers = BTreeMap::new();
    for seed in 0..3 {
        let out = client(&[
            "produce",
            &bootstrap,
            "ret",
            "20",
            "200",
            &(100 + seed).to_string(),
        ]);
        fillers.insert(seed, out);
    }
    let start_url = format!(
        "{}/v1/topics/ret/partitions/0/records/0/claim",
        strata.http_url()
    );
    wait_until(
        "retention to remove the tickets",
        Duration::from_secs(30),
        || {
            claims_support::http()
                .get(&start_url)
                .send()
                .unwrap()
                .status()
                .as_u16()
                == 404
        },
    );
    let report = run_gc(&strata, false);
    assert_eq!(
        report["actions"].as_array().map_or(0, Vec::len),
        4,
        "{report}\n{}",
        strata.logs()
    );
    assert!(
        payload_files(&strata).is_empty(),
        "{:?}",
        payload_files(&strata)
    );
}

#[test]
fn a_consumer_gets_past_bad_tickets() {
    let strata = Strata::builder().start();
    let bootstrap = strata.kafka_addr();
    client(&[
        "create",
        &bootstrap,
        "bad",
        "transforms=cc",
        "transforms.cc.type=ClaimCheck",
        "transforms.cc.threshold.bytes=100000",
        "claimcheck.fetch.resolve=true",
    ]);
    // Offset 0: a ticket version header on a record that is no ticket.
    let not_ticket = client(&[
        "produce-headers",
        &bootstrap,
        "bad",
        "not a ticket",
        "claimcheck.version=1",
    ]);
    assert_eq!(not_ticket[0]["offset"], 0);
    // Offset 1: a ticket whose payload is then lost.
    let lost = client(&["produce", &bootstrap, "bad", "1", "200000", "31"]);
    assert_eq!(lost[0]["offset"], 1);
    let payloads = payload_files(&strata);
    assert_eq!(payloads.len(), 1, "{payloads:?}");
    std::fs::remove_file(local_claims_dir(&strata).join(&payloads[0])).unwrap();
    // Offset 2: a good ticket.
    let good = client(&["produce", &bootstrap, "bad", "1", "200000", "32"]);
    assert_eq!(good[0]["offset"], 2);

    let seen = client(&["consume-skip", &bootstrap, "bad", "2"]);
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[0]["offset"], 0);
    assert_eq!(seen[0]["value"], "not a ticket");
    assert_eq!(seen[0]["headers"]["claimcheck.version"], "1");
    // CORRUPT_MESSAGE (librdkafka's INVALID_MSG) at the lost payload's offset, not a retry.
    assert_eq!(seen[1]["error"], 2, "{seen:?}");
    assert_eq!(seen[1]["offset"], 1);
    assert_eq!(seen[2]["offset"], 2);
    assert_eq!(seen[2]["size"], 200000);
    assert_eq!(seen[2]["sha256"], good[0]["sha256"]);
    assert!(
        seen[2]["headers"].get("claimcheck.id").is_none(),
        "{seen:?}"
    );
}
