//! `DirectorySink`: consumes `topics` (one topic, every partition) and writes each record's
//! payload as a file in `sink.dir`, after the transform chain.
//!
//! | property | default | meaning |
//! | --- | --- | --- |
//! | `topics` | required | the topic to consume |
//! | `sink.dir` | required | where payload files go |
//! | `poll.interval.ms` | `500` | wait between empty fetches |
//! | `fetch.max.bytes` | `8388608` | Fetch size (ticket records are small) |
//!
//! Per record: the chain runs; a record that still carries a claim ticket is streamed from the
//! gateway (`claimcheck.gateway.url`, size and SHA-256 verified, bounded memory); any other
//! record's value is the payload. File names are deterministic,
//! `<topic>-<partition>-<offset:020>[-<key>]` (the key sanitized; the DirectorySource sets it
//! to the source file name).
//!
//! Crash safety:
//! ```text
//!  payload ─► <sink.dir>/.<final name>.tmp ─► fsync ─► rename to <final name> ─► fsync dir
//!          ─► offsets file (<sink.dir>/.strata-connect/<name>.offsets: partition -> next
//!             offset) written the same way
//! ```
//! A crash before the offsets file is written re-delivers the record after a restart: it is
//! written again under the same name (an overwrite, never a second file). Nothing is skipped:
//! the offset moves only after the file is durable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use strata_claimcheck::ClaimTicket;
use strata_claimcheck::client::HttpClaimClient;
use strata_claimcheck::ticket::header;
use strata_connect_smt::{ConnectRecord, TransformChain};
use tokio::io::AsyncWriteExt;

use super::kafka::KafkaClient;
use super::{ConnectorConfig, sync_dir, write_atomic};

pub async fn run(config: &ConnectorConfig, chain: &TransformChain) -> anyhow::Result<()> {
    let dir = config.dir("sink.dir")?;
    let state = dir.join(".strata-connect");
    std::fs::create_dir_all(&state)?;
    let offsets_path = state.join(format!("{}.offsets", config.name));
    let mut offsets: BTreeMap<i32, i64> = match std::fs::read(&offsets_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).context("reading the offsets file")?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => return Err(e.into()),
    };
    let poll = Duration::from_millis(config.u64_or("poll.interval.ms", 500)?);
    let max_bytes = config.u64_or("fetch.max.bytes", 8 << 20)? as i32;
    let gateway = HttpClaimClient::new(&config.gateway)?;
    let mut kafka = KafkaClient::connect(&config.bootstrap).await?;
    let metadata_max_age = Duration::from_millis(config.u64_or("metadata.max.age.ms", 300_000)?);
    let mut partitions = kafka.partitions(&config.topic).await?;
    let mut metadata_read = std::time::Instant::now();
    let topic = config.topic.as_str();
    loop {
        let mut idle = true;
        for partition in 0..partitions {
            let next = *offsets.get(&partition).unwrap_or(&0);
            let mut records = match kafka.fetch(topic, partition, next, max_bytes, 200).await {
                Ok(records) => records,
                // As a Kafka consumer with auto.offset.reset=earliest: what the saved offset
                // pointed at is gone (retention, or the topic was created again).
                Err(error) if error.is::<super::kafka::OffsetOutOfRange>() => {
                    let earliest = kafka.earliest_offset(topic, partition).await?;
                    tracing::warn!(
                        partition,
                        saved = next,
                        earliest,
                        "the saved offset is out of range; going on from the earliest offset"
                    );
                    offsets.insert(partition, earliest);
                    write_atomic(&offsets_path, &serde_json::to_vec(&offsets)?)?;
                    idle = false;
                    continue;
                }
                Err(error) => return Err(error),
            };
            if records.is_empty() {
                continue;
            }
            let sets = RecordBatchDecoder::decode_all(&mut records)
                .map_err(|e| anyhow::anyhow!("decoding fetched batches: {e}"))?;
            for record in sets.into_iter().flat_map(|s| s.records) {
                if record.offset < next || record.control {
                    continue;
                }
                idle = false;
                let connect = ConnectRecord {
                    topic: topic.to_string(),
                    partition: Some(partition),
                    key: record.key.clone(),
                    value: record.value.clone(),
                    headers: record
                        .headers
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect(),
                    timestamp: record.timestamp,
                };
                if let Some(out) = chain.apply(connect).await? {
                    let path = dir.join(file_name(topic, partition, record.offset, &out.key));
                    write_payload(&gateway, &path, &out)
                        .await
                        .with_context(|| format!("writing {}", path.display()))?;
                    tracing::info!(partition, offset = record.offset, file = %path.display(), "file written");
                }
                offsets.insert(partition, record.offset + 1);
                write_atomic(&offsets_path, &serde_json::to_vec(&offsets)?)?;
            }
        }
        if idle {
            tokio::time::sleep(poll).await;
        }
        // Partitions added meanwhile (CreatePartitions) are read from their start, found as a
        // Kafka consumer finds them: at its metadata refresh, every `metadata.max.age.ms`.
        if metadata_read.elapsed() >= metadata_max_age {
            let now = kafka.partitions(topic).await?;
            if now != partitions {
                tracing::info!(
                    topic,
                    from = partitions,
                    to = now,
                    "partition count changed"
                );
                partitions = now;
            }
            metadata_read = std::time::Instant::now();
        }
    }
}

/// `<topic>-<partition>-<offset:020>[-<key>]`, the key reduced to a safe file name.
pub fn file_name(topic: &str, partition: i32, offset: i64, key: &Option<Bytes>) -> String {
    let mut name = format!("{topic}-{partition}-{offset:020}");
    if let Some(key) = key {
        let key: String = String::from_utf8_lossy(key)
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .take(120)
            .collect();
        if !key.is_empty() {
            name.push('-');
            name.push_str(&key);
        }
    }
    name
}

async fn write_payload(
    gateway: &HttpClaimClient,
    path: &Path,
    record: &ConnectRecord,
) -> anyhow::Result<()> {
    let tmp: PathBuf = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let mut file = tokio::fs::File::create(&tmp).await?;
    if record.has_header(header::VERSION) {
        let headers: Vec<(&str, &[u8])> = record
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?)))
            .collect();
        let ticket = ClaimTicket::from_record(headers, record.value.as_deref().unwrap_or(&[]))?;
        let stream = gateway.open(&ticket).await?;
        let mut reader = stream.into_async_read();
        tokio::io::copy(&mut reader, &mut file).await?;
    } else if let Some(value) = &record.value {
        file.write_all(value).await?;
    }
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&tmp, path).await?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(())
}
