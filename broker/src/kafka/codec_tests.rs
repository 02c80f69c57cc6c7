use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiVersionsRequest, MetadataRequest, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use super::*;

fn request_frame(api_key: ApiKey, version: i16, correlation_id: i32, body: &RequestKind) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("test")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, api_key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    buf.freeze()
}

#[test]
fn length_prefix_is_checked_before_allocation() {
    assert_eq!(frame_length(100i32.to_be_bytes(), 1000), Ok(100));
    assert_eq!(
        frame_length(1001i32.to_be_bytes(), 1000),
        Err(FrameError::TooLarge {
            size: 1001,
            max: 1000
        })
    );
    assert_eq!(
        frame_length((-5i32).to_be_bytes(), 1000),
        Err(FrameError::Negative { size: -5 })
    );
}

#[test]
fn every_supported_version_of_api_versions_and_metadata_round_trips() {
    for version in 0..=4 {
        let body = RequestKind::ApiVersions(ApiVersionsRequest::default());
        let decoded =
            decode_request(request_frame(ApiKey::ApiVersions, version, 7, &body)).unwrap();
        assert_eq!(decoded.api_key, ApiKey::ApiVersions);
        assert_eq!(decoded.correlation_id(), 7);
        assert_eq!(decoded.body, body);
    }
    for version in 0..=12 {
        let body = RequestKind::Metadata(MetadataRequest::default().with_topics(if version == 0 {
            Some(vec![])
        } else {
            None
        }));
        let decoded = decode_request(request_frame(ApiKey::Metadata, version, 9, &body)).unwrap();
        assert_eq!(decoded.api_version(), version);
    }
}

#[test]
fn short_unknown_and_unsupported_frames_are_classified() {
    assert_eq!(
        decode_request(Bytes::from_static(&[0, 18, 0])),
        Err(CodecError::Truncated { len: 3 })
    );
    let mut unknown = BytesMut::new();
    unknown.put_i16(999);
    unknown.put_i16(0);
    unknown.put_i32(42);
    assert_eq!(
        decode_request(unknown.freeze()),
        Err(CodecError::UnknownApiKey {
            api_key: 999,
            correlation_id: 42
        })
    );
    let too_new = request_frame(
        ApiKey::Metadata,
        12,
        5,
        &RequestKind::Metadata(MetadataRequest::default()),
    );
    let mut too_new = BytesMut::from(&too_new[..]);
    too_new[2..4].copy_from_slice(&99i16.to_be_bytes());
    assert!(matches!(
        decode_request(too_new.freeze()),
        Err(CodecError::UnsupportedVersion {
            api_key: ApiKey::Metadata,
            api_version: 99,
            correlation_id: 5
        })
    ));
}

#[test]
fn truncated_body_is_malformed_not_a_panic() {
    let frame = request_frame(
        ApiKey::ApiVersions,
        3,
        1,
        &RequestKind::ApiVersions(
            ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("a-long-client-name")),
        ),
    );
    let cut = frame.slice(..frame.len() - 6);
    assert!(matches!(
        decode_request(cut),
        Err(CodecError::Malformed { .. })
    ));
}

#[test]
fn unsupported_api_versions_gets_a_v0_reply_with_our_table() {
    let error = CodecError::UnsupportedVersion {
        api_key: ApiKey::ApiVersions,
        api_version: 77,
        correlation_id: 3,
    };
    let reply = error.reply().expect("ApiVersions is answered");
    let mut body = reply.slice(LENGTH_PREFIX_BYTES..);
    assert_eq!(
        i32::from_be_bytes(reply[..4].try_into().unwrap()) as usize,
        body.len()
    );
    let header = ResponseHeader::decode(&mut body, 0).unwrap();
    assert_eq!(header.correlation_id, 3);
    let response = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(
        response.error_code,
        ResponseError::UnsupportedVersion.code()
    );
    assert!(
        response
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Fetch as i16)
    );
    assert!(error.keeps_connection());
    let other = CodecError::UnsupportedVersion {
        api_key: ApiKey::Fetch,
        api_version: 77,
        correlation_id: 3,
    };
    assert!(other.reply().is_none());
}

#[test]
fn responses_carry_length_and_flexible_headers() {
    let body = ResponseKind::ApiVersions(api_versions_body(0));
    let bytes = encode_response(11, ApiKey::ApiVersions, 3, &body).unwrap();
    let mut rest = bytes.slice(LENGTH_PREFIX_BYTES..);
    // ApiVersions responses always use header v0, even for flexible versions.
    assert_eq!(
        ResponseHeader::decode(&mut rest, 0).unwrap().correlation_id,
        11
    );
    let decoded = ApiVersionsResponse::decode(&mut rest, 3).unwrap();
    assert_eq!(decoded, api_versions_body(0));
    assert!(rest.is_empty());
}

/// Allocation amplification in the crate's decoders: an array count of i32::MAX in a 30-byte
/// frame makes the decoder reserve ~200 GB before reading an element. Under jemalloc (the
/// binary's and these tests' allocator) the reservation is lazy and the decode fails cleanly;
/// under the system allocator this test would abort the process.
#[test]
fn huge_array_count_probe() {
    let mut frame = BytesMut::new();
    frame.put_i16(ApiKey::Produce as i16);
    frame.put_i16(7);
    frame.put_i32(1);
    frame.put_i16(-1); // client id null
    frame.put_i16(-1); // transactional id null
    frame.put_i16(1); // acks
    frame.put_i32(1000); // timeout
    frame.put_i32(i32::MAX); // topic_data count
    let result = decode_request(frame.freeze());
    assert!(
        matches!(result, Err(CodecError::Malformed { .. })),
        "{result:?}"
    );
}
