//! ClaimCheck and ClaimCheckResolve against real `object_store` backends (in memory and a
//! local directory): the round trip is the identity, tickets follow the gateway's contract, and
//! a payload changed in the store is never returned.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use proptest::prelude::*;
use strata_claimcheck::store::ObjectKey;
use strata_claimcheck::{ClaimCheckConfig, ClaimId, ClaimMeta, ClaimStore, ClaimTicket};
use strata_connect_smt::{ConnectRecord, TransformChain, TransformContext, TransformError};

const THRESHOLD: usize = 1024;

struct Backend {
    store: ClaimStore,
    ctx: TransformContext,
    _dir: Option<tempfile::TempDir>,
}

fn backend(local_dir: bool, part_bytes: usize) -> Backend {
    let (object_store, dir): (Arc<dyn ObjectStore>, _) = if local_dir {
        let dir = tempfile::tempdir().unwrap();
        (
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap()),
            Some(dir),
        )
    } else {
        (Arc::new(InMemory::new()), None)
    };
    let store = ClaimStore::new(object_store, "strata/smt").unwrap();
    let gateway = ClaimCheckConfig {
        multipart_part_bytes: part_bytes,
        public_url: Some("http://gw:8080".into()),
        ..ClaimCheckConfig::default()
    };
    let ctx = TransformContext::with_claim_store(store.clone(), gateway);
    Backend {
        store,
        ctx,
        _dir: dir,
    }
}

fn chain(b: &Backend, pairs: &[(&str, &str)]) -> TransformChain {
    let props: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    TransformChain::from_properties(&props, &b.ctx).unwrap()
}

fn externalize_then_resolve(b: &Backend, field: &str) -> (TransformChain, TransformChain) {
    let threshold = THRESHOLD.to_string();
    let out = chain(
        b,
        &[
            ("transforms", "big"),
            ("transforms.big.type", "ClaimCheck"),
            ("transforms.big.field", field),
            ("transforms.big.threshold.bytes", &threshold),
            ("transforms.big.content.type", "video/mp4"),
        ],
    );
    let back = chain(
        b,
        &[
            ("transforms", "resolve"),
            ("transforms.resolve.type", "strata.ClaimCheckResolve"),
            ("transforms.resolve.field", field),
        ],
    );
    (out, back)
}

fn payload(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

fn record_with_value(value: Bytes) -> ConnectRecord {
    ConnectRecord {
        topic: "videos".into(),
        partition: Some(3),
        key: Some(Bytes::from_static(b"k1")),
        value: Some(value),
        headers: vec![
            ("trace".into(), Some(Bytes::from_static(b"abc"))),
            ("nil".into(), None),
        ],
        timestamp: 1_700_000_000_123,
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn claim_id(rec: &ConnectRecord, header: &str) -> ClaimId {
    let raw = rec.last_header(header).unwrap().unwrap();
    std::str::from_utf8(raw).unwrap().parse().unwrap()
}

fn without_claimcheck_headers(mut rec: ConnectRecord) -> ConnectRecord {
    rec.remove_headers_where(|n| n.starts_with("claimcheck."));
    rec
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// ClaimCheck then ClaimCheckResolve gives back the record, for sizes around the threshold
    /// and across the multipart boundary, on both backends and both fields.
    #[test]
    fn claim_check_then_resolve_is_identity(
        len in prop_oneof![THRESHOLD - 3..THRESHOLD + 3, 0usize..4 * THRESHOLD, 4 * THRESHOLD..20_000],
        seed in any::<u8>(),
        local_dir in any::<bool>(),
        key_field in any::<bool>(),
    ) {
        let b = backend(local_dir, 4096);
        let field = if key_field { "key" } else { "value" };
        let (out, back) = externalize_then_resolve(&b, field);
        let mut original = record_with_value(payload(len, seed));
        if key_field {
            original.key = original.value.take();
        }
        let rt = rt();
        let ticketed = rt.block_on(out.apply(original.clone())).unwrap().unwrap();
        let externalized = len >= THRESHOLD;
        let version_header = if key_field { "claimcheck.key.version" } else { "claimcheck.version" };
        prop_assert_eq!(ticketed.has_header(version_header), externalized);
        if externalized {
            prop_assert_ne!(&ticketed, &original);
        } else {
            prop_assert_eq!(&ticketed, &original);
        }
        let resolved = rt.block_on(back.apply(ticketed)).unwrap().unwrap();
        prop_assert_eq!(without_claimcheck_headers(resolved.clone()), without_claimcheck_headers(original.clone()));
        prop_assert_eq!(resolved, original);
    }
}

#[test]
fn ticket_follows_the_gateway_contract() {
    let b = backend(false, 8 << 20);
    let (out, _) = externalize_then_resolve(&b, "value");
    let value = payload(5000, 7);
    let rt = rt();
    let rec = rt
        .block_on(out.apply(record_with_value(value.clone())))
        .unwrap()
        .unwrap();
    // Original headers first, then the six contract headers in contract order.
    let names: Vec<&str> = rec.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "trace",
            "nil",
            "claimcheck.version",
            "claimcheck.id",
            "claimcheck.uri",
            "claimcheck.size",
            "claimcheck.sha256",
            "claimcheck.content-type",
        ]
    );
    let headers: Vec<(&str, &[u8])> = rec
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str(), v.as_deref()?)))
        .collect();
    let ticket = ClaimTicket::from_record(headers, rec.value.as_ref().unwrap()).unwrap();
    let via_json =
        ClaimTicket::from_record(std::iter::empty(), rec.value.as_ref().unwrap()).unwrap();
    assert_eq!(ticket, via_json);
    assert_eq!(ticket.size, 5000);
    assert_eq!(ticket.topic, "videos");
    assert_eq!(ticket.content_type, "video/mp4");
    assert_eq!(
        ticket.uri,
        format!("http://gw:8080/v1/claims/{}", ticket.id)
    );
    // The sidecar the GC and `GET /v1/claims/{id}` read is there too.
    let meta: ClaimMeta = rt.block_on(b.store.claim_meta(ticket.id)).unwrap().unwrap();
    assert_eq!(meta.ticket(), ticket);
    assert_eq!(meta.ticket_position, None);
    assert_eq!(rec.key.as_deref(), Some(&b"k1"[..]));
}

#[test]
fn tombstones_and_small_records_pass_and_non_tickets_are_untouched_by_resolve() {
    let b = backend(true, 8 << 20);
    let (out, back) = externalize_then_resolve(&b, "value");
    let rt = rt();
    let mut tomb = record_with_value(Bytes::new());
    tomb.value = None;
    assert_eq!(
        rt.block_on(out.apply(tomb.clone())).unwrap(),
        Some(tomb.clone())
    );
    assert_eq!(rt.block_on(back.apply(tomb.clone())).unwrap(), Some(tomb));
    // A JSON-looking value without ticket headers is not a ticket.
    let plain = record_with_value(Bytes::from_static(br#"{"version":1}"#));
    assert_eq!(rt.block_on(back.apply(plain.clone())).unwrap(), Some(plain));
}

#[test]
fn key_and_value_tickets_coexist() {
    let b = backend(false, 8 << 20);
    let both = chain(
        &b,
        &[
            ("transforms", "k,v"),
            ("transforms.k.type", "ClaimCheck"),
            ("transforms.k.field", "key"),
            ("transforms.k.threshold.bytes", "10"),
            ("transforms.v.type", "ClaimCheck"),
            ("transforms.v.threshold.bytes", "10"),
        ],
    );
    let back = chain(
        &b,
        &[
            ("transforms", "v,k"),
            ("transforms.k.type", "ClaimCheckResolve"),
            ("transforms.k.field", "key"),
            ("transforms.v.type", "ClaimCheckResolve"),
        ],
    );
    let mut original = record_with_value(payload(100, 1));
    original.key = Some(payload(50, 2));
    let rt = rt();
    let ticketed = rt.block_on(both.apply(original.clone())).unwrap().unwrap();
    assert_ne!(
        claim_id(&ticketed, "claimcheck.id"),
        claim_id(&ticketed, "claimcheck.key.id")
    );
    assert_eq!(
        rt.block_on(back.apply(ticketed)).unwrap().unwrap(),
        original
    );
}

/// Externalizes one record and returns (ticketed record, resolve chain, payload path).
fn stored_ticket(
    b: &Backend,
    max_bytes: Option<&str>,
) -> (ConnectRecord, TransformChain, object_store::path::Path) {
    let (out, _) = externalize_then_resolve(b, "value");
    let mut pairs = vec![
        ("transforms", "resolve"),
        ("transforms.resolve.type", "ClaimCheckResolve"),
    ];
    if let Some(m) = max_bytes {
        pairs.push(("transforms.resolve.max.bytes", m));
    }
    let back = chain(b, &pairs);
    let rec = rt()
        .block_on(out.apply(record_with_value(payload(3000, 9))))
        .unwrap()
        .unwrap();
    let path = b
        .store
        .path(ObjectKey::ClaimPayload(claim_id(&rec, "claimcheck.id")));
    (rec, back, path)
}

#[test]
fn corrupted_payload_fails_with_hash_mismatch_never_wrong_bytes() {
    for local_dir in [false, true] {
        let b = backend(local_dir, 8 << 20);
        let (rec, back, path) = stored_ticket(&b, None);
        let rt = rt();
        let mut corrupted = payload(3000, 9).to_vec();
        corrupted[1234] ^= 0x01; // same length, one bit flipped
        rt.block_on(
            b.store
                .object_store()
                .put(&path, PutPayload::from(corrupted)),
        )
        .unwrap();
        let err = rt.block_on(back.apply(rec)).unwrap_err();
        assert!(matches!(err, TransformError::HashMismatch { .. }), "{err}");
        assert!(err.is_integrity_failure() && !err.is_retryable());
        assert_eq!(err.transform(), "resolve");
        assert!(err.to_string().contains("hash mismatch"), "{err}");
    }
}

#[test]
fn truncated_or_extended_payload_fails_with_size_mismatch() {
    let b = backend(true, 8 << 20);
    let rt = rt();
    for new_len in [2999, 3001, 0] {
        let (rec, back, path) = stored_ticket(&b, None);
        let changed = payload(new_len, 9);
        rt.block_on(b.store.object_store().put(&path, PutPayload::from(changed)))
            .unwrap();
        let err = rt.block_on(back.apply(rec)).unwrap_err();
        assert!(
            matches!(err, TransformError::SizeMismatch { expected: 3000, .. }),
            "{err}"
        );
    }
}

#[test]
fn tampered_ticket_digest_fails_with_hash_mismatch() {
    let b = backend(false, 8 << 20);
    let (mut rec, back, _) = stored_ticket(&b, None);
    for (name, value) in &mut rec.headers {
        if name == "claimcheck.sha256" {
            *value = Some(Bytes::from("0".repeat(64)));
        }
    }
    let err = rt().block_on(back.apply(rec)).unwrap_err();
    assert!(matches!(err, TransformError::HashMismatch { .. }), "{err}");
}

#[test]
fn missing_payload_and_max_bytes_and_bad_tickets() {
    let b = backend(false, 8 << 20);
    let rt = rt();

    let (rec, back, path) = stored_ticket(&b, None);
    rt.block_on(b.store.object_store().delete(&path)).unwrap();
    let err = rt.block_on(back.apply(rec)).unwrap_err();
    assert!(
        matches!(err, TransformError::PayloadMissing { .. }),
        "{err}"
    );

    let (rec, back, _) = stored_ticket(&b, Some("2999"));
    let err = rt.block_on(back.apply(rec)).unwrap_err();
    assert!(
        matches!(
            err,
            TransformError::PayloadTooLarge {
                size: 3000,
                limit: 2999,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("transforms.resolve.max.bytes=2999"),
        "{err}"
    );

    let (mut rec, back, _) = stored_ticket(&b, None);
    rec.headers.retain(|(n, _)| n != "claimcheck.id");
    let err = rt.block_on(back.apply(rec)).unwrap_err();
    assert!(matches!(err, TransformError::InvalidTicket { .. }), "{err}");
    assert!(err.is_record_error());

    let (mut rec, back, _) = stored_ticket(&b, None);
    rec.add_header("claimcheck.version", Some(Bytes::from_static(b"2")));
    let err = rt.block_on(back.apply(rec)).unwrap_err();
    assert!(
        err.to_string().contains("unsupported ticket version 2"),
        "{err}"
    );
}

#[test]
fn externalizing_a_record_that_already_has_ticket_headers_is_refused() {
    let b = backend(false, 8 << 20);
    let (out, _) = externalize_then_resolve(&b, "value");
    let mut rec = record_with_value(payload(5000, 3));
    rec.add_header("claimcheck.id", Some(Bytes::from_static(b"spoofed")));
    let err = rt().block_on(out.apply(rec)).unwrap_err();
    assert!(
        matches!(err, TransformError::ReservedHeader { ref header, .. } if header == "claimcheck.id"),
        "{err}"
    );
}
