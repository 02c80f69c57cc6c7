//! Single Message Transforms in the Kafka Connect style, so large payloads can be externalized
//! to the object store on the fly (and resolved again) without changing producers or consumers.
//!
//! ```text
//!  properties (map or .properties text)
//!      │  TransformChain::from_properties(&map, &ctx)     config.rs, chain.rs
//!      ▼
//!  TransformChain ── apply(ConnectRecord) ──► Option<ConnectRecord>
//!      stage: [predicate XOR negate] ──► Transform::apply       predicate.rs, transform.rs
//!      built-ins: ClaimCheck, ClaimCheckResolve (through strata-claimcheck's ClaimStore),
//!                 InsertHeader, DropHeaders, Filter            transforms/
//! ```
//!
//! For the broker:
//! * build a [`TransformContext`] once with [`TransformContext::with_claim_store`] over the same
//!   `ClaimStore` and `ClaimCheckConfig` as the HTTP gateway (tickets are then interchangeable);
//! * build a [`TransformChain`] per topic (or connector) with
//!   [`TransformChain::from_properties`]; a [`ConfigError`] names the offending key, answer the
//!   admin request with it;
//! * call [`TransformChain::apply`] per record; `Ok(None)` means dropped,
//!   [`TransformError::is_retryable`] tells whether to retry.
//!
//! The property convention and every transform's settings are documented in
//! `docs/transforms.md`.

pub mod chain;
pub mod config;
pub mod error;
pub mod predicate;
pub mod properties;
pub mod record;
pub mod transform;
pub mod transforms;

pub use chain::TransformChain;
pub use error::{ConfigError, ConfigErrorKind, TransformError};
pub use predicate::{Predicate, PredicateKind};
pub use properties::{parse_properties, write_properties};
pub use record::ConnectRecord;
pub use transform::{Transform, TransformContext, TransformKind};
