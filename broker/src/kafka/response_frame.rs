//! Encoding a response as a list of pieces, so that the record sets of a Fetch response go to the
//! socket as the log's own `Bytes` instead of being copied into one contiguous frame.
//!
//! kafka-protocol encodes into one `BytesMut`, which would copy every fetched byte a second time
//! (the log's read is the first and only other copy). Rather than hand-encoding the Fetch
//! response, each large record set is swapped for a 16-byte marker unique to this process, the
//! response is encoded by kafka-protocol as usual (a few hundred bytes), and each marker and its
//! length prefix is then replaced by the real length prefix and the original `Bytes`:
//!
//! ```text
//!   encoded:  [len][header .. partition 0 .. <prefix(16)><marker 0> .. <prefix(16)><marker 1> ..]
//!   pieces:   [len][header .. partition 0 .. <prefix(n0)>] [records 0] [.. <prefix(n1)>] [records 1] [..]
//! ```
//!
//! If a marker is not found exactly where expected (it cannot be, short of a kafka-protocol
//! change), the response is encoded the plain way: splicing is an optimisation, never a
//! different answer. A unit test checks that both encodings are byte-identical.

use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::Encodable;

use super::codec::{LENGTH_PREFIX_BYTES, encode_response};

/// Record sets smaller than this are copied: a separate piece costs more than the copy.
const SPLICE_MIN_BYTES: usize = 16 * 1024;
const MARKER_BYTES: usize = 16;
/// Fetch versions from this one on are flexible: records carry an unsigned-varint length + 1.
const FIRST_FLEXIBLE_FETCH_VERSION: i16 = 12;

/// An encoded response (length prefix included) as pieces to be written in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseFrame {
    pieces: Vec<Bytes>,
    len: usize,
}

impl ResponseFrame {
    pub fn single(bytes: Bytes) -> ResponseFrame {
        ResponseFrame {
            len: bytes.len(),
            pieces: vec![bytes],
        }
    }
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }
    /// Total bytes on the wire, length prefix included.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The frame as one buffer (tests, and callers that need contiguous bytes).
    pub fn concat(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len);
        for piece in &self.pieces {
            out.extend_from_slice(piece);
        }
        out.freeze()
    }
}

/// Encodes a response like [`encode_response`], handing large Fetch record sets through uncopied.
pub fn encode_response_frame(
    correlation_id: i32,
    api_key: ApiKey,
    api_version: i16,
    body: &ResponseKind,
) -> anyhow::Result<ResponseFrame> {
    if let ResponseKind::Fetch(fetch) = body
        && let Some(frame) = splice_fetch(correlation_id, api_version, fetch)?
    {
        return Ok(frame);
    }
    encode_response(correlation_id, api_key, api_version, body).map(ResponseFrame::single)
}

/// A marker for record set `index`: a random per-process prefix, so that no topic name, error
/// message or header field can collide with it in practice (and a collision only means the
/// plain encoding is used, see [`splice_fetch`]).
fn marker(index: u32) -> [u8; MARKER_BYTES] {
    static PREFIX: OnceLock<[u8; MARKER_BYTES - 4]> = OnceLock::new();
    let prefix = PREFIX.get_or_init(rand::random);
    let mut marker = [0u8; MARKER_BYTES];
    marker[..MARKER_BYTES - 4].copy_from_slice(prefix);
    marker[MARKER_BYTES - 4..].copy_from_slice(&index.to_be_bytes());
    marker
}

/// The encoded length prefix of a record set of `len` bytes at this Fetch version.
fn records_prefix(len: usize, api_version: i16) -> anyhow::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(5);
    if api_version >= FIRST_FLEXIBLE_FETCH_VERSION {
        let mut value = u32::try_from(len + 1)?;
        while value >= 0x80 {
            prefix.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        prefix.push(value as u8);
    } else {
        prefix.put_i32(i32::try_from(len)?);
    }
    Ok(prefix)
}

/// `None` when there is nothing worth splicing or a marker is not where it must be.
fn splice_fetch(
    correlation_id: i32,
    api_version: i16,
    fetch: &FetchResponse,
) -> anyhow::Result<Option<ResponseFrame>> {
    let worth_splicing = fetch
        .responses
        .iter()
        .flat_map(|topic| &topic.partitions)
        .any(|p| {
            p.records
                .as_ref()
                .is_some_and(|r| r.len() >= SPLICE_MIN_BYTES)
        });
    if !worth_splicing {
        return Ok(None); // the common small or empty answer: no clone, plain encoding
    }
    let mut stand_in = fetch.clone();
    let mut spliced = Vec::new();
    for topic in &mut stand_in.responses {
        for partition in &mut topic.partitions {
            if let Some(records) = &partition.records
                && records.len() >= SPLICE_MIN_BYTES
            {
                let index = u32::try_from(spliced.len())?;
                spliced.push(records.clone());
                partition.records = Some(Bytes::copy_from_slice(&marker(index)));
            }
        }
    }

    let header_version = ApiKey::Fetch.response_header_version(api_version);
    let mut encoded = BytesMut::with_capacity(512);
    encoded.put_i32(0); // patched below
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut encoded, header_version)?;
    stand_in.encode(&mut encoded, api_version)?;

    // Locate every marker (in encoding order, which is the order they were assigned) and check
    // that the stand-in's length prefix sits right before it.
    let stand_in_prefix = records_prefix(MARKER_BYTES, api_version)?;
    let mut cuts = Vec::with_capacity(spliced.len());
    let mut search_from = 0;
    for index in 0..spliced.len() {
        let marker = marker(u32::try_from(index)?);
        let Some(found) = encoded[search_from..]
            .windows(MARKER_BYTES)
            .position(|window| window == marker)
        else {
            return Ok(None);
        };
        let marker_at = search_from + found;
        let Some(prefix_at) = marker_at.checked_sub(stand_in_prefix.len()) else {
            return Ok(None);
        };
        if encoded[prefix_at..marker_at] != stand_in_prefix[..] {
            return Ok(None);
        }
        cuts.push((prefix_at, marker_at + MARKER_BYTES));
        search_from = marker_at + MARKER_BYTES;
    }
    let markers: Vec<_> = (0..spliced.len()).map(|i| marker(i as u32)).collect();
    if encoded[search_from..]
        .windows(MARKER_BYTES)
        .any(|window| markers.iter().any(|marker| window == marker))
    {
        return Ok(None); // a stray marker elsewhere: the cuts may be wrong
    }

    let prefixes = spliced
        .iter()
        .map(|records| records_prefix(records.len(), api_version))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let removed: usize = cuts.iter().map(|(start, end)| end - start).sum();
    let added: usize = spliced
        .iter()
        .zip(&prefixes)
        .map(|(records, prefix)| records.len() + prefix.len())
        .sum();
    let len = encoded.len() - removed + added;
    let size = i32::try_from(len - LENGTH_PREFIX_BYTES)?;
    encoded[..LENGTH_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());

    let encoded = encoded.freeze();
    let mut pieces = Vec::with_capacity(spliced.len() * 2 + 1);
    let mut cursor = 0;
    for (((start, end), records), prefix) in cuts.into_iter().zip(spliced).zip(prefixes) {
        let mut head = BytesMut::with_capacity(start - cursor + prefix.len());
        head.extend_from_slice(&encoded[cursor..start]);
        head.extend_from_slice(&prefix);
        pieces.push(head.freeze());
        pieces.push(records);
        cursor = end;
    }
    pieces.push(encoded.slice(cursor..));
    Ok(Some(ResponseFrame { pieces, len }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::TopicName;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::protocol::StrBytes;

    fn fetch_response(record_sizes: &[usize]) -> FetchResponse {
        let partitions = record_sizes
            .iter()
            .enumerate()
            .map(|(i, size)| {
                let records: Vec<u8> = (0..*size).map(|b| (b * 31 + i) as u8).collect();
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_high_watermark(1_000 + i as i64)
                    .with_records(Some(Bytes::from(records)))
            })
            .collect();
        FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("orders")))
                .with_partitions(partitions),
        ])
    }

    #[test]
    fn spliced_frames_are_byte_identical_to_plain_encoding_at_every_version() {
        let sizes = [
            SPLICE_MIN_BYTES,
            10,
            300_000,
            0,
            SPLICE_MIN_BYTES - 1,
            2 << 20,
        ];
        for version in 4..=16 {
            let body = ResponseKind::Fetch(fetch_response(&sizes));
            let plain = encode_response(7, ApiKey::Fetch, version, &body).unwrap();
            let frame = encode_response_frame(7, ApiKey::Fetch, version, &body).unwrap();
            assert!(
                frame.pieces().len() > 1,
                "v{version}: large record sets must be spliced"
            );
            assert_eq!(frame.len(), plain.len(), "v{version}");
            assert_eq!(frame.concat(), plain, "v{version}");
        }
    }

    #[test]
    fn spliced_pieces_share_the_logs_buffers() {
        let response = fetch_response(&[1 << 20]);
        let records = response.responses[0].partitions[0].records.clone().unwrap();
        let frame =
            encode_response_frame(1, ApiKey::Fetch, 16, &ResponseKind::Fetch(response)).unwrap();
        assert!(
            frame
                .pieces()
                .iter()
                .any(|piece| piece.as_ptr() == records.as_ptr() && piece.len() == records.len()),
            "the record set must be handed through, not copied"
        );
    }

    #[test]
    fn small_responses_are_one_piece() {
        let body = ResponseKind::Fetch(fetch_response(&[100, 200]));
        let frame = encode_response_frame(3, ApiKey::Fetch, 12, &body).unwrap();
        assert_eq!(frame.pieces().len(), 1);
        assert_eq!(
            frame.concat(),
            encode_response(3, ApiKey::Fetch, 12, &body).unwrap()
        );
    }
}
