//! Append-time validation (Kafka's `LogValidator` checks that need no record decoding): framing,
//! CRC, sizes against `max.message.bytes` / `segment.bytes`, record counts, and CreateTime
//! timestamps against `message.timestamp.before/after.max.ms`. Only the batch's base and max
//! timestamps are checked, not every record's (that would need decompression).

use bytes::Bytes;
use strata_format::{BatchIter, BatchIterEnd, RecordBatch};

use super::{LogError, TimestampPolicy, TopicConfig, now_ms};

/// Splits and validates an append's batches against the topic config (Kafka's `LogValidator`
/// checks that do not need record decoding).
pub(crate) fn validate_batches(
    records: &Bytes,
    config: &TopicConfig,
) -> Result<Vec<RecordBatch>, LogError> {
    let mut iter = BatchIter::new(records.clone());
    let batches: Vec<RecordBatch> = iter.by_ref().collect();
    if let Some(BatchIterEnd::TornTail { error, .. }) = iter.end() {
        return Err(LogError::CorruptMessage(error.to_string()));
    }
    if batches.is_empty() {
        return Err(LogError::CorruptMessage("no record batch in append".into()));
    }
    if records.len() as u64 > config.segment_bytes {
        return Err(LogError::MessageTooLarge {
            size: records.len(),
            max: config.segment_bytes as usize,
            config: "segment.bytes",
        });
    }
    if batches.len() > 1 && batches.iter().any(RecordBatch::has_producer_id) {
        return Err(LogError::InvalidRecord(
            "an idempotent producer must send exactly one batch per partition".into(),
        ));
    }
    let now = now_ms();
    for batch in &batches {
        batch
            .validate()
            .map_err(|e| LogError::CorruptMessage(e.to_string()))?;
        if batch.size() > config.max_message_bytes {
            return Err(LogError::MessageTooLarge {
                size: batch.size(),
                max: config.max_message_bytes,
                config: "max.message.bytes",
            });
        }
        if batch.record_count() == 0 {
            return Err(LogError::InvalidRecord(
                "record batch has no records".into(),
            ));
        }
        if i64::from(batch.record_count()) != i64::from(batch.last_offset_delta()) + 1 {
            return Err(LogError::InvalidRecord(format!(
                "record count {} does not match last offset delta {}",
                batch.record_count(),
                batch.last_offset_delta()
            )));
        }
        if config.message_timestamp_type == TimestampPolicy::CreateTime {
            for timestamp in [batch.base_timestamp(), batch.max_timestamp()] {
                check_timestamp(timestamp, now, config)?;
            }
        }
    }
    Ok(batches)
}

fn check_timestamp(timestamp: i64, now: i64, config: &TopicConfig) -> Result<(), LogError> {
    if timestamp == -1 {
        return Ok(()); // NO_TIMESTAMP is allowed, as in Kafka.
    }
    if timestamp < now.saturating_sub(config.message_timestamp_before_max_ms) {
        return Err(LogError::InvalidTimestamp(format!(
            "timestamp {timestamp} is more than message.timestamp.before.max.ms={} before now ({now})",
            config.message_timestamp_before_max_ms
        )));
    }
    if timestamp > now.saturating_add(config.message_timestamp_after_max_ms) {
        return Err(LogError::InvalidTimestamp(format!(
            "timestamp {timestamp} is more than message.timestamp.after.max.ms={} after now ({now})",
            config.message_timestamp_after_max_ms
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod test_batches {
    //! Real record batches built with `kafka-protocol`'s encoder.
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    use strata_format::RecordBatch;

    pub fn encode(records: &[Record]) -> Bytes {
        let mut buffer = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buffer,
            records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encode");
        buffer.freeze()
    }

    pub fn record(offset: i64, producer: (i64, i16, i32), timestamp: i64, value: Bytes) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer.0,
            producer_epoch: producer.1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: producer.2,
            timestamp,
            key: None,
            value: Some(value),
            headers: Default::default(),
        }
    }

    pub fn idempotent_batch(
        producer_id: i64,
        epoch: i16,
        base_sequence: i32,
        count: usize,
    ) -> RecordBatch {
        let records: Vec<Record> = (0..count)
            .map(|i| {
                let sequence = strata_format::increment_sequence(base_sequence, i as i32);
                record(
                    i as i64,
                    (producer_id, epoch, sequence),
                    crate::log::now_ms(),
                    Bytes::from_static(b"v"),
                )
            })
            .collect();
        RecordBatch::new(encode(&records)).unwrap()
    }
}
