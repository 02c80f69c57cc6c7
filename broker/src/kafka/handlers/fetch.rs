//! Fetch: whole batches from `PartitionLog::read`, with Kafka's long poll.
//!
//! ```text
//!  subscribe to every partition's append watch ─▶ read all ─▶ bytes >= min_bytes or deadline? ─▶ respond
//!                     ▲                                              │ no
//!                     └──────────── any partition appended ◀── wait ─┘
//! ```
//! Subscribing *before* reading means an append that lands between the read and the wait still
//! wakes us. Limits: `partition_max_bytes` per partition and `max_bytes` for the response, except
//! that the first partition with data always returns at least one whole batch, so a consumer can
//! never get stuck on a big batch (KIP-74). Every read, hot or cold, is cut to the whole batches
//! within the limits ([`whole_batches_within`]): the log itself always returns at least one.
//! Fetch sessions (KIP-227) are not kept: we answer `session_id = 0`, which tells the client to
//! send full fetch requests.
//!
//! Cold reads: a fetch offset below a partition's local log start goes to the [`ColdReader`]
//! (the remote tier, set with `BrokerContext::set_cold_reader`) once, before the long poll, bounded
//! by `max_wait_ms` but never below `remote.fetch.max.wait.ms` (a client asking for no wait
//! would otherwise never get cold records): a slow object store answers with no records rather
//! than an error.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::select_all;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use tokio::sync::watch;
use tokio::time::Instant;

use strata_format::BatchIter;

use super::str_bytes;
use crate::kafka::context::BrokerContext;
use crate::log::{LogError, PartitionLog};

/// Fetch v13+ names topics by id.
const TOPIC_ID_VERSION: i16 = 13;

/// One requested partition, resolved against the log.
struct Target {
    topic_slot: usize,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: usize,
    log: Result<Arc<PartitionLog>, ResponseError>,
    /// The remote tier's answer when `fetch_offset` is below the local log start.
    cold: Option<ColdRead>,
}

/// A cold read's outcome: whole batches (`None`: nothing ready in time) or a Kafka error code.
pub type ColdRead = Result<Option<Bytes>, i16>;

/// Serves offsets below the local log start from the remote tier.
#[async_trait::async_trait]
pub trait ColdReader: Send + Sync {
    /// Whole batches from `offset`, up to `max_bytes` (at least one batch), byte-identical to
    /// what the producer sent. OFFSET_OUT_OF_RANGE below the log start.
    async fn read(&self, log: Arc<PartitionLog>, offset: i64, max_bytes: usize) -> ColdRead;
    /// The first remote record with timestamp >= `timestamp`, as `(offset, timestamp)`.
    async fn offset_for_timestamp(
        &self,
        log: Arc<PartitionLog>,
        timestamp: i64,
    ) -> Result<Option<(i64, i64)>, i16>;
}

pub async fn handle(ctx: &BrokerContext, request: &FetchRequest, version: i16) -> FetchResponse {
    // Resolve topics (by id for v13+) once; answer per topic in request order.
    let mut topic_slots: Vec<(TopicName, uuid::Uuid)> = Vec::with_capacity(request.topics.len());
    let mut targets = Vec::new();
    for topic in &request.topics {
        let (name, unknown) = if version >= TOPIC_ID_VERSION {
            match ctx.log.topic_by_id(topic.topic_id) {
                Some(meta) => (TopicName(str_bytes(&meta.name)), None),
                None => (TopicName::default(), Some(ResponseError::UnknownTopicId)),
            }
        } else {
            (topic.topic.clone(), None)
        };
        let topic_slot = topic_slots.len();
        topic_slots.push((name.clone(), topic.topic_id));
        for p in &topic.partitions {
            let log = match unknown {
                Some(error) => Err(error),
                None => ctx
                    .log
                    .partition(&name, p.partition)
                    .ok_or(ResponseError::UnknownTopicOrPartition),
            };
            targets.push(Target {
                topic_slot,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes.max(0) as usize,
                log,
                cold: None,
            });
        }
    }

    let mut watches: Vec<watch::Receiver<i64>> = targets
        .iter()
        .filter_map(|t| t.log.as_ref().ok())
        .map(|log| log.subscribe_appends())
        .collect();
    for watch in &mut watches {
        watch.borrow_and_update();
    }
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let min_bytes = request.min_bytes.max(0) as usize;
    let requested = if version >= 3 && request.max_bytes > 0 {
        request.max_bytes as usize
    } else {
        usize::MAX
    };
    // The broker's own bound (Kafka's fetch.max.bytes, 55 MiB): a client asking for 2 GiB
    // must not make the broker read and hold that much for one response.
    let max_bytes = requested.min(broker_fetch_max_bytes(ctx));
    if let Some(cold) = ctx.cold_reader() {
        // Kafka's remote.fetch.max.wait.ms: a remote read gets that long even when the client
        // asks for no wait at all, which would otherwise answer every cold fetch empty.
        let cold_deadline = deadline.max(Instant::now() + remote_fetch_max_wait(ctx));
        read_cold(cold.as_ref(), &mut targets, max_bytes, cold_deadline).await;
    }

    let partitions = loop {
        let (partitions, total_bytes, any_error) = read_all(&targets, max_bytes, version);
        if total_bytes >= min_bytes || any_error || watches.is_empty() || Instant::now() >= deadline
        {
            break partitions;
        }
        let changed = select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        match tokio::time::timeout_at(deadline, changed).await {
            Ok((Ok(()), _, _)) => continue,
            // A closed watch (partition deleted) or the deadline: answer with what we have.
            Ok((Err(_), _, _)) | Err(_) => break read_all(&targets, max_bytes, version).0,
        }
    };

    // Topics with claimcheck.fetch.resolve=true get their tickets resolved (smt/fetch.rs).
    let resolving = targets
        .iter()
        .map(|t| t.log.as_ref().ok().map(|log| (log.clone(), t.fetch_offset)))
        .collect();
    let partitions = crate::smt::resolve_fetch(ctx.smt(), resolving, partitions).await;

    let mut responses: Vec<FetchableTopicResponse> = topic_slots
        .iter()
        .map(|(name, topic_id)| {
            let response = FetchableTopicResponse::default();
            if version >= TOPIC_ID_VERSION {
                response.with_topic_id(*topic_id)
            } else {
                response.with_topic(name.clone())
            }
        })
        .collect();
    for (target, partition) in targets.iter().zip(partitions) {
        responses[target.topic_slot].partitions.push(partition);
    }
    FetchResponse::default().with_responses(responses)
}

/// Reads every target below its local log start from the remote tier, concurrently, until
/// `deadline`; a read still running then is answered with no records (it keeps warming the cache).
/// Kafka's default `fetch.max.bytes` (broker): 55 MiB.
const DEFAULT_FETCH_MAX_BYTES: usize = 57_671_680;

fn broker_fetch_max_bytes(ctx: &BrokerContext) -> usize {
    ctx.broker_config("fetch.max.bytes")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|&v| v > 0)
        .unwrap_or(DEFAULT_FETCH_MAX_BYTES)
}

/// Kafka's default `remote.fetch.max.wait.ms` (broker): 500 ms.
const DEFAULT_REMOTE_FETCH_MAX_WAIT_MS: u64 = 500;

fn remote_fetch_max_wait(ctx: &BrokerContext) -> Duration {
    Duration::from_millis(
        ctx.broker_config("remote.fetch.max.wait.ms")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_REMOTE_FETCH_MAX_WAIT_MS),
    )
}

/// Each read is bounded by its partition's limit and the response's `max_bytes`; `read_one`
/// trims the answers to what is left of `max_bytes` once earlier partitions took their share.
async fn read_cold(
    cold: &dyn ColdReader,
    targets: &mut [Target],
    max_bytes: usize,
    deadline: Instant,
) {
    let reads = targets.iter_mut().filter_map(|t| {
        let log = t.log.as_ref().ok()?.clone();
        let limit = t.partition_max_bytes.min(max_bytes).max(1);
        (t.fetch_offset < log.local_log_start_offset()).then_some(async move {
            let read = cold.read(log, t.fetch_offset, limit);
            t.cold = Some(
                tokio::time::timeout_at(deadline, read)
                    .await
                    .unwrap_or(Ok(None)),
            );
        })
    });
    futures::future::join_all(reads).await;
}

/// One pass over every target: `(partition answers, bytes of records, whether any errored)`.
fn read_all(
    targets: &[Target],
    max_bytes: usize,
    version: i16,
) -> (Vec<PartitionData>, usize, bool) {
    let mut remaining = max_bytes;
    let mut total = 0usize;
    let mut any_error = false;
    let answers = targets
        .iter()
        .map(|target| {
            let answer = read_one(target, &mut remaining, total == 0, version);
            if answer.error_code != 0 {
                any_error = true;
            }
            total += answer.records.as_ref().map_or(0, Bytes::len);
            answer
        })
        .collect();
    (answers, total, any_error)
}

fn read_one(
    target: &Target,
    remaining: &mut usize,
    first_with_data: bool,
    version: i16,
) -> PartitionData {
    let answer = PartitionData::default().with_partition_index(target.partition);
    let log = match &target.log {
        Ok(log) => log,
        Err(error) => return answer.with_error_code(error.code()).with_high_watermark(-1),
    };
    let limit = target.partition_max_bytes.min(*remaining);
    let read = if limit == 0 && !first_with_data {
        Ok(None)
    } else if let Some(cold) = &target.cold {
        let (high_watermark, log_start_offset) = (log.high_watermark(), log.log_start_offset());
        return match cold {
            Ok(records) => {
                let records = records
                    .as_ref()
                    .map(|r| whole_batches_within(r, limit, first_with_data))
                    .unwrap_or_default();
                *remaining = remaining.saturating_sub(records.len());
                with_log_offsets(answer, high_watermark, log_start_offset, version)
                    .with_records(Some(records))
            }
            Err(code) => with_log_offsets(answer, high_watermark, log_start_offset, version)
                .with_error_code(*code),
        };
    } else {
        // The log returns at least one whole batch whatever the limit; only the first partition
        // with data may go over it (KIP-74), the others stop at the last batch that fits.
        log.read(target.fetch_offset, limit.max(1))
            .map(|mut result| {
                result.records = whole_batches_within(&result.records, limit, first_with_data);
                Some(result)
            })
    };
    let with_offsets = |answer: PartitionData, high_watermark: i64, log_start_offset: i64| {
        with_log_offsets(answer, high_watermark, log_start_offset, version)
    };
    match read {
        Ok(Some(result)) => {
            *remaining = remaining.saturating_sub(result.records.len());
            with_offsets(answer, result.high_watermark, result.log_start_offset)
                .with_records(Some(result.records))
        }
        Ok(None) => with_offsets(answer, log.high_watermark(), log.log_start_offset()),
        Err(LogError::OffsetOutOfRange {
            log_start_offset, ..
        }) => {
            tracing::debug!(
                topic = log.topic(),
                partition = target.partition,
                fetch_offset = target.fetch_offset,
                log_start_offset,
                "fetch offset out of range"
            );
            with_offsets(answer, log.high_watermark(), log_start_offset)
                .with_error_code(ResponseError::OffsetOutOfRange.code())
        }
        Err(err) => {
            tracing::warn!(topic = log.topic(), partition = target.partition, error = %err, "fetch read failed");
            with_offsets(answer, log.high_watermark(), log.log_start_offset())
                .with_error_code(err.kafka_error_code())
        }
    }
}

/// The longest run of whole batches at the start of `records` that fits in `limit` bytes, but
/// at least the first batch when `at_least_one` (KIP-74: a consumer never stalls on a batch
/// larger than its limits). Cold reads come back as one piece and are cut here, so they obey
/// `max_bytes` and `partition_max_bytes` exactly as hot reads do.
fn whole_batches_within(records: &Bytes, limit: usize, at_least_one: bool) -> Bytes {
    if records.len() <= limit {
        return records.clone();
    }
    let mut end = 0;
    for batch in BatchIter::new(records.clone()) {
        let next = end + batch.size();
        if next > limit && !(end == 0 && at_least_one) {
            break;
        }
        end = next;
    }
    records.slice(..end)
}

fn with_log_offsets(
    answer: PartitionData,
    high_watermark: i64,
    log_start_offset: i64,
    version: i16,
) -> PartitionData {
    let answer = answer
        .with_high_watermark(high_watermark)
        .with_last_stable_offset(high_watermark);
    if version >= 5 {
        answer.with_log_start_offset(log_start_offset)
    } else {
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::test_support::TestBroker;
    use crate::log::Durability;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::protocol::StrBytes;
    use strata_format::testing::BatchBuilder;

    /// One batch of one record whose value is `value_len` bytes.
    fn batch(offset: i64, value_len: usize) -> Bytes {
        BatchBuilder::new()
            .base_offset(offset)
            .timestamp(1_700_000_000_000 + offset)
            .value(vec![b'v'; value_len])
            .build()
    }

    fn batches(count: i64) -> (Bytes, usize) {
        let mut all = bytes::BytesMut::new();
        for offset in 0..count {
            all.extend_from_slice(&batch(offset, 1000));
        }
        let one = batch(0, 1000).len();
        (all.freeze(), one)
    }

    /// A remote tier that answers with ten batches whatever the limit: the handler must cut.
    struct GreedyRemote(Bytes);

    /// Answers like `GreedyRemote` after a delay (an object store's latency).
    struct SlowRemote(Bytes, Duration);

    #[async_trait::async_trait]
    impl ColdReader for SlowRemote {
        async fn read(&self, _: Arc<PartitionLog>, _: i64, _: usize) -> ColdRead {
            tokio::time::sleep(self.1).await;
            Ok(Some(self.0.clone()))
        }
        async fn offset_for_timestamp(
            &self,
            _: Arc<PartitionLog>,
            _: i64,
        ) -> Result<Option<(i64, i64)>, i16> {
            Ok(None)
        }
    }

    #[async_trait::async_trait]
    impl ColdReader for GreedyRemote {
        async fn read(&self, _: Arc<PartitionLog>, _: i64, _: usize) -> ColdRead {
            Ok(Some(self.0.clone()))
        }
        async fn offset_for_timestamp(
            &self,
            _: Arc<PartitionLog>,
            _: i64,
        ) -> Result<Option<(i64, i64)>, i16> {
            Ok(None)
        }
    }

    #[test]
    fn cuts_at_batch_boundaries_keeping_one_batch_when_asked() {
        let (all, one) = batches(10);
        assert_eq!(whole_batches_within(&all, usize::MAX, false), all);
        assert_eq!(
            whole_batches_within(&all, 3 * one + 1, false).len(),
            3 * one
        );
        assert_eq!(whole_batches_within(&all, one - 1, true).len(), one);
        assert!(whole_batches_within(&all, one - 1, false).is_empty());
    }

    async fn cold_fetch(
        broker: &TestBroker,
        max_bytes: i32,
        partition_max_bytes: [i32; 2],
    ) -> Vec<usize> {
        let partitions = (0..2)
            .map(|p| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(partition_max_bytes[p as usize])
            })
            .collect();
        let request = FetchRequest::default()
            .with_max_wait_ms(1000)
            .with_max_bytes(max_bytes)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str("cold")))
                    .with_partitions(partitions),
            ]);
        let response = handle(&broker.ctx, &request, 12).await;
        response.responses[0]
            .partitions
            .iter()
            .map(|p| {
                assert_eq!(p.error_code, 0);
                let records = p.records.clone().unwrap_or_default();
                // Whole batches only: walking them ends exactly at the end.
                let walked: usize = BatchIter::new(records.clone()).map(|b| b.size()).sum();
                assert_eq!(walked, records.len());
                records.len()
            })
            .collect()
    }

    /// Fetches partitions 0 and 1 of `topic` from the given offsets: each partition's batches
    /// as `(base offset, bytes)`.
    async fn hot_fetch(
        broker: &TestBroker,
        topic: &'static str,
        fetch_offsets: [i64; 2],
        max_bytes: i32,
        partition_max_bytes: i32,
    ) -> Vec<Vec<(i64, usize)>> {
        let partitions = (0..2)
            .map(|p| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(fetch_offsets[p as usize])
                    .with_partition_max_bytes(partition_max_bytes)
            })
            .collect();
        let request = FetchRequest::default()
            .with_max_wait_ms(0)
            .with_max_bytes(max_bytes)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_static_str(topic)))
                    .with_partitions(partitions),
            ]);
        let response = handle(&broker.ctx, &request, 12).await;
        response.responses[0]
            .partitions
            .iter()
            .map(|p| {
                assert_eq!(p.error_code, 0);
                let records = p.records.clone().unwrap_or_default();
                let batches: Vec<(i64, usize)> = BatchIter::new(records.clone())
                    .map(|b| (b.base_offset(), b.size()))
                    .collect();
                let walked: usize = batches.iter().map(|(_, size)| size).sum();
                assert_eq!(walked, records.len(), "whole batches only");
                batches
            })
            .collect()
    }

    /// Topic `name`, two partitions of `batches` batches (1000-byte values) each.
    async fn topic_of_batches(ctx: &BrokerContext, name: &str, batches: i64) {
        ctx.log
            .create_topic(name, 2, Default::default(), false)
            .unwrap();
        for p in 0..2 {
            let log = ctx.log.partition(name, p).unwrap();
            for offset in 0..batches {
                log.append(batch(offset, 1000), Durability::Written)
                    .await
                    .unwrap();
            }
        }
    }

    /// The broker's fetch.max.bytes bounds a response whatever the client asks for (the
    /// first batch still goes out whole).
    #[tokio::test]
    async fn broker_fetch_max_bytes_bounds_what_a_client_asks_for() {
        let one = batch(0, 1000).len();
        let cap = (3 * one + 10).to_string();
        let broker = TestBroker::start(&[("fetch.max.bytes", cap.as_str())]).await;
        let ctx = &broker.ctx;
        topic_of_batches(ctx, "capped", 5).await;
        let got = hot_fetch(&broker, "capped", [0, 0], i32::MAX, i32::MAX).await;
        assert_eq!(got[0].len(), 3, "{got:?}");
        assert!(got[1].is_empty(), "{got:?}");
    }

    #[tokio::test]
    async fn hot_fetch_stays_within_the_limits_after_the_first_partition_with_data() {
        let broker = TestBroker::start(&[]).await;
        let ctx = &broker.ctx;
        topic_of_batches(ctx, "hot", 3).await;
        let one = batch(0, 1000).len();

        // max_bytes: partition 0 takes two batches, the 100 bytes left are less than
        // partition 1's next batch, so it gets nothing (it used to get a whole batch).
        assert_eq!(
            hot_fetch(&broker, "hot", [0, 0], (2 * one + 100) as i32, 1_000_000).await,
            vec![vec![(0, one), (1, one)], vec![]]
        );
        // The next fetch, with partition 0 read to its end, brings partition 1's batches.
        assert_eq!(
            hot_fetch(&broker, "hot", [3, 0], (2 * one + 100) as i32, 1_000_000).await,
            vec![vec![], vec![(0, one), (1, one)]]
        );
        // partition_max_bytes below one batch: only the first partition with data goes over.
        assert_eq!(
            hot_fetch(&broker, "hot", [2, 1], 1_000_000, (one / 2) as i32).await,
            vec![vec![(2, one)], vec![]]
        );
        assert_eq!(
            hot_fetch(&broker, "hot", [3, 1], 1_000_000, (one / 2) as i32).await,
            vec![vec![], vec![(1, one)]]
        );
        broker.stop().await;
    }

    /// Offsets 0..10 of both partitions of `cold` below the local log start, for a cold reader.
    async fn cold_topic(ctx: &BrokerContext) {
        // Tiny segments: every batch rolls one, so offsets 0..10 can leave the local log.
        let overrides = [("segment.bytes".to_string(), "100".to_string())].into();
        ctx.log.create_topic("cold", 2, overrides, false).unwrap();
        for p in 0..2 {
            let log = ctx.log.partition("cold", p).unwrap();
            for offset in 0..11 {
                log.append(batch(offset, 10), Durability::Written)
                    .await
                    .unwrap();
            }
            log.delete_records_before(10).unwrap();
            log.expose_remote_log_start(0);
            assert_eq!(log.local_log_start_offset(), 10);
        }
    }

    /// A consumer asking for no wait (fetch.max.wait.ms=0) still gets cold records that take
    /// less than remote.fetch.max.wait.ms to read, rather than an empty answer every time.
    #[tokio::test]
    async fn a_cold_fetch_without_wait_gets_remote_fetch_max_wait() {
        for (config, delay_ms, expect_records) in [
            (None, 200, true),
            (Some("1500"), 1000, true),
            (Some("100"), 600, false),
        ] {
            let settings: Vec<(&str, &str)> = config
                .map(|v| ("remote.fetch.max.wait.ms", v))
                .into_iter()
                .collect();
            let broker = TestBroker::start(&settings).await;
            cold_topic(&broker.ctx).await;
            let (all, one) = batches(10);
            broker
                .ctx
                .set_cold_reader(Arc::new(SlowRemote(all, Duration::from_millis(delay_ms))));
            let partitions = vec![
                FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(one as i32),
            ];
            let request = FetchRequest::default()
                .with_max_wait_ms(0)
                .with_max_bytes(1 << 20)
                .with_topics(vec![
                    FetchTopic::default()
                        .with_topic(TopicName(StrBytes::from_static_str("cold")))
                        .with_partitions(partitions),
                ]);
            let response = handle(&broker.ctx, &request, 12).await;
            let partition = &response.responses[0].partitions[0];
            assert_eq!(partition.error_code, 0);
            let bytes = partition.records.as_ref().map_or(0, |r| r.len());
            assert_eq!(
                bytes,
                if expect_records { one } else { 0 },
                "remote.fetch.max.wait.ms={config:?}, read takes {delay_ms} ms"
            );
            broker.stop().await;
        }
    }

    #[tokio::test]
    async fn cold_fetch_obeys_max_bytes_and_partition_max_bytes() {
        let broker = TestBroker::start(&[]).await;
        let ctx = &broker.ctx;
        // Offsets 0..10 exist but are below the local log start: served by the "remote tier".
        cold_topic(ctx).await;
        let (all, one) = batches(10);
        ctx.set_cold_reader(Arc::new(GreedyRemote(all)));

        // partition_max_bytes per partition, then max_bytes over the response.
        assert_eq!(
            cold_fetch(
                &broker,
                (5 * one) as i32,
                [(2 * one + 1) as i32, (100 * one) as i32]
            )
            .await,
            vec![2 * one, 3 * one]
        );
        // A response limit below one batch still returns the first batch, and only that.
        assert_eq!(
            cold_fetch(&broker, 10, [100_000, 100_000]).await,
            vec![one, 0]
        );
        broker.stop().await;
    }
}
