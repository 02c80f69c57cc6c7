//! Kafka's topic `compression.type`: a topic set to a codec stores every batch with it, whatever
//! the producer sent (`producer`, the default, keeps the producer's bytes).
//!
//! Only the batch's records section changes: it is decompressed with the producer's codec and
//! compressed with the topic's, and the batch keeps its header (producer id, epoch and sequence
//! for idempotence, timestamps, record count, transactional bit); length, codec bits and CRC are
//! recomputed (`RecordBatch::with_records_section`). Records are never decoded, so nothing in
//! them can change (duplicate header keys included). Control batches are kept as they are, as
//! Kafka does. The codecs are kafka-protocol's, which write what Kafka's clients read (Snappy in
//! the xerial framing, LZ4 frames) and read what they send.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{Compressor, Decompressor, Gzip, Lz4, Snappy, Zstd};
use strata_format::{Compression, RecordBatch};

use super::LogError;

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
) -> Result<Bytes, LogError> {
    let mut out = BytesMut::with_capacity(records.len());
    for batch in batches {
        if kept_as_sent(batch, codec) {
            out.extend_from_slice(batch.as_bytes());
            continue;
        }
        let plain = decompress(batch)?;
        let section = compress(codec, &plain).map_err(|e| {
            LogError::CorruptMessage(format!(
                "could not compress a batch with the topic's compression.type {codec:?}: {e:#}"
            ))
        })?;
        out.extend_from_slice(&batch.with_records_section(codec, &section));
    }
    Ok(out.freeze())
}

/// The batch's records section, uncompressed.
fn decompress(batch: &RecordBatch) -> Result<Bytes, LogError> {
    let mut section = batch.records_section();
    let take_all = |b: &mut Bytes| Ok(b.copy_to_bytes(b.remaining()));
    let plain = match batch.compression() {
        Compression::None => return Ok(section),
        Compression::Gzip => Gzip::decompress(&mut section, take_all),
        Compression::Snappy => Snappy::decompress(&mut section, take_all),
        Compression::Lz4 => Lz4::decompress(&mut section, take_all),
        Compression::Zstd => Zstd::decompress(&mut section, take_all),
        Compression::Unknown(id) => {
            return Err(LogError::CorruptMessage(format!(
                "batch at offset delta 0..={} uses unknown compression codec {id}",
                batch.last_offset_delta()
            )));
        }
    };
    plain.map_err(|e| {
        LogError::CorruptMessage(format!(
            "the batch's {:?} records section does not decompress: {e:#}",
            batch.compression()
        ))
    })
}

fn compress(codec: Compression, plain: &[u8]) -> anyhow::Result<Bytes> {
    let mut out = BytesMut::new();
    let fill = |buf: &mut BytesMut| {
        buf.put_slice(plain);
        Ok(())
    };
    match codec {
        Compression::None => return Ok(Bytes::copy_from_slice(plain)),
        Compression::Gzip => Gzip::compress(&mut out, fill)?,
        Compression::Snappy => Snappy::compress(&mut out, fill)?,
        Compression::Lz4 => Lz4::compress(&mut out, fill)?,
        Compression::Zstd => Zstd::compress(&mut out, fill)?,
        Compression::Unknown(id) => anyhow::bail!("unknown codec {id}"),
    }
    Ok(out.freeze())
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
            let original_plain = decompress(original_batch).unwrap();
            for (to, _) in CODECS {
                let needed = needs_recompression(&split(&original), to);
                assert_eq!(needed, from != to, "{from:?} -> {to:?}");
                let out = recompress(&original, &split(&original), to).unwrap();
                if !needed {
                    assert_eq!(out, original, "{from:?} is kept as the producer sent it");
                    continue;
                }
                let stored = &split(&out)[0];
                stored.validate().unwrap();
                assert_eq!(stored.compression(), to);
                // The same records section, byte for byte, once uncompressed.
                assert_eq!(
                    decompress(stored).unwrap(),
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
        let err = recompress(&lying, &split(&lying), Compression::Gzip).unwrap_err();
        assert!(
            matches!(&err, LogError::CorruptMessage(m) if m.contains("does not decompress")),
            "{err}"
        );
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
