//! Record batches for tests and benches (feature `testing`).
//!
//! Built with `kafka-protocol`'s encoder, not by this crate, so that tests exercise the parser
//! against what a real client sends rather than against the parser's own idea of the format.

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{self, Record, RecordBatchEncoder, RecordEncodeOptions};

use crate::{Compression, NO_PRODUCER_ID, NO_SEQUENCE};

/// Key or value of a record, given the record's offset.
type RecordBytes = Box<dyn Fn(i64) -> Bytes>;

/// One magic-v2 batch. Defaults: base offset 0, one record with an empty value and no key, every
/// record stamped with the current wall-clock time (what the log engine's time checks expect),
/// no producer id, no compression.
///
/// ```
/// # use strata_format::testing::BatchBuilder;
/// let bytes = BatchBuilder::new().records(3).value(vec![7u8; 100]).build();
/// # assert_eq!(strata_format::RecordBatch::new(bytes).unwrap().record_count(), 3);
/// ```
pub struct BatchBuilder {
    base_offset: i64,
    records: usize,
    timestamp: Option<i64>,
    timestamp_step: i64,
    producer: (i64, i16, i32),
    compression: Compression,
    key: Option<RecordBytes>,
    value: RecordBytes,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self {
            base_offset: 0,
            records: 1,
            timestamp: None,
            timestamp_step: 0,
            producer: (NO_PRODUCER_ID, -1, NO_SEQUENCE),
            compression: Compression::None,
            key: None,
            value: Box::new(|_| Bytes::new()),
        }
    }
}

impl BatchBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Number of records, at least 1.
    pub fn records(mut self, count: usize) -> Self {
        self.records = count;
        self
    }

    /// The same value for every record.
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        let value = value.into();
        self.value = Box::new(move |_| value.clone());
        self
    }

    /// Each record's value, from its offset.
    pub fn values(mut self, value: impl Fn(i64) -> Bytes + 'static) -> Self {
        self.value = Box::new(value);
        self
    }

    /// Each record's key, from its offset (records have no key otherwise).
    pub fn keys(mut self, key: impl Fn(i64) -> Bytes + 'static) -> Self {
        self.key = Some(Box::new(key));
        self
    }

    /// The first record's timestamp (otherwise now).
    pub fn timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    /// Record i is stamped `timestamp + i * step` (0 otherwise: all records share one timestamp).
    pub fn timestamp_step(mut self, step: i64) -> Self {
        self.timestamp_step = step;
        self
    }

    /// An idempotent producer's id, epoch and first sequence (otherwise -1, -1, -1).
    pub fn producer(mut self, id: i64, epoch: i16, base_sequence: i32) -> Self {
        self.producer = (id, epoch, base_sequence);
        self
    }

    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    pub fn build(&self) -> Bytes {
        assert!(self.records > 0, "a batch holds at least one record");
        let timestamp = self.timestamp.unwrap_or_else(now_ms);
        let (producer_id, producer_epoch, base_sequence) = self.producer;
        let records: Vec<Record> = (0..self.records)
            .map(|i| {
                let offset = self.base_offset + i as i64;
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 0,
                    producer_id,
                    producer_epoch,
                    timestamp_type: records::TimestampType::Creation,
                    offset,
                    // The encoder starts a new batch wherever offset - sequence changes; only the
                    // base sequence is written, so wrapping past i32::MAX here is harmless.
                    sequence: base_sequence.wrapping_add(i as i32),
                    timestamp: timestamp + i as i64 * self.timestamp_step,
                    key: self.key.as_ref().map(|key| key(offset)),
                    value: Some((self.value)(offset)),
                    headers: Default::default(),
                }
            })
            .collect();
        let compression = match self.compression {
            Compression::None => records::Compression::None,
            Compression::Gzip => records::Compression::Gzip,
            Compression::Snappy => records::Compression::Snappy,
            Compression::Lz4 => records::Compression::Lz4,
            Compression::Zstd => records::Compression::Zstd,
            Compression::Unknown(codec) => panic!("codec {codec} is not assigned by Kafka"),
        };
        let mut buffer = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buffer,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode record batch");
        buffer.freeze()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

#[cfg(test)]
mod tests {
    use kafka_protocol::records::RecordBatchDecoder;

    use super::*;
    use crate::{BatchIter, RecordBatch, TimestampType};

    #[test]
    fn defaults_are_one_record_from_a_plain_producer_now() {
        let before = now_ms();
        let batch = RecordBatch::new(BatchBuilder::new().build()).unwrap();
        batch.validate().unwrap();
        assert_eq!(batch.base_offset(), 0);
        assert_eq!(batch.record_count(), 1);
        assert_eq!(batch.last_offset_delta(), 0);
        assert_eq!(batch.partition_leader_epoch(), 0);
        assert_eq!(batch.compression(), Compression::None);
        assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
        assert!(!batch.has_producer_id());
        assert_eq!(batch.producer_epoch(), -1);
        assert_eq!(batch.base_sequence(), NO_SEQUENCE);
        assert!((before..=now_ms()).contains(&batch.base_timestamp()));
        assert_eq!(batch.max_timestamp(), batch.base_timestamp());
    }

    #[test]
    fn setters_reach_the_header_and_the_records() {
        let bytes = BatchBuilder::new()
            .base_offset(100)
            .records(3)
            .timestamp(5_000)
            .timestamp_step(2)
            .producer(42, 7, i32::MAX - 1)
            .keys(|offset| Bytes::from(format!("k{offset}")))
            .values(|offset| Bytes::from(vec![offset as u8; 10]))
            .build();
        let batch = RecordBatch::new(bytes.clone()).unwrap();
        batch.validate().unwrap();
        assert_eq!((batch.base_offset(), batch.last_offset()), (100, 102));
        assert_eq!(batch.record_count(), 3);
        assert_eq!(
            (batch.base_timestamp(), batch.max_timestamp()),
            (5_000, 5_004)
        );
        assert_eq!(batch.producer_id(), 42);
        assert_eq!(batch.producer_epoch(), 7);
        assert_eq!(batch.base_sequence(), i32::MAX - 1);
        assert_eq!(batch.last_sequence(), 0, "Kafka's sequences wrap to 0");

        let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
        let records: Vec<_> = set
            .records
            .iter()
            .map(|r| {
                (
                    r.offset,
                    r.timestamp,
                    r.key.clone().unwrap(),
                    r.value.clone(),
                )
            })
            .collect();
        assert_eq!(
            records,
            (100..103)
                .map(|o| (
                    o,
                    5_000 + 2 * (o - 100),
                    Bytes::from(format!("k{o}")),
                    Some(Bytes::from(vec![o as u8; 10]))
                ))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn every_kafka_codec_encodes_and_decodes() {
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let bytes = BatchBuilder::new()
                .records(20)
                .value(vec![b'x'; 200])
                .compression(codec)
                .build();
            let batch = RecordBatch::new(bytes.clone()).unwrap();
            batch.validate().unwrap();
            assert_eq!(batch.compression(), codec);
            assert_eq!(BatchIter::new(bytes.clone()).count(), 1);
            let set = RecordBatchDecoder::decode(&mut bytes.clone()).unwrap();
            assert_eq!(set.records.len(), 20);
            assert!(
                set.records
                    .iter()
                    .all(|r| r.value.as_deref() == Some(&[b'x'; 200][..]))
            );
        }
    }
}
