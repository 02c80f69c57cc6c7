//! `strata-tiering`: the remote tier of a Strata broker (Kafka KIP-405).
//!
//! The broker hands this crate closed segments ([`SegmentDescriptor`]) and asks it for offsets;
//! the crate knows nothing else about the broker. Entry point: [`RemoteLogManager`].
//!
//! | file                | concern                                                         |
//! | ------------------- | --------------------------------------------------------------- |
//! | `store.rs`          | object store + prefix from a URL (file, s3, gs, az, memory)      |
//! | `local_cas.rs`      | compare-and-swap puts for the local-directory backend           |
//! | `multipart.rs`      | multipart uploads with a marker, sweep of interrupted ones      |
//! | `keys.rs`           | every object key format, with parsers                            |
//! | `manifest.rs`       | per-partition manifest, segment states, fenced writes           |
//! | `manifest_cache.rs` | cached manifests + serialized read-modify-write per partition   |
//! | `segment_object.rs` | chunked, compressed, CRC'd segment object format                |
//! | `uploader.rs`       | streaming (multipart) segment upload                             |
//! | `encoder_priority.rs` | CPU priority of the segment encoders, following the backlog   |
//! | `quota.rs`          | copy byte-rate quota                                             |
//! | `cache.rs`          | chunk cache: memory + disk LRU, single-flight downloads          |
//! | `reader.rs`         | cold reads, timestamp lookup                                     |
//! | `retention.rs`      | remote retention                                                 |
//! | `reconcile.rs`      | crash repair: orphans, abandoned attempts, unfinished deletes   |
//! | `topic_delete.rs`   | topic deletion: tombstone, every object of the topic, restore   |
//! | `manager.rs`        | `RemoteLogManager`, the API the broker calls                    |
//! | `faults.rs`         | fault-injecting store (feature `testing`)                       |

pub mod cache;
pub mod config;
pub mod encoder_priority;
pub mod error;
#[cfg(any(test, feature = "testing"))]
pub mod faults;
pub mod keys;
mod local_cas;
pub mod manager;
pub mod manifest;
mod manifest_cache;
pub mod multipart;
mod quota;
pub mod reader;
mod reconcile;
mod retention;
pub mod segment_object;
pub mod store;
mod topic_delete;
pub mod uploader;

#[cfg(test)]
#[path = "../tests/common/batches.rs"]
mod test_batches;

pub use config::TieringConfig;
pub use error::{Result, TieringError};
pub use keys::PartitionId;
pub use manager::{PartitionStatus, RemoteLogManager, SegmentDescriptor, UploadState};
pub use store::RemoteStore;

/// Milliseconds since the Unix epoch (wall clock; used for manifest ages).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
