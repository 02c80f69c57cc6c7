//! Kafka's topic `compression.type`: a topic set to a codec stores every batch with it, whatever
//! the producer sent (`producer`, the default, keeps the producer's bytes).
//!
//! Only the batch's records section changes: it is decompressed with the producer's codec and
//! compressed with the topic's, and the batch keeps its header (producer id, epoch and sequence
//! for idempotence, timestamps, record count, transactional bit); length, codec bits and CRC are
//! recomputed (`RecordBatch::with_records_section`). Records are never decoded, so nothing in
//! them can change (duplicate header keys included). Control batches are kept as they are, as
//! Kafka does. Compression uses the codec crates at the topic's `compression.zstd.level` and
//! `compression.gzip.level` (KIP-390; Kafka's defaults 3 and 6), LZ4 frames of independent blocks
//! in LZ4's fast mode (as librdkafka writes them; `compression.lz4.level` is not served, the
//! high-compression levels run at a tenth of the speed), Snappy in the xerial framing through
//! kafka-protocol.
//!
//! A producer's batch is bounded by `max.message.bytes`, what it inflates to is not: sections are
//! inflated by `strata_format::codec`, which stops at [`max_inflated_bytes`], so a compression
//! bomb costs one refusal (MESSAGE_TOO_LARGE), not the broker's memory.

use std::io::Write;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Snappy};
use kafka_protocol::records::RecordSet;
use strata_format::codec::{InflateError, decode_records, inflate_records, max_inflated_bytes};
use strata_format::{Compression, RecordBatch};

use super::{LogError, TopicConfig};

/// What a refusal of a batch that inflates past [`max_inflated_bytes`] names as the limit.
const INFLATE_LIMIT: &str = "decompressed size, 16 x max.message.bytes and at least 64 MiB";
/// ... and one whose records and headers would take more than that decoded.
const DECODED_LIMIT: &str =
    "decoded size of the batch's records and headers, 16 x max.message.bytes and at least 64 MiB";

/// An inflation failure as the log's error: a bomb is MESSAGE_TOO_LARGE, the rest CORRUPT_MESSAGE.
fn inflate_error(error: InflateError) -> LogError {
    match error {
        InflateError::TooLarge { size, limit } => LogError::MessageTooLarge {
            size,
            max: limit,
            config: INFLATE_LIMIT,
        },
        InflateError::DecodedTooLarge { size, limit, .. } => LogError::MessageTooLarge {
            size,
            max: limit,
            config: DECODED_LIMIT,
        },
        InflateError::Corrupt(message) => LogError::CorruptMessage(message),
    }
}

/// Decodes one batch (a produced or a stored one) with its records section inflated at most to
/// [`max_inflated_bytes`] of the topic's `max.message.bytes`: every place the broker decodes
/// records goes through this. The set keeps the batch's codec.
pub(crate) fn decode_bounded(
    batch: &RecordBatch,
    max_message_bytes: usize,
) -> Result<RecordSet, LogError> {
    decode_records(batch, max_inflated_bytes(max_message_bytes)).map_err(inflate_error)
}

/// The codec a topic stores its batches with (its `compression.type`); `None` for `producer`.
pub(crate) fn stored_codec(compression_type: &str) -> Option<Compression> {
    match compression_type {
        "uncompressed" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        "lz4" => Some(Compression::Lz4),
        "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// Whether a batch of the append is in another codec than `codec` (control batches aside).
pub(crate) fn needs_recompression(batches: &[RecordBatch], codec: Compression) -> bool {
    batches.iter().any(|b| !kept_as_sent(b, codec))
}

fn kept_as_sent(batch: &RecordBatch, codec: Compression) -> bool {
    batch.is_control() || batch.compression() == codec
}

/// `records` (split into `batches`) with every batch stored with `codec`. CPU-bound (up to
/// `max.message.bytes` decompressed and compressed per batch): callers run it off the async
/// workers.
pub(crate) fn recompress(
    records: &Bytes,
    batches: &[RecordBatch],
    codec: Compression,
    config: &TopicConfig,
) -> Result<Bytes, LogError> {
    let limit = max_inflated_bytes(config.max_message_bytes);
    let mut out = BytesMut::with_capacity(records.len());
    for batch in batches {
        if kept_as_sent(batch, codec) {
            out.extend_from_slice(batch.as_bytes());
            continue;
        }
        let plain = inflate_records(batch, limit).map_err(inflate_error)?;
        let section = compress(codec, plain, config).map_err(|e| {
            LogError::CorruptMessage(format!(
                "could not compress a batch with the topic's compression.type {codec:?}: {e:#}"
            ))
        })?;
        out.extend_from_slice(&batch.with_records_section(codec, &section));
    }
    Ok(out.freeze())
}

/// `plain` compressed with `codec`, at the topic's `compression.{gzip,zstd}.level` (KIP-390).
fn compress(codec: Compression, plain: Bytes, config: &TopicConfig) -> anyhow::Result<Bytes> {
    let compressed = match codec {
        Compression::None => return Ok(plain),
        Compression::Gzip => {
            let level = match u32::try_from(config.compression_gzip_level) {
                Ok(level) => flate2::Compression::new(level),
                Err(_) => flate2::Compression::default(),
            };
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::with_capacity(plain.len() / 2), level);
            encoder.write_all(&plain)?;
            encoder.finish()?
        }
        // LZ4's fast mode in a frame of independent blocks, what librdkafka writes by default:
        // the high-compression levels run at a tenth of the speed (50 against 680 MB/s here).
        Compression::Lz4 => {
            let mut encoder =
                lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(plain.len() / 2));
            encoder.write_all(&plain)?;
            encoder.finish()?
        }
        Compression::Zstd => zstd::bulk::compress(&plain, config.compression_zstd_level)?,
        // Kafka's clients expect the xerial framing, which kafka-protocol writes.
        Compression::Snappy => {
            let mut out = BytesMut::new();
            Snappy::compress(&mut out, |buf: &mut BytesMut| {
                buf.put_slice(&plain);
                Ok(())
            })?;
            return Ok(out.freeze());
        }
        Compression::Unknown(id) => anyhow::bail!("unknown codec {id}"),
    };
    Ok(Bytes::from(compressed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression as KpCompression, Record, RecordBatchDecoder, RecordBatchEncoder,
        RecordEncodeOptions, TimestampType,
    };
    use strata_format::BatchIter;

    const LIMIT: usize = 64 << 20;

    const CODECS: [(Compression, KpCompression); 5] = [
        (Compression::None, KpCompression::None),
        (Compression::Gzip, KpCompression::Gzip),
        (Compression::Snappy, KpCompression::Snappy),
        (Compression::Lz4, KpCompression::Lz4),
        (Compression::Zstd, KpCompression::Zstd),
    ];

    /// An idempotent producer's batch of `count` records (text values, one header).
    fn batch(codec: KpCompression, count: i64) -> Bytes {
        let records: Vec<Record> = (0..count)
            .map(|i| Record {
                transactional: false,
                control: false,
                partition_leader_epoch: 0,
                producer_id: 7,
                producer_epoch: 2,
                timestamp_type: TimestampType::Creation,
                offset: i,
                sequence: 40 + i as i32,
                timestamp: 1_700_000_000_000 + i,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: (i % 5 != 4).then(|| Bytes::from(format!("value {i} ").repeat(20))),
                headers: IndexMap::from([(StrBytes::from_static_str("h"), Some(Bytes::from("v")))]),
                delete_horizon: false,
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: codec,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.freeze()
    }

    fn split(bytes: &Bytes) -> Vec<RecordBatch> {
        BatchIter::new(bytes.clone()).collect()
    }

    #[test]
    fn every_codec_becomes_every_other_with_the_same_records_and_header() {
        for (from, from_kp) in CODECS {
            let original = batch(from_kp, 50);
            let original_batch = &split(&original)[0];
            let original_plain = inflate_records(original_batch, LIMIT).unwrap();
            for (to, _) in CODECS {
                let needed = needs_recompression(&split(&original), to);
                assert_eq!(needed, from != to, "{from:?} -> {to:?}");
                let out =
                    recompress(&original, &split(&original), to, &TopicConfig::default()).unwrap();
                if !needed {
                    assert_eq!(out, original, "{from:?} is kept as the producer sent it");
                    continue;
                }
                let stored = &split(&out)[0];
                stored.validate().unwrap();
                assert_eq!(stored.compression(), to);
                // The same records section, byte for byte, once uncompressed.
                assert_eq!(
                    inflate_records(stored, LIMIT).unwrap(),
                    original_plain,
                    "{from:?} -> {to:?}"
                );
                // The header fields a consumer and idempotence rely on are kept.
                for (a, b) in [
                    (stored.base_offset(), original_batch.base_offset()),
                    (stored.producer_id(), original_batch.producer_id()),
                    (i64::from(stored.producer_epoch()), 2),
                    (i64::from(stored.base_sequence()), 40),
                    (i64::from(stored.record_count()), 50),
                    (stored.base_timestamp(), original_batch.base_timestamp()),
                    (stored.max_timestamp(), original_batch.max_timestamp()),
                ] {
                    assert_eq!(a, b, "{from:?} -> {to:?}");
                }
                // And a client decodes it to the same records.
                let mut a = original.clone();
                let mut b = out.clone();
                assert_eq!(
                    RecordBatchDecoder::decode(&mut b).unwrap().records,
                    RecordBatchDecoder::decode(&mut a).unwrap().records
                );
            }
        }
    }

    #[test]
    fn a_section_that_does_not_decompress_is_a_corrupt_message() {
        let good = batch(KpCompression::None, 3);
        // Claim zstd over plain records: the CRC is right, the section is not zstd.
        let lying = split(&good)[0]
            .with_records_section(Compression::Zstd, &split(&good)[0].records_section());
        let err = recompress(
            &lying,
            &split(&lying),
            Compression::Gzip,
            &TopicConfig::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&err, LogError::CorruptMessage(m) if m.contains("does not decompress")),
            "{err}"
        );
    }

    /// One record whose value is `value_bytes` of zeros, in a batch compressed with `codec`.
    fn bomb(codec: KpCompression, value_bytes: usize) -> Bytes {
        let record = Record {
            transactional: false,
            control: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(Bytes::from(vec![0u8; value_bytes])),
            headers: IndexMap::new(),
            delete_horizon: false,
        };
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression: codec,
        };
        RecordBatchEncoder::encode(&mut buf, [&record], &options).unwrap();
        buf.freeze()
    }

    #[test]
    fn a_batch_that_inflates_past_the_limit_is_refused() {
        // Snappy compresses at most about 21x: a 64 MiB bomb is 3 MiB of it.
        let max_message_bytes = 4 << 20;
        let config = TopicConfig {
            max_message_bytes,
            ..TopicConfig::default()
        };
        let limit = max_inflated_bytes(max_message_bytes);
        assert_eq!(limit, 64 << 20);
        for (codec, kp) in &CODECS[1..] {
            let batch = bomb(*kp, limit + 1024);
            assert!(
                batch.len() < max_message_bytes,
                "{codec:?}: {} bytes",
                batch.len()
            );
            let err = recompress(&batch, &split(&batch), Compression::None, &config).unwrap_err();
            assert!(
                matches!(err, LogError::MessageTooLarge { max, .. } if max == limit),
                "{codec:?}: {err}"
            );
            // Just under the limit it goes through, to the byte.
            let fits = bomb(*kp, limit - 1024);
            let stored = recompress(&fits, &split(&fits), Compression::None, &config).unwrap();
            let mut decoded = stored.clone();
            let records = RecordBatchDecoder::decode(&mut decoded).unwrap().records;
            assert_eq!(
                records[0].value.as_ref().map(Bytes::len),
                Some(limit - 1024)
            );
        }
    }

    #[test]
    fn the_topic_levels_choose_how_hard_zstd_and_gzip_compress() {
        let original = batch(KpCompression::None, 400);
        let size = |codec, gzip_level, zstd_level| {
            let config = TopicConfig {
                compression_gzip_level: gzip_level,
                compression_zstd_level: zstd_level,
                ..TopicConfig::default()
            };
            let out = recompress(&original, &split(&original), codec, &config).unwrap();
            let stored = &split(&out)[0];
            let plain = inflate_records(stored, LIMIT).unwrap();
            assert_eq!(plain, split(&original)[0].records_section());
            out.len()
        };
        assert!(size(Compression::Zstd, -1, 19) < size(Compression::Zstd, -1, -5));
        assert!(size(Compression::Gzip, 9, 3) < size(Compression::Gzip, 1, 3));
        assert_eq!(
            size(Compression::Gzip, -1, 3),
            size(Compression::Gzip, 6, 3)
        );
    }

    #[test]
    fn decoding_is_bounded_and_gives_kafka_protocols_records() {
        for (codec, kp) in CODECS {
            let original = batch(kp, 30);
            let set = decode_bounded(&split(&original)[0], 1 << 20).unwrap();
            let mut plain = original.clone();
            let expected = RecordBatchDecoder::decode(&mut plain).unwrap();
            assert_eq!(set.records, expected.records, "{codec:?}");
            assert_eq!(
                set.compression, kp,
                "{codec:?}: the set keeps the batch's codec"
            );
        }
        for (codec, kp) in &CODECS[1..] {
            let inflates = bomb(*kp, (64 << 20) + 1);
            let err = decode_bounded(&split(&inflates)[0], 4 << 20).unwrap_err();
            assert!(
                matches!(err, LogError::MessageTooLarge { .. }),
                "{codec:?}: {err}"
            );
        }
    }

    #[test]
    fn only_the_known_codec_names_select_a_codec() {
        assert_eq!(stored_codec("producer"), None);
        assert_eq!(stored_codec("uncompressed"), Some(Compression::None));
        assert_eq!(stored_codec("zstd"), Some(Compression::Zstd));
        assert_eq!(stored_codec("lz4"), Some(Compression::Lz4));
        assert_eq!(stored_codec("snappy"), Some(Compression::Snappy));
        assert_eq!(stored_codec("gzip"), Some(Compression::Gzip));
    }
}
