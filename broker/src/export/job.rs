//! One export job: resolve each partition's range (offsets or times) against the log and the
//! remote tier, then stream it through [`RecordReader`] into a [`PartitionParquetWriter`].

use std::path::Path;
use std::sync::Arc;

use strata_tiering::RemoteLogManager;

use super::ExportError;
use super::manifest::{ManifestFile, sha256_file};
use super::parquet_writer::PartitionParquetWriter;
use super::reader::RecordReader;
use crate::log::PartitionLog;

/// One end of the requested range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Offset(i64),
    /// Milliseconds since the epoch.
    Time(i64),
}

/// A partition's resolved range: offsets `from..=to` (empty when `from > to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionRange {
    pub partition: i32,
    pub from: i64,
    pub to: i64,
}

impl PartitionRange {
    pub fn len(&self) -> u64 {
        (self.to - self.from + 1).max(0) as u64
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The log's whole range `[start, end)`, remote tier included.
pub async fn log_bounds(
    log: &PartitionLog,
    remote: Option<&RemoteLogManager>,
) -> Result<(i64, i64), ExportError> {
    let mut start = log.log_start_offset();
    if let Some(remote) = remote
        && let Some(remote_start) = remote
            .remote_log_start_offset(log.topic(), log.partition())
            .await?
    {
        start = start.min(remote_start);
    }
    Ok((start, log.log_end_offset()))
}

/// The first offset whose record has timestamp >= `ts`, or the log end when none does.
async fn offset_at_time(
    log: &Arc<PartitionLog>,
    remote: Option<&RemoteLogManager>,
    ts: i64,
) -> Result<i64, ExportError> {
    let local_start = log.local_log_start_offset();
    if let Some(remote) = remote
        && let Some((offset, _)) = remote
            .offset_for_timestamp(log.topic(), log.partition(), ts)
            .await?
        && offset < local_start
    {
        return Ok(offset);
    }
    let local = log.clone();
    let found = tokio::task::spawn_blocking(move || local.offset_for_timestamp(ts))
        .await
        .map_err(|e| ExportError::Io {
            action: "searching",
            path: log.dir().to_path_buf(),
            source: std::io::Error::other(e),
        })??;
    Ok(found.map_or(log.log_end_offset(), |(offset, _)| offset))
}

/// Resolves `from`/`to` for one partition. Offsets outside the log are an error naming the
/// log's actual range; times resolve like ListOffsets (`to` time `T`: the last offset before the
/// first record stamped after `T`).
pub async fn resolve_range(
    log: &Arc<PartitionLog>,
    remote: Option<&RemoteLogManager>,
    from: Bound,
    to: Bound,
) -> Result<PartitionRange, ExportError> {
    let (start, end) = log_bounds(log, remote).await?;
    let from_offset = match from {
        Bound::Offset(o) => o,
        Bound::Time(t) => offset_at_time(log, remote, t).await?.max(start),
    };
    let to_offset = match to {
        Bound::Offset(o) => o,
        Bound::Time(t) => offset_at_time(log, remote, t.saturating_add(1)).await? - 1,
    };
    let explicit_bad = matches!(from, Bound::Offset(o) if o < start || o >= end)
        || matches!(to, Bound::Offset(o) if o < start || o >= end)
        || matches!((from, to), (Bound::Offset(f), Bound::Offset(t)) if f > t);
    if explicit_bad {
        return Err(ExportError::OutOfRange {
            topic: log.topic().to_string(),
            partition: log.partition(),
            from: from_offset,
            to: to_offset,
            log_start: start,
            log_end: end,
        });
    }
    Ok(PartitionRange {
        partition: log.partition(),
        from: from_offset,
        to: to_offset.min(end - 1),
    })
}

/// Exports one partition range to `<out>/<topic>-<partition>-<from>-<to>.parquet`; `progress`
/// is called with the number of offsets passed since the last call.
pub async fn export_partition(
    log: Arc<PartitionLog>,
    remote: Option<RemoteLogManager>,
    range: PartitionRange,
    out: &Path,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ManifestFile, ExportError> {
    let name = format!(
        "{}-{}-{}-{}.parquet",
        log.topic(),
        range.partition,
        range.from,
        range.to
    );
    let path = out.join(&name);
    let mut writer = PartitionParquetWriter::create(&path, log.topic(), range.partition)?;
    let mut reader = RecordReader::new(log, remote, range.from, range.to);
    let mut reported = range.from;
    while let Some(records) = reader.next_chunk().await? {
        writer.write(&records)?;
        let at = reader.position().min(range.to + 1);
        progress((at - reported).max(0) as u64);
        reported = at;
    }
    let summary = writer.finish()?;
    let (sha256, bytes) = sha256_file(&path)?;
    Ok(ManifestFile {
        file: name,
        partition: range.partition,
        requested_from_offset: range.from,
        requested_to_offset: range.to,
        first_offset: summary.offsets.map(|o| o.0),
        last_offset: summary.offsets.map(|o| o.1),
        min_timestamp_ms: summary.timestamps.map(|t| t.0),
        max_timestamp_ms: summary.timestamps.map(|t| t.1),
        records: summary.records,
        bytes,
        sha256,
    })
}
