//! Property tests: batches built by `kafka-protocol`'s encoder read back field for field, the two
//! permitted rewrites keep them valid, any corruption of CRC-covered bytes is caught, the batch
//! iterator finds every boundary and reports torn tails exactly, and the records framing check
//! accepts what the encoder writes.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use proptest::prelude::*;
use strata_format::records::check_records_framing;
use strata_format::{BatchIter, BatchIterEnd, RecordBatch, RecordBatchMut};

#[derive(Debug, Clone)]
struct Spec {
    producer_id: i64,
    epoch: i16,
    base_sequence: i32,
    timestamps: Vec<i64>,
    value_sizes: Vec<usize>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        1usize..12,
        prop_oneof![Just(-1i64), 0i64..1_000_000],
        0i16..100,
        0i32..i32::MAX,
        0i64..2_000_000_000_000,
    )
        .prop_flat_map(|(count, producer_id, epoch, base_sequence, base_ts)| {
            (
                Just(producer_id),
                Just(epoch),
                Just(base_sequence),
                proptest::collection::vec(base_ts..base_ts + 10_000, count),
                proptest::collection::vec(0usize..300, count),
            )
        })
        .prop_map(
            |(producer_id, epoch, base_sequence, timestamps, value_sizes)| Spec {
                producer_id,
                epoch,
                base_sequence,
                timestamps,
                value_sizes,
            },
        )
}

fn encode(spec: &Spec) -> Bytes {
    let records: Vec<Record> = spec
        .timestamps
        .iter()
        .zip(&spec.value_sizes)
        .enumerate()
        .map(|(i, (timestamp, size))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 7,
            producer_id: spec.producer_id,
            producer_epoch: if spec.producer_id < 0 { -1 } else { spec.epoch },
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // offset - sequence must stay constant for the encoder to keep one batch.
            sequence: if spec.producer_id < 0 {
                i as i32 - 1
            } else {
                strata_format::increment_sequence(spec.base_sequence, i as i32)
            },
            timestamp: *timestamp,
            key: None,
            value: Some(Bytes::from(vec![i as u8; *size])),
            headers: Default::default(),
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
    .unwrap();
    buffer.freeze()
}

proptest! {
    #[test]
    fn header_fields_round_trip(spec in spec()) {
        let bytes = encode(&spec);
        let batch = RecordBatch::new(bytes.clone()).unwrap();
        batch.validate().unwrap();
        let count = spec.timestamps.len();
        prop_assert_eq!(batch.size(), bytes.len());
        prop_assert_eq!(batch.batch_length() as usize, bytes.len() - 12);
        prop_assert_eq!(batch.magic(), 2);
        prop_assert_eq!(batch.partition_leader_epoch(), 7);
        prop_assert_eq!(batch.record_count() as usize, count);
        prop_assert_eq!(batch.last_offset_delta() as usize, count - 1);
        prop_assert_eq!(batch.max_timestamp(), *spec.timestamps.iter().max().unwrap());
        prop_assert_eq!(batch.base_timestamp(), *spec.timestamps.iter().min().unwrap());
        prop_assert_eq!(batch.producer_id(), spec.producer_id);
        prop_assert_eq!(batch.compression(), strata_format::Compression::None);
        prop_assert_eq!(batch.timestamp_type(), strata_format::TimestampType::CreateTime);
        prop_assert!(!batch.is_transactional() && !batch.is_control());
        if spec.producer_id >= 0 {
            prop_assert_eq!(batch.base_sequence(), spec.base_sequence);
            prop_assert_eq!(batch.last_sequence(), strata_format::increment_sequence(spec.base_sequence, count as i32 - 1));
        }
    }

    #[test]
    fn rewrites_keep_the_batch_valid(spec in spec(), offset in 0i64..i64::MAX / 2, now in 0i64..4_000_000_000_000) {
        let mut bytes = encode(&spec).to_vec();
        let original = bytes.clone();
        RecordBatchMut::new(&mut bytes).unwrap().set_base_offset(offset);
        let batch = RecordBatch::new(Bytes::from(bytes.clone())).unwrap();
        batch.validate().unwrap();
        prop_assert_eq!(batch.base_offset(), offset);
        prop_assert_eq!(&bytes[8..], &original[8..]); // only the base offset changed
        RecordBatchMut::new(&mut bytes).unwrap().set_log_append_time(now);
        let stamped = RecordBatch::new(Bytes::from(bytes)).unwrap();
        stamped.validate().unwrap();
        prop_assert_eq!(stamped.max_timestamp(), now);
        prop_assert_eq!(stamped.timestamp_type(), strata_format::TimestampType::LogAppendTime);
        // Decodable by kafka-protocol after the rewrite.
        let mut decode = stamped.as_bytes().clone();
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut decode).unwrap();
        prop_assert_eq!(set.records.len(), spec.timestamps.len());
        prop_assert_eq!(set.records[0].offset, offset);
    }

    #[test]
    fn corruption_is_detected(spec in spec(), position in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let mut bytes = encode(&spec).to_vec();
        // Anything from the magic byte on is covered by magic, CRC or the CRC'd region.
        let at = 16 + position.index(bytes.len() - 16);
        bytes[at] ^= flip;
        let batch = RecordBatch::new(Bytes::from(bytes)).unwrap();
        prop_assert!(batch.validate().is_err());
    }

    #[test]
    fn records_framing_accepts_encoded_records_and_never_panics(spec in spec(), position in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let bytes = encode(&spec);
        let batch = RecordBatch::new(bytes.clone()).unwrap();
        let section = batch.records_section();
        let shape = check_records_framing(&section, batch.record_count()).unwrap();
        prop_assert_eq!(shape.records, spec.timestamps.len());
        prop_assert_eq!(shape.headers, 0);
        let mut corrupt = section.to_vec();
        let at = position.index(corrupt.len());
        corrupt[at] ^= flip;
        let _ = check_records_framing(&corrupt, batch.record_count());
    }

    #[test]
    fn iterator_finds_boundaries_and_torn_tails(specs in proptest::collection::vec(spec(), 1..6), cut in any::<prop::sample::Index>()) {
        let batches: Vec<Bytes> = specs.iter().map(encode).collect();
        let mut all = BytesMut::new();
        let mut boundaries = vec![0];
        for batch in &batches {
            all.extend_from_slice(batch);
            boundaries.push(all.len());
        }
        let all = all.freeze();
        let mut iter = BatchIter::new(all.clone());
        let found: Vec<_> = iter.by_ref().map(|b| b.into_bytes()).collect();
        prop_assert_eq!(&found, &batches);
        prop_assert_eq!(iter.end(), Some(&BatchIterEnd::Clean));

        let cut = cut.index(all.len());
        let mut iter = BatchIter::new(all.slice(..cut));
        let whole = iter.by_ref().count();
        let last_boundary = *boundaries.iter().filter(|b| **b <= cut).max().unwrap();
        prop_assert_eq!(whole, boundaries.iter().filter(|b| **b <= cut).count() - 1);
        if cut == last_boundary {
            prop_assert_eq!(iter.end(), Some(&BatchIterEnd::Clean));
        } else {
            let torn_at = match iter.end() { Some(BatchIterEnd::TornTail { position, .. }) => *position, other => panic!("{other:?}") };
            prop_assert_eq!(torn_at, last_boundary);
        }
    }
}

#[test]
fn short_and_bad_headers_are_errors_not_panics() {
    assert!(RecordBatch::new(Bytes::from_static(&[0; 10])).is_err());
    let mut bytes = vec![0u8; 61];
    bytes[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert!(RecordBatch::new(Bytes::from(bytes.clone())).is_err());
    let mut iter = BatchIter::new(Bytes::from(bytes));
    assert!(iter.next().is_none());
    assert!(matches!(
        iter.end(),
        Some(BatchIterEnd::TornTail { position: 0, .. })
    ));
}
