//! The Kafka protocol server: the log engine behind the Apache Kafka wire protocol.
//!
//! # Entry point (what the binary constructs)
//!
//! ```ignore
//! use strata_broker::kafka::{self, BrokerContext, BrokerContextParams};
//! use tokio_util::sync::CancellationToken;
//!
//! let log: Arc<LogManager> = LogManager::open(log_config).await?;
//! let ctx: Arc<BrokerContext> = BrokerContext::open(BrokerContextParams {
//!     log: Arc::clone(&log),
//!     state_dir: data_dir.join("kafka"),       // cluster id, broker epoch, producer ids, committed offsets
//!     advertised_host: "127.0.0.1".into(),      // `advertised.listeners`; default: the bound address
//!     advertised_port: 9092,
//!     broker_configs,                           // BTreeMap<String, String> of Kafka-named broker configs
//! })?;
//! ctx.metrics.register(&mut registry);          // prometheus_client::registry::Registry
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9092").await?;
//! let shutdown = CancellationToken::new();
//! kafka::serve(listener, ctx, shutdown.clone()).await?;   // returns after shutdown.cancel()
//! ```
//!
//! Broker configs read here (Kafka names and defaults): `node.id` (0), `socket.request.max.bytes`
//! (104857600), `connections.max.idle.ms` (600000), `auto.create.topics.enable` (true),
//! `num.partitions` (1), `group.initial.rebalance.delay.ms` (3000),
//! `group.min.session.timeout.ms` (6000), `group.max.session.timeout.ms` (1800000).
//!
//! # Layout
//! ```text
//!  server.rs      accept loop, one task per connection, graceful shutdown
//!  connection.rs  length-prefixed frames, size limit before allocation, idle reaping, in-order replies
//!  codec.rs       sans-io: frame bytes -> DecodedRequest, ResponseKind -> bytes (kafka-protocol crate)
//!  response_frame.rs  responses as pieces: Fetch record sets go to the socket uncopied
//!  versions.rs    the API/version table advertised in ApiVersions and enforced by the codec
//!  dispatch.rs    RequestKind -> handler, per-API metrics
//!  handlers/      one file per API family
//!  context.rs     BrokerContext: log, groups, identity, configs, metrics
//!  broker_state.rs durable cluster id, broker epoch (= leader epoch), producer-id blocks
//! ```

pub mod broker_state;
pub mod codec;
pub mod connection;
pub mod context;
pub mod dispatch;
pub mod handlers;
pub mod metrics;
pub mod response_frame;
pub mod server;
pub mod versions;

pub use context::{BrokerContext, BrokerContextParams, ContextError};
pub use handlers::list_offsets::TierOffsets;
pub use metrics::KafkaMetrics;
pub use server::serve;

#[cfg(test)]
mod codec_proptests;
#[cfg(test)]
mod loopback_tests;
#[cfg(test)]
pub(crate) mod test_support;
