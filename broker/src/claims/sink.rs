//! [`LogTicketSink`]: the claim-check gateway's [`TicketSink`] over the broker's own log engine.
//!
//! ```text
//!  gateway ──append(topic, partition?, key, value, headers)──► choose partition
//!     ──► (ticket record?) PositionBook::record_pending     (bucket: claims/<id>/position.json)
//!     ──► RecordBatchEncoder (Kafka record batch v2, one batch per call)
//!     ──► PartitionLog::append(.., Durability::Fsync)       (= acks=all: fsynced before return)
//!     ──► (ticket record?) PositionBook::record_appended     (position.json gets the offset)
//! ```
//!
//! * **Durability**: every append is [`Durability::Fsync`], the log engine's acks=all.
//! * **Topics**: a missing topic is created with `num.partitions` partitions when
//!   `auto.create.topics.enable` is true (as a Kafka Metadata request would); otherwise
//!   [`TicketSink::partition_count`] answers `None` and the gateway answers 404 `not_found`
//!   naming the topic.
//! * **Partition choice** when the caller gives none: with a key, `crc32c(key) & 0x7fffffff`
//!   modulo the partition count (stable across restarts and brokers; note it is not the Java
//!   client's murmur2, so a keyed Kafka producer may pick another partition for the same key);
//!   without a key, round robin.
//! * **Batches**: [`TicketSink::append_batch`] writes its records as one record batch, so a chunk
//!   run or a block of CSV rows is atomic and contiguous in the partition.
//! * **Headers**: Kafka record headers are encoded from an ordered map, so a repeated header name
//!   keeps only its last value (ticket headers are unique by contract).
//! * **Admission**: appends go straight to the log, not through the Kafka produce path, but they
//!   ask the same [`AppendAdmission`] Kafka produce asks (tiering's upload-lag bound): a refused
//!   append is [`SinkError::AppendRefused`], which the gateway answers `503 append_refused`.
//!   [`TicketSink::admit`] asks it before an upload's body is read, each append asks it again.
//!   Both also refuse a topic whose `min.insync.replicas` this single node cannot meet, as Kafka
//!   refuses acks=all produce to it (tickets are acks=all appends).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE, Record,
    RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use strata_claimcheck::ticket::header;
use strata_claimcheck::{ClaimId, OutRecord, RecordPosition, SinkError, TicketSink};
use tracing::{debug, info, warn};

use super::live::PositionBook;
use crate::kafka::handlers::produce::{AppendAdmission, not_enough_replicas};
use crate::log::{Durability, LogError, LogManager, PartitionLog};

/// Appends gateway records to the broker's log with acks=all semantics.
pub struct LogTicketSink {
    log: Arc<LogManager>,
    auto_create: bool,
    num_partitions: i32,
    positions: Option<Arc<PositionBook>>,
    admission: Option<Arc<dyn AppendAdmission>>,
    round_robin: AtomicU32,
}

impl LogTicketSink {
    /// `positions`: where ticket positions are recorded for [`super::live::LogLiveClaims`]
    /// (`None` only in tests that do not collect garbage).
    pub fn new(
        log: Arc<LogManager>,
        auto_create: bool,
        num_partitions: i32,
        positions: Option<Arc<PositionBook>>,
    ) -> Self {
        Self {
            log,
            auto_create,
            num_partitions: num_partitions.max(1),
            positions,
            admission: None,
            round_robin: AtomicU32::new(0),
        }
    }

    /// Refuse appends that `admission` refuses (the one Kafka produce asks).
    pub fn with_admission(mut self, admission: Option<Arc<dyn AppendAdmission>>) -> Self {
        self.admission = admission;
        self
    }

    /// Tickets are acks=all appends: refused as Kafka refuses acks=all produce when
    /// `min.insync.replicas` cannot be met, and when the admission refuses them.
    fn admit_log(&self, log: &PartitionLog) -> Result<(), SinkError> {
        if let Some((_code, message)) = not_enough_replicas(log) {
            return Err(SinkError::AppendRefused(message));
        }
        match &self.admission {
            Some(admission) => admission
                .admit(log)
                .map_err(|(_code, message)| SinkError::AppendRefused(message)),
            None => Ok(()),
        }
    }

    fn partition_log(&self, topic: &str, partition: i32) -> Result<Arc<PartitionLog>, SinkError> {
        self.topic_partitions(topic)?;
        self.log
            .partition(topic, partition)
            .ok_or_else(|| SinkError::UnknownPartition {
                topic: topic.to_string(),
                partition,
            })
    }

    fn choose_partition(
        &self,
        topic: &str,
        requested: Option<i32>,
        key: Option<&Bytes>,
    ) -> Result<i32, SinkError> {
        if let Some(p) = requested {
            return Ok(p);
        }
        let count = self.topic_partitions(topic)?;
        Ok(match key {
            Some(key) => key_partition(key, count),
            None => (self.round_robin.fetch_add(1, Ordering::Relaxed) % count as u32) as i32,
        })
    }

    async fn append_records(
        &self,
        topic: &str,
        partition: i32,
        records: Vec<OutRecord>,
    ) -> Result<Vec<RecordPosition>, SinkError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let log = self.partition_log(topic, partition)?;
        self.admit_log(&log)?;
        let count = records.len();
        let batch = encode_batch(records)?;
        let result = log
            .append(batch, Durability::Fsync)
            .await
            .map_err(sink_error)?;
        debug!(
            topic,
            partition,
            base_offset = result.base_offset,
            count,
            "gateway records appended"
        );
        Ok((0..count as i64)
            .map(|i| RecordPosition {
                partition,
                offset: result.base_offset + i,
            })
            .collect())
    }
}

/// The partition of a keyed record: `crc32c(key) & 0x7fffffff` modulo `partitions`.
pub fn key_partition(key: &[u8], partitions: i32) -> i32 {
    ((strata_format::crc32c(key) & 0x7fff_ffff) % partitions.max(1) as u32) as i32
}

/// The claim id of a reference-mode ticket record (header `claimcheck.id`), if it is one.
fn ticket_id(headers: &[(String, Bytes)]) -> Option<ClaimId> {
    let (_, value) = headers.iter().rev().find(|(k, _)| k == header::ID)?;
    std::str::from_utf8(value).ok()?.parse().ok()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One Kafka record batch (magic v2, uncompressed, no producer id) holding `records` in order.
pub fn encode_batch(records: Vec<OutRecord>) -> Result<Bytes, SinkError> {
    let timestamp = now_ms();
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, r)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: NO_SEQUENCE,
            timestamp,
            key: r.key,
            value: Some(r.value),
            headers: r
                .headers
                .into_iter()
                .map(|(k, v)| (StrBytes::from_string(k), Some(v)))
                .collect(),
        })
        .collect();
    let mut buffer = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buffer,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| SinkError::Other(format!("encoding a record batch: {e}")))?;
    Ok(buffer.freeze())
}

fn sink_error(error: LogError) -> SinkError {
    match error {
        LogError::UnknownTopicOrPartition { topic, partition } => {
            SinkError::UnknownPartition { topic, partition }
        }
        LogError::MessageTooLarge { .. } => SinkError::RecordTooLarge(error.to_string()),
        LogError::NotDurable { .. } => SinkError::NotDurable(error.to_string()),
        LogError::Storage { .. } | LogError::ShuttingDown => {
            SinkError::Unavailable(error.to_string())
        }
        other => SinkError::Other(other.to_string()),
    }
}

#[async_trait]
impl TicketSink for LogTicketSink {
    async fn append(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Bytes>,
        value: Bytes,
        headers: Vec<(String, Bytes)>,
    ) -> Result<RecordPosition, SinkError> {
        let partition = self.choose_partition(topic, partition, key.as_ref())?;
        let claim = ticket_id(&headers);
        let book = self.positions.as_ref().zip(claim);
        if let Some((book, id)) = book {
            let log = self.partition_log(topic, partition)?;
            // Refused before the pending marker is written (append_records asks again).
            self.admit_log(&log)?;
            book.record_pending(id, &log).await?;
        }
        let record = OutRecord {
            key,
            value,
            headers,
        };
        let appended = self.append_records(topic, partition, vec![record]).await;
        let position = match (appended, book) {
            (Ok(mut positions), book) => {
                let position = positions.pop().expect("one record appended");
                if let Some((book, id)) = book {
                    let log = self.partition_log(topic, partition)?;
                    book.record_appended(id, &log, position.offset).await;
                }
                position
            }
            (Err(error @ SinkError::NotDurable(_)), Some((_, id))) => {
                // The ticket may be read and may survive: the pending marker keeps its payload.
                warn!(claim = %id, topic, partition, %error, "ticket written but not made durable");
                return Err(error);
            }
            (Err(error), Some((book, id))) => {
                // Nothing was appended: the pending marker would only pin the payload.
                warn!(claim = %id, topic, partition, %error, "ticket append failed");
                book.forget(id).await;
                return Err(error);
            }
            (Err(error), None) => return Err(error),
        };
        Ok(position)
    }

    async fn append_batch(
        &self,
        topic: &str,
        partition: Option<i32>,
        records: Vec<OutRecord>,
    ) -> Result<Vec<RecordPosition>, SinkError> {
        let key = records.first().and_then(|r| r.key.clone());
        let partition = self.choose_partition(topic, partition, key.as_ref())?;
        self.append_records(topic, partition, records).await
    }

    fn admit(&self, topic: &str, partition: Option<i32>) -> Result<(), SinkError> {
        match partition {
            Some(p) => self.admit_log(&*self.partition_log(topic, p)?),
            None => {
                // Refused only when no partition would take the append.
                let mut answer = Ok(());
                for p in 0..self.partition_count(topic).unwrap_or(0) {
                    answer = self.admit(topic, Some(p));
                    if answer.is_ok() {
                        break;
                    }
                }
                answer
            }
        }
    }

    fn partition_count(&self, topic: &str) -> Option<i32> {
        self.topic_partitions(topic).ok()
    }
}

impl LogTicketSink {
    /// The topic's partition count, auto-creating it when allowed. A creation refused for now
    /// (a restore from the remote tier may still bring the topic back) is `Unavailable`.
    fn topic_partitions(&self, topic: &str) -> Result<i32, SinkError> {
        if let Some(meta) = self.log.topic(topic) {
            return Ok(meta.partitions);
        }
        let unknown = || SinkError::UnknownTopic(topic.to_string());
        if !self.auto_create {
            return Err(unknown());
        }
        match self
            .log
            .create_topic(topic, self.num_partitions, Default::default(), false)
        {
            Ok(meta) => {
                info!(
                    topic,
                    partitions = meta.partitions,
                    "topic auto-created by the claim-check gateway"
                );
                Ok(meta.partitions)
            }
            Err(LogError::TopicAlreadyExists(_)) => self
                .log
                .topic(topic)
                .map(|m| m.partitions)
                .ok_or_else(unknown),
            Err(error) if error.is_retryable() => {
                warn!(topic, %error, "topic auto-creation refused for now");
                Err(SinkError::Unavailable(error.to_string()))
            }
            Err(error) => {
                warn!(topic, %error, "topic auto-creation refused");
                Err(unknown())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use futures::StreamExt;
    use object_store::ObjectStoreExt;
    use strata_claimcheck::upload::{ClaimRequest, store_claim};
    use strata_claimcheck::{ClaimCheckConfig, ClaimCheckService, ClaimStore, LiveClaims};

    use super::*;
    use crate::claims::live::LogLiveClaims;
    use crate::kafka::TierOffsets;
    use crate::kafka::handlers::list_offsets::LocalOnly;
    use crate::log::LogManagerConfig;

    /// The remote tier's answer for every partition.
    struct Tier {
        settled: bool,
        restoring: bool,
    }

    impl TierOffsets for Tier {
        fn earliest_local_offset(&self, log: &PartitionLog) -> i64 {
            log.local_log_start_offset()
        }
        fn latest_tiered_offset(&self, _: &PartitionLog) -> Option<i64> {
            None
        }
        fn log_start_settled(&self, _: &PartitionLog) -> bool {
            self.settled
        }
        fn restoring(&self) -> bool {
            self.restoring
        }
    }

    /// A log with topic `t` (one partition) and the gateway over it, claims in memory.
    struct Gateway {
        _dir: tempfile::TempDir,
        log: Arc<LogManager>,
        store: ClaimStore,
        book: Arc<PositionBook>,
        service: ClaimCheckService,
    }

    impl Gateway {
        async fn start(config: ClaimCheckConfig) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let log = LogManager::open(LogManagerConfig::new(dir.path()))
                .await
                .unwrap();
            log.create_topic("t", 1, BTreeMap::new(), false).unwrap();
            let store =
                ClaimStore::new(Arc::new(object_store::memory::InMemory::new()), "c").unwrap();
            let book = Arc::new(PositionBook::new(&store));
            let sink = LogTicketSink::new(log.clone(), false, 1, Some(book.clone()));
            let service = ClaimCheckService::new(store.clone(), Arc::new(sink), config);
            Self {
                _dir: dir,
                log,
                store,
                book,
                service,
            }
        }

        /// A reference-mode upload of `payload` to `t`-0.
        async fn upload(
            &self,
            payload: &'static [u8],
        ) -> strata_claimcheck::Result<strata_claimcheck::ClaimReceipt> {
            let request = ClaimRequest {
                topic: "t".into(),
                partition: Some(0),
                key: None,
                headers: Vec::new(),
                content_type: "application/octet-stream".into(),
                expected_size: None,
                expected_sha256: None,
            };
            let body = futures::stream::iter([Ok(Bytes::from_static(payload))]).boxed();
            store_claim(&self.service, request, body).await
        }

        fn live(&self, tier: Arc<dyn TierOffsets>) -> LogLiveClaims {
            LogLiveClaims {
                book: self.book.clone(),
                log: self.log.clone(),
                tier,
            }
        }
    }

    /// The claim GC must not judge tickets by a log start the remote tier may still lower (the
    /// store did not answer since the start), nor while a restore may bring topics back.
    #[tokio::test]
    async fn tickets_are_live_while_the_log_start_may_still_move_down() {
        let gw = Gateway::start(ClaimCheckConfig::default()).await;
        let receipt = gw.upload(b"old payload").await.unwrap();
        // The log start moves past the ticket (as a restart clamps it to local data).
        gw.log
            .partition("t", 0)
            .unwrap()
            .delete_records_before(1)
            .unwrap();

        let live = |settled, restoring| gw.live(Arc::new(Tier { settled, restoring }));
        let id = receipt.ticket.id;
        assert!(!live(true, false).live_claims().await.unwrap().contains(&id));
        assert!(
            live(false, false)
                .live_claims()
                .await
                .unwrap()
                .contains(&id)
        );
        let refused = live(true, true).live_claims().await.unwrap_err();
        assert!(refused.to_string().contains("restore"), "{refused}");
    }

    /// A claim being published is not collected, however old its objects look (S3 dates a
    /// multipart object from its first part, hours before the ticket of a slow upload).
    #[tokio::test]
    async fn the_gc_leaves_a_claim_being_published_alone() {
        let gw = Gateway::start(ClaimCheckConfig {
            gc_grace: std::time::Duration::ZERO,
            ..ClaimCheckConfig::default()
        })
        .await;
        let store = &gw.store;
        // A stored payload and sidecar whose ticket is not appended yet.
        let id = ClaimId::random();
        let ticket = strata_claimcheck::ticket::ClaimTicket {
            version: 1,
            id,
            topic: "t".into(),
            uri: format!("/v1/claims/{id}"),
            size: 7,
            sha256: "00".repeat(32),
            content_type: "application/octet-stream".into(),
            created_at: "2026-11-23T00:00:00Z".into(),
        };
        store
            .object_store()
            .put(
                &store.path(strata_claimcheck::ObjectKey::ClaimPayload(id)),
                Bytes::from_static(b"payload").into(),
            )
            .await
            .unwrap();
        store
            .put_json(
                strata_claimcheck::ObjectKey::ClaimMeta(id),
                &strata_claimcheck::store::ClaimMeta::from_ticket(&ticket, None),
            )
            .await
            .unwrap();
        let live = gw.live(Arc::new(LocalOnly));
        let gc = || strata_claimcheck::lifecycle::collect_garbage(&gw.service, Some(&live), false);

        let publishing = gw.service.begin_publishing(id);
        gc().await.unwrap();
        assert!(
            store.claim_meta(id).await.unwrap().is_some(),
            "kept while publishing"
        );
        drop(publishing);
        gc().await.unwrap();
        assert!(
            store.claim_meta(id).await.unwrap().is_none(),
            "collected once abandoned"
        );
    }

    /// A dry-run GC pass deletes nothing, not even the position record of a collected claim.
    #[tokio::test]
    async fn a_dry_run_gc_pass_leaves_orphan_position_records_alone() {
        let gw = Gateway::start(ClaimCheckConfig::default()).await;
        let id = gw.upload(b"gone").await.unwrap().ticket.id;
        // Payload and sidecar collected; the position record left behind.
        gw.store.delete_claim(id).await.unwrap();
        let live = gw.live(Arc::new(LocalOnly));
        let gc = |dry_run| {
            strata_claimcheck::lifecycle::collect_garbage(&gw.service, Some(&live), dry_run)
        };
        gc(true).await.unwrap();
        assert!(gw.book.read(id).await.unwrap().is_some(), "dry run: kept");
        gc(false).await.unwrap();
        assert!(
            gw.book.read(id).await.unwrap().is_none(),
            "a real pass removes it"
        );
    }

    /// A ticket written but not fsynced (the fsync failed) may be read, and may survive: its
    /// payload must stay, and the GC must count the claim as live.
    #[tokio::test]
    async fn a_ticket_whose_fsync_failed_keeps_its_payload() {
        let gw = Gateway::start(ClaimCheckConfig::default()).await;
        let log = gw.log.partition("t", 0).unwrap();
        log.fail_next_fsync();
        let error = gw.upload(b"payload bytes").await.unwrap_err();
        assert_eq!(error.http_status(), 503, "{error}");
        assert_eq!(error.code(), "append_not_durable", "{error}");

        // The ticket is in the log and names a payload that is still there.
        let read = log.read(0, 1 << 20).unwrap();
        let batch = strata_format::BatchIter::new(read.records)
            .next()
            .expect("the ticket");
        let set = strata_format::codec::decode_records(&batch, 1 << 20).unwrap();
        let id: ClaimId = set.records[0]
            .headers
            .iter()
            .find(|(k, _)| k.as_str() == header::ID)
            .and_then(|(_, v)| std::str::from_utf8(v.as_ref()?).ok()?.parse().ok())
            .expect("a claim id header");
        assert!(gw.store.claim_meta(id).await.unwrap().is_some());
        let mut payload = gw.store.read_payload(id, None).await.unwrap();
        let mut bytes = Vec::new();
        while let Some(chunk) = payload.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(bytes, b"payload bytes");
        let live = gw.live(Arc::new(LocalOnly));
        assert!(live.live_claims().await.unwrap().contains(&id));
    }
}
