//! Measures how fast a broker serves Fetch from the page cache, without a client's per-record
//! work in the way: raw Fetch v12 requests over one connection, record bytes counted and
//! discarded, batches walked only to find the next offset. Used by `bench/kafka.sh`.
//!
//! `cargo run --release -p strata-broker --example fetch_throughput -- 127.0.0.1:9092 TOPIC [PARTITION]`
//! prints one JSON line: bytes, seconds, MB/s. Environment: `FETCH_MAX_BYTES` (per fetch, default
//! 4 MiB; Kafka consumers default to 1 MiB per partition), `FETCH_PASSES` (read the partition
//! from offset 0 this many times, default 1, for a measurement long enough to be steady).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, FetchRequest, FetchResponse, RequestHeader, TopicName};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use strata_format::BatchIter;

const FETCH_VERSION: i16 = 12;
/// Per-fetch byte limit unless `FETCH_MAX_BYTES` says otherwise: 4 MiB, the size at which both
/// ends still reuse heap memory instead of mapping fresh pages for every response.
const DEFAULT_FETCH_MAX_BYTES: i32 = 4 << 20;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, bootstrap, topic, rest @ ..] = args.as_slice() else {
        anyhow::bail!("usage: fetch_throughput HOST:PORT TOPIC [PARTITION]");
    };
    let partition: i32 = rest.first().map(|p| p.parse()).transpose()?.unwrap_or(0);
    let max_bytes: i32 = std::env::var("FETCH_MAX_BYTES")
        .ok()
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(DEFAULT_FETCH_MAX_BYTES);
    let mut stream = TcpStream::connect(bootstrap)?;
    stream.set_nodelay(true)?;

    let passes: u32 = std::env::var("FETCH_PASSES")
        .ok()
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(1);

    let (mut total_bytes, mut correlation_id) = (0u64, 0i32);
    let started = Instant::now();
    for _ in 0..passes {
        let mut offset = 0i64;
        loop {
            correlation_id += 1;
            let response = fetch(
                &mut stream,
                topic,
                partition,
                offset,
                correlation_id,
                max_bytes,
            )?;
            let data = &response.responses[0].partitions[0];
            anyhow::ensure!(data.error_code == 0, "fetch error code {}", data.error_code);
            let records = data.records.clone().unwrap_or_default();
            if records.is_empty() {
                break; // caught up with the high watermark
            }
            total_bytes += records.len() as u64;
            let mut batches = BatchIter::new(records);
            for batch in batches.by_ref() {
                offset = batch.next_offset();
            }
            if offset >= data.high_watermark {
                break;
            }
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"mode\":\"fetch-raw\",\"fetch_max_bytes\":{max_bytes},\"bytes\":{total_bytes},\"seconds\":{seconds:.3},\"mb_per_s\":{:.1}}}",
        total_bytes as f64 / seconds / 1e6
    );
    Ok(())
}

fn fetch(
    stream: &mut TcpStream,
    topic: &str,
    partition: i32,
    offset: i64,
    correlation_id: i32,
    max_bytes: i32,
) -> anyhow::Result<FetchResponse> {
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Fetch as i16)
        .with_request_api_version(FETCH_VERSION)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("fetch-throughput")));
    let request = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(0)
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
    let mut body = BytesMut::new();
    header.encode(
        &mut body,
        ApiKey::Fetch.request_header_version(FETCH_VERSION),
    )?;
    request.encode(&mut body, FETCH_VERSION)?;
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    stream.write_all(&frame)?;

    let mut length = [0u8; 4];
    stream.read_exact(&mut length)?;
    // A fresh, unfilled buffer per response: the socket read is the client's only copy.
    let length = i32::from_be_bytes(length) as usize;
    let mut response = Vec::with_capacity(length);
    (&mut *stream)
        .take(length as u64)
        .read_to_end(&mut response)?;
    anyhow::ensure!(response.len() == length, "connection closed mid-response");
    let mut response = Bytes::from(response);
    // Response header v1 (flexible versions): correlation id + tagged fields.
    anyhow::ensure!(
        response.get_i32() == correlation_id,
        "correlation id mismatch"
    );
    let _tagged_fields = response.get_u8();
    FetchResponse::decode(&mut response, FETCH_VERSION)
}
