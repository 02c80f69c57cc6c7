//! [`ClaimCheckService`]: the shared state behind the HTTP router and the background tasks.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota};
use tokio::sync::Semaphore;

use crate::config::ClaimCheckConfig;
use crate::error::{ClaimError, Result};
use crate::sink::TicketSink;
use crate::store::ClaimStore;
use crate::ticket::{ClaimId, UploadId};

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
    /// What requests are doing to each resumable upload (see [`UploadActivity`]).
    uploads_busy: Mutex<HashMap<UploadId, UploadActivity>>,
    /// Claims whose payload is being written or whose ticket is being appended: the GC leaves
    /// them alone whatever their objects' age (S3 dates a multipart object from the start of
    /// its upload, which may be hours before its ticket).
    claims_publishing: Mutex<HashSet<ClaimId>>,
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
                uploads_busy: Mutex::default(),
                claims_publishing: Mutex::default(),
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

    fn uploads_busy(&self) -> std::sync::MutexGuard<'_, HashMap<UploadId, UploadActivity>> {
        self.inner
            .uploads_busy
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Marks an upload as completing: `Conflict` while another request completes it or writes
    /// one of its parts (a part landing after complete listed them would be lost).
    pub(crate) fn begin_completing(&self, id: UploadId) -> Result<UploadGuard> {
        let mut busy = self.uploads_busy();
        match busy.get(&id) {
            Some(UploadActivity::Completing) => Err(ClaimError::Conflict(format!(
                "upload {id} is being completed"
            ))),
            Some(UploadActivity::Parts(n)) => Err(ClaimError::Conflict(format!(
                "upload {id} has {n} part(s) being written; complete it once they are stored"
            ))),
            None => {
                busy.insert(id, UploadActivity::Completing);
                Ok(UploadGuard {
                    service: self.clone(),
                    id,
                })
            }
        }
    }

    /// Marks a part of an upload as being written: `Conflict` while the upload is completing.
    pub(crate) fn begin_part(&self, id: UploadId) -> Result<UploadGuard> {
        let mut busy = self.uploads_busy();
        match busy.entry(id).or_insert(UploadActivity::Parts(0)) {
            UploadActivity::Completing => Err(ClaimError::Conflict(format!(
                "upload {id} is being completed; it takes no more parts"
            ))),
            UploadActivity::Parts(n) => {
                *n += 1;
                Ok(UploadGuard {
                    service: self.clone(),
                    id,
                })
            }
        }
    }

    /// Whether a request is writing a part of the upload or completing it.
    pub(crate) fn upload_busy(&self, id: UploadId) -> bool {
        self.uploads_busy().contains_key(&id)
    }

    /// Marks a claim as being published (its payload written, its ticket not appended yet)
    /// until the guard drops: the GC does not collect it meanwhile.
    pub fn begin_publishing(&self, id: ClaimId) -> PublishingGuard {
        self.publishing().insert(id);
        PublishingGuard {
            service: self.clone(),
            id,
        }
    }

    /// The claims being published now (see `lifecycle.rs` for when the GC asks).
    pub fn claims_publishing(&self) -> HashSet<ClaimId> {
        self.publishing().clone()
    }

    fn publishing(&self) -> std::sync::MutexGuard<'_, HashSet<ClaimId>> {
        self.inner
            .claims_publishing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }
}

/// What requests are doing to one resumable upload.
enum UploadActivity {
    /// This many parts are being written.
    Parts(usize),
    /// A complete request is publishing it (nothing else may touch it).
    Completing,
}

/// Releases a request's mark on an upload on drop.
pub(crate) struct UploadGuard {
    service: ClaimCheckService,
    id: UploadId,
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let mut busy = self.service.uploads_busy();
        if let Some(UploadActivity::Parts(n)) = busy.get_mut(&self.id)
            && *n > 1
        {
            *n -= 1;
            return;
        }
        busy.remove(&self.id);
    }
}

/// Releases a claim's "publishing" mark on drop.
pub struct PublishingGuard {
    service: ClaimCheckService,
    id: ClaimId,
}

impl Drop for PublishingGuard {
    fn drop(&mut self) {
        self.service.publishing().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::error::SinkError;
    use crate::sink::OutRecord;
    use crate::ticket::RecordPosition;

    /// A sink the marks never reach.
    struct NoSink;

    #[async_trait::async_trait]
    impl TicketSink for NoSink {
        async fn append(
            &self,
            _: &str,
            _: Option<i32>,
            _: Option<Bytes>,
            _: Bytes,
            _: Vec<(String, Bytes)>,
        ) -> std::result::Result<RecordPosition, SinkError> {
            Err(SinkError::Other("no sink".into()))
        }
        async fn append_batch(
            &self,
            _: &str,
            _: Option<i32>,
            _: Vec<OutRecord>,
        ) -> std::result::Result<Vec<RecordPosition>, SinkError> {
            Err(SinkError::Other("no sink".into()))
        }
        fn partition_count(&self, _: &str) -> Option<i32> {
            None
        }
    }

    fn service() -> ClaimCheckService {
        let store = ClaimStore::new(Arc::new(object_store::memory::InMemory::new()), "t").unwrap();
        ClaimCheckService::new(store, Arc::new(NoSink), ClaimCheckConfig::default())
    }

    /// Parts may be written side by side; completing excludes them (a part stored after the
    /// complete listed the parts would be dropped), and a completing upload takes no part.
    #[test]
    fn parts_and_complete_exclude_each_other() {
        let svc = service();
        let id = UploadId::random();
        assert!(!svc.upload_busy(id));
        let first = svc.begin_part(id).unwrap();
        let second = svc.begin_part(id).unwrap();
        assert!(svc.upload_busy(id));
        let refused = svc.begin_completing(id).err().unwrap();
        assert_eq!(refused.http_status(), 409, "{refused}");
        drop(first);
        assert!(
            svc.begin_completing(id).is_err(),
            "one part still being written"
        );
        drop(second);
        assert!(!svc.upload_busy(id));
        let completing = svc.begin_completing(id).unwrap();
        assert_eq!(svc.begin_part(id).err().unwrap().http_status(), 409);
        assert!(svc.begin_completing(id).is_err());
        drop(completing);
        assert!(!svc.upload_busy(id));
        assert!(svc.begin_part(id).is_ok());
    }

    #[test]
    fn publishing_marks_last_as_long_as_their_guard() {
        let svc = service();
        let (a, b) = (ClaimId::random(), ClaimId::random());
        let guard_a = svc.begin_publishing(a);
        let guard_b = svc.begin_publishing(b);
        assert_eq!(svc.claims_publishing(), HashSet::from([a, b]));
        drop(guard_a);
        assert_eq!(svc.claims_publishing(), HashSet::from([b]));
        drop(guard_b);
        assert!(svc.claims_publishing().is_empty());
    }
}
