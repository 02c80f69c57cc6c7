//! The [`Transform`] trait (Kafka Connect's `Transformation`), the [`TransformContext`] handed
//! to transforms at configure time, and the registry of built-in types ([`TransformKind`]).
//!
//! Kafka's `Transformation` has `configure(Map)`, `apply(R) -> R` (null drops the record),
//! `config()` and `close()`. Here:
//!
//! * configure is a constructor, [`TransformKind::configure`], reading [`Settings`] and the
//!   context; the chain then rejects any setting the transform did not read;
//! * [`Transform::apply`] takes the record by value and returns `Ok(None)` to drop it; it is
//!   `async` because claim-check transforms read and write the object store (the others are
//!   pure and never await);
//! * [`Transform::settings`] reports the effective settings (Kafka's `config()` values), so a
//!   chain can be written back to properties;
//! * [`Transform::close`] releases resources (none of the built-ins hold any).

use std::collections::BTreeMap;
use std::fmt::Debug;

use async_trait::async_trait;
use strata_claimcheck::{ClaimCheckConfig, ClaimStore};

use crate::config::Settings;
use crate::error::{ConfigError, TransformError};
use crate::record::ConnectRecord;
use crate::transforms::{ClaimCheck, ClaimCheckResolve, DropHeaders, Filter, InsertHeader};

/// A single message transform.
#[async_trait]
pub trait Transform: Send + Sync + Debug {
    /// Transforms one record: `Ok(Some(record))` passes it on (changed or not), `Ok(None)`
    /// drops it.
    async fn apply(&self, record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError>;

    /// The canonical short type name (`ClaimCheck`, `InsertHeader`, ...).
    fn type_name(&self) -> &'static str;

    /// The effective settings (defaults included, without the `transforms.<alias>.` prefix
    /// and without `type` / `predicate` / `negate`); configuring from them gives an equal
    /// transform.
    fn settings(&self) -> BTreeMap<String, String>;

    /// Releases what the transform holds. Called once, after the last `apply`.
    async fn close(&self) {}
}

/// What transforms may use besides their settings: the claim store (for `ClaimCheck` and
/// `ClaimCheckResolve`) and the gateway settings that shape tickets (`claimcheck.public.url`
/// for the ticket `uri`, multipart part size and concurrency for uploads).
///
/// `TransformContext::default()` has no claim store: chains without claim-check transforms
/// build from it; chains with one fail with [`ConfigError::MissingContext`].
#[derive(Debug, Clone, Default)]
pub struct TransformContext {
    claim_store: Option<ClaimStore>,
    gateway: ClaimCheckConfig,
}

impl TransformContext {
    /// A context with the claim store the HTTP gateway uses (same object store and prefix),
    /// so tickets written by transforms and by the gateway are interchangeable.
    pub fn with_claim_store(claim_store: ClaimStore, gateway: ClaimCheckConfig) -> Self {
        Self {
            claim_store: Some(claim_store),
            gateway,
        }
    }

    pub fn claim_store(&self) -> Option<&ClaimStore> {
        self.claim_store.as_ref()
    }

    pub fn gateway(&self) -> &ClaimCheckConfig {
        &self.gateway
    }

    /// The claim store, or the error naming `transforms.<alias>.type` when there is none.
    pub(crate) fn require_claim_store(
        &self,
        settings: &Settings,
    ) -> Result<ClaimStore, ConfigError> {
        self.claim_store
            .clone()
            .ok_or_else(|| ConfigError::MissingContext {
                key: settings.key(crate::config::TYPE),
                what: "a claim store (object store + prefix)",
            })
    }
}

/// The built-in transform types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransformKind {
    ClaimCheck,
    ClaimCheckResolve,
    InsertHeader,
    DropHeaders,
    Filter,
}

const KAFKA_TRANSFORMS_PACKAGE: &str = "org.apache.kafka.connect.transforms.";

impl TransformKind {
    pub const ALL: [TransformKind; 5] = [
        TransformKind::ClaimCheck,
        TransformKind::ClaimCheckResolve,
        TransformKind::InsertHeader,
        TransformKind::DropHeaders,
        TransformKind::Filter,
    ];

    /// The canonical short name.
    pub fn name(self) -> &'static str {
        match self {
            TransformKind::ClaimCheck => "ClaimCheck",
            TransformKind::ClaimCheckResolve => "ClaimCheckResolve",
            TransformKind::InsertHeader => "InsertHeader",
            TransformKind::DropHeaders => "DropHeaders",
            TransformKind::Filter => "Filter",
        }
    }

    /// Whether Apache Kafka ships this transform (then its fully qualified Java class name is
    /// accepted too).
    pub fn is_kafka_builtin(self) -> bool {
        matches!(
            self,
            TransformKind::InsertHeader | TransformKind::DropHeaders | TransformKind::Filter
        )
    }

    /// Resolves a `transforms.<alias>.type` value: the short name, `strata.<Name>`, or for
    /// Kafka's own transforms `org.apache.kafka.connect.transforms.<Name>`.
    pub fn from_type_name(type_name: &str) -> Option<Self> {
        let type_name = type_name.trim();
        if let Some(short) = type_name.strip_prefix(KAFKA_TRANSFORMS_PACKAGE) {
            return Self::ALL
                .into_iter()
                .find(|k| k.is_kafka_builtin() && k.name() == short);
        }
        let short = type_name.strip_prefix("strata.").unwrap_or(type_name);
        Self::ALL.into_iter().find(|k| k.name() == short)
    }

    /// The settings this type accepts (besides `type`, `predicate`, `negate`).
    pub fn setting_names(self) -> &'static [&'static str] {
        match self {
            TransformKind::ClaimCheck => ClaimCheck::SETTINGS,
            TransformKind::ClaimCheckResolve => ClaimCheckResolve::SETTINGS,
            TransformKind::InsertHeader => InsertHeader::SETTINGS,
            TransformKind::DropHeaders => DropHeaders::SETTINGS,
            TransformKind::Filter => &[],
        }
    }

    /// Builds the transform from its settings (`type`, `predicate`, `negate` already read).
    pub fn configure(
        self,
        settings: &mut Settings,
        ctx: &TransformContext,
    ) -> Result<Box<dyn Transform>, ConfigError> {
        Ok(match self {
            TransformKind::ClaimCheck => Box::new(ClaimCheck::configure(settings, ctx)?),
            TransformKind::ClaimCheckResolve => {
                Box::new(ClaimCheckResolve::configure(settings, ctx)?)
            }
            TransformKind::InsertHeader => Box::new(InsertHeader::configure(settings)?),
            TransformKind::DropHeaders => Box::new(DropHeaders::configure(settings)?),
            TransformKind::Filter => Box::new(Filter),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names() {
        let accepted = [
            ("ClaimCheck", TransformKind::ClaimCheck),
            ("strata.ClaimCheck", TransformKind::ClaimCheck),
            ("strata.ClaimCheckResolve", TransformKind::ClaimCheckResolve),
            (
                "org.apache.kafka.connect.transforms.InsertHeader",
                TransformKind::InsertHeader,
            ),
            (
                "org.apache.kafka.connect.transforms.DropHeaders",
                TransformKind::DropHeaders,
            ),
            (
                "org.apache.kafka.connect.transforms.Filter",
                TransformKind::Filter,
            ),
            ("Filter", TransformKind::Filter),
        ];
        for (name, kind) in accepted {
            assert_eq!(TransformKind::from_type_name(name), Some(kind), "{name}");
        }
        for rejected in [
            "org.apache.kafka.connect.transforms.ClaimCheck",
            "org.apache.kafka.connect.transforms.InsertField$Value",
            "claimcheck",
            "",
        ] {
            assert_eq!(TransformKind::from_type_name(rejected), None, "{rejected}");
        }
    }
}
