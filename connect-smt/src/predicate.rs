//! Predicates (Kafka KIP-585): conditions that decide whether a transform applies to a record.
//!
//! | type | settings | true when |
//! | --- | --- | --- |
//! | `TopicNameMatches` | `pattern` (regex, required) | the whole topic name matches `pattern` |
//! | `HasHeaderKey` | `name` (required) | the record has at least one header called `name` |
//! | `RecordIsTombstone` | none | the value is null |
//!
//! Type names are accepted short (`TopicNameMatches`), fully qualified
//! (`org.apache.kafka.connect.transforms.predicates.TopicNameMatches`) or as `strata.<Name>`.
//! A transform's `negate=true` inverts its predicate.

use std::collections::BTreeMap;
use std::fmt::Debug;

use regex::Regex;

use crate::config::Settings;
use crate::error::ConfigError;
use crate::record::ConnectRecord;

/// A condition on a record. Pure and cheap: no I/O.
pub trait Predicate: Send + Sync + Debug {
    /// Whether `record` satisfies the condition.
    fn test(&self, record: &ConnectRecord) -> bool;

    /// The canonical short type name (`TopicNameMatches`).
    fn type_name(&self) -> &'static str;

    /// The settings this predicate was configured with (without the `predicates.<alias>.`
    /// prefix and without `type`); building from them gives an equal predicate.
    fn settings(&self) -> BTreeMap<String, String>;
}

/// The built-in predicate types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredicateKind {
    TopicNameMatches,
    HasHeaderKey,
    RecordIsTombstone,
}

const KAFKA_PREDICATES_PACKAGE: &str = "org.apache.kafka.connect.transforms.predicates.";

impl PredicateKind {
    pub const ALL: [PredicateKind; 3] = [
        PredicateKind::TopicNameMatches,
        PredicateKind::HasHeaderKey,
        PredicateKind::RecordIsTombstone,
    ];

    /// The canonical short name.
    pub fn name(self) -> &'static str {
        match self {
            PredicateKind::TopicNameMatches => "TopicNameMatches",
            PredicateKind::HasHeaderKey => "HasHeaderKey",
            PredicateKind::RecordIsTombstone => "RecordIsTombstone",
        }
    }

    /// Resolves a `predicates.<alias>.type` value.
    pub fn from_type_name(type_name: &str) -> Option<Self> {
        let type_name = type_name.trim();
        let short = type_name
            .strip_prefix(KAFKA_PREDICATES_PACKAGE)
            .or_else(|| type_name.strip_prefix("strata."))
            .unwrap_or(type_name);
        Self::ALL.into_iter().find(|k| k.name() == short)
    }

    /// Builds the predicate from its settings (`type` already read).
    pub fn configure(self, settings: &mut Settings) -> Result<Box<dyn Predicate>, ConfigError> {
        Ok(match self {
            PredicateKind::TopicNameMatches => Box::new(TopicNameMatches::configure(settings)?),
            PredicateKind::HasHeaderKey => Box::new(HasHeaderKey::configure(settings)?),
            PredicateKind::RecordIsTombstone => Box::new(RecordIsTombstone),
        })
    }

    /// The settings this type accepts (besides `type`).
    pub fn setting_names(self) -> &'static [&'static str] {
        match self {
            PredicateKind::TopicNameMatches => &["pattern"],
            PredicateKind::HasHeaderKey => &["name"],
            PredicateKind::RecordIsTombstone => &[],
        }
    }
}

/// True when the whole topic name matches `pattern` (Java's `Matcher.matches()`).
#[derive(Debug, Clone)]
pub struct TopicNameMatches {
    pattern: String,
    anchored: Regex,
}

impl TopicNameMatches {
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        let anchored = Regex::new(&format!("^(?:{pattern})$"))?;
        Ok(Self {
            pattern: pattern.to_string(),
            anchored,
        })
    }

    fn configure(settings: &mut Settings) -> Result<Self, ConfigError> {
        let pattern = settings.required("pattern")?;
        Self::new(&pattern).map_err(|e| settings.invalid("pattern", &pattern, e.to_string()))
    }
}

impl Predicate for TopicNameMatches {
    fn test(&self, record: &ConnectRecord) -> bool {
        self.anchored.is_match(&record.topic)
    }
    fn type_name(&self) -> &'static str {
        PredicateKind::TopicNameMatches.name()
    }
    fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("pattern".to_string(), self.pattern.clone())])
    }
}

/// True when the record has at least one header called `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HasHeaderKey {
    pub name: String,
}

impl HasHeaderKey {
    fn configure(settings: &mut Settings) -> Result<Self, ConfigError> {
        Ok(Self {
            name: settings.required("name")?,
        })
    }
}

impl Predicate for HasHeaderKey {
    fn test(&self, record: &ConnectRecord) -> bool {
        record.has_header(&self.name)
    }
    fn type_name(&self) -> &'static str {
        PredicateKind::HasHeaderKey.name()
    }
    fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("name".to_string(), self.name.clone())])
    }
}

/// True when the record's value is null.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordIsTombstone;

impl Predicate for RecordIsTombstone {
    fn test(&self, record: &ConnectRecord) -> bool {
        record.is_tombstone()
    }
    fn type_name(&self) -> &'static str {
        PredicateKind::RecordIsTombstone.name()
    }
    fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn type_names_short_qualified_and_strata() {
        for name in [
            "TopicNameMatches",
            "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
            "strata.TopicNameMatches",
        ] {
            assert_eq!(
                PredicateKind::from_type_name(name),
                Some(PredicateKind::TopicNameMatches)
            );
        }
        assert_eq!(PredicateKind::from_type_name("topicnamematches"), None);
        assert_eq!(
            PredicateKind::from_type_name("org.apache.kafka.connect.transforms.Filter"),
            None
        );
    }

    #[test]
    fn topic_pattern_matches_the_whole_name() {
        let p = TopicNameMatches::new("orders|payments\\..*").unwrap();
        let rec = |t: &str| ConnectRecord::new(t, None);
        assert!(p.test(&rec("orders")));
        assert!(p.test(&rec("payments.eu")));
        assert!(!p.test(&rec("orders-v2")));
        assert!(!p.test(&rec("old.orders")));
    }

    #[test]
    fn header_and_tombstone() {
        let mut r = ConnectRecord::new("t", Some(Bytes::from_static(b"v")));
        let has = HasHeaderKey { name: "h".into() };
        assert!(!has.test(&r));
        r.add_header("h", None);
        assert!(has.test(&r));
        assert!(!RecordIsTombstone.test(&r));
        r.value = None;
        assert!(RecordIsTombstone.test(&r));
    }
}
