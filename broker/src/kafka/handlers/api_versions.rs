//! ApiVersions: our version table (see `kafka/versions.rs`).

use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::kafka::codec::api_versions_body;

pub fn handle(_request: &ApiVersionsRequest) -> ApiVersionsResponse {
    api_versions_body(0)
}
