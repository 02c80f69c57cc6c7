//! `DirectorySource`: every regular file that appears in `source.dir` (names starting with `.`
//! are ignored, so write files under a dot-name and rename them in) becomes records of `topic`;
//! the file then moves to `done.dir`.
//!
//! | property | default | meaning |
//! | --- | --- | --- |
//! | `source.dir` | required | watched directory |
//! | `done.dir` | required | where sent files go (same filesystem: a rename) |
//! | `source.mode` | `reference` | `reference`: one claim per file; `csv`: one record per row |
//! | `poll.interval.ms` | `500` | directory poll period |
//! | `content.type` | `application/octet-stream` | ticket content type (reference mode) |
//! | `csv.batch.records` | `500` | rows per Produce request (csv mode) |
//!
//! Reference mode, crash safety:
//! ```text
//!  new file ─► POST /v1/uploads (key = file name) ─► save <source.dir>/.strata-connect/<name>.upload
//!           ─► put parts, complete (gateway appends the ticket, acks=all) ─► rename to done.dir
//!           ─► delete the .upload file
//!  restart with a .upload file ─► resume: missing parts only; a completed upload answers with
//!           its receipt, so no second ticket is written. The marker records the file's size
//!           and modification time: one left by a crash after the move is not reused for a
//!           later file of the same name, and that file is archived as `<name>.<n>`.
//! ```
//! CSV mode: the whole file is read first; one that is not valid CSV (a row of another width,
//! bytes that are not UTF-8) is moved to `<source.dir>/.strata-connect/failed/` with the reason
//! in `<name>.error.txt`, nothing of it sent. Rows go through the transform chain and are
//! produced with acks=all; the file moves only after the last row was acknowledged. A crash in
//! between re-sends the whole file (consumers may see rows twice, never miss one).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use strata_claimcheck::UploadId;
use strata_claimcheck::cli::{PutFileOptions, put_file};
use strata_claimcheck::client::HttpClaimClient;
use strata_claimcheck::resumable::NewUpload;
use strata_connect_smt::{ConnectRecord, TransformChain};

use super::kafka::KafkaClient;
use super::{ConnectorConfig, sync_dir, write_atomic};

const STATE_DIR: &str = ".strata-connect";

pub async fn run(config: &ConnectorConfig, chain: &TransformChain) -> anyhow::Result<()> {
    let source = config.dir("source.dir")?;
    let done = config.dir("done.dir")?;
    let state = source.join(STATE_DIR);
    std::fs::create_dir_all(&state)?;
    let poll = Duration::from_millis(config.u64_or("poll.interval.ms", 500)?);
    let csv = match config.get("source.mode").as_deref() {
        None | Some("reference") => false,
        Some("csv") => true,
        Some(other) => anyhow::bail!("source.mode: expected reference or csv, got {other}"),
    };
    let mut kafka = None;
    loop {
        for file in pending_files(&source)? {
            let name = file_name(&file);
            if csv && let Err(problem) = check_csv(&file) {
                // Nothing of it is sent: a row that fails half-way would stop the connector
                // and have every restart send the rows before it again.
                set_aside(&state, &file, &name, &problem)?;
                continue;
            }
            if csv {
                if kafka.is_none() {
                    let mut client = KafkaClient::connect(&config.bootstrap).await?;
                    // Creates the topic where the broker auto-creates topics, as a producer's
                    // metadata request does; a partition it lacks is a configuration error.
                    let partitions = client.partitions(&config.topic).await?;
                    let partition = config.u64_or("partition", 0)?;
                    if partition >= partitions.max(0) as u64 {
                        anyhow::bail!(
                            "partition {partition}: topic {} has {partitions} partition(s)",
                            config.topic
                        );
                    }
                    kafka = Some(client);
                }
                let client = kafka.as_mut().expect("connected");
                send_csv(config, chain, client, &file, &name)
                    .await
                    .with_context(|| format!("sending {}", file.display()))?;
            } else {
                send_reference(config, &state, &file, &name)
                    .await
                    .with_context(|| format!("sending {}", file.display()))?;
            }
            let archived = free_name(&done, &name);
            std::fs::rename(&file, &archived)
                .with_context(|| format!("moving {} to {}", file.display(), done.display()))?;
            sync_dir(&done)?;
            sync_dir(&source)?;
            match std::fs::remove_file(state.join(format!("{name}.upload"))) {
                Ok(()) => sync_dir(&state)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // A marker left behind names this file's size and time: a later file of the
                // same name is not taken for this one (see `send_reference`).
                Err(e) => {
                    tracing::warn!(file = %name, error = %e, "removing the upload marker failed")
                }
            }
        }
        tokio::time::sleep(poll).await;
    }
}

/// `done/<name>`, or `done/<name>.<n>` with the first free `n` when an earlier file of that
/// name is archived there (a rename would replace it).
fn free_name(done: &Path, name: &str) -> PathBuf {
    let plain = done.join(name);
    if !plain.exists() {
        return plain;
    }
    (1u64..)
        .map(|n| done.join(format!("{name}.{n}")))
        .find(|p| !p.exists())
        .expect("a free name")
}

/// What the `.upload` marker of a file records: its upload, and which file it was (size and
/// modification time), so that a marker a crash left behind is not reused for a new file that
/// has the same name.
fn marker_text(upload: UploadId, file: &std::fs::Metadata) -> String {
    format!("{upload} {}", file_identity(file))
}

fn file_identity(file: &std::fs::Metadata) -> String {
    let modified = file
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("{} {modified}", file.len())
}

/// The upload of a marker, if the marker describes `file` as it is now.
fn marked_upload(text: &str, file: &std::fs::Metadata) -> Option<UploadId> {
    let (upload, identity) = text.trim().split_once(' ')?;
    (identity == file_identity(file))
        .then(|| upload.parse().ok())
        .flatten()
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Regular files not starting with `.`, by name.
fn pending_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| !file_name(p).starts_with('.'))
        .collect();
    files.sort();
    Ok(files)
}

async fn send_reference(
    config: &ConnectorConfig,
    state: &Path,
    file: &Path,
    name: &str,
) -> anyhow::Result<()> {
    let marker = state.join(format!("{name}.upload"));
    let mut options = PutFileOptions::new(config.topic.clone());
    options.show_progress = false;
    options.key = Some(name.to_string());
    options.content_type = config.get("content.type");
    let metadata = std::fs::metadata(file)?;
    let resumed = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|text| marked_upload(&text, &metadata));
    if let Some(id) = resumed {
        options.resume = Some(id);
        match put_file(&config.gateway, file, &options).await {
            Ok(receipt) => {
                tracing::info!(file = name, claim = %receipt.ticket.id, offset = receipt.offset, "resumed upload complete");
                return Ok(());
            }
            Err(error) if error.is_not_found() => {
                tracing::warn!(file = name, %error, "saved upload is gone; uploading again");
            }
            Err(error) => return Err(error.into()),
        }
    }
    let client = HttpClaimClient::new(&config.gateway)?;
    let size = metadata.len();
    let upload = client
        .create_upload(&NewUpload {
            topic: config.topic.clone(),
            key: Some(name.to_string()),
            content_type: options.content_type.clone(),
            size: Some(size),
            ..Default::default()
        })
        .await?;
    write_atomic(&marker, marker_text(upload.upload_id, &metadata).as_bytes())?;
    options.resume = Some(upload.upload_id);
    let receipt = put_file(&config.gateway, file, &options).await?;
    tracing::info!(file = name, claim = %receipt.ticket.id, partition = receipt.partition, offset = receipt.offset, size, "file sent");
    Ok(())
}

/// Reads the whole file as the sender will (header row, then records of the same width).
fn check_csv(file: &Path) -> Result<(), String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(file)
        .map_err(|e| e.to_string())?;
    reader.headers().map_err(|e| format!("header row: {e}"))?;
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Moves a file that cannot be sent to `<source.dir>/.strata-connect/failed/`, with the reason
/// next to it (`<name>.error.txt`), so that the files after it go on.
fn set_aside(state: &Path, file: &Path, name: &str, problem: &str) -> anyhow::Result<()> {
    let failed = state.join("failed");
    std::fs::create_dir_all(&failed)?;
    let target = free_name(&failed, name);
    let reason = failed.join(format!("{}.error.txt", file_name(&target)));
    write_atomic(&reason, format!("{problem}\n").as_bytes())?;
    std::fs::rename(file, &target)
        .with_context(|| format!("moving {} to {}", file.display(), failed.display()))?;
    sync_dir(&failed)?;
    sync_dir(file.parent().unwrap_or(Path::new(".")))?;
    tracing::error!(file = name, %problem, moved_to = %target.display(), "file not sent: it is not valid CSV");
    Ok(())
}

async fn send_csv(
    config: &ConnectorConfig,
    chain: &TransformChain,
    kafka: &mut KafkaClient,
    file: &Path,
    name: &str,
) -> anyhow::Result<()> {
    let batch_size = config.u64_or("csv.batch.records", 500)? as usize;
    let partition = config.u64_or("partition", 0)? as i32;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(file)?;
    let columns = {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(reader.headers()?)?;
        Bytes::from(w.into_inner()?)
    };
    let mut batch: Vec<Record> = Vec::new();
    let mut sent = 0u64;
    for (row, record) in reader.records().enumerate() {
        let record = record?;
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(&record)?;
        let connect = ConnectRecord {
            topic: config.topic.clone(),
            partition: Some(partition),
            key: Some(Bytes::from(format!("{name}:{}", row + 1))),
            value: Some(Bytes::from(w.into_inner()?)),
            headers: vec![
                ("csv.file".into(), Some(Bytes::from(name.to_string()))),
                ("csv.columns".into(), Some(columns.clone())),
            ],
            timestamp: now_ms(),
        };
        let Some(out) = chain.apply(connect).await? else {
            continue;
        };
        batch.push(to_record(batch.len() as i64, out));
        if batch.len() >= batch_size {
            kafka.produce(&config.topic, partition, &batch).await?;
            sent += batch.len() as u64;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        kafka.produce(&config.topic, partition, &batch).await?;
        sent += batch.len() as u64;
    }
    tracing::info!(file = name, rows = sent, "csv file sent");
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn to_record(offset: i64, r: ConnectRecord) -> Record {
    let mut headers = IndexMap::new();
    for (k, v) in r.headers {
        headers.insert(StrBytes::from_string(k), v);
    }
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset,
        sequence: -1i32.wrapping_add(offset as i32),
        timestamp: r.timestamp,
        key: r.key,
        value: r.value,
        headers,
    }
}

#[cfg(test)]
mod marker_tests {
    use super::*;

    /// A marker is reused only for the file it was written for: a later file of the same name
    /// (other size or modification time) gets an upload of its own.
    #[test]
    fn a_marker_names_its_file_and_a_new_file_of_that_name_does_not_match() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daily.csv");
        std::fs::write(&path, b"monday").unwrap();
        let monday = std::fs::metadata(&path).unwrap();
        let upload = UploadId::random();
        let text = marker_text(upload, &monday);
        assert_eq!(marked_upload(&text, &monday), Some(upload));
        std::fs::write(&path, b"tuesday, longer").unwrap();
        let tuesday = std::fs::metadata(&path).unwrap();
        assert_eq!(marked_upload(&text, &tuesday), None);
        // A marker of an earlier version (the upload id alone) is not trusted either.
        assert_eq!(marked_upload(&upload.to_string(), &monday), None);
    }

    #[test]
    fn an_archived_file_is_never_replaced() {
        let done = tempfile::tempdir().unwrap();
        assert_eq!(free_name(done.path(), "a.bin"), done.path().join("a.bin"));
        std::fs::write(done.path().join("a.bin"), b"1").unwrap();
        std::fs::write(done.path().join("a.bin.1"), b"2").unwrap();
        assert_eq!(free_name(done.path(), "a.bin"), done.path().join("a.bin.2"));
    }
}
