//! One module per API family. Each handler takes the decoded request and the request version
//! and returns a response valid *at that version* (the `kafka-protocol` encoder refuses fields
//! a version does not carry, so version-gated fields are only set where they exist).

pub mod admin_configs;
pub mod admin_records;
pub mod admin_topics;
pub mod api_versions;
pub mod cluster;
pub mod fetch;
pub mod group_admin;
pub mod group_membership;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod producer_ids;

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;

/// `&str` -> the crate's string type.
pub(crate) fn str_bytes(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

pub(crate) fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}
