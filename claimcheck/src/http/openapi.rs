//! The OpenAPI 3 document of the HTTP API, hand-written in `openapi.json` and served at
//! `GET /v1/openapi.json`. A test checks it against [`super::ROUTES`].

use axum::http::header;
use axum::response::IntoResponse;

/// The OpenAPI document (JSON text).
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

pub(crate) async fn serve_openapi(
    axum::extract::State(service): axum::extract::State<crate::ClaimCheckService>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        service.openapi_document().to_string(),
    )
}

/// [`OPENAPI_JSON`] with `extra_paths` (an OpenAPI `paths` object) added; a path the gateway
/// already documents is refused.
pub fn merged_document(extra_paths: serde_json::Value) -> crate::Result<String> {
    use crate::ClaimError;
    let mut doc: serde_json::Value =
        serde_json::from_str(OPENAPI_JSON).map_err(|e| ClaimError::Internal(e.to_string()))?;
    let serde_json::Value::Object(extra) = extra_paths else {
        return Err(ClaimError::Internal(
            "OpenAPI paths must be an object".into(),
        ));
    };
    let paths = doc["paths"]
        .as_object_mut()
        .ok_or_else(|| ClaimError::Internal("openapi.json has no paths".into()))?;
    for (path, item) in extra {
        if paths.contains_key(&path) {
            return Err(ClaimError::Internal(format!(
                "{path} is already documented"
            )));
        }
        paths.insert(path, item);
    }
    serde_json::to_string(&doc).map_err(|e| ClaimError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI_JSON).expect("valid JSON");
        assert_eq!(doc["openapi"].as_str().unwrap().chars().next(), Some('3'));
        let paths = doc["paths"].as_object().unwrap();
        for (method, path) in super::super::ROUTES {
            assert!(
                paths.get(*path).and_then(|p| p.get(*method)).is_some(),
                "{method} {path} missing from openapi.json"
            );
        }
        for (path, item) in paths {
            for method in item
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "parameters")
            {
                assert!(
                    super::super::ROUTES.contains(&(method.as_str(), path.as_str())),
                    "openapi.json documents {method} {path} which the router does not serve"
                );
            }
        }
    }
}
