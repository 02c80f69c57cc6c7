//! [`TransformChain`]: the transforms of one property map, applied in order, each guarded by
//! its optional predicate.
//!
//! ```text
//!  record ──► stage 1 ──► stage 2 ──► ... ──► Some(record)
//!               │  predicate(record) XOR negate?  no ──► record passes unchanged
//!               │                               yes ──► transform.apply(record)
//!               └─ Ok(None) ──────────────────────────► None (dropped; later stages not run)
//!               └─ Err(e) ────────────────────────────► Err(e) (the record is not delivered)
//! ```
//!
//! As in Kafka Connect, each predicate sees the record as the earlier stages left it.
//! A chain is immutable after building and `Send + Sync`: share it (`Arc`) across tasks.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{NEGATE, PREDICATE, PREDICATES, Settings, StageProperties, TRANSFORMS, TYPE};
use crate::error::{ConfigError, TransformError};
use crate::predicate::{Predicate, PredicateKind};
use crate::properties::parse_properties;
use crate::record::ConnectRecord;
use crate::transform::{Transform, TransformContext, TransformKind};

/// A named predicate, shared by the stages that use it.
#[derive(Debug, Clone)]
struct NamedPredicate {
    alias: String,
    predicate: Arc<dyn Predicate>,
}

/// One `transforms.<alias>` entry.
#[derive(Debug)]
struct Stage {
    alias: String,
    transform: Box<dyn Transform>,
    guard: Option<(NamedPredicate, bool)>,
}

impl Stage {
    fn applies_to(&self, record: &ConnectRecord) -> bool {
        match &self.guard {
            None => true,
            Some((named, negate)) => named.predicate.test(record) != *negate,
        }
    }
}

/// Transforms applied in order; see the module docs.
#[derive(Debug, Default)]
pub struct TransformChain {
    stages: Vec<Stage>,
    predicates: Vec<NamedPredicate>,
}

impl TransformChain {
    /// A chain that passes every record unchanged.
    pub fn empty() -> Self {
        Self::default()
    }

    /// Builds the chain described by `props` (Kafka Connect's `transforms=` / `predicates=`
    /// convention). Keys outside `transforms.*` / `predicates.*` are ignored, so a whole
    /// connector or topic config may be passed. Every error names the offending key.
    pub fn from_properties(
        props: &BTreeMap<String, String>,
        ctx: &TransformContext,
    ) -> Result<Self, ConfigError> {
        let StageProperties {
            transforms,
            predicates,
        } = StageProperties::split(props)?;
        let predicates = predicates
            .into_iter()
            .map(build_predicate)
            .collect::<Result<Vec<_>, _>>()?;
        let stages = transforms
            .into_iter()
            .map(|settings| build_stage(settings, &predicates, ctx))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { stages, predicates })
    }

    /// Builds the chain from Java `.properties` text.
    pub fn from_properties_text(text: &str, ctx: &TransformContext) -> Result<Self, ConfigError> {
        Self::from_properties(&parse_properties(text)?, ctx)
    }

    /// Runs `record` through every stage; `Ok(None)` when a stage dropped it.
    pub async fn apply(
        &self,
        record: ConnectRecord,
    ) -> Result<Option<ConnectRecord>, TransformError> {
        let mut record = record;
        for stage in &self.stages {
            if !stage.applies_to(&record) {
                continue;
            }
            match stage.transform.apply(record).await? {
                Some(next) => record = next,
                None => return Ok(None),
            }
        }
        Ok(Some(record))
    }

    /// Closes every transform, in order.
    pub async fn close(&self) {
        for stage in &self.stages {
            stage.transform.close().await;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// The transform aliases, in application order.
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.stages.iter().map(|s| s.alias.as_str())
    }

    /// Whether a transform of `kind` is in the chain (e.g. the broker resolves tickets on
    /// fetch only for topics whose chain has a `ClaimCheckResolve`).
    pub fn contains(&self, kind: TransformKind) -> bool {
        self.stages
            .iter()
            .any(|s| s.transform.type_name() == kind.name())
    }

    /// The chain as normalized properties (canonical type names, defaults spelled out):
    /// [`Self::from_properties`] on the result gives an equivalent chain. For
    /// `DescribeConfigs` and for logging what is in effect.
    pub fn to_properties(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let join = |aliases: Vec<&str>| aliases.join(",");
        if !self.stages.is_empty() {
            out.insert(
                TRANSFORMS.to_string(),
                join(self.stages.iter().map(|s| s.alias.as_str()).collect()),
            );
        }
        if !self.predicates.is_empty() {
            out.insert(
                PREDICATES.to_string(),
                join(self.predicates.iter().map(|p| p.alias.as_str()).collect()),
            );
        }
        for stage in &self.stages {
            let prefix = format!("{TRANSFORMS}.{}.", stage.alias);
            out.insert(
                format!("{prefix}{TYPE}"),
                stage.transform.type_name().to_string(),
            );
            for (name, value) in stage.transform.settings() {
                out.insert(format!("{prefix}{name}"), value);
            }
            if let Some((named, negate)) = &stage.guard {
                out.insert(format!("{prefix}{PREDICATE}"), named.alias.clone());
                out.insert(format!("{prefix}{NEGATE}"), negate.to_string());
            }
        }
        for named in &self.predicates {
            let prefix = format!("{PREDICATES}.{}.", named.alias);
            out.insert(
                format!("{prefix}{TYPE}"),
                named.predicate.type_name().to_string(),
            );
            for (name, value) in named.predicate.settings() {
                out.insert(format!("{prefix}{name}"), value);
            }
        }
        out
    }
}

fn build_predicate(mut settings: Settings) -> Result<NamedPredicate, ConfigError> {
    let type_name = settings.required(TYPE)?;
    let kind =
        PredicateKind::from_type_name(&type_name).ok_or_else(|| ConfigError::UnknownType {
            key: settings.key(TYPE),
            value: type_name.clone(),
            what: "predicate",
            known: PredicateKind::ALL.iter().map(|k| k.name()).collect(),
        })?;
    let predicate = kind.configure(&mut settings)?;
    settings.reject_unknown(&[&[TYPE], kind.setting_names()].concat())?;
    Ok(NamedPredicate {
        alias: settings.alias().to_string(),
        predicate: Arc::from(predicate),
    })
}

fn build_stage(
    mut settings: Settings,
    predicates: &[NamedPredicate],
    ctx: &TransformContext,
) -> Result<Stage, ConfigError> {
    let type_name = settings.required(TYPE)?;
    let kind =
        TransformKind::from_type_name(&type_name).ok_or_else(|| ConfigError::UnknownType {
            key: settings.key(TYPE),
            value: type_name.clone(),
            what: "transform",
            known: TransformKind::ALL.iter().map(|k| k.name()).collect(),
        })?;
    let predicate_alias = settings.optional(PREDICATE);
    let negate = settings.bool_or(NEGATE, false)?;
    let guard = match predicate_alias {
        None if settings.optional(NEGATE).is_some() => {
            return Err(settings.invalid(
                NEGATE,
                &negate.to_string(),
                format!("negate needs {}", settings.key(PREDICATE)),
            ));
        }
        None => None,
        Some(alias) => {
            let alias = alias.trim();
            let named = predicates
                .iter()
                .find(|p| p.alias == alias)
                .ok_or_else(|| ConfigError::UnknownPredicate {
                    key: settings.key(PREDICATE),
                    predicate: alias.to_string(),
                })?;
            Some((named.clone(), negate))
        }
    };
    let transform = kind.configure(&mut settings, ctx)?;
    settings.reject_unknown(&[&[TYPE, PREDICATE, NEGATE], kind.setting_names()].concat())?;
    Ok(Stage {
        alias: settings.alias().to_string(),
        transform,
        guard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}

    /// The broker shares one chain across connection tasks and awaits `apply` on them.
    #[test]
    fn chain_and_apply_future_can_cross_tasks() {
        let chain = TransformChain::empty();
        assert_send_sync(&chain);
        let apply = chain.apply(ConnectRecord::new("t", None));
        assert_send(&apply);
    }
}
