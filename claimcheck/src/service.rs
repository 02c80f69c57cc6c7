//! [`ClaimCheckService`]: the shared state behind the HTTP router and the background tasks.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use tokio::sync::Semaphore;

use crate::config::ClaimCheckConfig;
use crate::error::{ClaimError, Result};
use crate::sink::TicketSink;
use crate::store::ClaimStore;
use crate::ticket::UploadId;

/// The claim-check gateway: store, sink and settings. Cheap to clone.
#[derive(Clone)]
pub struct ClaimCheckService {
    inner: Arc<Inner>,
}

struct Inner {
    store: ClaimStore,
    sink: Arc<dyn TicketSink>,
    config: ClaimCheckConfig,
    request_slots: Arc<Semaphore>,
    /// `None` when `max.requests.per.second` is 0 (no limit).
    request_rate: Option<DefaultDirectRateLimiter>,
    uploads_completing: Mutex<HashSet<UploadId>>,
    /// The OpenAPI document with the host's routes merged in ([`ClaimCheckService::extend_openapi`]).
    openapi: OnceLock<String>,
}

impl ClaimCheckService {
    pub fn new(store: ClaimStore, sink: Arc<dyn TicketSink>, config: ClaimCheckConfig) -> Self {
        let slots = config.max_concurrent_requests.max(1);
        let request_rate = std::num::NonZeroU32::new(config.max_requests_per_second)
            .map(|per_second| governor::RateLimiter::direct(Quota::per_second(per_second)));
        Self {
            inner: Arc::new(Inner {
                store,
                sink,
                config,
                request_slots: Arc::new(Semaphore::new(slots)),
                request_rate,
                uploads_completing: Mutex::new(HashSet::new()),
                openapi: OnceLock::new(),
            }),
        }
    }

    pub fn store(&self) -> &ClaimStore {
        &self.inner.store
    }

    pub fn sink(&self) -> &Arc<dyn TicketSink> {
        &self.inner.sink
    }

    pub fn config(&self) -> &ClaimCheckConfig {
        &self.inner.config
    }

    /// Documents routes the host (the broker) serves next to this router: `paths` is an OpenAPI
    /// `paths` object merged into the document served at `GET /v1/openapi.json`. Call it before
    /// serving; a second call is refused.
    pub fn extend_openapi(&self, paths: serde_json::Value) -> Result<()> {
        let document = crate::http::openapi::merged_document(paths)?;
        self.inner
            .openapi
            .set(document)
            .map_err(|_| ClaimError::Internal("the OpenAPI document was already extended".into()))
    }

    /// The OpenAPI document served at `GET /v1/openapi.json`.
    pub fn openapi_document(&self) -> &str {
        self.inner
            .openapi
            .get()
            .map_or(crate::http::openapi::OPENAPI_JSON, String::as_str)
    }

    /// The axum router with every `/v1` route; mount it on the broker's HTTP listener.
    pub fn router(&self) -> axum::Router {
        crate::http::router(self.clone())
    }

    /// A request slot, or `Overloaded` when `max.concurrent.requests` are in progress.
    pub(crate) fn try_request_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        self.inner
            .request_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| ClaimError::Overloaded)
    }

    /// Counts a request against `max.requests.per.second`; `RateLimited` above it.
    pub(crate) fn check_request_rate(&self) -> Result<()> {
        let Some(limiter) = &self.inner.request_rate else {
            return Ok(());
        };
        limiter
            .check()
            .map_err(|not_until| ClaimError::RateLimited {
                limit: self.inner.config.max_requests_per_second,
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            })
    }

    /// Marks an upload as completing; `Conflict` if another request is completing it.
    pub(crate) fn begin_completing(&self, id: UploadId) -> Result<CompletingGuard> {
        let mut set = self.inner.uploads_completing.lock().expect("not poisoned");
        if !set.insert(id) {
            return Err(ClaimError::Conflict(format!(
                "upload {id} is being completed"
            )));
        }
        Ok(CompletingGuard {
            service: self.clone(),
            id,
        })
    }
}

/// Releases the "completing" mark of an upload on drop.
pub(crate) struct CompletingGuard {
    service: ClaimCheckService,
    id: UploadId,
}

impl Drop for CompletingGuard {
    fn drop(&mut self) {
        if let Ok(mut set) = self.service.inner.uploads_completing.lock() {
            set.remove(&self.id);
        }
    }
}
