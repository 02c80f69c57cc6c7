//! Prometheus metrics of the Kafka server: requests and latency by API, bytes in and out,
//! open connections. The binary registers them with [`KafkaMetrics::register`].

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// The API name, e.g. `Produce`, `Fetch`.
    pub api: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `unknown_api_key`, `unsupported_version`, `malformed`, `oversized`, `truncated`.
    pub kind: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 18))
}

#[derive(Clone)]
pub struct KafkaMetrics {
    pub requests: Family<ApiLabels, Counter>,
    pub request_seconds: Family<ApiLabels, Histogram, fn() -> Histogram>,
    pub bad_requests: Family<ErrorLabels, Counter>,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub connections_open: Gauge,
    pub connections_accepted: Counter,
}

impl Default for KafkaMetrics {
    fn default() -> Self {
        KafkaMetrics {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency_histogram),
            bad_requests: Family::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            connections_open: Gauge::default(),
            connections_accepted: Counter::default(),
        }
    }
}

impl KafkaMetrics {
    /// Registers every metric under the `kafka_` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let registry = registry.sub_registry_with_prefix("kafka");
        registry.register(
            "requests",
            "Kafka requests handled, by API",
            self.requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a decoded request to its encoded response, by API",
            self.request_seconds.clone(),
        );
        registry.register(
            "bad_requests",
            "Frames refused by the codec, by kind",
            self.bad_requests.clone(),
        );
        registry.register(
            "received_bytes",
            "Request bytes read from Kafka clients",
            self.bytes_in.clone(),
        );
        registry.register(
            "sent_bytes",
            "Response bytes written to Kafka clients",
            self.bytes_out.clone(),
        );
        registry.register(
            "connections_open",
            "Open Kafka client connections",
            self.connections_open.clone(),
        );
        registry.register(
            "connections_accepted",
            "Kafka client connections accepted",
            self.connections_accepted.clone(),
        );
    }

    pub fn bad_request(&self, kind: &str) {
        self.bad_requests
            .get_or_create(&ErrorLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }
}
