//! The Strata broker: the log engine, the Kafka protocol server and everything the `strata`
//! binary wires together. See ARCHITECTURE.md for the map.

pub mod claims;
pub mod config;
pub mod connect;
pub mod export;
pub mod group;
pub mod http;
pub mod kafka;
pub mod log;
pub mod metrics;
pub mod smt;
pub mod tiered;

/// Unit tests run with the binary's allocator so that codec tests see what production sees
/// (see the note on the global allocator in `main.rs`).
#[cfg(all(test, not(target_env = "msvc")))]
#[global_allocator]
static TEST_ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
