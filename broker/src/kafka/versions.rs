//! The API keys and version ranges this broker answers, as advertised in ApiVersions.
//!
//! Every range is the intersection of what the `kafka-protocol` crate can decode and what our
//! handlers implement; a request outside its range is refused by the codec before dispatch.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

/// `(api key, min version, max version)` for every API we implement.
///
/// Notes on the caps:
/// - Fetch stops at v16: v17+ only add replica-directory fields meant for follower fetches.
/// - Produce stops at v12: v13 moves to topic ids, which no client we test sends yet.
/// - OffsetForLeaderEpoch is deliberately absent: without it clients skip KIP-320 offset
///   validation, which is correct for a single broker whose log never truncates.
const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 3, 12),
    (ApiKey::Fetch, 4, 16),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::FindCoordinator, 0, 5),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::ListGroups, 0, 4),
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::CreateTopics, 0, 7),
    (ApiKey::DeleteTopics, 0, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeConfigs, 0, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::DescribeLogDirs, 1, 4),
];

/// The version range we answer for `api_key`, or `None` when we do not implement it.
pub fn supported_versions(api_key: ApiKey) -> Option<VersionRange> {
    SUPPORTED
        .iter()
        .find(|(key, _, _)| *key == api_key)
        .map(|&(key, min, max)| VersionRange { min, max }.intersect(&key.valid_versions()))
}

/// Every supported API with its range, in api-key order (the ApiVersions response body).
pub fn all_supported() -> impl Iterator<Item = (ApiKey, VersionRange)> {
    ApiKey::iter().filter_map(|key| supported_versions(key).map(|range| (key, range)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_advertised_range_is_non_empty_and_decodable() {
        for (key, range) in all_supported() {
            assert!(!range.is_empty(), "{key:?} has an empty range {range}");
            let crate_range = key.valid_versions();
            assert!(range.min >= crate_range.min && range.max <= crate_range.max);
        }
        assert_eq!(all_supported().count(), SUPPORTED.len());
    }

    /// docs/kafka-apis.md lists every API we serve with the range ApiVersions advertises, and
    /// nothing else.
    #[test]
    fn the_documented_api_table_matches_what_apiversions_advertises() {
        let doc = include_str!("../../../docs/kafka-apis.md");
        let documented: Vec<(i16, String)> = doc
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let key = cells.get(2)?.parse::<i16>().ok()?;
                Some((key, cells.get(3)?.to_string()))
            })
            .collect();
        let advertised: Vec<(i16, String)> = all_supported()
            .map(|(key, range)| {
                let versions = if range.min == range.max {
                    range.min.to_string()
                } else {
                    format!("{}-{}", range.min, range.max)
                };
                (key as i16, versions)
            })
            .collect();
        assert_eq!(documented, advertised);
    }
}
