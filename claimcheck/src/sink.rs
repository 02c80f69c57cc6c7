//! The boundary with the broker: the traits the broker implements.
//!
//! * [`TicketSink`] appends records (tickets, chunks, CSV rows) durably.
//! * [`LiveClaims`] answers which claim ids live tickets still point to; the payload lifecycle
//!   ([`crate::lifecycle`]) deletes a payload only when its id is absent from that answer.

use std::collections::HashSet;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::SinkError;
use crate::ticket::{ClaimId, RecordPosition};

/// One record to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutRecord {
    pub key: Option<Bytes>,
    pub value: Bytes,
    pub headers: Vec<(String, Bytes)>,
}

/// Where the gateway writes records. Implemented by the broker over its log.
#[async_trait]
pub trait TicketSink: Send + Sync {
    /// Append one record durably (acks=all semantics) and return where it landed.
    /// `partition: None` lets the broker choose (by key hash, or round robin without a key).
    async fn append(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Bytes>,
        value: Bytes,
        headers: Vec<(String, Bytes)>,
    ) -> Result<RecordPosition, SinkError>;

    /// Append several records to ONE partition in order (chunk/CSV modes), durably; returns
    /// their positions in order. The gateway always passes `Some(partition)`.
    async fn append_batch(
        &self,
        topic: &str,
        partition: Option<i32>,
        records: Vec<OutRecord>,
    ) -> Result<Vec<RecordPosition>, SinkError>;

    /// Number of partitions of `topic`, `None` when the topic does not exist.
    fn partition_count(&self, topic: &str) -> Option<i32>;

    /// Early answer to "would an append be refused now?", asked before a body is read so that
    /// a multi-GB upload is not stored only to be refused at its ticket. `partition: None` is
    /// refused only when every partition of the topic would be. The appends themselves are
    /// checked again (this answer can change while a body streams in).
    fn admit(&self, _topic: &str, _partition: Option<i32>) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Which claims are still referenced. Implemented by the broker.
///
/// Contract: the answer must contain the id of every ticket record (header `claimcheck.id`, or
/// the `id` of a JSON ticket value) that is still readable from any topic, in **both** tiers
/// (local segments and remote segments), i.e. every ticket at or above the partition's log start
/// offset. It may contain more ids (stale entries only delay deletion); it must never miss a
/// live one. The broker can maintain it incrementally (add on append, drop ids whose records
/// fall below the log start offset when retention advances it) or compute it by scanning.
#[async_trait]
pub trait LiveClaims: Send + Sync {
    async fn live_claims(&self) -> Result<HashSet<ClaimId>, SinkError>;

    /// [`Self::live_claims`] for a GC pass: with `dry_run` an implementation that tidies its own
    /// records on the way (the broker's orphan `position.json`) must leave them as they are.
    async fn live_claims_for_gc(&self, dry_run: bool) -> Result<HashSet<ClaimId>, SinkError> {
        let _ = dry_run;
        self.live_claims().await
    }
}
