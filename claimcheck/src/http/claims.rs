//! `POST /v1/topics/{topic}/claims` (reference, chunked and CSV modes) and
//! `GET|HEAD /v1/claims/{id}` (streamed download with Range support).

use std::ops::Range;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use super::{body_stream, detached};
use crate::chunked::produce_chunked;
use crate::csv_split::{CsvOptions, produce_csv};
use crate::error::{ClaimError, Result};
use crate::service::ClaimCheckService;
use crate::store::ClaimMeta;
use crate::ticket::{ClaimId, parse_sha256_hex};
use crate::upload::{ClaimRequest, store_claim};

/// Query parameters of `POST /v1/topics/{topic}/claims`.
#[derive(Debug, Default, Deserialize)]
pub struct UploadQuery {
    pub key: Option<String>,
    pub partition: Option<i32>,
    /// `reference` (default), `chunked` or `csv`.
    pub mode: Option<String>,
    /// CSV: `json` (default) or `raw`.
    pub format: Option<String>,
    pub key_column: Option<String>,
    /// CSV: `reject` (default) or `skip`.
    pub on_error: Option<String>,
}

pub const HEADER_KEY: &str = "x-strata-key";
pub const HEADER_SHA256: &str = "x-strata-sha256";
pub const HEADER_SIZE: &str = "x-strata-size";
pub const HEADER_PREFIX: &str = "x-strata-header-";

pub(crate) async fn upload_claim(
    State(service): State<ClaimCheckService>,
    Path(topic): Path<String>,
    query: std::result::Result<Query<UploadQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let Query(query) = query.map_err(|e| ClaimError::BadRequest(e.body_text()))?;
    let request = claim_request(&topic, &query, &headers)?;
    let is_csv_type = request.content_type.starts_with("text/csv");
    let mode = query
        .mode
        .as_deref()
        .unwrap_or(if is_csv_type { "csv" } else { "reference" });
    let body = body_stream(body);
    match mode {
        "reference" => {
            let svc = service.clone();
            let receipt = detached(async move { store_claim(&svc, request, body).await }).await?;
            Ok((StatusCode::CREATED, Json(receipt)).into_response())
        }
        "chunked" => {
            let svc = service.clone();
            let receipt =
                detached(async move { produce_chunked(&svc, request, body).await }).await?;
            Ok((StatusCode::CREATED, Json(receipt)).into_response())
        }
        "csv" => {
            let options = CsvOptions::from_query(&query)?;
            let svc = service.clone();
            let receipt =
                detached(async move { produce_csv(&svc, request, options, body).await }).await?;
            Ok((StatusCode::CREATED, Json(receipt)).into_response())
        }
        other => Err(ClaimError::BadRequest(format!(
            "unknown mode {other:?}: expected reference, chunked or csv"
        ))),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ClaimError::BadRequest(format!("header {name} is not visible ASCII")))
        })
        .transpose()
}

/// Builds the request description from path, query and headers (no body read yet).
pub(crate) fn claim_request(
    topic: &str,
    query: &UploadQuery,
    headers: &HeaderMap,
) -> Result<ClaimRequest> {
    crate::ticket::validate_topic(topic)?;
    let key = match (&query.key, headers.get(HEADER_KEY)) {
        (Some(k), _) => Some(Bytes::from(k.clone())),
        (None, Some(v)) => Some(Bytes::copy_from_slice(v.as_bytes())),
        (None, None) => None,
    };
    let extra_headers = headers
        .iter()
        .filter_map(|(name, value)| {
            let record_name = name.as_str().strip_prefix(HEADER_PREFIX)?;
            Some((
                record_name.to_string(),
                Bytes::copy_from_slice(value.as_bytes()),
            ))
        })
        .collect();
    let content_type = header_str(headers, header::CONTENT_TYPE.as_str())?
        .unwrap_or("application/octet-stream")
        .to_string();
    let declared_size = |name: &str| -> Result<Option<u64>> {
        header_str(headers, name)?
            .map(|v| {
                v.trim().parse::<u64>().map_err(|_| {
                    ClaimError::BadRequest(format!("header {name} is not a byte count"))
                })
            })
            .transpose()
    };
    let expected_size = match declared_size(HEADER_SIZE)? {
        Some(size) => Some(size),
        None => declared_size(header::CONTENT_LENGTH.as_str())?,
    };
    Ok(ClaimRequest {
        topic: topic.to_string(),
        partition: query.partition,
        key,
        headers: extra_headers,
        content_type,
        expected_size,
        expected_sha256: expected_sha256(headers)?,
    })
}

/// `X-Strata-Sha256: <hex>`, or `Digest: sha-256=<base64>` (RFC 3230), or
/// `Content-Digest: sha-256=:<base64>:` (RFC 9530).
fn expected_sha256(headers: &HeaderMap) -> Result<Option<[u8; 32]>> {
    if let Some(hex) = header_str(headers, HEADER_SHA256)? {
        return parse_sha256_hex(hex)
            .map(Some)
            .ok_or_else(|| ClaimError::BadRequest("X-Strata-Sha256 is not 64 hex digits".into()));
    }
    for name in ["content-digest", "digest"] {
        let Some(value) = header_str(headers, name)? else {
            continue;
        };
        for item in value.split(',') {
            let Some((algorithm, encoded)) = item.trim().split_once('=') else {
                continue;
            };
            if !algorithm.eq_ignore_ascii_case("sha-256") {
                continue;
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim().trim_matches(':'))
                .map_err(|_| ClaimError::BadRequest(format!("{name}: sha-256 is not base64")))?;
            let digest: [u8; 32] = raw
                .try_into()
                .map_err(|_| ClaimError::BadRequest(format!("{name}: sha-256 is not 32 bytes")))?;
            return Ok(Some(digest));
        }
    }
    Ok(None)
}

async fn load_meta(service: &ClaimCheckService, id: &str) -> Result<ClaimMeta> {
    let id: ClaimId = id.parse()?;
    service
        .store()
        .claim_meta(id)
        .await?
        .ok_or_else(|| ClaimError::NotFound(format!("claim {id}")))
}

fn metadata_headers(meta: &ClaimMeta) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut set = |name: &str, value: String| {
        if let (Ok(n), Ok(v)) = (
            name.parse::<header::HeaderName>(),
            HeaderValue::from_str(&value),
        ) {
            headers.insert(n, v);
        }
    };
    set(header::ETAG.as_str(), format!("\"{}\"", meta.sha256));
    set(header::CONTENT_TYPE.as_str(), meta.content_type.clone());
    set(header::ACCEPT_RANGES.as_str(), "bytes".into());
    set(HEADER_SHA256, meta.sha256.clone());
    set("x-strata-topic", meta.topic.clone());
    set("x-strata-created-at", meta.created_at.clone());
    headers
}

pub(crate) async fn head_claim(
    State(service): State<ClaimCheckService>,
    Path(id): Path<String>,
) -> Result<Response> {
    let meta = load_meta(&service, &id).await?;
    let mut headers = metadata_headers(&meta);
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    Ok((StatusCode::OK, headers).into_response())
}

pub(crate) async fn download_claim(
    State(service): State<ClaimCheckService>,
    Path(id): Path<String>,
    request_headers: HeaderMap,
) -> Result<Response> {
    let meta = load_meta(&service, &id).await?;
    let mut headers = metadata_headers(&meta);
    let etag = format!("\"{}\"", meta.sha256);
    if header_str(&request_headers, header::IF_NONE_MATCH.as_str())?
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let range = match header_str(&request_headers, header::RANGE.as_str())? {
        Some(spec) => parse_range(spec, meta.size)?,
        None => None,
    };
    let (status, read_range) = match range {
        Some(r) => {
            let content_range = format!("bytes {}-{}/{}", r.start, r.end - 1, meta.size);
            headers.insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&content_range).expect("ascii"),
            );
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(r.end - r.start));
            (StatusCode::PARTIAL_CONTENT, Some(r))
        }
        None => {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
            (StatusCode::OK, None)
        }
    };
    let stream = if meta.size == 0 {
        Box::pin(futures::stream::empty()) as crate::upload::ByteStream
    } else {
        service.store().read_payload(meta.id, read_range).await?
    };
    Ok((status, headers, Body::from_stream(stream)).into_response())
}

/// Parses a single-range `Range: bytes=...` header against a payload of `size` bytes.
/// `Ok(None)` means "serve everything": unsupported units, multiple ranges and invalid range
/// specs (malformed numbers, a last position before the first) are ignored, as RFC 9110 says;
/// a valid range outside the payload is `RangeNotSatisfiable`.
pub fn parse_range(spec: &str, size: u64) -> Result<Option<Range<u64>>> {
    let Some(set) = spec.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if set.contains(',') {
        return Ok(None);
    }
    let Some((first, last)) = set.trim().split_once('-') else {
        return Ok(None);
    };
    let (first, last) = (first.trim(), last.trim());
    let number = |s: &str| s.parse::<u64>().ok();
    let unsatisfiable = ClaimError::RangeNotSatisfiable { size };
    let range = match (first.is_empty(), last.is_empty()) {
        (true, true) => return Ok(None),
        (true, false) => {
            let Some(suffix) = number(last) else {
                return Ok(None);
            };
            if suffix == 0 || size == 0 {
                return Err(unsatisfiable);
            }
            size.saturating_sub(suffix)..size
        }
        (false, open_end) => {
            let Some(start) = number(first) else {
                return Ok(None);
            };
            let end = if open_end {
                size
            } else {
                match number(last) {
                    Some(last) if last >= start => last.saturating_add(1).min(size),
                    _ => return Ok(None),
                }
            };
            if start >= size {
                return Err(unsatisfiable);
            }
            start..end
        }
    };
    Ok(Some(range))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100).unwrap(), Some(0..10));
        assert_eq!(parse_range("bytes=90-", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-10", 100).unwrap(), Some(90..100));
        assert_eq!(parse_range("bytes=-1000", 100).unwrap(), Some(0..100));
        assert_eq!(parse_range("bytes=50-1000", 100).unwrap(), Some(50..100));
        assert_eq!(parse_range("items=0-1", 100).unwrap(), None);
        assert!(parse_range("bytes=100-", 100).is_err());
        // Invalid specs are ignored (the whole payload), not refused.
        assert_eq!(parse_range("bytes=5-2", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=x-2", 100).unwrap(), None);
        assert_eq!(parse_range("bytes=-", 100).unwrap(), None);
        // A last position past the end, however large, means "to the end".
        assert_eq!(
            parse_range("bytes=0-18446744073709551615", 100).unwrap(),
            Some(0..100)
        );
    }
}
