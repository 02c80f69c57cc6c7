//! Kafka Connect's transform property convention, read from a flat map of properties:
//!
//! ```properties
//! transforms=big,tag
//! transforms.big.type=ClaimCheck
//! transforms.big.threshold.bytes=1048576
//! transforms.tag.type=org.apache.kafka.connect.transforms.InsertHeader
//! transforms.tag.header=origin
//! transforms.tag.value.literal=strata
//! transforms.tag.predicate=isOrders
//! transforms.tag.negate=false
//! predicates=isOrders
//! predicates.isOrders.type=TopicNameMatches
//! predicates.isOrders.pattern=orders\..*
//! ```
//!
//! [`StageProperties::split`] groups the keys under `transforms.<alias>.` and
//! `predicates.<alias>.` by alias, in list order, and rejects keys under those prefixes whose
//! alias is not listed. Keys outside both prefixes belong to whoever else reads the same map
//! (the connector, the topic) and are ignored. Each transform or predicate then reads its own
//! settings through [`Settings`], which names the full key in every error and, once the
//! transform is configured, rejects the settings nobody read ([`Settings::reject_unknown`]).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::ConfigError;

/// The property listing transform aliases, in application order.
pub const TRANSFORMS: &str = "transforms";
/// The property listing predicate aliases.
pub const PREDICATES: &str = "predicates";
/// Per-alias setting naming the implementation.
pub const TYPE: &str = "type";
/// Per-transform setting naming the predicate that guards it.
pub const PREDICATE: &str = "predicate";
/// Per-transform setting inverting the predicate.
pub const NEGATE: &str = "negate";

/// The settings of one transform or predicate alias: `<list>.<alias>.<name>=<value>` with the
/// `<list>.<alias>.` prefix taken off. Remembers which settings were read.
#[derive(Debug, Clone)]
pub struct Settings {
    alias: String,
    prefix: String,
    values: BTreeMap<String, String>,
    read: BTreeSet<String>,
}

impl Settings {
    /// Settings for `alias` under `list` (`"transforms"` or `"predicates"`).
    pub fn new(list: &str, alias: &str, values: BTreeMap<String, String>) -> Self {
        Self {
            alias: alias.to_string(),
            prefix: format!("{list}.{alias}."),
            values,
            read: BTreeSet::new(),
        }
    }

    /// The alias (`a` in `transforms.a.type`).
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The full property key of setting `name` (`transforms.a.<name>`).
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The raw value of `name`, marking it read.
    pub fn optional(&mut self, name: &str) -> Option<String> {
        self.read.insert(name.to_string());
        self.values.get(name).cloned()
    }

    /// The raw value of `name`; absent or empty is an error.
    pub fn required(&mut self, name: &str) -> Result<String, ConfigError> {
        match self.optional(name) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(ConfigError::MissingSetting {
                key: self.key(name),
            }),
        }
    }

    /// An error for setting `name` holding `value`.
    pub fn invalid(&self, name: &str, value: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::InvalidValue {
            key: self.key(name),
            value: value.to_string(),
            reason: reason.into(),
        }
    }

    /// A non-negative integer (Kafka `LONG` with an at-least-0 validator), or `default`.
    pub fn u64_or(&mut self, name: &str, default: u64) -> Result<u64, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .map_err(|_| self.invalid(name, &raw, "expected a non-negative integer")),
        }
    }

    /// `true` / `false` (case-insensitive, as Kafka's `BOOLEAN`), or `default`.
    pub fn bool_or(&mut self, name: &str, default: bool) -> Result<bool, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => match raw.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(self.invalid(name, &raw, "expected true or false")),
            },
        }
    }

    /// One of `allowed` (case-insensitive), returned as written in `allowed`, or `default`.
    pub fn choice_or(
        &mut self,
        name: &str,
        allowed: &[&'static str],
        default: &'static str,
    ) -> Result<&'static str, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => allowed
                .iter()
                .find(|a| a.eq_ignore_ascii_case(raw.trim()))
                .copied()
                .ok_or_else(|| {
                    self.invalid(
                        name,
                        &raw,
                        format!("expected one of {}", allowed.join(", ")),
                    )
                }),
        }
    }

    /// A required, non-empty comma-separated list (Kafka `LIST`: items trimmed).
    pub fn required_list(&mut self, name: &str) -> Result<Vec<String>, ConfigError> {
        let raw = self.required(name)?;
        let items = split_list(&raw);
        if items.iter().any(String::is_empty) {
            return Err(self.invalid(name, &raw, "empty item in comma-separated list"));
        }
        Ok(items)
    }

    /// Fails on the first setting present but never read: unknown to the transform.
    /// `known` lists what the transform accepts, for the error message.
    pub fn reject_unknown(&self, known: &[&str]) -> Result<(), ConfigError> {
        match self.values.keys().find(|k| !self.read.contains(*k)) {
            None => Ok(()),
            Some(unknown) => Err(ConfigError::UnknownSetting {
                key: self.key(unknown),
                known: known.iter().map(|k| self.key(k)).collect(),
            }),
        }
    }
}

/// Splits a Kafka `LIST` value: comma separated, items trimmed; an empty value is no items.
pub fn split_list(raw: &str) -> Vec<String> {
    if raw.trim().is_empty() {
        return Vec::new();
    }
    raw.split(',').map(|s| s.trim().to_string()).collect()
}

/// The transforms and predicates of a property map, grouped by alias, in list order.
#[derive(Debug, Clone)]
pub struct StageProperties {
    pub transforms: Vec<Settings>,
    pub predicates: Vec<Settings>,
}

impl StageProperties {
    /// Groups `props` by alias; see the module docs.
    pub fn split(props: &BTreeMap<String, String>) -> Result<Self, ConfigError> {
        Ok(Self {
            transforms: group_by_alias(props, TRANSFORMS)?,
            predicates: group_by_alias(props, PREDICATES)?,
        })
    }
}

fn group_by_alias(
    props: &BTreeMap<String, String>,
    list_key: &'static str,
) -> Result<Vec<Settings>, ConfigError> {
    let aliases = props.get(list_key).map_or_else(Vec::new, |v| split_list(v));
    let mut seen = BTreeSet::new();
    for alias in &aliases {
        let reason = if alias.is_empty() {
            Some("empty alias")
        } else if alias.contains('.') {
            Some("aliases may not contain '.'")
        } else if !seen.insert(alias.as_str()) {
            Some("listed twice")
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(ConfigError::InvalidAlias {
                key: list_key.to_string(),
                alias: alias.clone(),
                reason,
            });
        }
    }
    let mut grouped: BTreeMap<&str, BTreeMap<String, String>> = aliases
        .iter()
        .map(|a| (a.as_str(), BTreeMap::new()))
        .collect();
    let list_prefix = format!("{list_key}.");
    for (key, value) in props {
        let Some(rest) = key.strip_prefix(&list_prefix) else {
            continue;
        };
        let (alias, name) = rest.split_once('.').unwrap_or((rest, ""));
        match grouped.get_mut(alias) {
            Some(settings) if !name.is_empty() => {
                settings.insert(name.to_string(), value.clone());
            }
            Some(_) => {
                return Err(ConfigError::UnknownSetting {
                    key: key.clone(),
                    known: Vec::new(),
                });
            }
            None => {
                return Err(ConfigError::UnlistedAlias {
                    key: key.clone(),
                    alias: alias.to_string(),
                    list_key,
                });
            }
        }
    }
    Ok(aliases
        .iter()
        .map(|alias| {
            let values = grouped.remove(alias.as_str()).unwrap_or_default();
            Settings::new(list_key, alias, values)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn groups_by_alias_in_list_order_and_ignores_foreign_keys() {
        let p = props(&[
            ("transforms", " b , a "),
            ("transforms.a.type", "Filter"),
            ("transforms.b.type", "InsertHeader"),
            ("transforms.b.header", "h"),
            ("connector.class", "x"),
            ("retention.ms", "1"),
        ]);
        let split = StageProperties::split(&p).unwrap();
        let aliases: Vec<&str> = split.transforms.iter().map(Settings::alias).collect();
        assert_eq!(aliases, ["b", "a"]);
        assert!(split.predicates.is_empty());
        let mut b = split.transforms[0].clone();
        assert_eq!(b.required("header").unwrap(), "h");
        assert_eq!(b.key("header"), "transforms.b.header");
    }

    #[test]
    fn alias_errors_name_the_key() {
        let cases = [
            (vec![("transforms", "a,a")], "transforms"),
            (vec![("transforms", "a,,b")], "transforms"),
            (vec![("predicates", "x.y")], "predicates"),
            (
                vec![("transforms", "a"), ("transforms.b.type", "Filter")],
                "transforms.b.type",
            ),
            (
                vec![("predicates", ""), ("predicates.p.type", "X")],
                "predicates.p.type",
            ),
            (
                vec![("transforms", "a"), ("transforms.a", "x")],
                "transforms.a",
            ),
        ];
        for (pairs, key) in cases {
            let err = StageProperties::split(&props(&pairs)).unwrap_err();
            assert_eq!(err.key(), key, "{err}");
        }
    }

    #[test]
    fn setting_errors_name_the_key() {
        let mut s = Settings::new(
            "transforms",
            "t",
            props(&[("n", "-1"), ("b", "yes"), ("c", "x"), ("typo", "1")]),
        );
        assert_eq!(s.u64_or("n", 0).unwrap_err().key(), "transforms.t.n");
        assert_eq!(s.bool_or("b", false).unwrap_err().key(), "transforms.t.b");
        let err = s.choice_or("c", &["key", "value"], "value").unwrap_err();
        assert_eq!(err.key(), "transforms.t.c");
        assert_eq!(s.required("gone").unwrap_err().key(), "transforms.t.gone");
        let err = s.reject_unknown(&["n", "b", "c"]).unwrap_err();
        assert_eq!(err.key(), "transforms.t.typo");
        assert!(err.to_string().contains("transforms.t.n"), "{err}");
    }
}
