//! The protocol server over real loopback TCP: bad input affects only its own connection,
//! pipelined requests are answered in order, idle connections and clients that stop reading are
//! closed, and a kcat round trip works (when kcat exists).

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    RequestHeader, RequestKind, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::test_support::TestBroker;

fn frame(api_key: ApiKey, version: i16, correlation_id: i32, body: &RequestKind) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(api_key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("loopback-test")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, api_key.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

fn api_versions(correlation_id: i32) -> Vec<u8> {
    frame(
        ApiKey::ApiVersions,
        3,
        correlation_id,
        &RequestKind::ApiVersions(ApiVersionsRequest::default()),
    )
}

/// Reads one response frame; `None` when the broker closed the connection.
async fn read_frame(stream: &mut TcpStream) -> Option<Bytes> {
    let mut len = [0u8; 4];
    match tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut len)).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return None,
        Err(_) => panic!("no response and no close within 10s"),
    }
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).await.ok()?;
    Some(Bytes::from(body))
}

async fn api_versions_ok(stream: &mut TcpStream, correlation_id: i32) {
    stream
        .write_all(&api_versions(correlation_id))
        .await
        .unwrap();
    let mut body = read_frame(stream)
        .await
        .expect("broker answered ApiVersions");
    assert_eq!(
        ResponseHeader::decode(&mut body, 0).unwrap().correlation_id,
        correlation_id
    );
    assert_eq!(
        ApiVersionsResponse::decode(&mut body, 3)
            .unwrap()
            .error_code,
        0
    );
}

async fn assert_closed_after(bytes: &[u8], addr: std::net::SocketAddr, what: &str) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    assert!(
        read_frame(&mut stream).await.is_none(),
        "{what}: the broker should close the connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_only_its_own_connection() {
    let broker = TestBroker::start(&[("socket.request.max.bytes", "1048576")]).await;
    let mut healthy = TcpStream::connect(broker.addr).await.unwrap();
    api_versions_ok(&mut healthy, 1).await;

    // Oversized: refused on the length prefix alone, nothing else sent.
    assert_closed_after(
        &(200 * 1024 * 1024i32).to_be_bytes(),
        broker.addr,
        "oversized frame",
    )
    .await;
    // Negative length.
    assert_closed_after(&(-1i32).to_be_bytes(), broker.addr, "negative length").await;
    // Garbage after a plausible length.
    let mut garbage = 12i32.to_be_bytes().to_vec();
    garbage.extend_from_slice(&[
        0xde, 0xad, 0xbe, 0xef, 0x13, 0x37, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff,
    ]);
    assert_closed_after(&garbage, broker.addr, "garbage").await;
    // Unknown api key.
    let mut unknown = api_versions(5);
    unknown[4..6].copy_from_slice(&999i16.to_be_bytes());
    assert_closed_after(&unknown, broker.addr, "unknown api key").await;
    // Unsupported version of a non-ApiVersions API.
    let mut too_new = frame(
        ApiKey::Metadata,
        12,
        6,
        &RequestKind::Metadata(MetadataRequest::default()),
    );
    too_new[6..8].copy_from_slice(&99i16.to_be_bytes());
    assert_closed_after(&too_new, broker.addr, "unsupported Metadata version").await;
    // A body cut short inside a correct length: malformed.
    let mut short = frame(
        ApiKey::Metadata,
        4,
        7,
        &RequestKind::Metadata(MetadataRequest::default()),
    );
    short.truncate(short.len() - 3);
    let len = (short.len() - 4) as i32;
    short[..4].copy_from_slice(&len.to_be_bytes());
    assert_closed_after(&short, broker.addr, "malformed body").await;
    // A frame truncated by the client hanging up half-way.
    {
        let mut stream = TcpStream::connect(broker.addr).await.unwrap();
        stream.write_all(&100i32.to_be_bytes()).await.unwrap();
        stream.write_all(&[0, 18, 0, 3]).await.unwrap();
        stream.shutdown().await.unwrap();
        assert!(read_frame(&mut stream).await.is_none());
    }

    // ApiVersions at an unknown version: the v0 error reply, and the connection stays usable.
    let mut downgrade = TcpStream::connect(broker.addr).await.unwrap();
    let mut future_version = api_versions(8);
    future_version[6..8].copy_from_slice(&42i16.to_be_bytes());
    downgrade.write_all(&future_version).await.unwrap();
    let mut reply = read_frame(&mut downgrade)
        .await
        .expect("ApiVersions is answered");
    assert_eq!(
        ResponseHeader::decode(&mut reply, 0)
            .unwrap()
            .correlation_id,
        8
    );
    let versions = ApiVersionsResponse::decode(&mut reply, 0).unwrap();
    assert_eq!(versions.error_code, 35, "UNSUPPORTED_VERSION");
    assert!(
        versions
            .api_keys
            .iter()
            .any(|k| k.api_key == ApiKey::Produce as i16)
    );
    api_versions_ok(&mut downgrade, 9).await;

    // The first connection never noticed any of it.
    api_versions_ok(&mut healthy, 2).await;
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_in_order() {
    let broker = TestBroker::start(&[]).await;
    let mut stream = TcpStream::connect(broker.addr).await.unwrap();
    let mut batch = Vec::new();
    for correlation_id in 0..20 {
        if correlation_id % 2 == 0 {
            batch.extend(api_versions(correlation_id));
        } else {
            let body = RequestKind::Metadata(MetadataRequest::default().with_topics(None));
            batch.extend(frame(ApiKey::Metadata, 9, correlation_id, &body));
        }
    }
    stream.write_all(&batch).await.unwrap();
    for correlation_id in 0..20 {
        let mut body = read_frame(&mut stream).await.expect("a response");
        let header_version = if correlation_id % 2 == 0 { 0 } else { 1 };
        assert_eq!(
            ResponseHeader::decode(&mut body, header_version)
                .unwrap()
                .correlation_id,
            correlation_id
        );
        if correlation_id % 2 == 1 {
            let metadata = MetadataResponse::decode(&mut body, 9).unwrap();
            assert_eq!(metadata.brokers[0].port, i32::from(broker.addr.port()));
        }
    }
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_reaped() {
    let broker = TestBroker::start(&[("connections.max.idle.ms", "300")]).await;
    let mut stream = TcpStream::connect(broker.addr).await.unwrap();
    api_versions_ok(&mut stream, 1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let _ = stream.write_all(&api_versions(2)).await;
    assert!(
        read_frame(&mut stream).await.is_none(),
        "idle connection should have been closed"
    );
    broker.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_after_the_idle_timeout() {
    use crate::log::Durability;
    use kafka_protocol::messages::FetchRequest;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use strata_format::testing::BatchBuilder;

    let broker = TestBroker::start(&[("connections.max.idle.ms", "300")]).await;
    let ctx = &broker.ctx;
    ctx.log
        .create_topic("big", 1, Default::default(), false)
        .unwrap();
    let log = ctx.log.partition("big", 0).unwrap();
    // 16 MiB: far more than the client's small receive buffer and the broker's send buffer.
    let batch = BatchBuilder::new().value(vec![b'x'; 512 * 1024]).build();
    for _ in 0..32 {
        log.append(batch.clone(), Durability::Written)
            .await
            .unwrap();
    }

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(broker.addr).await.unwrap();
    let fetch = RequestKind::Fetch(
        FetchRequest::default()
            .with_max_bytes(64 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(kafka_protocol::messages::TopicName(
                        StrBytes::from_static_str("big"),
                    ))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(0)
                            .with_partition_max_bytes(64 << 20),
                    ]),
            ]),
    );
    stream
        .write_all(&frame(ApiKey::Fetch, 12, 1, &fetch))
        .await
        .unwrap();

    // The client reads nothing; the broker must give up on the write, not wait forever.
    let open = || ctx.metrics.connections_open.get();
    let wait_for_open = |wanted: i64| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while open() != wanted && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        open()
    };
    assert_eq!(wait_for_open(1).await, 1, "the connection was accepted");
    assert_eq!(
        wait_for_open(0).await,
        0,
        "the stalled connection is still open"
    );

    // What the socket still held arrives, then the connection ends: part of the response only.
    let mut received = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut received))
        .await
        .expect("the broker closed the connection");
    let response_len = 4 + i32::from_be_bytes(received[..4].try_into().unwrap()) as usize;
    assert!(
        response_len > 32 * batch.len(),
        "the response holds every batch"
    );
    assert!(
        received.len() < response_len,
        "received {} of {response_len} bytes",
        received.len()
    );
    broker.stop().await;
}

fn kcat_available() -> bool {
    std::process::Command::new("kcat")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_round_trip_smoke() {
    if !kcat_available() {
        eprintln!("SKIPPED: kcat not installed");
        return;
    }
    let broker = TestBroker::start(&[]).await;
    let addr = broker.addr.to_string();
    let run = move |args: Vec<String>, input: &'static [u8]| {
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = std::process::Command::new("kcat")
                .args(&args)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(input).unwrap();
            child.wait_with_output().unwrap()
        })
    };
    let args = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let produced = run(
        args(&["-b", &addr, "-P", "-t", "smoke", "-K", ":", "-z", "zstd"]),
        b"k1:v1\nk2:v2\n",
    )
    .await
    .unwrap();
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );
    let consumed = run(
        args(&[
            "-b",
            &addr,
            "-C",
            "-t",
            "smoke",
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k=%s\n",
        ]),
        b"",
    )
    .await
    .unwrap();
    assert!(
        consumed.status.success(),
        "{}",
        String::from_utf8_lossy(&consumed.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&consumed.stdout), "k1=v1\nk2=v2\n");
    broker.stop().await;
}
