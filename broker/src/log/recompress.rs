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
//! A producer's batch is bounded by `max.message.bytes`, what it inflates to is not: the section
//! is decompressed by streaming decoders that stop at [`max_decompressed_bytes`] (Snappy, which
//! has no streaming decoder here, is checked against the lengths its blocks declare before any
//! is decompressed), so a compression bomb costs one refusal (MESSAGE_TOO_LARGE), not the
//! broker's memory.

use std::io::{Read, Write};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Snappy};
use kafka_protocol::records::{Compression as KafkaCompression, RecordBatchDecoder, RecordSet};
use strata_format::{Compression, RecordBatch};

use super::{LogError, TopicConfig};

/// The most a batch's records section may inflate to: 16 times `max.message.bytes`, at least
/// 64 MiB (a 1 MiB batch of text compresses 5-10x; 16x leaves room for very repetitive data).
pub(crate) fn max_decompressed_bytes(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(16).max(64 << 20)
}

/// What to name in a refusal of a batch that inflates past [`max_decompressed_bytes`].
const INFLATE_LIMIT: &str = "decompressed size, 16 x max.message.bytes and at least 64 MiB";

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
    let limit = max_decompressed_bytes(config.max_message_bytes);
    let mut out = BytesMut::with_capacity(records.len());
    for batch in batches {
        if kept_as_sent(batch, codec) {
            out.extend_from_slice(batch.as_bytes());
            continue;
        }
        let plain = decompress(batch, limit)?;
        let section = compress(codec, &plain, config).map_err(|e| {
            LogError::CorruptMessage(format!(
                "could not compress a batch with the topic's compression.type {codec:?}: {e:#}"
            ))
        })?;
        out.extend_from_slice(&batch.with_records_section(codec, &section));
    }
    Ok(out.freeze())
}

/// The batch's records section, uncompressed, refused past [`max_decompressed_bytes`] of the
/// topic's `max.message.bytes` (every path that decodes a producer's batch goes through this).
pub(crate) fn decompress_bounded(
    batch: &RecordBatch,
    max_message_bytes: usize,
) -> Result<Bytes, LogError> {
    decompress(batch, max_decompressed_bytes(max_message_bytes))
}

/// Decodes one batch (kafka-protocol's decoder) with its compressed records section inflated by
/// [`decompress_bounded`] first, so that decoding a stored or produced batch never holds more
/// than the bound. The set keeps the batch's codec.
pub(crate) fn decode_bounded(
    batch: &RecordBatch,
    max_message_bytes: usize,
) -> Result<RecordSet, LogError> {
    let codec = match batch.compression() {
        Compression::None => KafkaCompression::None,
        Compression::Gzip => KafkaCompression::Gzip,
        Compression::Snappy => KafkaCompression::Snappy,
        Compression::Lz4 => KafkaCompression::Lz4,
        Compression::Zstd => KafkaCompression::Zstd,
        Compression::Unknown(id) => {
            return Err(LogError::CorruptMessage(format!(
                "batch uses unknown compression codec {id}"
            )));
        }
    };
    let mut plain = if codec == KafkaCompression::None {
        batch.as_bytes().clone()
    } else {
        let section = decompress_bounded(batch, max_message_bytes)?;
        batch.with_records_section(Compression::None, &section)
    };
    let mut set = RecordBatchDecoder::decode(&mut plain)
        .map_err(|e| LogError::CorruptMessage(format!("{e:#}")))?;
    set.compression = codec;
    Ok(set)
}

/// The batch's records section, uncompressed; more than `limit` bytes is refused.
fn decompress(batch: &RecordBatch, limit: usize) -> Result<Bytes, LogError> {
    let section = batch.records_section();
    let codec = batch.compression();
    let corrupt = |e: &dyn std::fmt::Display| {
        LogError::CorruptMessage(format!(
            "the batch's {codec:?} records section does not decompress: {e}"
        ))
    };
    let too_large = |size: usize| LogError::MessageTooLarge {
        size,
        max: limit,
        config: INFLATE_LIMIT,
    };
    let inflate = |reader: &mut dyn Read| -> Result<Bytes, LogError> {
        let mut plain = Vec::new();
        reader
            .take((limit as u64).saturating_add(1))
            .read_to_end(&mut plain)
            .map_err(|e| corrupt(&e))?;
        if plain.len() > limit {
            return Err(too_large(plain.len()));
        }
        Ok(Bytes::from(plain))
    };
    match codec {
        Compression::None => Ok(section),
        Compression::Gzip => inflate(&mut flate2::read::GzDecoder::new(&section[..])),
        Compression::Lz4 => inflate(&mut lz4_flex::frame::FrameDecoder::new(&section[..])),
        Compression::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::new(&section[..]).map_err(|e| corrupt(&e))?;
            inflate(&mut decoder)
        }
        Compression::Snappy => {
            let declared = snappy_declared_size(&section).map_err(|e| corrupt(&e))?;
            if declared > limit {
                return Err(too_large(declared));
            }
            let mut section = section;
            Snappy::decompress(&mut section, |b: &mut Bytes| {
                Ok(b.copy_to_bytes(b.remaining()))
            })
            .map_err(|e| corrupt(&format!("{e:#}")))
        }
        Compression::Unknown(id) => Err(LogError::CorruptMessage(format!(
            "batch uses unknown compression codec {id}"
        ))),
    }
}

/// The xerial framing Kafka's Snappy uses: a 16-byte header, then blocks of `u32` length and
/// raw Snappy; a section without the header is one raw Snappy block (as Kafka's clients accept).
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER_BYTES: usize = 16;

/// What a Snappy section says it inflates to, from the length each raw block declares.
fn snappy_declared_size(section: &[u8]) -> Result<usize, String> {
    if !section.starts_with(XERIAL_MAGIC) {
        return snap::raw::decompress_len(section).map_err(|e| e.to_string());
    }
    let mut rest = section
        .get(XERIAL_HEADER_BYTES..)
        .ok_or("truncated xerial header")?;
    let mut total = 0usize;
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or("truncated block length")?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail.get(..len).ok_or("truncated block")?;
        total = total.saturating_add(snap::raw::decompress_len(block).map_err(|e| e.to_string())?);
        rest = &tail[len..];
    }
    Ok(total)
}

/// `plain` compressed with `codec`, at the topic's `compression.{gzip,zstd}.level` (KIP-390).
fn compress(codec: Compression, plain: &[u8], config: &TopicConfig) -> anyhow::Result<Bytes> {
    let compressed = match codec {
        Compression::None => plain.to_vec(),
        Compression::Gzip => {
            let level = match u32::try_from(config.compression_gzip_level) {
                Ok(level) => flate2::Compression::new(level),
                Err(_) => flate2::Compression::default(),
            };
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::with_capacity(plain.len() / 2), level);
            encoder.write_all(plain)?;
            encoder.finish()?
        }
        // LZ4's fast mode in a frame of independent blocks, what librdkafka writes by default:
        // the high-compression levels run at a tenth of the speed (50 against 680 MB/s here).
        Compression::Lz4 => {
            let mut encoder =
                lz4_flex::frame::FrameEncoder::new(Vec::with_capacity(plain.len() / 2));
            encoder.write_all(plain)?;
            encoder.finish()?
        }
        Compression::Zstd => zstd::bulk::compress(plain, config.compression_zstd_level)?,
        // Kafka's clients expect the xerial framing, which kafka-protocol writes.
        Compression::Snappy => {
            let mut out = BytesMut::new();
            Snappy::compress(&mut out, |buf: &mut BytesMut| {
                buf.put_slice(plain);
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
            let original_plain = decompress(original_batch, LIMIT).unwrap();
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
                    decompress(stored, LIMIT).unwrap(),
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
        let limit = max_decompressed_bytes(max_message_bytes);
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
            let plain = decompress(stored, LIMIT).unwrap();
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
