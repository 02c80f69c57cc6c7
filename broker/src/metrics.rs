//! Prometheus metrics. Every subsystem registers its metric families into one
//! [`prometheus_client`] registry at start; `/metrics` encodes it in the text format.

use std::sync::Arc;
use std::time::Instant;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The registry once start-up has finished registering; shared read-only with the HTTP server.
#[derive(Clone)]
pub struct MetricsHandle {
    registry: Arc<Registry>,
}

impl MetricsHandle {
    pub fn new(registry: Registry) -> Self {
        Self {
            registry: Arc::new(registry),
        }
    }

    /// The registry in Prometheus' text exposition format.
    pub fn encode_text(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        encode(&mut out, &self.registry).expect("encoding metrics into a String");
        out
    }
}

/// A registry with the process-level metrics every Strata exposes.
pub fn new_registry(started: Instant) -> Registry {
    let mut registry = Registry::with_prefix("strata");
    let up = Gauge::<i64>::default();
    up.set(1);
    registry.register("up", "1 while the broker is serving", up);
    let start_time = Gauge::<i64>::default();
    let unix_now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    start_time.set(unix_now - started.elapsed().as_secs() as i64);
    registry.register(
        "start_time_seconds",
        "Unix time at which the broker started",
        start_time,
    );
    registry
}
