//! The claim-check gateway inside `strata serve`: the `strata-claimcheck` service over the
//! broker's log and the remote tier's object store.
//!
//! ```text
//!  HTTP listener ──► ops_router + ClaimCheckService::router (/v1 gateway routes)
//!                              + http.rs (ticket at an offset, POST /v1/admin/claims/gc)
//!  ClaimCheckService ── TicketSink ──► sink.rs: LogTicketSink ──► AppendAdmission (as produce)
//!                                                             ──► PartitionLog::append (Fsync)
//!                    ── ClaimStore ──► object store of `remote` (strata_tiering::RemoteStore)
//!                                      under `<remote prefix>/claimcheck/`
//!  maintenance task (every claimcheck.gc.interval.ms) ──► lifecycle::collect_garbage
//!                    ── LiveClaims ──► live.rs: position.json per ticket + logical log start
//!                    ──► staging files of writes cut off by a crash (local-directory store)
//! ```
//!
//! Files: `settings.rs` (the `claimcheck.*` broker configs), `sink.rs`, `live.rs`, `http.rs`.
//!
//! # Invariant: a payload is deleted only after its ticket left the log in both tiers
//! The gateway's GC deletes a claim only when [`LiveClaims`] leaves it out and it is older than
//! `claimcheck.gc.grace`; `live.rs` keeps every ticket at or above its partition's logical log
//! start (the remote log start with tiering), and tiering moves that start before it deletes
//! remote segments. `serve.rs` starts the maintenance task after the remote tier has restored
//! the logical log starts (see `live.rs`, "Limits").
//!
//! # Bucket layout
//! The claims share the remote tier's bucket and prefix (same URL, same credentials) under
//! their own sub-prefix: `<prefix>/claimcheck/claims/<id>/{payload,meta.json,position.json}` and
//! `<prefix>/claimcheck/uploads/<id>/...`; the remote tier's keys are under `<prefix>/topics/`.

pub mod http;
pub mod live;
pub mod settings;
pub mod sink;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use strata_claimcheck::{ClaimCheckService, ClaimStore, LiveClaims, lifecycle};
use strata_tiering::RemoteStore;
use tracing::info;

use crate::config::StrataConfig;
use crate::kafka::BrokerContext;
use crate::kafka::handlers::fetch::ColdReader;
use crate::log::LogManager;
pub use live::{LogLiveClaims, PositionBook};
pub use settings::ClaimSettings;
pub use sink::LogTicketSink;

/// Sub-prefix of the claim objects under the remote tier's prefix.
pub const CLAIMS_PREFIX: &str = "claimcheck";

/// The running gateway: service, live-claims answer and (once started) the maintenance task.
pub struct ClaimGateway {
    pub service: ClaimCheckService,
    pub live: Arc<dyn LiveClaims>,
    pub settings: ClaimSettings,
    log: Arc<LogManager>,
    cold: Option<Arc<dyn ColdReader>>,
    /// The store the claims live in, and their prefix there (for the staging-file sweep).
    remote: RemoteStore,
    prefix: object_store::path::Path,
    maintenance: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl ClaimGateway {
    /// Builds the gateway from the effective configuration; `None` when `claimcheck.enable`
    /// is false. Build it after the remote tier started: it takes the broker's cold reader (for
    /// tickets below the local log start) and append admission (the upload-lag bound Kafka
    /// produce obeys) as they are then.
    pub fn build(
        config: &StrataConfig,
        log: Arc<LogManager>,
        broker: &BrokerContext,
    ) -> anyhow::Result<Option<Self>> {
        let settings = ClaimSettings::from_broker_configs(
            &config.broker,
            &config.data_dir,
            config.http_listen,
        )
        .context("invalid claimcheck.* setting")?;
        if !settings.enabled {
            info!("claim-check gateway disabled (claimcheck.enable=false)");
            return Ok(None);
        }
        if let Some(spool) = &settings.gateway.spool_dir {
            std::fs::create_dir_all(spool)
                .with_context(|| format!("creating the CSV spool directory {}", spool.display()))?;
            clear_spool(spool);
        }
        let remote = RemoteStore::from_url(&config.remote)
            .with_context(|| format!("opening the object store {}", config.remote))?;
        let prefix = remote.prefix.clone().join(CLAIMS_PREFIX);
        let store = ClaimStore::new(remote.store.clone(), prefix.as_ref())
            .context("opening the claim store")?;
        let book = Arc::new(PositionBook::new(&store));
        let sink = LogTicketSink::new(
            log.clone(),
            settings.auto_create_topics,
            settings.num_partitions,
            Some(book.clone()),
        )
        .with_admission(broker.append_admission());
        let service = ClaimCheckService::new(store, Arc::new(sink), settings.gateway.clone());
        let mut paths: serde_json::Value =
            serde_json::from_str(http::OPENAPI_PATHS).context("broker OpenAPI paths")?;
        // The export jobs are served on the same listener; document them in the same place.
        let export_paths: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(crate::export::http::OPENAPI_PATHS)
                .context("export OpenAPI paths")?;
        if let Some(all) = paths.as_object_mut() {
            all.extend(export_paths);
        }
        service
            .extend_openapi(paths)
            .context("extending the OpenAPI document")?;
        let live: Arc<dyn LiveClaims> = Arc::new(LogLiveClaims {
            book,
            log: log.clone(),
            tier: broker.tier_offsets(),
        });
        info!(remote = %config.remote, prefix = %prefix, gc_grace = ?settings.gateway.gc_grace,
              gc_interval = ?settings.gc_interval, "claim-check gateway ready");
        Ok(Some(Self {
            service,
            live,
            settings,
            log,
            cold: broker.cold_reader(),
            remote,
            prefix,
            maintenance: std::sync::Mutex::default(),
        }))
    }

    /// Every claim route: the gateway's `/v1` routes and the broker's (`http.rs`).
    pub fn router(&self) -> Router {
        self.service.router().merge(http::router(
            self.service.clone(),
            self.live.clone(),
            self.log.clone(),
            self.cold.clone(),
        ))
    }

    /// Starts the GC tasks (payloads of expired tickets, abandoned uploads, staging files of
    /// interrupted writes). Call it after the remote tier has exposed the remote log starts.
    pub fn start_maintenance(&self) {
        let gc = lifecycle::spawn_maintenance(
            self.service.clone(),
            Some(self.live.clone()),
            self.settings.gc_interval,
        );
        let sweep = tokio::spawn(sweep_interrupted_writes(
            self.remote.clone(),
            self.prefix.clone(),
            self.settings.gateway.upload_expiry,
            self.settings.gc_interval,
        ));
        let mut tasks = self.maintenance.lock().unwrap_or_else(|p| p.into_inner());
        for old in tasks.drain(..) {
            old.abort();
        }
        tasks.extend([gc, sweep]);
    }

    /// Stops the GC tasks (a pass in progress is abandoned; every pass is safe to interrupt).
    pub fn shutdown(&self) {
        for task in self
            .maintenance
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// Removes what a previous process left in the CSV spool directory: each spool file is one
/// upload's temporary copy, deleted when the upload ends, so at start every one there was cut
/// off by a crash (and may be gigabytes on the disk the log needs). Other files are left alone.
fn clear_spool(spool: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(spool) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let ours = entry
            .file_name()
            .to_string_lossy()
            .starts_with(strata_claimcheck::csv_split::SPOOL_FILE_PREFIX);
        if ours && path.is_file() && std::fs::remove_file(&path).is_ok() {
            info!(file = %path.display(), "removed the spool file of an interrupted CSV upload");
        }
    }
}

/// A broker killed while it wrote a payload or an upload part leaves what no listing shows and
/// so no GC pass sees: on the local-directory store the object store's staging file
/// (`payload#<n>`), on S3, GCS and Azure an unfinished multipart upload (with its marker, see
/// `strata_tiering::multipart`). Every `every`, the ones untouched for `claimcheck.upload.expiry`
/// go (an upload still running writes to its file all the time; this process's own running
/// uploads are never aborted).
async fn sweep_interrupted_writes(
    remote: RemoteStore,
    prefix: object_store::path::Path,
    grace: std::time::Duration,
    every: std::time::Duration,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if let Err(error) = remote.abort_interrupted_multipart_uploads(grace).await {
            tracing::warn!(%error, "could not sweep interrupted multipart uploads; retrying at the next pass");
        }
        let (remote, prefix) = (remote.clone(), prefix.clone());
        let swept =
            tokio::task::spawn_blocking(move || remote.remove_stale_staging_files(&prefix, grace))
                .await;
        if let Ok((files, bytes)) = swept
            && files > 0
        {
            info!(
                files,
                bytes, "removed the staging files of interrupted claim writes"
            );
        }
    }
}
