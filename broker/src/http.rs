//! The HTTP listener: health, Prometheus metrics, and (mounted by the binary) the claim-check API.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::TryStreamExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};
use serde_json::json;

use crate::metrics::MetricsHandle;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route template, e.g. `/v1/claims/{id}`, so ids do not explode the label space.
    pub route: String,
    pub method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

/// Requests, latency and request-body bytes of every HTTP route (claim-check uploads and
/// downloads, export jobs, tier status, health, metrics).
#[derive(Clone)]
pub struct HttpMetrics {
    requests: Family<StatusLabels, Counter>,
    seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    request_bytes: Family<RouteLabels, Counter>,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        fn latency() -> Histogram {
            // 1 ms .. ~9 min: a health check up to a multi-GB upload.
            Histogram::new(exponential_buckets(0.001, 2.0, 20))
        }
        Self {
            requests: Family::default(),
            seconds: Family::new_with_constructor(latency),
            request_bytes: Family::default(),
        }
    }
}

impl HttpMetrics {
    /// Registers the families under `http_`.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("http");
        registry.register(
            "requests",
            "HTTP requests answered, by route template, method and status",
            self.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time from a request's arrival to its response head (streamed bodies go on after)",
            Unit::Seconds,
            self.seconds.clone(),
        );
        registry.register_with_unit(
            "request_body",
            "Request body bytes received (claim uploads among them), by route template",
            Unit::Bytes,
            self.request_bytes.clone(),
        );
    }

    /// Counts every routed request of `router` (call after every route is merged in).
    pub fn track(&self, router: Router) -> Router {
        router.route_layer(axum::middleware::from_fn_with_state(self.clone(), track))
    }
}

async fn track(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let labels = RouteLabels {
        route,
        method: request.method().to_string(),
    };
    let received = metrics.request_bytes.get_or_create(&labels).clone();
    let request = request.map(|body| {
        Body::from_stream(body.into_data_stream().inspect_ok(move |chunk| {
            received.inc_by(chunk.len() as u64);
        }))
    });
    let response = next.run(request).await;
    metrics
        .seconds
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .get_or_create(&StatusLabels {
            route: labels.route,
            method: labels.method,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

/// The operational routes every Strata serves: `GET /healthz` and `GET /metrics`.
pub fn ops_router(metrics: MetricsHandle) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(metrics)
}

async fn healthz() -> impl IntoResponse {
    (
        StatusCode::OK,
        axum::Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") })),
    )
}

async fn render_metrics(State(metrics): State<MetricsHandle>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode_text(),
    )
}

/// Checks that an OpenAPI `paths` fragment documents exactly `routes` (method, path) and merges
/// into the gateway's document without clashing; shared by every module that mounts routes.
#[cfg(test)]
pub(crate) fn assert_routes_documented_exactly(openapi_paths: &str, routes: &[(&str, &str)]) {
    let paths: serde_json::Value = serde_json::from_str(openapi_paths).unwrap();
    let paths = paths.as_object().unwrap();
    for (method, path) in routes {
        assert!(paths[*path].get(*method).is_some(), "{method} {path}");
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, routes.len());
    strata_claimcheck::http::openapi::merged_document(serde_json::Value::Object(paths.clone()))
        .unwrap();
}

/// Parses the base URL of a broker's HTTP listener. `host:port`, as `--http-listen` takes it, means
/// `http://host:port`; a trailing `/` is dropped so that paths can be appended.
pub fn base_url(text: &str) -> Result<String, String> {
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("http://{text}")
    };
    let url = reqwest::Url::parse(&with_scheme).map_err(|err| {
        format!("{text:?} is not a URL ({err}); expected e.g. http://127.0.0.1:8080")
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "{text:?} is not an http(s) URL with a host; expected e.g. http://127.0.0.1:8080"
        ));
    }
    Ok(with_scheme.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::base_url;

    #[test]
    fn http_base_urls_take_host_port_and_drop_a_trailing_slash() {
        assert_eq!(
            base_url("127.0.0.1:18080").unwrap(),
            "http://127.0.0.1:18080"
        );
        assert_eq!(base_url("http://h:8080/").unwrap(), "http://h:8080");
        assert_eq!(
            base_url("https://gw.example/api").unwrap(),
            "https://gw.example/api"
        );
        assert!(base_url("ftp://h:21").unwrap_err().contains("http(s)"));
        assert!(base_url("http://").is_err());
    }
}
