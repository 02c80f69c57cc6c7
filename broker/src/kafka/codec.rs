//! The sans-io Kafka codec: bytes in, typed requests out; typed responses in, bytes out.
//!
//! Nothing here touches a socket, so the whole protocol surface is testable (and fuzzable) with
//! plain byte buffers. The connection layer owns the I/O and calls, per request:
//!
//! ```text
//!   [len: i32][ frame ................................ ]
//!    frame_length()  decode_request(frame) -> DecodedRequest | CodecError
//!                    ... dispatch ...
//!                    encode_response(correlation_id, api_key, version, &ResponseKind) -> [len][header][body]
//! ```
//!
//! Errors are classified by what the connection must do next: an unsupported ApiVersions
//! version still gets an answer (Kafka's v0-format `UNSUPPORTED_VERSION` reply carrying our
//! version table, so clients can downgrade); everything else closes the connection, because the
//! stream position after a request we cannot parse is meaningless for the client.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, RequestHeader, RequestKind, ResponseHeader, ResponseKind,
};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::versions;

/// Bytes of the big-endian `i32` size that precedes every request and response.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Kafka's default `socket.request.max.bytes`.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 104_857_600;

/// The smallest frame that carries a request header (api key, version, correlation id).
const MIN_HEADER_BYTES: usize = 8;

/// A length prefix that must not be honoured.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("request of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge { size: usize, max: usize },
    #[error("negative request size {size}")]
    Negative { size: i32 },
}

/// Validates a length prefix before anything is allocated for the frame it announces.
pub fn frame_length(
    prefix: [u8; LENGTH_PREFIX_BYTES],
    max_request_bytes: usize,
) -> Result<usize, FrameError> {
    let size = i32::from_be_bytes(prefix);
    let size_usize = usize::try_from(size).map_err(|_| FrameError::Negative { size })?;
    if size_usize > max_request_bytes {
        return Err(FrameError::TooLarge {
            size: size_usize,
            max: max_request_bytes,
        });
    }
    Ok(size_usize)
}

/// A request that parsed completely at a version we support.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedRequest {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: RequestKind,
}

impl DecodedRequest {
    pub fn api_version(&self) -> i16 {
        self.header.request_api_version
    }

    pub fn correlation_id(&self) -> i32 {
        self.header.correlation_id
    }
}

/// Why a frame did not produce a request.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CodecError {
    #[error("request frame of {len} bytes is too short for a request header")]
    Truncated { len: usize },
    #[error("unknown api key {api_key} (correlation id {correlation_id})")]
    UnknownApiKey { api_key: i16, correlation_id: i32 },
    #[error("unsupported version {api_version} of {api_key:?} (correlation id {correlation_id})")]
    UnsupportedVersion {
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
    },
    #[error(
        "malformed {api_key:?} v{api_version} request (correlation id {correlation_id}): {reason}"
    )]
    Malformed {
        api_key: ApiKey,
        api_version: i16,
        correlation_id: i32,
        reason: String,
    },
}

impl CodecError {
    /// The bytes to send before closing, when Kafka answers this error instead of just closing.
    ///
    /// Only an ApiVersions request at a version we do not know is answered: with a v0 body
    /// (`error_code = UNSUPPORTED_VERSION` plus our version table) under a v0 response header,
    /// which every client can parse whatever version it sent. The connection then stays open.
    pub fn reply(&self) -> Option<Bytes> {
        match self {
            CodecError::UnsupportedVersion {
                api_key: ApiKey::ApiVersions,
                correlation_id,
                ..
            } => {
                let body = api_versions_body(ResponseError::UnsupportedVersion.code());
                encode_response(
                    *correlation_id,
                    ApiKey::ApiVersions,
                    0,
                    &ResponseKind::ApiVersions(body),
                )
                .ok()
            }
            _ => None,
        }
    }

    /// Whether the connection can keep serving after this error (the client got an answer).
    pub fn keeps_connection(&self) -> bool {
        self.reply().is_some()
    }
}

/// Decodes one frame (the bytes after the length prefix) into a header and a typed body.
pub fn decode_request(mut frame: Bytes) -> Result<DecodedRequest, CodecError> {
    if frame.len() < MIN_HEADER_BYTES {
        return Err(CodecError::Truncated { len: frame.len() });
    }
    let mut peek = &frame[..MIN_HEADER_BYTES];
    let raw_api_key = peek.get_i16();
    let api_version = peek.get_i16();
    let correlation_id = peek.get_i32();

    let api_key = ApiKey::try_from(raw_api_key).map_err(|()| CodecError::UnknownApiKey {
        api_key: raw_api_key,
        correlation_id,
    })?;
    let supported = versions::supported_versions(api_key)
        .filter(|range| range.min <= api_version && api_version <= range.max);
    if supported.is_none() {
        return Err(CodecError::UnsupportedVersion {
            api_key,
            api_version,
            correlation_id,
        });
    }
    let malformed = |err: anyhow::Error| CodecError::Malformed {
        api_key,
        api_version,
        correlation_id,
        reason: format!("{err:#}"),
    };

    let header_version = api_key.request_header_version(api_version);
    let header = RequestHeader::decode(&mut frame, header_version).map_err(malformed)?;
    let body = RequestKind::decode(api_key, &mut frame, api_version).map_err(malformed)?;
    Ok(DecodedRequest {
        api_key,
        header,
        body,
    })
}

/// Encodes `[length][response header][body]` for the request's api key and version.
pub fn encode_response(
    correlation_id: i32,
    api_key: ApiKey,
    api_version: i16,
    body: &ResponseKind,
) -> anyhow::Result<Bytes> {
    let header_version = api_key.response_header_version(api_version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0); // patched below
    header.encode(&mut buf, header_version)?;
    body.encode(&mut buf, api_version)?;
    let size = i32::try_from(buf.len() - LENGTH_PREFIX_BYTES)?;
    buf[..LENGTH_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// The ApiVersions response body: our version table plus `error_code`.
pub fn api_versions_body(error_code: i16) -> ApiVersionsResponse {
    let api_keys = versions::all_supported()
        .map(|(key, range)| {
            ApiVersion::default()
                .with_api_key(key as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect();
    ApiVersionsResponse::default()
        .with_error_code(error_code)
        .with_api_keys(api_keys)
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
