//! Single Message Transforms in the broker: a topic's transform chain runs on Produce before
//! the append, and (optionally) claim tickets are resolved on Fetch.
//!
//! ```text
//!  Produce ─► handlers/produce.rs ─► smt::append (produce.rs)
//!               │ chain of the topic (topic configs transforms=, predicates=; cached per topic)
//!               │ none: PartitionLog::append as before
//!               ▼ spawned task (off the connection task)
//!      split batches, check max.message.bytes on the INCOMING batch            batch.rs
//!      decode (kafka-protocol) ─► chain.apply per record ─► re-encode (same compression,
//!      producer id/epoch/base sequence, record count)                           batch.rs
//!      position.json pending for every new claim (PositionBook, claims/live.rs)
//!      PartitionLog::append ─► position.json with the offset (or forget on failure/duplicate)
//!
//!  Fetch ─► handlers/fetch.rs ─► smt::resolve_fetch (fetch.rs), topics with
//!      claimcheck.fetch.resolve=true: batches holding tickets are decoded, tickets replaced by
//!      their verified payloads, re-encoded with the same offsets; at most
//!      claimcheck.fetch.resolve.max.bytes of payload per response.
//! ```
//!
//! # Topic configs
//! `transforms`, `transforms.*`, `predicates`, `predicates.*` (Kafka Connect's convention, see
//! docs/transforms.md) and `claimcheck.fetch.resolve`, `claimcheck.fetch.resolve.max.bytes`.
//! `log/config.rs` accepts them through [`is_smt_config_key`] and validates them with
//! [`validate_topic_overrides`], which builds the chain (so a bad chain is refused at
//! CreateTopics / IncrementalAlterConfigs with INVALID_CONFIG naming the key). The Kafka
//! handlers also refuse `claimcheck.fetch.resolve=true` on a broker without claim store
//! ([`check_fetch_resolve`]).
//!
//! # Idempotent producers and Filter
//! The log requires a batch's record count to equal its offset span, so records cannot vanish
//! from the middle of an idempotent batch without breaking its sequence numbers. A chain that
//! drops records of a batch with a producer id is refused with INVALID_RECORD (a clear message
//! naming the topic); non-idempotent batches are re-numbered densely. Transforms that keep
//! every record (ClaimCheck, InsertHeader, DropHeaders) work with idempotent producers: the
//! re-encoded batch keeps producer id, epoch, base sequence and record count.

pub mod batch;
pub mod fetch;
pub mod produce;
#[cfg(test)]
mod test_support;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use strata_claimcheck::{ClaimCheckConfig, ClaimStore};
use strata_connect_smt::{TransformChain, TransformContext};

use crate::claims::PositionBook;
use crate::log::TopicConfig;
use crate::log::{LogError, PartitionLog};

pub use fetch::resolve_fetch;
pub use produce::append;

/// Topic config: resolve claim tickets on Fetch (`true` / `false`, default `false`).
pub const FETCH_RESOLVE: &str = "claimcheck.fetch.resolve";
/// Topic config: payload bytes resolved per Fetch response (default 64 MiB).
pub const FETCH_RESOLVE_MAX_BYTES: &str = "claimcheck.fetch.resolve.max.bytes";
pub const DEFAULT_FETCH_RESOLVE_MAX_BYTES: u64 = 64 * 1024 * 1024;

/// Whether `key` is a topic config owned by this module (accepted by `log/config.rs`).
pub fn is_smt_config_key(key: &str) -> bool {
    is_chain_key(key) || key == FETCH_RESOLVE || key == FETCH_RESOLVE_MAX_BYTES
}

fn is_chain_key(key: &str) -> bool {
    ["transforms", "predicates"]
        .iter()
        .any(|p| key == *p || key.strip_prefix(p).is_some_and(|r| r.starts_with('.')))
}

/// The chain properties among a topic's configs.
pub fn chain_properties<'a>(
    configs: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> BTreeMap<String, String> {
    configs
        .into_iter()
        .filter(|(k, _)| is_chain_key(k))
        .map(|(k, v)| (k.clone(), v.trim().to_string()))
        .collect()
}

/// A context with an in-memory claim store: building a chain checks every setting without I/O.
fn validation_context() -> TransformContext {
    let store = ClaimStore::new(Arc::new(object_store::memory::InMemory::new()), "validate")
        .expect("in-memory claim store");
    TransformContext::with_claim_store(store, ClaimCheckConfig::default())
}

/// Validates the transform keys of topic `overrides` by building the chain; the error names
/// the offending key.
pub fn validate_topic_overrides(overrides: &BTreeMap<String, String>) -> Result<(), LogError> {
    let invalid = |key: &str, reason: String| LogError::InvalidConfig {
        key: key.to_string(),
        reason,
    };
    if let Some(value) = overrides.get(FETCH_RESOLVE) {
        let v = value.trim();
        if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
            return Err(invalid(FETCH_RESOLVE, format!("'{v}' is not a boolean")));
        }
    }
    if let Some(value) = overrides.get(FETCH_RESOLVE_MAX_BYTES) {
        match value.trim().parse::<u64>() {
            Ok(n) if n > 0 => {}
            _ => {
                return Err(invalid(
                    FETCH_RESOLVE_MAX_BYTES,
                    format!("'{value}' is not a positive integer"),
                ));
            }
        }
    }
    let props = chain_properties(overrides);
    if props.is_empty() {
        return Ok(());
    }
    TransformChain::from_properties(&props, &validation_context())
        .map(|_| ())
        .map_err(|e| invalid(e.key(), e.to_string()))
}

/// Refuses `claimcheck.fetch.resolve=true` (`value`, as set by CreateTopics or AlterConfigs)
/// on a broker whose transform engine has no claim store (`claimcheck.enable=false`, or no
/// engine): nothing could resolve the tickets, and consumers would get them as if resolution
/// were off. Checked by the Kafka handlers, not by `validate_topic_overrides`, which also runs
/// when topics are loaded from disk and must not refuse a topic the broker already holds.
pub fn check_fetch_resolve(
    engine: Option<&SmtEngine>,
    value: Option<&str>,
) -> Result<(), LogError> {
    let on = value.is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if on && engine.is_none_or(|e| e.claims.is_none()) {
        return Err(LogError::InvalidConfig {
            key: FETCH_RESOLVE.to_string(),
            reason: "fetch-side resolution needs the claim-check gateway, and this broker runs \
                     without it (claimcheck.enable=false)"
                .to_string(),
        });
    }
    Ok(())
}

/// Fetch-side resolution settings of a topic, `None` when off.
fn fetch_resolve_limit(config: &TopicConfig) -> Option<u64> {
    let on = config
        .resolved
        .get(FETCH_RESOLVE)
        .is_some_and(|(v, _)| v.trim().eq_ignore_ascii_case("true"));
    on.then(|| {
        config
            .resolved
            .get(FETCH_RESOLVE_MAX_BYTES)
            .and_then(|(v, _)| v.trim().parse().ok())
            .unwrap_or(DEFAULT_FETCH_RESOLVE_MAX_BYTES)
    })
}

struct CachedChain {
    topic_id: uuid::Uuid,
    props: BTreeMap<String, String>,
    chain: Arc<TransformChain>,
}

/// The broker's transform engine: the claim store context, the position book and the chains
/// cached per topic (rebuilt when the topic's chain properties or topic id change).
pub struct SmtEngine {
    ctx: TransformContext,
    book: Option<Arc<PositionBook>>,
    claims: Option<ClaimStore>,
    produce_chains: Mutex<HashMap<String, CachedChain>>,
    fetch_chains: Mutex<HashMap<u64, Arc<TransformChain>>>,
}

impl SmtEngine {
    /// With the gateway's claim store and settings: tickets are interchangeable with the
    /// gateway's and recorded in the same position book, so the claim GC keeps them.
    pub fn with_claims(store: ClaimStore, gateway: ClaimCheckConfig) -> Self {
        Self {
            ctx: TransformContext::with_claim_store(store.clone(), gateway),
            book: Some(Arc::new(PositionBook::new(&store))),
            claims: Some(store),
            produce_chains: Mutex::default(),
            fetch_chains: Mutex::default(),
        }
    }

    /// Without a claim store (`claimcheck.enable=false`): claim-check chains fail at produce.
    pub fn without_claims() -> Self {
        Self {
            ctx: TransformContext::default(),
            book: None,
            claims: None,
            produce_chains: Mutex::default(),
            fetch_chains: Mutex::default(),
        }
    }

    /// The produce chain of `log`'s topic, `None` when the topic has none.
    pub fn produce_chain(
        &self,
        log: &PartitionLog,
    ) -> Result<Option<Arc<TransformChain>>, LogError> {
        let config = log.config();
        let props = chain_properties(config.resolved.iter().map(|(k, (v, _))| (k, v)));
        let mut cache = self
            .produce_chains
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if props.is_empty() {
            cache.remove(log.topic());
            return Ok(None);
        }
        if let Some(cached) = cache.get(log.topic())
            && cached.topic_id == log.topic_id()
            && cached.props == props
        {
            return Ok(Some(cached.chain.clone()));
        }
        let chain = TransformChain::from_properties(&props, &self.ctx).map_err(|e| {
            LogError::InvalidConfig {
                key: e.key().to_string(),
                reason: e.to_string(),
            }
        })?;
        let chain = Arc::new(chain);
        tracing::info!(topic = log.topic(), transforms = ?chain.aliases().collect::<Vec<_>>(), "transform chain built");
        if let Some(old) = cache.insert(
            log.topic().to_string(),
            CachedChain {
                topic_id: log.topic_id(),
                props,
                chain: chain.clone(),
            },
        ) {
            tokio::spawn(async move { old.chain.close().await });
        }
        Ok(Some(chain))
    }

    /// The resolve chain for a topic with fetch-side resolution on, and its byte budget.
    pub fn fetch_chain(&self, log: &PartitionLog) -> Option<(Arc<TransformChain>, u64)> {
        let limit = fetch_resolve_limit(&log.config())?;
        let mut cache = self.fetch_chains.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(chain) = cache.get(&limit) {
            return Some((chain.clone(), limit));
        }
        let props: BTreeMap<String, String> = [
            ("transforms", "value,key"),
            ("transforms.value.type", "ClaimCheckResolve"),
            ("transforms.value.field", "value"),
            ("transforms.key.type", "ClaimCheckResolve"),
            ("transforms.key.field", "key"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .chain(["value", "key"].map(|a| (format!("transforms.{a}.max.bytes"), limit.to_string())))
        .collect();
        match TransformChain::from_properties(&props, &self.ctx) {
            Ok(chain) => {
                let chain = Arc::new(chain);
                cache.insert(limit, chain.clone());
                Some((chain, limit))
            }
            Err(error) => {
                tracing::warn!(topic = log.topic(), %error, "fetch-side resolution needs the claim-check gateway (claimcheck.enable=true)");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        for key in [
            "transforms",
            "transforms.cc.type",
            "predicates",
            "predicates.p.pattern",
            FETCH_RESOLVE,
            FETCH_RESOLVE_MAX_BYTES,
        ] {
            assert!(is_smt_config_key(key), "{key}");
        }
        for key in ["transformsx", "transforms_", "retention.ms", "predicate"] {
            assert!(!is_smt_config_key(key), "{key}");
        }
    }

    #[test]
    fn validation_names_the_key() {
        let props = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        validate_topic_overrides(&props(&[
            ("transforms", "cc"),
            ("transforms.cc.type", "ClaimCheck"),
            ("transforms.cc.threshold.bytes", "1024"),
            ("retention.ms", "5"),
        ]))
        .unwrap();
        for (pairs, key) in [
            (
                vec![("transforms", "cc"), ("transforms.cc.type", "Nope")],
                "transforms.cc.type",
            ),
            (
                vec![
                    ("transforms", "cc"),
                    ("transforms.cc.type", "ClaimCheck"),
                    ("transforms.cc.threshold.bytes", "x"),
                ],
                "transforms.cc.threshold.bytes",
            ),
            (vec![(FETCH_RESOLVE, "yes")], FETCH_RESOLVE),
            (
                vec![(FETCH_RESOLVE_MAX_BYTES, "0")],
                FETCH_RESOLVE_MAX_BYTES,
            ),
        ] {
            let error = validate_topic_overrides(&props(&pairs)).unwrap_err();
            assert!(
                matches!(&error, LogError::InvalidConfig { key: k, .. } if k == key),
                "{error}"
            );
        }
    }
}
