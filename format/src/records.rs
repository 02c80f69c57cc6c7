//! The varint framing of an uncompressed records section, checked without decoding a record.
//!
//! kafka-protocol's record decoder sizes allocations from counts on the wire: it reserves room
//! for the batch's record count before reading a record, and each record's header map for its
//! header count before reading a header. Both are only checked for being negative, so a
//! 70-byte batch whose one record declares `i32::MAX` headers (or a compressed batch declaring
//! `i32::MAX` records) makes it ask for hundreds of GiB: an abort, or GiBs zeroed for nothing.
//! [`check_records_framing`] walks every length and count first, the same way the decoder reads
//! them, and refuses any that the bytes cannot hold:
//!
//! * the section holds `record_count` records, each within its declared length;
//! * a record's key, value and headers lie within the record, each header taking at least two
//!   bytes (key length, value length), so a header count is at most half the record's rest.
//!
//! What the decoder then allocates is proportional to bytes that are really there, and the
//! check returns how many records and headers that is ([`RecordsShape`]): decoded, each costs
//! far more than its bytes on the wire (a header takes two bytes there and about a hundred as a
//! map entry), so callers bound the decoded size too (`codec::decode_records`).
//!
//! ```text
//! record: length varint | attributes i8 | timestamp delta varlong | offset delta varint |
//!         key length varint (-1: null) | key | value length varint (-1: null) | value |
//!         header count varint | (key length varint | key | value length varint | value)*
//! ```

use crate::FormatError;

/// The smallest record: one byte each for length, attributes, timestamp delta, offset delta,
/// key length, value length and header count.
pub const MIN_RECORD_BYTES: usize = 7;

/// How many records and headers a records section holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordsShape {
    pub records: usize,
    pub headers: usize,
}

/// Checks that `section` (a batch's records, uncompressed) holds `record_count` records whose
/// lengths and counts are backed by bytes; see the module docs. Returns what it counted.
pub fn check_records_framing(
    section: &[u8],
    record_count: i32,
) -> Result<RecordsShape, FormatError> {
    let count = usize::try_from(record_count)
        .map_err(|_| FormatError::InvalidHeader("negative record count"))?;
    if count > section.len() / MIN_RECORD_BYTES {
        return Err(FormatError::InvalidHeader(
            "record count exceeds what the records section can hold",
        ));
    }
    let mut rest = section;
    let mut shape = RecordsShape {
        records: count,
        headers: 0,
    };
    for index in 0..count {
        let invalid = |reason| FormatError::InvalidRecord { index, reason };
        let length = read_varint(&mut rest, VARINT_BYTES).ok_or(invalid("truncated length"))?;
        let length = usize::try_from(length).map_err(|_| invalid("negative length"))?;
        let record = take(&mut rest, length).ok_or(invalid("longer than the records section"))?;
        shape.headers += check_record(record).map_err(invalid)?;
    }
    Ok(shape)
}

/// One record's body (after its length); its header count.
fn check_record(record: &[u8]) -> Result<usize, &'static str> {
    let rest = &mut &record[..];
    take(rest, 1).ok_or("truncated attributes")?;
    read_varint(rest, VARLONG_BYTES).ok_or("truncated timestamp delta")?;
    read_varint(rest, VARINT_BYTES).ok_or("truncated offset delta")?;
    skip_nullable(rest).ok_or("key outside the record")?;
    skip_nullable(rest).ok_or("value outside the record")?;
    let headers = read_varint(rest, VARINT_BYTES).ok_or("truncated header count")?;
    let headers = usize::try_from(headers).map_err(|_| "negative header count")?;
    if headers > rest.len() / 2 {
        return Err("header count exceeds the record's bytes");
    }
    for _ in 0..headers {
        let key = read_varint(rest, VARINT_BYTES).ok_or("truncated header key length")?;
        let key = usize::try_from(key).map_err(|_| "negative header key length")?;
        take(rest, key).ok_or("header key outside the record")?;
        skip_nullable(rest).ok_or("header value outside the record")?;
    }
    Ok(headers)
}

/// Kafka's varint (zigzag, at most 5 bytes) and varlong (at most 10 bytes), read as
/// kafka-protocol reads them: after the last allowed byte the value ends, whatever its high bit.
const VARINT_BYTES: usize = 5;
const VARLONG_BYTES: usize = 10;

fn read_varint(rest: &mut &[u8], max_bytes: usize) -> Option<i64> {
    let mut zigzag = 0u64;
    for i in 0..max_bytes {
        let (&byte, tail) = rest.split_first()?;
        *rest = tail;
        zigzag |= u64::from(byte & 0x7f) << (i * 7);
        if byte < 0x80 {
            break;
        }
    }
    if max_bytes == VARINT_BYTES {
        // 32-bit arithmetic, as the decoder's: bits past 32 are dropped.
        let zigzag = zigzag as u32;
        return Some(i64::from((zigzag >> 1) as i32 ^ -((zigzag & 1) as i32)));
    }
    Some((zigzag >> 1) as i64 ^ -((zigzag & 1) as i64))
}

/// A varint length (-1: null) and the bytes it counts.
fn skip_nullable(rest: &mut &[u8]) -> Option<()> {
    let length = read_varint(rest, VARINT_BYTES)?;
    if length == -1 {
        return Some(());
    }
    take(rest, usize::try_from(length).ok()?).map(|_| ())
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if n > rest.len() {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

#[cfg(test)]
mod tests {
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    use super::*;
    use crate::BATCH_HEADER_SIZE;

    fn record(
        offset: i64,
        key: Option<&str>,
        value: Option<&str>,
        headers: &[(&str, Option<&str>)],
    ) -> Record {
        let bytes = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: (offset as i32).wrapping_sub(1),
            timestamp: 1_700_000_000_000 - offset * 1_000_000,
            key: key.map(bytes),
            value: value.map(bytes),
            headers: headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.to_string()), v.map(bytes)))
                .collect::<IndexMap<_, _>>(),
        }
    }

    /// The records section of one uncompressed batch of `records`.
    fn section(records: &[Record]) -> Bytes {
        let mut out = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        };
        RecordBatchEncoder::encode(&mut out, records.iter(), &options).unwrap();
        out.freeze().slice(BATCH_HEADER_SIZE..)
    }

    #[test]
    fn well_formed_records_pass() {
        let long = "v".repeat(300);
        let records = vec![
            record(0, None, None, &[]),
            record(
                1,
                Some("k"),
                Some(&long),
                &[("a", Some("1")), ("b", None), ("", Some(""))],
            ),
            record(2, Some(""), Some(""), &[("h", Some(&long))]),
        ];
        let bytes = section(&records);
        assert_eq!(
            check_records_framing(&bytes, 3).unwrap(),
            RecordsShape {
                records: 3,
                headers: 4
            }
        );
        // Fewer records than the section holds is the decoder's business, not a framing error.
        assert_eq!(check_records_framing(&bytes, 1).unwrap().headers, 0);
        check_records_framing(&bytes, 0).unwrap();
    }

    #[test]
    fn counts_the_bytes_cannot_back_are_refused() {
        let bytes = section(&[record(0, Some("k"), Some("v"), &[("a", Some("1"))])]);
        assert!(matches!(
            check_records_framing(&bytes, 2),
            Err(FormatError::InvalidHeader(_))
        ));
        assert!(check_records_framing(&bytes, -1).is_err());
        let many = section(&vec![record(0, None, None, &[]); 3]);
        assert_eq!(many.len(), 3 * MIN_RECORD_BYTES);
        assert_eq!(
            check_records_framing(&many, 4),
            Err(FormatError::InvalidHeader(
                "record count exceeds what the records section can hold"
            ))
        );
        // A record declaring i32::MAX headers (zigzag varint fe ff ff ff 0f) in 11 bytes.
        let liar = [
            0x14, 0x00, 0x00, 0x00, 0x01, 0x01, 0xfe, 0xff, 0xff, 0xff, 0x0f,
        ];
        assert_eq!(
            check_records_framing(&liar, 1),
            Err(FormatError::InvalidRecord {
                index: 0,
                reason: "header count exceeds the record's bytes"
            })
        );
        // Lengths past the record or the section.
        let mut long_record = liar;
        long_record[0] = 0x16; // 11 bytes of body, 10 present
        assert_eq!(
            check_records_framing(&long_record, 1),
            Err(FormatError::InvalidRecord {
                index: 0,
                reason: "longer than the records section"
            })
        );
        let long_key = [0x0c, 0x00, 0x00, 0x00, 0x06, 0x01, 0x00]; // a 3-byte key, 2 bytes left
        assert_eq!(
            check_records_framing(&long_key, 1),
            Err(FormatError::InvalidRecord {
                index: 0,
                reason: "key outside the record"
            })
        );
        let second_bad = [&section(&[record(0, None, None, &[])])[..], &liar[..]].concat();
        assert!(matches!(
            check_records_framing(&second_bad, 2),
            Err(FormatError::InvalidRecord { index: 1, .. })
        ));
    }
}
