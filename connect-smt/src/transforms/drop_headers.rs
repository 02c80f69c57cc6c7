//! `DropHeaders` (Kafka's `org.apache.kafka.connect.transforms.DropHeaders`, KIP-145): removes
//! every header whose name is in the list.
//!
//! | setting | required | meaning |
//! | --- | --- | --- |
//! | `headers` | yes | comma-separated header names (exact, case-sensitive) |

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use crate::config::Settings;
use crate::error::{ConfigError, TransformError};
use crate::record::ConnectRecord;
use crate::transform::{Transform, TransformKind};

/// Removes all headers named in `headers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropHeaders {
    /// In configuration order (kept for writing the settings back).
    pub headers: Vec<String>,
    names: BTreeSet<String>,
}

impl DropHeaders {
    pub const SETTINGS: &'static [&'static str] = &["headers"];

    pub fn new(headers: Vec<String>) -> Self {
        let names = headers.iter().cloned().collect();
        Self { headers, names }
    }

    pub(crate) fn configure(settings: &mut Settings) -> Result<Self, ConfigError> {
        Ok(Self::new(settings.required_list("headers")?))
    }
}

#[async_trait]
impl Transform for DropHeaders {
    async fn apply(&self, record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        let mut record = record;
        record.remove_headers_where(|name| self.names.contains(name));
        Ok(Some(record))
    }

    fn type_name(&self) -> &'static str {
        TransformKind::DropHeaders.name()
    }

    fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::from([("headers".to_string(), self.headers.join(","))])
    }
}
