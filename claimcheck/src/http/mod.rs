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
    let slot = match service.try_request_slot() {
        Ok(slot) => slot,
        Err(e) => return e.into_response(),
    };
    // The slot is held until the response body is sent (or dropped): a download streams long
    // after its handler returned, and counts against the limit all that time.
    let (parts, body) = next.run(request).await.into_parts();
    Response::from_parts(
        parts,
        axum::body::Body::new(SlotHeldBody {
            inner: body,
            _slot: slot,
        }),
    )
}

/// A response body that keeps its request slot until it is sent or dropped.
struct SlotHeldBody {
    inner: axum::body::Body,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

impl http_body::Body for SlotHeldBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
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
