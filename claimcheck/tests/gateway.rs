//! Reference mode, download, client, resumable uploads, GC and HTTP hardening, against the real
//! router on loopback with a local-directory store and (when configured) a real S3 server.

mod common;

use std::time::Duration;

use common::*;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use sha2::{Digest, Sha256};
use strata_claimcheck::client::{HttpClaimClient, open_from_store, resolve_ticket};
use strata_claimcheck::lifecycle::{GcReason, GcTarget, collect_garbage};
use strata_claimcheck::resumable::NewUpload;
use strata_claimcheck::{
    ClaimCheckConfig, ClaimError, ClaimId, ClaimReceipt, ClaimTicket, ObjectKey,
};
use tokio::io::AsyncWriteExt;

const MIB: u64 = 1024 * 1024;

async fn upload_generated(
    gw: &Gateway,
    topic: &str,
    seed: u64,
    len: u64,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(gw.url(&format!("/v1/topics/{topic}/claims")))
        .header("content-type", "video/mp4");
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request
        .body(reqwest::Body::wrap_stream(payload_stream(
            seed,
            len,
            64 * 1024,
        )))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_upload_round_trips_with_verified_hash() {
    for backend in backends().await {
        let gw = start(&backend, ClaimCheckConfig::default(), MemorySink::new()).await;
        let len = 200 * MIB;
        let expected_sha = payload_sha256(7, len).await;
        let response = upload_generated(
            &gw,
            "events",
            7,
            len,
            &[
                ("x-strata-key", "movie-1"),
                ("x-strata-header-source", "camera-9"),
                ("x-strata-sha256", &expected_sha),
            ],
        )
        .await;
        assert_eq!(
            response.status(),
            201,
            "{}: {:?}",
            gw.backend_name,
            response.text().await
        );
        let receipt: ClaimReceipt = response.json().await.unwrap();
        assert_eq!(receipt.ticket.size, len);
        assert_eq!(receipt.ticket.sha256, expected_sha);

        // The ticket record: key, user header, contract headers and JSON value agree.
        let records = gw.sink.records();
        assert_eq!(records.len(), 1);
        let record = &records[0];
        assert_eq!(record.key.as_deref(), Some(&b"movie-1"[..]));
        assert_eq!(record.header("source"), Some("camera-9"));
        assert_eq!(record.header("claimcheck.version"), Some("1"));
        assert_eq!(record.offset, receipt.offset);
        let ticket = resolve_ticket(record.header_pairs(), &record.value).unwrap();
        assert_eq!(ticket, receipt.ticket);

        // Download over HTTP through the verifying client, never holding the payload.
        let client = HttpClaimClient::new(&gw.base_url).unwrap();
        let mut stream = client.open(&ticket).await.unwrap();
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.unwrap();
            total += chunk.len() as u64;
            hasher.update(&chunk);
        }
        assert_eq!(total, len);
        assert_eq!(hex::encode(hasher.finalize()), expected_sha);

        // Straight from the store too.
        let from_store: u64 = open_from_store(&gw.store, &ticket)
            .await
            .unwrap()
            .try_fold(0u64, |n, c| async move { Ok(n + c.len() as u64) })
            .await
            .unwrap();
        assert_eq!(from_store, len);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_head_etag_and_corruption_detection() {
    for backend in backends().await {
        let gw = start(&backend, ClaimCheckConfig::default(), MemorySink::new()).await;
        let len = MIB + 77;
        let receipt: ClaimReceipt = upload_generated(&gw, "events", 3, len, &[])
            .await
            .json()
            .await
            .unwrap();
        let original = payload_bytes(3, len).await;
        let http = reqwest::Client::new();
        let url = gw.url(&format!("/v1/claims/{}", receipt.ticket.id));

        let full = http.get(&url).send().await.unwrap();
        assert_eq!(full.status(), 200);
        assert_eq!(
            full.headers()["etag"],
            format!("\"{}\"", receipt.ticket.sha256)
        );
        assert_eq!(full.headers()["content-type"], "video/mp4");
        assert_eq!(full.headers()["content-length"], len.to_string());

        for (range, expected) in [
            ("bytes=1000-1999", 1000..2000),
            ("bytes=-100", (len - 100) as usize..len as usize),
            ("bytes=1048000-", 1048000..len as usize),
        ] {
            let r = http.get(&url).header("range", range).send().await.unwrap();
            assert_eq!(r.status(), 206, "{range}");
            assert_eq!(
                r.headers()["content-range"],
                format!("bytes {}-{}/{len}", expected.start, expected.end - 1)
            );
            assert_eq!(&r.bytes().await.unwrap()[..], &original[expected]);
        }
        let bad = http
            .get(&url)
            .header("range", format!("bytes={len}-"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 416);

        let head = http.head(&url).send().await.unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(head.headers()["content-length"], len.to_string());
        let not_modified = http
            .get(&url)
            .header("if-none-match", format!("\"{}\"", receipt.ticket.sha256))
            .send()
            .await
            .unwrap();
        assert_eq!(not_modified.status(), 304);

        // Corrupt the stored payload (same size): the verifying reader fails at the end.
        let mut corrupted = original.clone();
        corrupted[12345] ^= 0xff;
        gw.store
            .object_store()
            .put(
                &gw.store.path(ObjectKey::ClaimPayload(receipt.ticket.id)),
                corrupted.into(),
            )
            .await
            .unwrap();
        let client = HttpClaimClient::new(&gw.base_url).unwrap();
        let results: Vec<_> = client.open(&receipt.ticket).await.unwrap().collect().await;
        assert!(
            matches!(results.last(), Some(Err(ClaimError::DigestMismatch { .. }))),
            "{:?}",
            results.last()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mismatches_produce_nothing_and_remove_the_object() {
    for backend in backends().await {
        let gw = start(&backend, ClaimCheckConfig::default(), MemorySink::new()).await;
        let wrong_sha = "00".repeat(32);
        for len in [1000, 12 * MIB] {
            let r =
                upload_generated(&gw, "events", 5, len, &[("x-strata-sha256", &wrong_sha)]).await;
            assert_eq!(r.status(), 422, "{}", gw.backend_name);
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"]["code"], "digest_mismatch");
            let r = upload_generated(
                &gw,
                "events",
                5,
                len,
                &[("x-strata-size", &(len + 1).to_string())],
            )
            .await;
            assert_eq!(r.status(), 400);
            assert_eq!(
                r.json::<serde_json::Value>().await.unwrap()["error"]["code"],
                "size_mismatch"
            );
        }
        // Limit exceeded mid-stream.
        let small = ClaimCheckConfig {
            max_upload_bytes: 10 * MIB,
            ..Default::default()
        };
        let gw2 = start(&backend, small, gw.sink.clone()).await;
        let over_limit = reqwest::Client::new()
            .post(gw2.url("/v1/topics/events/claims"))
            .body(reqwest::Body::wrap_stream(payload_stream(
                5,
                11 * MIB,
                64 * 1024,
            )))
            .send()
            .await;
        // The gateway answers 413 as soon as the limit is crossed and stops reading, so the
        // client may see the answer or a broken pipe.
        if let Ok(r) = over_limit {
            assert_eq!(r.status(), 413);
        }
        assert_eq!(gw.sink.count(), 0);
        assert_eq!(gw.objects().await, Vec::<String>::new());
        if let Backend::Local(dir) = &backend {
            assert_eq!(count_files(dir.path()), 0, "no staging files left");
        }
    }
}

fn count_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_mid_body_leaves_nothing() {
    for backend in backends().await {
        let gw = start(&backend, ClaimCheckConfig::default(), MemorySink::new()).await;
        let addr = gw.base_url.trim_start_matches("http://").to_string();
        for sent in [100 * 1024, 20 * MIB] {
            let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!(
                "POST /v1/topics/events/claims HTTP/1.1\r\nhost: x\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
                64 * MIB
            );
            socket.write_all(head.as_bytes()).await.unwrap();
            let mut body = Box::pin(payload_stream(9, sent, 64 * 1024));
            while let Some(chunk) = body.next().await {
                socket.write_all(&chunk.unwrap()).await.unwrap();
            }
            drop(socket);
        }
        // The detached ingest task sees the body fail and aborts; wait for it.
        let mut leftovers = gw.objects().await;
        for _ in 0..50 {
            if leftovers.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            leftovers = gw.objects().await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(
            gw.objects().await,
            Vec::<String>::new(),
            "{}",
            gw.backend_name
        );
        assert_eq!(gw.sink.count(), 0);
        if let Backend::Local(dir) = &backend {
            assert_eq!(
                count_files(dir.path()),
                0,
                "no multipart staging files left"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_are_rejected_with_json_errors() {
    let backend = Backend::Local(tempfile::tempdir().unwrap());
    let gw = start(&backend, ClaimCheckConfig::default(), MemorySink::new()).await;
    let http = reqwest::Client::new();
    let cases = [
        (
            "GET",
            "/v1/claims/..%2F..%2Fetc%2Fpasswd",
            400,
            "invalid_id",
        ),
        ("GET", "/v1/claims/ABCDEF", 400, "invalid_id"),
        (
            "GET",
            &format!("/v1/claims/{}", ClaimId::random()),
            404,
            "not_found",
        ),
        (
            "POST",
            "/v1/topics/..%2Fsecrets/claims",
            400,
            "invalid_topic",
        ),
        ("POST", "/v1/topics/a%20b/claims", 400, "invalid_topic"),
        ("POST", "/v1/topics/nope/claims", 404, "not_found"),
        (
            "POST",
            "/v1/topics/events/claims?partition=9",
            400,
            "bad_request",
        ),
        (
            "POST",
            "/v1/topics/events/claims?mode=zip",
            400,
            "bad_request",
        ),
        ("PUT", "/v1/uploads/..%2F..%2Fx/parts/1", 400, "invalid_id"),
        ("GET", "/v1/nothing-here", 404, "not_found"),
    ];
    for (method, path, status, code) in cases {
        let r = http
            .request(method.parse().unwrap(), gw.url(path))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{method} {path}");
    }
    let r = http
        .post(gw.url("/v1/topics/events/claims"))
        .header("x-strata-header-huge", "v".repeat(20_000))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let r = http
        .post(gw.url("/v1/topics/events/claims"))
        .header("x-strata-header-claimcheck.id", "spoof")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "ticket headers cannot be spoofed");
    assert_eq!(gw.sink.count(), 0);
    assert_eq!(gw.objects().await, Vec::<String>::new());

    // The OpenAPI document is served and covers every route.
    let doc: serde_json::Value = http
        .get(gw.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (method, path) in strata_claimcheck::http::ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} undocumented"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumable_upload_and_cli_helpers() {
    for backend in backends().await {
        let gw = start(&backend, ClaimCheckConfig::default(), MemorySink::new()).await;
        let client = HttpClaimClient::new(&gw.base_url).unwrap();
        let part_len = 5 * MIB;
        let len = 2 * part_len + 1234;
        let data = payload_bytes(11, len).await;
        let sha = hex::encode(Sha256::digest(&data));
        let state = client
            .create_upload(&NewUpload {
                topic: "events".into(),
                size: Some(len),
                sha256: Some(sha.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        let id = state.upload_id;
        let part = |n: usize| {
            data[(n - 1) * part_len as usize..(n * part_len as usize).min(data.len())].to_vec()
        };
        let send = |n: usize| {
            let body = part(n);
            let sha = hex::encode(Sha256::digest(&body));
            let client = client.clone();
            async move {
                client
                    .put_part(id, n as u32, body.clone().into(), body.len() as u64, &sha)
                    .await
            }
        };
        // Out of order, with a retried part and one corrupted attempt rejected.
        send(3).await.unwrap();
        send(1).await.unwrap();
        send(1).await.unwrap();
        let bad = client
            .put_part(id, 2, part(2).into(), part_len, &"11".repeat(32))
            .await;
        assert!(
            matches!(bad, Err(ClaimError::Remote { status: 422, .. })),
            "{bad:?}"
        );
        send(2).await.unwrap();
        let status = client.upload_status(id).await.unwrap();
        assert_eq!(
            status.parts.iter().map(|p| p.part).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let receipt = client.complete_upload(id).await.unwrap();
        assert_eq!(receipt.ticket.sha256, sha);
        assert_eq!(
            client.complete_upload(id).await.unwrap(),
            receipt,
            "complete is idempotent"
        );
        let (_, stream) = client.get(receipt.ticket.id).await.unwrap();
        let downloaded: Vec<bytes::Bytes> = stream.try_collect().await.unwrap();
        assert_eq!(downloaded.concat(), data);
        // Staged parts are gone, only the receipt stays until expiry.
        assert!(
            gw.objects().await.iter().all(|o| !o.contains("/parts/")),
            "{:?}",
            gw.objects().await
        );

        // Abort.
        let other = client
            .create_upload(&NewUpload {
                topic: "events".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        client
            .put_part(
                other.upload_id,
                1,
                b"abc".to_vec().into(),
                3,
                &hex::encode(Sha256::digest(b"abc")),
            )
            .await
            .unwrap();
        client.abort_upload(other.upload_id).await.unwrap();
        assert!(
            client
                .upload_status(other.upload_id)
                .await
                .unwrap_err()
                .is_not_found()
        );

        // CLI helpers: put with small parts, resume an interrupted upload, get with verification.
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("input.bin");
        std::fs::write(&input, &data[..(3 * MIB + 5) as usize]).unwrap();
        let mut options = strata_claimcheck::cli::PutFileOptions::new("events");
        options.part_bytes = MIB;
        options.show_progress = false;
        let resumed = client
            .create_upload(&NewUpload {
                topic: "events".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let first = data[..MIB as usize].to_vec();
        client
            .put_part(
                resumed.upload_id,
                1,
                first.clone().into(),
                MIB,
                &hex::encode(Sha256::digest(&first)),
            )
            .await
            .unwrap();
        options.resume = Some(resumed.upload_id);
        let put = strata_claimcheck::cli::put_file(&gw.base_url, &input, &options)
            .await
            .unwrap();
        assert_eq!(put.ticket.size, 3 * MIB + 5);
        let output = dir.path().join("out.bin");
        let head = strata_claimcheck::cli::get_file(&gw.base_url, put.ticket.id, &output, false)
            .await
            .unwrap();
        assert_eq!(head.sha256, put.ticket.sha256);
        assert_eq!(
            std::fs::read(&output).unwrap(),
            std::fs::read(&input).unwrap()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_never_deletes_live_payloads_and_deletes_expired_ones() {
    for backend in backends().await {
        let sink = MemorySink::new();
        // A short grace period: uploads must append their ticket within grace / 2.
        let immediate = ClaimCheckConfig {
            gc_grace: Duration::from_secs(2),
            upload_expiry: Duration::ZERO,
            ..Default::default()
        };
        let gw = start(&backend, immediate, sink.clone()).await;
        let live: ClaimReceipt = upload_generated(&gw, "events", 1, 1000, &[])
            .await
            .json()
            .await
            .unwrap();
        let expired: ClaimReceipt = upload_generated(&gw, "events", 2, 2000, &[])
            .await
            .json()
            .await
            .unwrap();
        sink.expired.lock().unwrap().insert(expired.ticket.id);
        // A payload whose upload crashed before the ticket append: sidecar without position.
        let never = ClaimId::random();
        gw.store
            .object_store()
            .put(
                &gw.store.path(ObjectKey::ClaimPayload(never)),
                b"orphan".to_vec().into(),
            )
            .await
            .unwrap();
        let mut meta = strata_claimcheck::ClaimMeta::from_ticket(&live.ticket, None);
        meta.id = never;
        gw.store
            .put_json(ObjectKey::ClaimMeta(never), &meta)
            .await
            .unwrap();
        // An abandoned resumable upload.
        let client = HttpClaimClient::new(&gw.base_url).unwrap();
        let abandoned = client
            .create_upload(&NewUpload {
                topic: "events".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(2100)).await;

        let plan = collect_garbage(&gw.service, Some(sink.as_ref()), true)
            .await
            .unwrap();
        assert!(plan.dry_run);
        let planned: Vec<_> = plan
            .actions
            .iter()
            .map(|a| (a.target.clone(), a.reason.clone()))
            .collect();
        assert!(
            planned.contains(&(
                GcTarget::Claim {
                    id: expired.ticket.id
                },
                GcReason::TicketExpired {
                    position: strata_claimcheck::RecordPosition {
                        partition: expired.partition,
                        offset: expired.offset
                    }
                }
            )),
            "{planned:?}"
        );
        assert!(
            planned.contains(&(GcTarget::Claim { id: never }, GcReason::NeverTicketed)),
            "{planned:?}"
        );
        assert!(
            planned.contains(&(
                GcTarget::Upload {
                    id: abandoned.upload_id
                },
                GcReason::UploadExpired
            )),
            "{planned:?}"
        );
        assert!(
            planned
                .iter()
                .all(|(t, _)| *t != GcTarget::Claim { id: live.ticket.id })
        );
        assert_eq!(plan.kept_live, 1);
        let http = reqwest::Client::new();
        let get = |id: ClaimId| http.get(gw.url(&format!("/v1/claims/{id}"))).send();
        assert_eq!(
            get(expired.ticket.id).await.unwrap().status(),
            200,
            "dry run deletes nothing"
        );

        let done = collect_garbage(&gw.service, Some(sink.as_ref()), false)
            .await
            .unwrap();
        assert_eq!(done.actions.len(), 3, "{done:?}");
        assert_eq!(get(expired.ticket.id).await.unwrap().status(), 404);
        assert_eq!(get(live.ticket.id).await.unwrap().status(), 200);
        let ticket: ClaimTicket = live.ticket.clone();
        let bytes: Vec<bytes::Bytes> = client
            .open(&ticket)
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        assert_eq!(bytes.concat(), payload_bytes(1, 1000).await);
        let remaining = gw.objects().await;
        assert!(
            remaining
                .iter()
                .all(|o| o.contains(&live.ticket.id.to_string())),
            "{remaining:?}"
        );

        // With a grace period, even unreferenced payloads stay while young.
        let cautious = ClaimCheckConfig {
            gc_grace: Duration::from_secs(3600),
            ..Default::default()
        };
        let gw2 = start(&backend, cautious, sink.clone()).await;
        let young: ClaimReceipt = upload_generated(&gw2, "events", 4, 10, &[])
            .await
            .json()
            .await
            .unwrap();
        sink.expired.lock().unwrap().insert(young.ticket.id);
        let report = collect_garbage(&gw2.service, Some(sink.as_ref()), false)
            .await
            .unwrap();
        assert!(report.actions.is_empty(), "{report:?}");
        assert_eq!(report.kept_young, 1);
    }
}

/// A complete that appended its ticket and then died before saving the receipt (kill -9, or
/// the receipt PUT failed): the repeated complete answers with that same ticket, and no second
/// ticket or payload appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_repeated_after_a_crash_answers_with_the_ticket_already_appended() {
    let backend = Backend::Local(tempfile::tempdir().unwrap());
    let gw = start(&backend, ClaimCheckConfig::default(), MemorySink::new()).await;
    let client = HttpClaimClient::new(&gw.base_url).unwrap();
    let data = b"a payload uploaded in one part".to_vec();
    let sha = hex::encode(Sha256::digest(&data));
    let state = client
        .create_upload(&NewUpload {
            topic: "events".into(),
            size: Some(data.len() as u64),
            sha256: Some(sha.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = state.upload_id;
    client
        .put_part(id, 1, data.clone().into(), data.len() as u64, &sha)
        .await
        .unwrap();
    let receipt = client.complete_upload(id).await.unwrap();
    assert_eq!(
        Some(receipt.ticket.id),
        state.claim_id,
        "the id fixed at creation"
    );
    let objects = gw.objects().await;

    // As the crash left it: the session is there, its receipt is not.
    gw.store
        .put_json(ObjectKey::UploadState(id), &state)
        .await
        .unwrap();
    gw.store
        .object_store()
        .delete(&gw.store.path(ObjectKey::UploadReceipt(id)))
        .await
        .unwrap();
    let again = client.complete_upload(id).await.unwrap();
    assert_eq!(again, receipt);
    assert_eq!(gw.sink.count(), 1, "one ticket");
    assert_eq!(
        gw.objects().await,
        objects,
        "the receipt is back, the session gone"
    );
}

/// A download holds its request slot until its body is sent: with `max.concurrent.requests`
/// = 1, a second request is refused (429 overloaded) while a slow reader downloads, and served
/// once that download is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_in_progress_counts_against_max_concurrent_requests() {
    let backend = Backend::Local(tempfile::tempdir().unwrap());
    let config = ClaimCheckConfig {
        max_concurrent_requests: 1,
        ..ClaimCheckConfig::default()
    };
    let gw = start(&backend, config, MemorySink::new()).await;
    let response = upload_generated(&gw, "events", 3, 64 * MIB, &[]).await;
    assert_eq!(response.status(), 201);
    let receipt: ClaimReceipt = response.json().await.unwrap();
    let url = gw.url(&format!("/v1/claims/{}", receipt.ticket.id));
    let http = reqwest::Client::new();

    // Headers received, body not read: more than the socket buffers hold is still to be sent.
    let download = http.get(&url).send().await.unwrap();
    assert_eq!(download.status(), 200);
    assert_eq!(download.content_length(), Some(64 * MIB));
    let refused = http.head(&url).send().await.unwrap();
    assert_eq!(refused.status(), 429);
    drop(download);
    let mut served = 0;
    for _ in 0..50 {
        served = http.head(&url).send().await.unwrap().status().as_u16();
        if served == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(served, 200, "the slot is free once the download is dropped");
}
