//! JSON error bodies: `{"error": {"code": "...", "message": "...", "lines": [...]?}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::{error, warn};

use crate::error::ClaimError;

impl IntoResponse for ClaimError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            error!(code = self.code(), error = %self, "claim-check request failed");
        } else {
            warn!(code = self.code(), error = %self, "claim-check request rejected");
        }
        let mut body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        if let ClaimError::MalformedCsv { rows } = &self {
            body["error"]["rows"] = json!(rows);
        }
        let mut response = (status, Json(body)).into_response();
        if let ClaimError::RateLimited { retry_after, .. } = &self {
            // Whole seconds (RFC 9110), at least 1.
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(seconds.max(1)),
            );
        }
        if let ClaimError::RangeNotSatisfiable { size } = self
            && let Ok(value) = format!("bytes */{size}").parse()
        {
            response
                .headers_mut()
                .insert(axum::http::header::CONTENT_RANGE, value);
        }
        response
    }
}

/// Parses an error body produced by [`IntoResponse for ClaimError`] back (used by the client).
pub fn error_from_body(status: u16, body: &[u8]) -> ClaimError {
    let parsed: Option<(String, String)> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let e = v.get("error")?;
            Some((
                e.get("code")?.as_str()?.to_string(),
                e.get("message")?.as_str()?.to_string(),
            ))
        });
    let (code, message) = parsed.unwrap_or_else(|| {
        (
            "http".to_string(),
            String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        )
    });
    ClaimError::Remote {
        status,
        code,
        message,
    }
}
