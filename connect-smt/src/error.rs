//! The errors of this crate: [`ConfigError`] when a chain is built, [`TransformError`] when a
//! record goes through it.
//!
//! The two are kept apart because they reach different people: a `ConfigError` goes back to
//! whoever wrote the properties (an admin request altering a topic config, a connector file) and
//! always names the offending property key ([`ConfigError::key`]); a `TransformError` happens on
//! the data path and names the transform alias and, for claim checks, the claim id. Both
//! classify themselves ([`ConfigError::kind`], [`TransformError::is_retryable`],
//! [`TransformError::is_integrity_failure`]).

use strata_claimcheck::{ClaimError, ClaimId};

/// A transform chain's properties are wrong. Every variant names the offending property key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required setting is absent (or empty).
    #[error("missing required setting {key}")]
    MissingSetting { key: String },
    /// A setting's value does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    InvalidValue {
        key: String,
        value: String,
        reason: String,
    },
    /// A setting the transform or predicate does not know (often a typo).
    #[error("unknown setting {key}{}", hint_suffix(.known))]
    UnknownSetting { key: String, known: Vec<String> },
    /// `transforms.<alias>.type` / `predicates.<alias>.type` names no known type.
    #[error("unknown {what} type {value:?} in {key} (known: {})", .known.join(", "))]
    UnknownType {
        key: String,
        value: String,
        what: &'static str,
        known: Vec<&'static str>,
    },
    /// A `transforms.<alias>.*` or `predicates.<alias>.*` key whose alias is not listed in
    /// `transforms` / `predicates`.
    #[error("{key}: alias {alias:?} is not listed in {list_key}")]
    UnlistedAlias {
        key: String,
        alias: String,
        list_key: &'static str,
    },
    /// The same alias appears twice in `transforms` or `predicates`, or an alias is malformed.
    #[error("invalid alias {alias:?} in {key}: {reason}")]
    InvalidAlias {
        key: String,
        alias: String,
        reason: &'static str,
    },
    /// `transforms.<alias>.predicate` names a predicate not listed in `predicates`.
    #[error("{key} refers to predicate {predicate:?}, which is not listed in predicates")]
    UnknownPredicate { key: String, predicate: String },
    /// The transform needs something the [`crate::TransformContext`] does not provide (the
    /// claim store for `ClaimCheck` / `ClaimCheckResolve`).
    #[error("{key}: {what} is not available in this context")]
    MissingContext { key: String, what: &'static str },
    /// Java `.properties` text that cannot be read (a malformed `\uXXXX` escape).
    #[error("properties line {line} (key {key:?}): {reason}")]
    PropertiesSyntax {
        line: usize,
        key: String,
        reason: String,
    },
}

fn hint_suffix(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!(" (known settings: {})", known.join(", "))
    }
}

/// What kind of mistake a [`ConfigError`] is, for metrics and API error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    Missing,
    Invalid,
    Unknown,
    Unavailable,
    Syntax,
}

impl ConfigError {
    /// The property key at fault (for a syntax error, the key of the line being read).
    pub fn key(&self) -> &str {
        match self {
            ConfigError::MissingSetting { key }
            | ConfigError::InvalidValue { key, .. }
            | ConfigError::UnknownSetting { key, .. }
            | ConfigError::UnknownType { key, .. }
            | ConfigError::UnlistedAlias { key, .. }
            | ConfigError::InvalidAlias { key, .. }
            | ConfigError::UnknownPredicate { key, .. }
            | ConfigError::MissingContext { key, .. }
            | ConfigError::PropertiesSyntax { key, .. } => key,
        }
    }

    pub fn kind(&self) -> ConfigErrorKind {
        match self {
            ConfigError::MissingSetting { .. } => ConfigErrorKind::Missing,
            ConfigError::InvalidValue { .. } | ConfigError::InvalidAlias { .. } => {
                ConfigErrorKind::Invalid
            }
            ConfigError::UnknownSetting { .. }
            | ConfigError::UnknownType { .. }
            | ConfigError::UnlistedAlias { .. }
            | ConfigError::UnknownPredicate { .. } => ConfigErrorKind::Unknown,
            ConfigError::MissingContext { .. } => ConfigErrorKind::Unavailable,
            ConfigError::PropertiesSyntax { .. } => ConfigErrorKind::Syntax,
        }
    }
}

/// A record could not be transformed. Names the transform alias (`transform`), and the claim
/// for claim-check failures.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// The claim's payload is larger than `max.bytes` allows (checked against the ticket's
    /// declared size before downloading, and again while reading).
    #[error(
        "transform {transform}: claim {claim} payload of {size} bytes exceeds {setting}={limit}"
    )]
    PayloadTooLarge {
        transform: String,
        claim: ClaimId,
        size: u64,
        limit: u64,
        setting: String,
    },
    /// The stored payload's SHA-256 differs from the ticket's: it was changed or corrupted.
    #[error(
        "transform {transform}: claim {claim} payload hash mismatch: ticket says {expected}, store has {actual}"
    )]
    HashMismatch {
        transform: String,
        claim: ClaimId,
        expected: String,
        actual: String,
    },
    /// The stored payload's length differs from the ticket's `size`.
    #[error(
        "transform {transform}: claim {claim} payload size mismatch: ticket says {expected} bytes, store has {actual}"
    )]
    SizeMismatch {
        transform: String,
        claim: ClaimId,
        expected: u64,
        actual: u64,
    },
    /// The ticket's payload is not in the store (deleted by the GC, wrong store or prefix).
    #[error("transform {transform}: claim {claim} payload not found in the claim store")]
    PayloadMissing { transform: String, claim: ClaimId },
    /// The record carries ticket headers that do not form a valid ticket.
    #[error("transform {transform}: invalid claim ticket: {reason}")]
    InvalidTicket { transform: String, reason: String },
    /// The record to externalize already carries a header of the ticket contract.
    #[error("transform {transform}: record already carries reserved ticket header {header:?}")]
    ReservedHeader { transform: String, header: String },
    /// The object store failed (network, throttling, permissions...).
    #[error("transform {transform}: claim store: {source}")]
    Store {
        transform: String,
        #[source]
        source: ClaimError,
    },
}

impl TransformError {
    /// The alias of the transform that failed (`a` for `transforms.a.*`).
    pub fn transform(&self) -> &str {
        match self {
            TransformError::PayloadTooLarge { transform, .. }
            | TransformError::HashMismatch { transform, .. }
            | TransformError::SizeMismatch { transform, .. }
            | TransformError::PayloadMissing { transform, .. }
            | TransformError::InvalidTicket { transform, .. }
            | TransformError::ReservedHeader { transform, .. }
            | TransformError::Store { transform, .. } => transform,
        }
    }

    /// Whether applying the same record again may succeed (transient object-store failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            TransformError::Store { source, .. } => source.is_retryable(),
            TransformError::PayloadTooLarge { .. }
            | TransformError::HashMismatch { .. }
            | TransformError::SizeMismatch { .. }
            | TransformError::PayloadMissing { .. }
            | TransformError::InvalidTicket { .. }
            | TransformError::ReservedHeader { .. } => false,
        }
    }

    /// Whether the stored payload does not match its ticket (corruption or tampering).
    pub fn is_integrity_failure(&self) -> bool {
        matches!(
            self,
            TransformError::HashMismatch { .. } | TransformError::SizeMismatch { .. }
        )
    }

    /// Whether the error is about the record itself (the producer's or the ticket's fault)
    /// rather than the store: the broker answers such a produce with `INVALID_RECORD`.
    pub fn is_record_error(&self) -> bool {
        matches!(
            self,
            TransformError::InvalidTicket { .. } | TransformError::ReservedHeader { .. }
        )
    }
}
