//! The broker's own claim routes, next to the gateway's router (documented in
//! `openapi_paths.json`, merged into `GET /v1/openapi.json`):
//!
//! * `GET /v1/topics/{topic}/partitions/{partition}/records/{offset}/claim`: the ticket carried
//!   by one record of the log (what `strata claim get --topic --offset` resolves). Reads both
//!   tiers as a consumer's Fetch does: local segments at or above the local log start, the
//!   remote tier's cold-read path (`tiered/cold_read.rs`) between the log start and the local
//!   log start; below the log start the record is gone (404).
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
use strata_claimcheck::{
    ClaimCheckService, ClaimError, ClaimReceipt, ClaimTicket, LiveClaims, SinkError,
};
use tracing::info;

use crate::kafka::handlers::fetch::ColdReader;
use crate::log::{LogError, LogManager, PartitionLog};

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
    /// The remote tier's reader (`None` without a remote tier).
    cold: Option<Arc<dyn ColdReader>>,
}

/// The broker-side routes; merge with the gateway's router.
pub fn router(
    service: ClaimCheckService,
    live: Arc<dyn LiveClaims>,
    log: Arc<LogManager>,
    cold: Option<Arc<dyn ColdReader>>,
) -> Router {
    Router::new()
        .route(ROUTES[0].1, get(ticket_at_offset))
        .route(ROUTES[1].1, post(run_gc))
        .with_state(RouteState {
            service,
            live,
            log,
            cold,
        })
}

/// Largest read when looking for a record (whole batches; tickets are small).
const READ_BYTES: usize = 1024 * 1024;

/// Kafka's OFFSET_OUT_OF_RANGE, as the cold reader reports it.
const OFFSET_OUT_OF_RANGE: i16 = 1;

async fn ticket_at_offset(
    State(state): State<RouteState>,
    Path((topic, partition, offset)): Path<(String, i32, i64)>,
) -> Result<Json<ClaimReceipt>, ClaimError> {
    validate_topic(&topic)?;
    let log = state
        .log
        .partition(&topic, partition)
        .ok_or_else(|| ClaimError::NotFound(format!("partition {topic}-{partition}")))?;
    let bytes = read_batches(&log, state.cold.as_deref(), offset).await?;
    let not_found = || ClaimError::NotFound(format!("record {topic}-{partition}@{offset}"));
    // Only the batch holding the offset is decoded (inflated within the topic's bound).
    let batch = strata_format::BatchIter::new(bytes)
        .find(|b| !b.is_control() && b.base_offset() <= offset && offset <= b.last_offset())
        .ok_or_else(not_found)?;
    let set = crate::log::decode_bounded(&batch, log.config().max_message_bytes)
        .map_err(|e| ClaimError::Internal(format!("decoding {topic}-{partition}@{offset}: {e}")))?;
    let record = set
        .records
        .iter()
        .find(|r| r.offset == offset && !r.control)
        .ok_or_else(not_found)?;
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

/// Whole batches starting with the one holding `offset`, from whichever tier holds it (the
/// split a consumer's Fetch uses: below the local log start is the remote tier's).
async fn read_batches(
    log: &Arc<PartitionLog>,
    cold: Option<&dyn ColdReader>,
    offset: i64,
) -> Result<bytes::Bytes, ClaimError> {
    let name = format!("{}-{}@{offset}", log.topic(), log.partition());
    let out_of_range = || {
        ClaimError::NotFound(format!(
            "record {name} (out of range [{}, {}))",
            log.log_start_offset(),
            log.log_end_offset()
        ))
    };
    if offset < log.log_start_offset() {
        return Err(out_of_range());
    }
    if offset < log.local_log_start_offset() {
        let cold = cold.ok_or_else(|| {
            ClaimError::NotFound(format!(
                "record {name}: below the local log and no remote tier"
            ))
        })?;
        return match cold.read(log.clone(), offset, READ_BYTES).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) | Err(OFFSET_OUT_OF_RANGE) => Err(out_of_range()),
            // KAFKA_STORAGE_ERROR and the like: the remote tier failed, retrying may succeed.
            Err(code) => Err(ClaimError::Sink(SinkError::Unavailable(format!(
                "reading {name} from the remote tier failed (Kafka error code {code})"
            )))),
        };
    }
    match log.read(offset, READ_BYTES) {
        Ok(read) => Ok(read.records),
        Err(LogError::OffsetOutOfRange { .. }) => Err(out_of_range()),
        Err(other) => Err(ClaimError::Internal(format!("reading {name}: {other}"))),
    }
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
        crate::http::assert_routes_documented_exactly(OPENAPI_PATHS, ROUTES);
    }
}
