//! The export as an HTTP job on the broker's listener (documented in `openapi_paths.json`,
//! merged into `GET /v1/openapi.json`):
//!
//! * `POST /v1/exports` with the CLI's parameters as JSON: checks the request (topic,
//!   partitions, range, a writable destination) before answering, then runs the export in the
//!   background and answers `202` with the job id.
//! * `GET /v1/exports/{id}`: state (`running`, `succeeded`, `failed`, `cancelled`), progress per
//!   partition, errors, and the manifest once done.
//! * `DELETE /v1/exports/{id}`: cancels a running job (it abandons the file it is writing; the
//!   finished files and the partial manifest stay, so re-posting resumes it) and forgets the job.
//!
//! The job reads through the running broker's own read path (`PartitionLog::read` for local
//! segments, the broker's `RemoteLogManager` below the local log start), so the broker keeps
//! serving while it runs. Jobs live in memory: a restart forgets them, and re-posting the same
//! request resumes the export at its destination (see `job.rs`). Only the newest
//! [`KEPT_FINISHED_JOBS`] finished jobs are kept, so that a long-lived broker's memory stays
//! bounded. Like every route on the HTTP
//! listener these are unauthenticated and write where `out` says: bind the listener to
//! loopback or a private network.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::destination::Destination;
use super::job::{Bound, DEFAULT_ZSTD_LEVEL, ExportRequest, ExportSource, plan, run_export};
use super::manifest::Manifest;
use super::progress::{ExportMetrics, ExportProgress, PartitionProgress, StateLabels};
use super::{ExportError, ValueFormat};

/// Every `(method, path)` served here, in OpenAPI syntax (checked against the document).
pub const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/exports"),
    ("get", "/v1/exports/{id}"),
    ("get", "/v1/exports"),
    ("delete", "/v1/exports/{id}"),
];

/// Finished jobs kept for `GET`; older ones are forgotten as new jobs start.
pub const KEPT_FINISHED_JOBS: usize = 100;
/// How long `DELETE` waits for a running job to stop before answering `202`.
const CANCEL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The OpenAPI `paths` of [`ROUTES`].
pub const OPENAPI_PATHS: &str = include_str!("openapi_paths.json");

/// The body of `POST /v1/exports`: the CLI's flags.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    pub topic: String,
    #[serde(default)]
    pub partitions: Vec<i32>,
    pub from_offset: Option<i64>,
    /// RFC 3339 with a UTC offset.
    pub from_time: Option<String>,
    pub to_offset: Option<i64>,
    pub to_time: Option<String>,
    /// A directory on the broker host, or an object-store URL (`s3://bucket/prefix`).
    pub out: String,
    pub max_file_bytes: Option<u64>,
    #[serde(default)]
    pub verify_claims: bool,
    /// `binary` (default), `utf8` or `json`.
    #[serde(default)]
    pub value_format: ValueFormat,
    /// zstd level of the Parquet pages; absent: [`DEFAULT_ZSTD_LEVEL`].
    pub zstd_level: Option<i32>,
}

impl ExportBody {
    pub fn to_request(&self) -> Result<ExportRequest, ExportError> {
        let bound = |offset: Option<i64>, time: &Option<String>, name: &str| match (offset, time) {
            (Some(o), None) => Ok(Bound::Offset(o)),
            (None, Some(t)) => Bound::parse_time(name, t),
            _ => Err(ExportError::BadRequest(format!(
                "give exactly one of {name}_offset and {name}_time"
            ))),
        };
        if self.max_file_bytes == Some(0) {
            return Err(ExportError::BadRequest("max_file_bytes must be > 0".into()));
        }
        let zstd_level = self.zstd_level.unwrap_or(DEFAULT_ZSTD_LEVEL);
        super::parquet_writer::zstd(zstd_level)?;
        Ok(ExportRequest {
            topic: self.topic.clone(),
            partitions: self.partitions.clone(),
            from: bound(self.from_offset, &self.from_time, "from")?,
            to: bound(self.to_offset, &self.to_time, "to")?,
            max_file_bytes: self.max_file_bytes,
            verify_claims: self.verify_claims,
            value_format: self.value_format,
            zstd_level,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    /// As serialized (and as the `state` label of the metrics).
    pub fn name(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// What `GET /v1/exports/{id}` answers.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    pub id: Uuid,
    pub state: JobState,
    pub request: ExportBody,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub offsets_done: u64,
    pub offsets_total: u64,
    pub records_done: u64,
    pub log_bytes_read: u64,
    pub bytes_written: u64,
    pub partitions: Vec<PartitionProgress>,
    pub errors: Vec<String>,
    pub manifest: Option<Manifest>,
}

struct Job {
    request: ExportBody,
    /// [`Destination::identity`]: one running job per place.
    place: String,
    started_at: String,
    progress: ExportProgress,
    outcome: Mutex<Option<Outcome>>,
    /// Cancelled once `outcome` is set.
    finished: tokio_util::sync::CancellationToken,
}

/// How a finished job ended.
struct Outcome {
    state: JobState,
    finished_at: String,
    errors: Vec<String>,
    manifest: Option<Manifest>,
}

impl Job {
    /// When the job finished (RFC 3339, sorts as text); `None` while it runs.
    fn finished_at(&self) -> Option<String> {
        let outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        outcome.as_ref().map(|o| o.finished_at.clone())
    }

    fn status(&self, id: Uuid) -> JobStatus {
        let partitions = self.progress.snapshot();
        let (offsets_done, offsets_total) = self.progress.totals();
        let outcome = self.outcome.lock().unwrap_or_else(|p| p.into_inner());
        let (state, finished_at, errors, manifest) = match &*outcome {
            None => (JobState::Running, None, Vec::new(), None),
            Some(o) => (
                o.state,
                Some(o.finished_at.clone()),
                o.errors.clone(),
                o.manifest.clone(),
            ),
        };
        JobStatus {
            id,
            state,
            request: self.request.clone(),
            started_at: self.started_at.clone(),
            finished_at,
            offsets_done,
            offsets_total,
            records_done: partitions.iter().map(|p| p.records_done).sum(),
            log_bytes_read: partitions.iter().map(|p| p.log_bytes_read).sum(),
            bytes_written: partitions.iter().map(|p| p.bytes_written).sum(),
            partitions,
            errors,
            manifest,
        }
    }
}

/// The jobs of this broker process.
#[derive(Clone)]
pub struct ExportJobs {
    source: ExportSource,
    jobs: Arc<Mutex<HashMap<Uuid, Arc<Job>>>>,
    metrics: ExportMetrics,
}

impl ExportJobs {
    /// `metrics`: registered by the caller (`ExportMetrics::register`).
    pub fn new(source: ExportSource, metrics: ExportMetrics) -> Self {
        Self {
            source,
            jobs: Arc::default(),
            metrics,
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(ROUTES[0].1, post(start_job))
            .route(ROUTES[1].1, get(job_status))
            .route(ROUTES[2].1, get(list_jobs))
            .route(ROUTES[3].1, delete(delete_job))
            .with_state(self.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Forgets the oldest finished jobs beyond [`KEPT_FINISHED_JOBS`].
fn forget_old_jobs(map: &mut HashMap<Uuid, Arc<Job>>) {
    let mut finished: Vec<(String, Uuid)> = map
        .iter()
        .filter_map(|(id, job)| job.finished_at().map(|at| (at, *id)))
        .collect();
    if finished.len() <= KEPT_FINISHED_JOBS {
        return;
    }
    finished.sort();
    let excess = finished.len() - KEPT_FINISHED_JOBS;
    for (_, id) in finished.into_iter().take(excess) {
        map.remove(&id);
    }
}

/// An error answer in the gateway's shape: `{"error": {"code", "message"}}`.
struct ApiError(StatusCode, &'static str, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.1, "message": self.2 } });
        (self.0, Json(body)).into_response()
    }
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        let (status, code) = match &e {
            ExportError::BadRequest(_)
            | ExportError::OutOfRange { .. }
            | ExportError::Expired { .. }
            | ExportError::Destination(_)
            | ExportError::Io { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        Self(status, code, e.to_string())
    }
}

async fn start_job(
    State(jobs): State<ExportJobs>,
    body: Result<Json<ExportBody>, JsonRejection>,
) -> Result<(StatusCode, Json<JobStatus>), ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let request = body.to_request()?;
    let dest = Destination::parse(&body.out)?;
    let destination = dest.to_string();
    // Checked before answering so that a bad request fails here, not in the job.
    dest.probe_writable().await?;
    // After the probe created the directory, so that its canonical path is known.
    let place = dest.identity().await;
    let planned = plan(&jobs.source, &request).await?;
    // The answer already shows each partition's resolved range; the job refines the counts
    // (files kept from an interrupted run) before it reads.
    let progress = ExportProgress::with_metrics(jobs.metrics.clone());
    progress.set_plan(
        planned
            .iter()
            .map(|(_, range)| PartitionProgress {
                partition: range.partition,
                from_offset: range.from,
                to_offset: range.to,
                ..Default::default()
            })
            .collect(),
    );

    let id = Uuid::new_v4();
    let job = Arc::new(Job {
        request: body,
        place: place.clone(),
        started_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        progress,
        outcome: Mutex::new(None),
        finished: tokio_util::sync::CancellationToken::new(),
    });
    {
        let mut map = jobs.lock();
        let busy = map
            .values()
            .any(|j| j.place == place && j.outcome.lock().is_ok_and(|o| o.is_none()));
        if busy {
            return Err(ApiError(
                StatusCode::CONFLICT,
                "conflict",
                format!("an export to {destination} is already running"),
            ));
        }
        map.insert(id, job.clone());
        forget_old_jobs(&mut map);
    }
    jobs.metrics.running.inc();
    tracing::info!(%id, topic = %request.topic, dest = %destination, "export job started");
    let source = jobs.source.clone();
    let metrics = jobs.metrics.clone();
    let running = job.clone();
    tokio::spawn(async move {
        let result = run_export(&source, &request, &dest, &running.progress).await;
        let finished = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
        let outcome = match result {
            Ok(manifest) => {
                let failures: Vec<String> = manifest
                    .claims
                    .iter()
                    .flat_map(|c| &c.failures)
                    .map(|f| {
                        format!(
                            "claim {} at {}-{}@{}: {}",
                            f.id, manifest.topic, f.partition, f.offset, f.problem
                        )
                    })
                    .collect();
                let state = if failures.is_empty() {
                    JobState::Succeeded
                } else {
                    JobState::Failed
                };
                tracing::info!(%id, ?state, files = manifest.files.len(), "export job finished");
                Outcome {
                    state,
                    finished_at: finished,
                    errors: failures,
                    manifest: Some(manifest),
                }
            }
            Err(ExportError::Cancelled) => {
                tracing::info!(%id, "export job cancelled");
                Outcome {
                    state: JobState::Cancelled,
                    finished_at: finished,
                    errors: vec![ExportError::Cancelled.to_string()],
                    manifest: None,
                }
            }
            Err(error) => {
                tracing::warn!(%id, %error, "export job failed");
                Outcome {
                    state: JobState::Failed,
                    finished_at: finished,
                    errors: vec![error.to_string()],
                    manifest: None,
                }
            }
        };
        let state = outcome.state.name().to_owned();
        *running.outcome.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        running.finished.cancel();
        metrics.running.dec();
        metrics.finished.get_or_create(&StateLabels { state }).inc();
    });
    Ok((StatusCode::ACCEPTED, Json(job.status(id))))
}

async fn job_status(
    State(jobs): State<ExportJobs>,
    Path(id): Path<String>,
) -> Result<Json<JobStatus>, ApiError> {
    let not_found = || {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no export job {id}"),
        )
    };
    let uuid: Uuid = id.parse().map_err(|_| not_found())?;
    let job = jobs.lock().get(&uuid).cloned().ok_or_else(not_found)?;
    Ok(Json(job.status(uuid)))
}

/// `DELETE /v1/exports/{id}`: cancels the job if it runs, waits for it to stop (up to
/// [`CANCEL_WAIT`]) and forgets it. `200` with its final status, or `202` with the status of a
/// job still stopping (it stays listed until it has).
async fn delete_job(
    State(jobs): State<ExportJobs>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<JobStatus>), ApiError> {
    let not_found = || {
        ApiError(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no export job {id}"),
        )
    };
    let uuid: Uuid = id.parse().map_err(|_| not_found())?;
    let job = jobs.lock().get(&uuid).cloned().ok_or_else(not_found)?;
    job.progress.cancel();
    if tokio::time::timeout(CANCEL_WAIT, job.finished.cancelled())
        .await
        .is_err()
    {
        tracing::warn!(%uuid, "export job still stopping after {CANCEL_WAIT:?}");
        return Ok((StatusCode::ACCEPTED, Json(job.status(uuid))));
    }
    jobs.lock().remove(&uuid);
    tracing::info!(%uuid, "export job forgotten");
    Ok((StatusCode::OK, Json(job.status(uuid))))
}

/// `GET /v1/exports`: every job of this process, newest first, without manifests (which can be
/// long; `GET /v1/exports/{id}` has each job's), so that a caller who lost an id can find it.
async fn list_jobs(State(jobs): State<ExportJobs>) -> Json<serde_json::Value> {
    let mut listed: Vec<JobStatus> = jobs
        .lock()
        .iter()
        .map(|(id, job)| JobStatus {
            manifest: None,
            ..job.status(*id)
        })
        .collect();
    // RFC 3339 in UTC with fixed millisecond precision sorts as text.
    listed.sort_by(|a, b| b.started_at.cmp(&a.started_at).then(a.id.cmp(&b.id)));
    Json(json!({ "exports": listed }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_nothing_else() {
        crate::http::assert_routes_documented_exactly(OPENAPI_PATHS, ROUTES);
    }

    fn job(finished_at: Option<String>) -> Arc<Job> {
        let request: ExportBody = serde_json::from_value(json!({
            "topic": "t", "from_offset": 0, "to_offset": 1, "out": "/tmp/x"
        }))
        .unwrap();
        Arc::new(Job {
            request,
            place: "/tmp/x".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            progress: ExportProgress::default(),
            outcome: Mutex::new(finished_at.map(|finished_at| Outcome {
                state: JobState::Succeeded,
                finished_at,
                errors: Vec::new(),
                manifest: None,
            })),
            finished: tokio_util::sync::CancellationToken::new(),
        })
    }

    #[test]
    fn only_the_newest_finished_jobs_are_kept() {
        let mut map = HashMap::new();
        let extra = 5;
        let mut finished = Vec::new();
        for n in 0..KEPT_FINISHED_JOBS + extra {
            let id = Uuid::new_v4();
            map.insert(id, job(Some(format!("2026-01-01T00:{n:05}Z"))));
            finished.push(id);
        }
        let running = Uuid::new_v4();
        map.insert(running, job(None));
        forget_old_jobs(&mut map);
        assert_eq!(map.len(), KEPT_FINISHED_JOBS + 1);
        assert!(
            map.contains_key(&running),
            "a running job is never forgotten"
        );
        assert!(finished[..extra].iter().all(|id| !map.contains_key(id)));
        assert!(finished[extra..].iter().all(|id| map.contains_key(id)));
    }

    #[test]
    fn body_needs_exactly_one_bound_each_side() {
        let body: ExportBody = serde_json::from_value(json!({
            "topic": "t", "from_offset": 0, "to_time": "2024-01-01T00:00:00Z", "out": "/tmp/x"
        }))
        .unwrap();
        let request = body.to_request().unwrap();
        assert_eq!(request.from, Bound::Offset(0));
        assert_eq!(request.to, Bound::Time(1_704_067_200_000));
        let both: ExportBody = serde_json::from_value(json!({
            "topic": "t", "from_offset": 0, "from_time": "2024-01-01T00:00:00Z", "to_offset": 1,
            "out": "/tmp/x"
        }))
        .unwrap();
        assert!(both.to_request().is_err());
    }

    #[test]
    fn body_zstd_level_defaults_to_1_and_out_of_range_is_a_bad_request() {
        let body = |extra: serde_json::Value| {
            let mut body = json!({"topic": "t", "from_offset": 0, "to_offset": 9, "out": "/x"});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            serde_json::from_value::<ExportBody>(body)
                .unwrap()
                .to_request()
        };
        assert_eq!(body(json!({})).unwrap().zstd_level, 1);
        assert_eq!(body(json!({"zstd_level": -3})).unwrap().zstd_level, -3);
        let error = body(json!({"zstd_level": 99})).unwrap_err();
        assert!(
            matches!(&error, ExportError::BadRequest(m) if m.contains("zstd level 99 is out of range")),
            "{error}"
        );
    }
}
