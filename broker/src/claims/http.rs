//! The broker's own claim routes, next to the gateway's router (documented in
//! `openapi_paths.json`, merged into `GET /v1/openapi.json`):
//!
//! * `GET /v1/topics/{topic}/partitions/{partition}/records/{offset}/claim`: the ticket carried
//!   by one record of the log (what `strata claim get --topic --offset` resolves). Reads the
//!   local tier only: a record that is only in the remote tier answers 404 saying so (consume it
//!   with a Kafka client, which reads both tiers).
//! * `POST /v1/admin/claims/gc?dry_run=true|false`: one GC pass now, answering its report (what
//!   `strata claims gc` calls). Like every route on the HTTP listener it is unauthenticated:
//!   bind the listener to loopback or a private network.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use strata_claimcheck::lifecycle::{GcReport, collect_garbage};
use strata_claimcheck::ticket::validate_topic;
use strata_claimcheck::{ClaimCheckService, ClaimError, ClaimReceipt, ClaimTicket, LiveClaims};
use tracing::info;

use crate::log::{LogError, LogManager};

/// Every `(method, path)` served here, in OpenAPI syntax (checked against the document).
pub const ROUTES: &[(&str, &str)] = &[
    (
        "get",
        "/v1/topics/{topic}/partitions/{partition}/records/{offset}/claim",
    ),
    ("post", "/v1/admin/claims/gc"),
];

/// The OpenAPI `paths` of [`ROUTES`].
pub const OPENAPI_PATHS: &str = include_str!("openapi_paths.json");

#[derive(Clone)]
struct RouteState {
    service: ClaimCheckService,
    live: Arc<dyn LiveClaims>,
    log: Arc<LogManager>,
}

/// The broker-side routes; merge with the gateway's router.
pub fn router(
    service: ClaimCheckService,
    live: Arc<dyn LiveClaims>,
    log: Arc<LogManager>,
) -> Router {
    Router::new()
        .route(ROUTES[0].1, get(ticket_at_offset))
        .route(ROUTES[1].1, post(run_gc))
        .with_state(RouteState { service, live, log })
}

/// Largest read when looking for a record (whole batches; tickets are small).
const READ_BYTES: usize = 1024 * 1024;

async fn ticket_at_offset(
    State(state): State<RouteState>,
    Path((topic, partition, offset)): Path<(String, i32, i64)>,
) -> Result<Json<ClaimReceipt>, ClaimError> {
    validate_topic(&topic)?;
    let not_found = |what: String| ClaimError::NotFound(what);
    let log = state
        .log
        .partition(&topic, partition)
        .ok_or_else(|| not_found(format!("partition {topic}-{partition}")))?;
    let read = log.read(offset, READ_BYTES).map_err(|e| match e {
        LogError::OffsetOutOfRange {
            log_start_offset, ..
        } if offset >= log_start_offset => not_found(format!(
            "record {topic}-{partition}@{offset} locally (it is in the remote tier: consume it with a Kafka client)"
        )),
        LogError::OffsetOutOfRange { .. } => {
            not_found(format!("record {topic}-{partition}@{offset} (out of range)"))
        }
        other => ClaimError::Internal(other.to_string()),
    })?;
    let mut bytes = read.records;
    let sets = kafka_protocol::records::RecordBatchDecoder::decode_all(&mut bytes)
        .map_err(|e| ClaimError::Internal(format!("decoding {topic}-{partition}@{offset}: {e}")))?;
    let record = sets
        .iter()
        .flat_map(|set| set.records.iter())
        .find(|r| r.offset == offset && !r.control)
        .ok_or_else(|| not_found(format!("record {topic}-{partition}@{offset}")))?;
    let headers: Vec<(&str, &[u8])> = record
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?)))
        .collect();
    let value = record.value.as_deref().unwrap_or_default();
    let mut ticket = ClaimTicket::from_record(headers, value)?;
    if ticket.topic.is_empty() {
        ticket.topic = topic;
    }
    Ok(Json(ClaimReceipt {
        ticket,
        partition,
        offset,
    }))
}

#[derive(Debug, Default, Deserialize)]
struct GcQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn run_gc(
    State(state): State<RouteState>,
    query: Result<Query<GcQuery>, QueryRejection>,
) -> Result<Json<GcReport>, ClaimError> {
    let Query(query) = query.map_err(|e| ClaimError::BadRequest(e.body_text()))?;
    info!(dry_run = query.dry_run, "claim GC requested over HTTP");
    let report = collect_garbage(&state.service, Some(state.live.as_ref()), query.dry_run).await?;
    Ok(Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        let paths: serde_json::Value = serde_json::from_str(OPENAPI_PATHS).unwrap();
        let paths = paths.as_object().unwrap();
        for (method, path) in ROUTES {
            assert!(paths[*path].get(*method).is_some(), "{method} {path}");
        }
        let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
        assert_eq!(documented, ROUTES.len());
        // Merges into the gateway's document without clashing.
        strata_claimcheck::http::openapi::merged_document(serde_json::Value::Object(paths.clone()))
            .unwrap();
    }
}
