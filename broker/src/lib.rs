//! The Strata broker: the log engine, the Kafka protocol server and everything the `strata`
//! binary wires together. See ARCHITECTURE.md for the map.

pub mod claims;
pub mod config;
pub mod http;
pub mod metrics;
pub mod log;
pub mod group;
pub mod kafka;
pub mod tiered;
