//! Property tests over the codec and dispatch: truncated, header-mutated and random frames
//! never panic; whatever decodes is dispatched and its response encodes.
//!
//! Mutations stay out of request bodies on purpose: the `kafka-protocol` 0.18 array decoders
//! pre-allocate `Vec::with_capacity(count)` from the wire count, so a mutated count aborts the
//! process (see `codec_tests::huge_array_count_probe` and the report; upstream PRs
//! kafka-protocol-rs#152/#161/#200). Truncation and header mutation cannot create such counts.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, FetchRequest, FindCoordinatorRequest, HeartbeatRequest,
    ListOffsetsRequest, MetadataRequest, ProduceRequest, RequestHeader, RequestKind,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use proptest::prelude::*;

use super::codec::{decode_request, encode_response};
use super::dispatch::{Dispatched, dispatch};
use super::test_support::TestBroker;

fn valid_frames() -> Vec<Bytes> {
    let bodies: Vec<(ApiKey, i16, RequestKind)> = vec![
        (
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ),
        (
            ApiKey::Metadata,
            9,
            RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
        ),
        (
            ApiKey::Produce,
            9,
            RequestKind::Produce(ProduceRequest::default().with_acks(1)),
        ),
        (
            ApiKey::Fetch,
            12,
            RequestKind::Fetch(FetchRequest::default()),
        ),
        (
            ApiKey::ListOffsets,
            7,
            RequestKind::ListOffsets(ListOffsetsRequest::default()),
        ),
        (
            ApiKey::FindCoordinator,
            3,
            RequestKind::FindCoordinator(FindCoordinatorRequest::default()),
        ),
        (
            ApiKey::Heartbeat,
            4,
            RequestKind::Heartbeat(HeartbeatRequest::default()),
        ),
    ];
    bodies
        .into_iter()
        .map(|(key, version, body)| {
            let header = RequestHeader::default()
                .with_request_api_key(key as i16)
                .with_request_api_version(version)
                .with_correlation_id(1)
                .with_client_id(Some(StrBytes::from_static_str("prop")));
            let mut buf = BytesMut::new();
            header
                .encode(&mut buf, key.request_header_version(version))
                .unwrap();
            body.encode(&mut buf, version).unwrap();
            buf.freeze()
        })
        .collect()
}

/// Decodes and, when that works, dispatches and encodes: nothing may panic.
fn exercise(runtime: &tokio::runtime::Runtime, broker: &TestBroker, frame: Bytes) {
    let Ok(request) = decode_request(frame) else {
        return;
    };
    let peer = "127.0.0.1:1".parse().unwrap();
    let dispatched = runtime.block_on(async {
        tokio::time::timeout(
            std::time::Duration::from_secs(5),
            dispatch(&broker.ctx, &request, peer),
        )
        .await
    });
    if let Ok(Dispatched::Respond(response)) = dispatched {
        encode_response(
            request.correlation_id(),
            request.api_key,
            request.api_version(),
            &response,
        )
        .expect("every handler answers in an encodable shape");
    }
}

fn runtime_and_broker() -> (tokio::runtime::Runtime, TestBroker) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let broker = runtime.block_on(TestBroker::start(&[]));
    (runtime, broker)
}

#[test]
fn truncated_valid_frames_never_panic() {
    let (runtime, broker) = runtime_and_broker();
    for frame in valid_frames() {
        for cut in 0..=frame.len() {
            exercise(&runtime, &broker, frame.slice(..cut));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn header_mutations_never_panic(which in 0usize..7, api_key in any::<i16>(), version in -2i16..20, tail in proptest::collection::vec(any::<u8>(), 0..4)) {
        let (runtime, broker) = runtime_and_broker();
        let frame = &valid_frames()[which];
        let mut mutated = BytesMut::new();
        mutated.put_i16(api_key);
        mutated.put_i16(version);
        mutated.put_slice(&frame[4..]);
        mutated.put_slice(&tail);
        // Only keep mutations that cannot reinterpret the body as another message's arrays.
        if api_key == i16::from_be_bytes([frame[0], frame[1]]) {
            exercise(&runtime, &broker, mutated.freeze());
        } else {
            let _ = decode_request(mutated.freeze());
        }
    }

    #[test]
    fn random_api_versions_bodies_never_panic(version in 0i16..6, body in proptest::collection::vec(any::<u8>(), 0..64)) {
        let (runtime, broker) = runtime_and_broker();
        let mut frame = BytesMut::new();
        frame.put_i16(ApiKey::ApiVersions as i16);
        frame.put_i16(version);
        frame.put_i32(7);
        frame.put_slice(&body);
        exercise(&runtime, &broker, frame.freeze());
    }
}
