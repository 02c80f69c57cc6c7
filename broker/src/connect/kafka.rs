//! A minimal Kafka client for the connect runner: one connection to the bootstrap broker
//! (Strata is a single node), request/response types from the `kafka-protocol` crate, no codec
//! of our own. Enough for the runner: Produce (acks=all), Fetch, Metadata.

use anyhow::{Context, bail};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    FetchRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest, RequestHeader, TopicName,
    metadata_request::MetadataRequestTopic,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PRODUCE_VERSION: i16 = 9;
const FETCH_VERSION: i16 = 12;
const METADATA_VERSION: i16 = 9;
const LIST_OFFSETS_VERSION: i16 = 4;
/// Kafka's OFFSET_OUT_OF_RANGE.
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// A fetch offset the partition no longer (or not yet) has: retention deleted it, or the topic
/// was deleted and created again.
#[derive(Debug, thiserror::Error)]
#[error("fetch {topic}-{partition} at {offset}: the offset is out of range")]
pub struct OffsetOutOfRange {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

pub struct KafkaClient {
    stream: TcpStream,
    correlation: i32,
}

impl KafkaClient {
    pub async fn connect(bootstrap: &str) -> anyhow::Result<Self> {
        let first = bootstrap.split(',').next().unwrap_or_default().trim();
        let stream = TcpStream::connect(first)
            .await
            .with_context(|| format!("connecting to {first}"))?;
        stream.set_nodelay(true).ok();
        Ok(Self {
            stream,
            correlation: 0,
        })
    }

    async fn send<R: Request>(&mut self, request: &R, version: i16) -> anyhow::Result<R::Response> {
        self.correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("strata-connect")));
        let mut body = BytesMut::new();
        header.encode(&mut body, R::header_version(version))?;
        request.encode(&mut body, version)?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(i32::try_from(body.len())?);
        frame.extend_from_slice(&body);
        self.stream.write_all(&frame).await?;
        let len = self.stream.read_i32().await? as usize;
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).await?;
        let mut buf = Bytes::from(buf);
        let header_version = <R::Response as HeaderVersion>::header_version(version);
        let correlation = buf.get_i32();
        if correlation != self.correlation {
            bail!(
                "correlation id {correlation}, expected {}",
                self.correlation
            );
        }
        if header_version >= 1 {
            // Tagged fields of the response header (none expected): an unsigned varint count.
            let count = buf.get_u8();
            if count != 0 {
                bail!("unexpected tagged fields in a response header");
            }
        }
        R::Response::decode(&mut buf, version)
    }

    /// Partition count of `topic` (auto-created by the broker when allowed).
    pub async fn partitions(&mut self, topic: &str) -> anyhow::Result<i32> {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(topic.to_string())),
            ))]))
            .with_allow_auto_topic_creation(true);
        let response = self.send(&request, METADATA_VERSION).await?;
        let t = response
            .topics
            .first()
            .with_context(|| format!("no metadata for {topic}"))?;
        if t.error_code != 0 {
            bail!("metadata for {topic}: error code {}", t.error_code);
        }
        Ok(t.partitions.len() as i32)
    }

    /// Produces `records` as one batch with acks=all; returns the base offset.
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[Record],
    ) -> anyhow::Result<i64> {
        let mut batch = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut batch,
            records.iter(),
            &RecordEncodeOptions {
                version: 2,
                compression: kafka_protocol::records::Compression::None,
            },
        )?;
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(60_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(batch.freeze())),
                    ]),
            ]);
        let response = self.send(&request, PRODUCE_VERSION).await?;
        let p = response
            .responses
            .first()
            .and_then(|t| t.partition_responses.first())
            .context("empty produce response")?;
        if p.error_code != 0 {
            bail!(
                "produce to {topic}-{partition}: error code {} {:?}",
                p.error_code,
                p.error_message
            );
        }
        Ok(p.base_offset)
    }

    /// Whole batches from `offset` (up to `max_bytes`, at least one batch); waits up to
    /// `max_wait_ms` for data.
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_bytes: i32,
        max_wait_ms: i32,
    ) -> anyhow::Result<Bytes> {
        let request = FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(partition)
                            .with_fetch_offset(offset)
                            .with_partition_max_bytes(max_bytes),
                    ]),
            ]);
        let response = self.send(&request, FETCH_VERSION).await?;
        let p = response
            .responses
            .first()
            .and_then(|t| t.partitions.first())
            .context("empty fetch response")?;
        if p.error_code == OFFSET_OUT_OF_RANGE {
            return Err(OffsetOutOfRange {
                topic: topic.to_string(),
                partition,
                offset,
            }
            .into());
        }
        if p.error_code != 0 {
            bail!(
                "fetch {topic}-{partition} at {offset}: error code {}",
                p.error_code
            );
        }
        Ok(p.records.clone().unwrap_or_default())
    }

    /// The partition's earliest offset (ListOffsets -2: the log start).
    pub async fn earliest_offset(&mut self, topic: &str, partition: i32) -> anyhow::Result<i64> {
        let request = ListOffsetsRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_timestamp(-2),
                    ]),
            ]);
        let response = self.send(&request, LIST_OFFSETS_VERSION).await?;
        let p = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .context("empty ListOffsets response")?;
        if p.error_code != 0 {
            bail!(
                "earliest offset of {topic}-{partition}: error code {}",
                p.error_code
            );
        }
        Ok(p.offset)
    }
}
