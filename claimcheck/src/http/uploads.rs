//! `/v1/uploads/...`: the resumable upload API ([`crate::resumable`]).

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{body_stream, detached};
use crate::error::{ClaimError, Result};
use crate::resumable::{self, NewUpload};
use crate::service::ClaimCheckService;
use crate::ticket::{UploadId, parse_sha256_hex};

fn upload_id(raw: &str) -> Result<UploadId> {
    raw.parse()
}

pub(crate) async fn create_upload(
    State(service): State<ClaimCheckService>,
    body: std::result::Result<Json<NewUpload>, JsonRejection>,
) -> Result<Response> {
    let Json(request) = body.map_err(|e| ClaimError::BadRequest(e.body_text()))?;
    let state = resumable::create_upload(&service, request).await?;
    Ok((StatusCode::CREATED, Json(state)).into_response())
}

pub(crate) async fn upload_status(
    State(service): State<ClaimCheckService>,
    Path(id): Path<String>,
) -> Result<Response> {
    let status = resumable::upload_status(&service, upload_id(&id)?).await?;
    Ok(Json(status).into_response())
}

pub(crate) async fn put_part(
    State(service): State<ClaimCheckService>,
    Path((id, part)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response> {
    let id = upload_id(&id)?;
    let part: u32 = part
        .parse()
        .map_err(|_| ClaimError::BadRequest(format!("part number {part:?} is not a number")))?;
    let expected_size = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let expected_sha256 = match headers.get(super::claims::HEADER_SHA256) {
        Some(v) => Some(v.to_str().ok().and_then(parse_sha256_hex).ok_or_else(|| {
            ClaimError::BadRequest("X-Strata-Sha256 is not 64 hex digits".into())
        })?),
        None => None,
    };
    let stream = body_stream(body);
    let svc = service.clone();
    let info = detached(async move {
        resumable::put_part(&svc, id, part, stream, expected_size, expected_sha256).await
    })
    .await?;
    Ok(Json(info).into_response())
}

pub(crate) async fn complete_upload(
    State(service): State<ClaimCheckService>,
    Path(id): Path<String>,
) -> Result<Response> {
    let id = upload_id(&id)?;
    let svc = service.clone();
    let (receipt, created) =
        detached(async move { resumable::complete_upload(&svc, id).await }).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(receipt)).into_response())
}

pub(crate) async fn abort_upload(
    State(service): State<ClaimCheckService>,
    Path(id): Path<String>,
) -> Result<Response> {
    resumable::abort_upload(&service, upload_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
