//! The HTTP API (axum): routes, request guards, error bodies and the OpenAPI document.
//!
//! Every route is declared once in [`define_routes!`], which builds the router and the
//! [`ROUTES`] table the OpenAPI coverage test checks.

mod claims;
pub mod errors;
pub mod openapi;
mod uploads;

pub use claims::{UploadQuery, parse_range};

use axum::Router;
use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use futures::TryStreamExt;

use crate::error::ClaimError;
use crate::service::ClaimCheckService;
use crate::upload::ByteStream;

macro_rules! define_routes {
    ($($path:literal => { $($method:ident: $handler:path),+ $(,)? })*) => {
        /// Every `(method, path)` the router serves, in OpenAPI path syntax.
        pub const ROUTES: &[(&str, &str)] = &[$($((stringify!($method), $path)),+),*];

        fn routes() -> Router<ClaimCheckService> {
            Router::new()$(.route($path, MethodRouter::new()$(.$method($handler))+))*
        }
    };
}

define_routes! {
    "/v1/topics/{topic}/claims" => { post: claims::upload_claim }
    "/v1/claims/{id}" => { get: claims::download_claim, head: claims::head_claim }
    "/v1/uploads" => { post: uploads::create_upload }
    "/v1/uploads/{id}" => { get: uploads::upload_status, delete: uploads::abort_upload }
    "/v1/uploads/{id}/parts/{n}" => { put: uploads::put_part }
    "/v1/uploads/{id}/complete" => { post: uploads::complete_upload }
    "/v1/openapi.json" => { get: openapi::serve_openapi }
}

/// The router with state applied. Mount it on the broker's listener (`Router::merge`).
pub fn router(service: ClaimCheckService) -> Router {
    routes()
        .fallback(|| async { ClaimError::NotFound("route".into()) })
        .layer(middleware::from_fn_with_state(
            service.clone(),
            request_guard,
        ))
        .with_state(service)
}

/// Rejects oversized headers (431), requests above `max.requests.per.second` (429
/// `rate_limited`) and requests beyond `max.concurrent.requests` (429 `overloaded`).
async fn request_guard(
    State(service): State<ClaimCheckService>,
    request: Request,
    next: Next,
) -> Response {
    let limit = service.config().max_header_bytes;
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + request.uri().to_string().len();
    if header_bytes > limit {
        return ClaimError::HeadersTooLarge { limit }.into_response();
    }
    if let Err(e) = service.check_request_rate() {
        return e.into_response();
    }
    let _slot = match service.try_request_slot() {
        Ok(slot) => slot,
        Err(e) => return e.into_response(),
    };
    next.run(request).await
}

/// The request body as a [`ByteStream`]; a transport error (client gone, truncated body) becomes
/// `BodyAborted`.
pub(crate) fn body_stream(body: axum::body::Body) -> ByteStream {
    Box::pin(
        body.into_data_stream()
            .map_err(|e| ClaimError::BodyAborted(e.to_string())),
    )
}

/// Runs an upload on a detached task so that a dropped request future (client gone) cannot
/// interrupt it between "object stored" and "ticket appended" or leave a multipart upload open:
/// the task sees the body fail instead and cleans up.
pub(crate) async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = crate::Result<T>> + Send + 'static,
) -> crate::Result<T> {
    tokio::spawn(work)
        .await
        .map_err(|e| ClaimError::Internal(format!("upload task failed: {e}")))?
}
