//! The HTTP listener: health, Prometheus metrics, and (mounted by the binary) the claim-check API.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::json;

use crate::metrics::MetricsHandle;

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
