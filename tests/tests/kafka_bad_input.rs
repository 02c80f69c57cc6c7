//! Raw TCP against a real `strata serve`: oversized, truncated and garbage frames and wrong API
//! versions are answered or close only their own connection; the broker keeps serving others.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use strata_tests::Strata;

/// ApiVersions v0 request: size, api key 18, version, correlation id, client id "t".
fn api_versions(version: i16, correlation_id: i32) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(18i16.to_be_bytes());
    body.extend(version.to_be_bytes());
    body.extend(correlation_id.to_be_bytes());
    body.extend(1i16.to_be_bytes());
    body.push(b't');
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend(body);
    frame
}

fn connect(strata: &Strata) -> TcpStream {
    let stream = TcpStream::connect(strata.kafka_addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
}

/// One response frame, or `None` when the broker closed the connection.
fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).ok()?;
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

fn assert_api_versions_ok(stream: &mut TcpStream, correlation_id: i32) {
    stream.write_all(&api_versions(0, correlation_id)).unwrap();
    let body = read_frame(stream).expect("ApiVersions answered");
    assert_eq!(
        i32::from_be_bytes(body[0..4].try_into().unwrap()),
        correlation_id
    );
    assert_eq!(
        i16::from_be_bytes(body[4..6].try_into().unwrap()),
        0,
        "error code"
    );
}

fn assert_closed(strata: &Strata, bytes: &[u8], what: &str) {
    let mut stream = connect(strata);
    let _ = stream.write_all(bytes);
    assert!(
        read_frame(&mut stream).is_none(),
        "{what}: expected the broker to close the connection"
    );
}

#[test]
fn bad_frames_close_only_their_connection_and_the_broker_keeps_serving() {
    let strata = Strata::start();
    let mut healthy = connect(&strata);
    assert_api_versions_ok(&mut healthy, 1);

    assert_closed(&strata, &i32::MAX.to_be_bytes(), "2 GiB length prefix");
    assert_closed(
        &strata,
        &(104_857_601i32).to_be_bytes(),
        "one byte over socket.request.max.bytes",
    );
    assert_closed(&strata, &(-7i32).to_be_bytes(), "negative length");
    let mut garbage = 16i32.to_be_bytes().to_vec();
    garbage.extend(b"\xff\xfe\x00\x09garbage!\x01\x02\x03\x04");
    assert_closed(&strata, &garbage, "garbage bytes");
    let mut metadata_v99 = api_versions(0, 5);
    metadata_v99[4..6].copy_from_slice(&3i16.to_be_bytes()); // api key 3 = Metadata
    metadata_v99[6..8].copy_from_slice(&99i16.to_be_bytes());
    assert_closed(&strata, &metadata_v99, "Metadata v99");
    {
        // Truncated: announce 64 bytes, send 6, hang up.
        let mut stream = connect(&strata);
        stream.write_all(&64i32.to_be_bytes()).unwrap();
        stream.write_all(&[0, 18, 0, 0, 0, 1]).unwrap();
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(read_frame(&mut stream).is_none());
    }

    // A wrong ApiVersions version gets Kafka's v0 UNSUPPORTED_VERSION answer with our table,
    // and that connection stays usable.
    let mut downgrading = connect(&strata);
    downgrading.write_all(&api_versions(127, 9)).unwrap();
    let body = read_frame(&mut downgrading).expect("answered");
    assert_eq!(i32::from_be_bytes(body[0..4].try_into().unwrap()), 9);
    assert_eq!(
        i16::from_be_bytes(body[4..6].try_into().unwrap()),
        35,
        "UNSUPPORTED_VERSION"
    );
    assert!(
        i32::from_be_bytes(body[6..10].try_into().unwrap()) > 10,
        "the api version table"
    );
    assert_api_versions_ok(&mut downgrading, 10);

    assert_api_versions_ok(&mut healthy, 2);
    assert_api_versions_ok(&mut connect(&strata), 3);
}

/// A frame of a few dozen bytes that claims an array of 2^31 elements (classic Int32 count) or
/// 2^32-2 elements (flexible-version compact count). The decoder reserves capacity for the count
/// before reading an element; the broker must reject the frame and keep running, not abort.
#[test]
fn huge_array_counts_in_tiny_frames_do_not_crash_the_broker() {
    let mut strata = Strata::start();
    let frames: Vec<(&str, Vec<u8>)> = vec![
        ("Produce v7, Int32 topic count i32::MAX", {
            let mut body = Vec::new();
            body.extend(0i16.to_be_bytes()); // api key 0 = Produce
            body.extend(7i16.to_be_bytes());
            body.extend(1i32.to_be_bytes()); // correlation id
            body.extend((-1i16).to_be_bytes()); // client id: null
            body.extend((-1i16).to_be_bytes()); // transactional id: null
            body.extend(1i16.to_be_bytes()); // acks
            body.extend(1000i32.to_be_bytes()); // timeout
            body.extend(i32::MAX.to_be_bytes()); // topic count
            body
        }),
        ("Metadata v9, compact topic count u32::MAX", {
            let mut body = Vec::new();
            body.extend(3i16.to_be_bytes()); // api key 3 = Metadata
            body.extend(9i16.to_be_bytes());
            body.extend(2i32.to_be_bytes()); // correlation id
            body.extend((-1i16).to_be_bytes()); // client id: null
            body.push(0); // header tagged fields
            body.extend([0xff, 0xff, 0xff, 0xff, 0x0f]); // unsigned varint u32::MAX
            body
        }),
    ];
    for (what, body) in frames {
        let mut frame = (body.len() as i32).to_be_bytes().to_vec();
        frame.extend(body);
        assert_closed(&strata, &frame, what);
        let mut fresh = connect(&strata);
        assert_api_versions_ok(&mut fresh, 9);
    }
    let status = strata.stop();
    assert!(
        status.success(),
        "broker exited with {status}\n{}",
        strata.logs()
    );
}
