//! `InsertHeader` (Kafka's `org.apache.kafka.connect.transforms.InsertHeader`, KIP-145): adds
//! a header with a literal value. Headers of the same name already on the record stay (Kafka
//! appends); pair with `DropHeaders` first to replace.
//!
//! | setting | required | meaning |
//! | --- | --- | --- |
//! | `header` | yes | the header name |
//! | `value.literal` | yes | the header value, stored as its UTF-8 bytes |

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::Settings;
use crate::error::{ConfigError, TransformError};
use crate::record::ConnectRecord;
use crate::transform::{Transform, TransformKind};

/// Appends header `header` with value `value_literal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertHeader {
    pub header: String,
    pub value_literal: String,
    value_bytes: Bytes,
}

impl InsertHeader {
    pub const SETTINGS: &'static [&'static str] = &["header", "value.literal"];

    pub fn new(header: impl Into<String>, value_literal: impl Into<String>) -> Self {
        let value_literal = value_literal.into();
        Self {
            header: header.into(),
            value_bytes: Bytes::from(value_literal.clone()),
            value_literal,
        }
    }

    pub(crate) fn configure(settings: &mut Settings) -> Result<Self, ConfigError> {
        let header = settings.required("header")?;
        // Kafka requires the setting but allows an empty literal.
        let value_literal =
            settings
                .optional("value.literal")
                .ok_or_else(|| ConfigError::MissingSetting {
                    key: settings.key("value.literal"),
                })?;
        Ok(Self::new(header, value_literal))
    }
}

#[async_trait]
impl Transform for InsertHeader {
    async fn apply(&self, record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        let mut record = record;
        record.add_header(self.header.clone(), Some(self.value_bytes.clone()));
        Ok(Some(record))
    }

    fn type_name(&self) -> &'static str {
        TransformKind::InsertHeader.name()
    }

    fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("header".to_string(), self.header.clone()),
            ("value.literal".to_string(), self.value_literal.clone()),
        ])
    }
}
