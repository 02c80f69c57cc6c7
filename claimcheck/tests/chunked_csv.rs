//! Chunk mode + reassembler (interleaving, duplicates, restart) and CSV split mode.

mod common;

use std::io::Read;

use bytes::Bytes;
use common::*;
use sha2::{Digest, Sha256};
use strata_claimcheck::ClaimCheckConfig;
use strata_claimcheck::chunked::ChunkedReceipt;
use strata_claimcheck::csv_split::CsvReceipt;
use strata_claimcheck::reassemble::{ConsumedRecord, Reassembler, ReassemblyEvent};

const MIB: u64 = 1024 * 1024;

fn local() -> Backend {
    Backend::Local(tempfile::tempdir().unwrap())
}

async fn post(
    gw: &Gateway,
    path: &str,
    body: reqwest::Body,
    content_type: &str,
) -> reqwest::Response {
    reqwest::Client::new()
        .post(gw.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Feeds `log[from..]` to `reassembler`, returning delivered payloads as (id, bytes).
fn consume(
    reassembler: &mut Reassembler,
    log: &[Stored],
    from: usize,
    until: usize,
) -> Vec<(String, Vec<u8>)> {
    let mut delivered = Vec::new();
    for record in &log[from..until] {
        let event = reassembler
            .push(ConsumedRecord {
                partition: record.partition,
                offset: record.offset,
                headers: &record.headers,
                value: &record.value,
            })
            .unwrap();
        if let ReassemblyEvent::Payload(mut payload) = event {
            let mut bytes = Vec::new();
            payload.file.read_to_end(&mut bytes).unwrap();
            assert_eq!(hex::encode(Sha256::digest(&bytes)), payload.sha256);
            delivered.push((payload.id.to_string(), bytes));
        }
    }
    delivered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_payloads_reassemble_through_interleaving_duplicates_and_restart() {
    let backend = local();
    let gw = start(&backend, ClaimCheckConfig::default(), MemorySink::new()).await;
    let sizes = [3 * MIB + 123, 2 * MIB];
    let mut receipts = Vec::new();
    for (seed, len) in sizes.iter().enumerate() {
        let r = post(
            &gw,
            "/v1/topics/events/claims?mode=chunked&partition=1&key=k",
            reqwest::Body::wrap_stream(payload_stream(seed as u64 + 20, *len, 100_000)),
            "application/octet-stream",
        )
        .await;
        assert_eq!(r.status(), 201);
        receipts.push(r.json::<ChunkedReceipt>().await.unwrap());
    }
    assert_eq!(receipts[0].chunks, 7);
    let records = gw.sink.records();
    assert!(
        records
            .iter()
            .all(|r| r.partition == 1 && r.key.as_deref() == Some(&b"k"[..]))
    );
    let final_record = records
        .iter()
        .find(|r| r.header("claimcheck.chunk.final").is_some())
        .unwrap();
    assert_eq!(final_record.header("claimcheck.chunk.count"), Some("7"));
    assert_eq!(
        final_record.header("claimcheck.chunk.sha256"),
        Some(receipts[0].sha256.as_str())
    );
    assert!(
        records
            .iter()
            .filter(|r| r.header("claimcheck.chunk.final").is_none())
            .all(|r| r.value.len() <= 512 * 1024)
    );

    // Build a log as a consumer could see it: the two payloads interleaved, with a producer
    // retry duplicating chunks, and a plain record in between; offsets reassigned in order.
    let (a, b): (Vec<Stored>, Vec<Stored>) = records
        .into_iter()
        .partition(|r| r.header("claimcheck.chunk.id") == Some(&receipts[0].id.to_string()));
    let mut log = Vec::new();
    let (mut ai, mut bi) = (a.iter(), b.iter());
    loop {
        let (na, nb) = (ai.next(), bi.next());
        if na.is_none() && nb.is_none() {
            break;
        }
        log.extend(na.cloned());
        log.extend(nb.cloned());
        if log.len() == 6 {
            log.extend(a[1..3].iter().cloned()); // duplicated batch after a retry
            log.push(Stored {
                topic: "events".into(),
                partition: 1,
                offset: 0,
                key: None,
                value: Bytes::from_static(b"plain"),
                headers: vec![],
            });
        }
    }
    for (offset, record) in log.iter_mut().enumerate() {
        record.offset = offset as i64;
    }

    // Uninterrupted consumer.
    let spill = tempfile::tempdir().unwrap();
    let mut straight = Reassembler::new(spill.path());
    let delivered = consume(&mut straight, &log, 0, log.len());
    assert_eq!(delivered.len(), 2);
    assert_eq!(
        delivered
            .iter()
            .find(|(id, _)| *id == receipts[0].id.to_string())
            .unwrap()
            .1,
        payload_bytes(20, sizes[0]).await
    );
    assert_eq!(
        delivered
            .iter()
            .find(|(id, _)| *id == receipts[1].id.to_string())
            .unwrap()
            .1,
        payload_bytes(21, sizes[1]).await
    );
    assert_eq!(straight.safe_commit_offset(1), Some(log.len() as i64));

    // A consumer that stops halfway, commits the safe offset, and restarts from it.
    let half = log.len() / 2;
    let mut first = Reassembler::new(spill.path());
    let mut seen = consume(&mut first, &log, 0, half);
    let commit = first.safe_commit_offset(1).unwrap();
    assert!(
        commit
            <= log
                .iter()
                .position(|r| r.header("claimcheck.chunk.index") == Some("0"))
                .unwrap() as i64
                + 1
    );
    drop(first);
    let mut restarted = Reassembler::new(spill.path());
    seen.extend(consume(&mut restarted, &log, commit as usize, log.len()));
    for receipt in &receipts {
        assert!(
            seen.iter().any(|(id, _)| *id == receipt.id.to_string()),
            "payload {} lost across restart",
            receipt.id
        );
    }
    assert_eq!(restarted.incomplete_count(), 0);
    assert_eq!(
        std::fs::read_dir(spill.path()).unwrap().count(),
        0,
        "spill files are anonymous"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_digest_mismatch_appends_abort_record() {
    let backend = local();
    let gw = start(&backend, ClaimCheckConfig::default(), MemorySink::new()).await;
    let r = reqwest::Client::new()
        .post(gw.url("/v1/topics/events/claims?mode=chunked&partition=0"))
        .header("x-strata-sha256", "00".repeat(32))
        .body(reqwest::Body::wrap_stream(payload_stream(
            1,
            3 * MIB,
            65536,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let records = gw.sink.records();
    assert!(
        records
            .last()
            .unwrap()
            .header("claimcheck.chunk.aborted")
            .is_some()
    );
    let spill = tempfile::tempdir().unwrap();
    let mut reassembler = Reassembler::new(spill.path());
    let delivered = consume(&mut reassembler, &records, 0, records.len());
    assert!(delivered.is_empty());
    assert_eq!(reassembler.incomplete_count(), 0);
}

fn csv_stream(
    rows: u64,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    let mut next = 0u64;
    let mut header_sent = false;
    futures::stream::poll_fn(move |_| {
        if next >= rows && header_sent {
            return std::task::Poll::Ready(None);
        }
        let mut buf = String::with_capacity(70_000);
        if !header_sent {
            buf.push_str("id,name,amount\n");
            header_sent = true;
        }
        while next < rows && buf.len() < 64_000 {
            buf.push_str(&format!("{next},n{next},{}\n", next * 7));
            next += 1;
        }
        std::task::Poll::Ready(Some(Ok(Bytes::from(buf))))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_million_rows_become_records_in_order_with_summary() {
    let backend = local();
    let gw = start(
        &backend,
        ClaimCheckConfig::default(),
        MemorySink::with_sampling(100_000),
    )
    .await;
    let rows = 1_000_000u64;
    let r = post(
        &gw,
        "/v1/topics/rows/claims?key_column=id",
        reqwest::Body::wrap_stream(csv_stream(rows)),
        "text/csv",
    )
    .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let receipt: CsvReceipt = r.json().await.unwrap();
    assert_eq!(receipt.rows, rows);
    assert_eq!(receipt.skipped_rows, 0);
    assert_eq!(gw.sink.count(), rows + 1);
    assert_eq!(gw.sink.csv_order_violations(), 0, "rows out of order");
    let records = gw.sink.records();
    let sampled = &records[0];
    let value: serde_json::Value = serde_json::from_slice(&sampled.value).unwrap();
    let id: u64 = value["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(value["name"], format!("n{id}"));
    assert_eq!(value["amount"], (id * 7).to_string());
    assert_eq!(sampled.key.as_deref(), Some(id.to_string().as_bytes()));
    assert_eq!(
        sampled.header("claimcheck.csv.line"),
        Some((id + 2).to_string().as_str())
    );
    let summary = records.last().unwrap();
    assert_eq!(summary.header("claimcheck.csv.summary"), Some("true"));
    let summary: CsvReceipt = serde_json::from_slice(&summary.value).unwrap();
    assert_eq!(summary.rows, rows);
    let mut hasher = Sha256::new();
    let chunks: Vec<Bytes> = futures::TryStreamExt::try_collect(csv_stream(rows))
        .await
        .unwrap();
    let mut total = 0;
    for c in &chunks {
        hasher.update(c);
        total += c.len() as u64;
    }
    assert_eq!(summary.sha256, hex::encode(hasher.finalize()));
    assert_eq!(summary.bytes, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_malformed_rows_are_reported_with_line_numbers() {
    let backend = local();
    let gw = start(&backend, ClaimCheckConfig::default(), MemorySink::new()).await;
    let file = "id,name\n1,a\n2,b,extra\n3,c\n\"4\",\"multi\nline\"\n5\n6,f\n";
    let r = post(
        &gw,
        "/v1/topics/rows/claims?mode=csv",
        file.into(),
        "application/octet-stream",
    )
    .await;
    assert_eq!(r.status(), 422);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_csv");
    let lines: Vec<u64> = body["error"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![3, 7]);
    assert_eq!(gw.sink.count(), 0, "reject mode produces nothing");

    let r = post(
        &gw,
        "/v1/topics/rows/claims?mode=csv&on_error=skip&format=raw",
        file.into(),
        "text/csv",
    )
    .await;
    assert_eq!(r.status(), 201);
    let receipt: CsvReceipt = r.json().await.unwrap();
    assert_eq!(receipt.rows, 4);
    assert_eq!(receipt.skipped_rows, 2);
    assert_eq!(
        receipt.skipped.iter().map(|e| e.line).collect::<Vec<_>>(),
        vec![3, 7]
    );
    let values: Vec<String> = gw
        .sink
        .records()
        .iter()
        .map(|r| String::from_utf8(r.value.to_vec()).unwrap())
        .collect();
    assert_eq!(&values[..4], &["1,a", "3,c", "4,\"multi\nline\"", "6,f"]);
}
