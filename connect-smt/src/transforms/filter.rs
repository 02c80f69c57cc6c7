//! `Filter` (Kafka's `org.apache.kafka.connect.transforms.Filter`): drops every record it is
//! applied to. Useful only with a predicate: `transforms.f.predicate=p` drops the records `p`
//! matches, `negate=true` keeps only those.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::error::TransformError;
use crate::record::ConnectRecord;
use crate::transform::{Transform, TransformKind};

/// Drops the record. No settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter;

#[async_trait]
impl Transform for Filter {
    async fn apply(&self, _record: ConnectRecord) -> Result<Option<ConnectRecord>, TransformError> {
        Ok(None)
    }

    fn type_name(&self) -> &'static str {
        TransformKind::Filter.name()
    }

    fn settings(&self) -> BTreeMap<String, String> {
        BTreeMap::new()
    }
}
