//! One export job: resolve each partition's range (offsets or times) against the log and the
//! remote tier, then stream it through [`RecordReader`] into Parquet files on a
//! [`Destination`], split by size, recording each completed file in the partial manifest.
//!
//! # Resume
//! ```text
//!  probe destination ─▶ manifest.json there? ─yes─▶ refuse (a complete export)
//!        │ no
//!        ▼
//!  resolve ranges ─▶ manifest.partial.json there? ─yes, same topic/ranges/size/format─▶ resume
//!        │ no                                      │    and claim checks (--verify-claims)
//!        │                                         └─ different ──▶ refuse
//!        ▼
//!  write partial (plan, no files) ─▶ delete *.parquet.tmp leftovers
//!        ▼
//!  per partition, from the offset after its last recorded file:
//!    write <topic>-p<partition>-<first offset>.parquet (complete = renamed / upload completed)
//!    ─▶ append it to the partial manifest, rewrite it
//!        ▼
//!  manifest.json (everything) ─▶ delete manifest.partial.json
//! ```
//! A crash leaves at worst one file that is complete but not yet recorded, or a `.tmp` / an
//! unfinished multipart upload: the re-run writes that file again under the same name (names
//! derive from the first offset, which the partial manifest fixes), so no record is exported
//! twice and none is skipped.

use std::sync::Arc;

use strata_claimcheck::ClaimStore;
use strata_tiering::RemoteLogManager;

use super::claims::ClaimChecker;
use super::destination::Destination;
use super::manifest::{
    ClaimsReport, MANIFEST_FILE, MANIFEST_VERSION, Manifest, ManifestFile, PARTIAL_MANIFEST_FILE,
    RequestedRange,
};
use super::parquet_writer::PartitionParquetWriter;
use super::progress::{ExportProgress, PartitionProgress};
use super::reader::{PrefetchedChunks, READ_CHUNK_BYTES, RecordReader};
use super::{ExportError, ValueFormat};
use crate::log::{LogManager, PartitionLog};

/// Smallest read step when files are split small.
const MIN_CHUNK_BYTES: usize = 16 << 10;
/// Chunks read ahead of the Parquet encoder.
const PREFETCH_CHUNKS: usize = 2;

/// One end of the requested range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    Offset(i64),
    /// Milliseconds since the epoch.
    Time(i64),
}

/// How a time bound must be written (named in errors).
const TIME_FORMAT: &str =
    "RFC 3339 with a UTC offset, e.g. 2025-03-01T00:00:00Z or 2025-03-01T00:00:00.000+02:00";

impl Bound {
    /// An RFC 3339 time as a bound (`what` names the flag or field in the error). The UTC
    /// offset is required: a time without one would silently mean UTC to some and local time
    /// to others.
    pub fn parse_time(what: &str, text: &str) -> Result<Self, ExportError> {
        let bad = |why: String| ExportError::BadRequest(format!("{what} {text:?} {why}"));
        let time = chrono::DateTime::parse_from_rfc3339(text).map_err(|e| {
            let without_offset = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
                .iter()
                .any(|f| chrono::NaiveDateTime::parse_from_str(text, f).is_ok());
            if without_offset {
                bad(format!(
                    "has no UTC offset (Z or ±hh:mm); write it as {TIME_FORMAT}"
                ))
            } else {
                bad(format!("is not a time in {TIME_FORMAT} ({e})"))
            }
        })?;
        let ms = time.timestamp_millis();
        if ms < 0 {
            return Err(bad("is before 1970".into()));
        }
        Ok(Self::Time(ms))
    }
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

/// What to export (the CLI flags and the `POST /v1/exports` body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub topic: String,
    /// Partitions to export; empty: all.
    pub partitions: Vec<i32>,
    pub from: Bound,
    pub to: Bound,
    /// Close a file and start the next once it reaches about this size; `None`: one file per
    /// partition.
    pub max_file_bytes: Option<u64>,
    /// Read every claim ticket's payload and check its size and SHA-256.
    pub verify_claims: bool,
    /// How the `value` column holds values.
    pub value_format: ValueFormat,
    /// zstd level of the Parquet pages ([`DEFAULT_ZSTD_LEVEL`] unless asked): higher levels
    /// write smaller files more slowly, negative ones larger files faster.
    pub zstd_level: i32,
}

/// The Parquet pages' zstd level by default: zstd's fastest level that still entropy-codes
/// literals (the parquet crate's default too).
pub const DEFAULT_ZSTD_LEVEL: i32 = 1;

/// Where records come from: the log (a running broker's, or a stopped one's data directory),
/// its remote tier, and the claim store payloads live in.
#[derive(Clone)]
pub struct ExportSource {
    /// Each partition's log start offset must be the one the broker serves from: a running
    /// broker's are; a stopped broker's data directory has them clamped to local data, so the
    /// CLI first lowers them over the remote tier as the broker does at start
    /// (`tiered::retention::expose_remote_log_start`, floored at the DeleteRecords point).
    pub log: Arc<LogManager>,
    pub remote: Option<RemoteLogManager>,
    pub claims: Option<ClaimStore>,
}

/// The name of the file whose first offset is `from`: names sort by partition, then offset.
pub fn file_name(topic: &str, partition: i32, from: i64) -> String {
    format!("{topic}-p{partition:05}-{from:020}.parquet")
}

/// The log's whole range `[start, end)` a consumer can read, remote tier included: from the
/// log start offset, which is where the broker serves from (never below the DeleteRecords
/// point, even while the remote tier still holds older records; see [`ExportSource::log`]).
pub fn log_bounds(log: &PartitionLog) -> (i64, i64) {
    (log.log_start_offset(), log.high_watermark())
}

/// The first record stamped at or after `ts`, as (offset, timestamp); `None` when none is.
async fn first_record_at_or_after(
    log: &Arc<PartitionLog>,
    remote: Option<&RemoteLogManager>,
    ts: i64,
) -> Result<Option<(i64, i64)>, ExportError> {
    let local_start = log.local_log_start_offset();
    if let Some(remote) = remote
        && let Some((offset, stamped)) = remote
            .offset_for_timestamp(log.topic(), log.partition(), ts)
            .await?
        && offset < local_start
    {
        return Ok(Some((offset, stamped)));
    }
    let local = log.clone();
    let found = tokio::task::spawn_blocking(move || local.offset_for_timestamp(ts))
        .await
        .map_err(|e| ExportError::Io {
            action: "searching",
            path: log.dir().to_path_buf(),
            source: std::io::Error::other(e),
        })??;
    Ok(found)
}

/// The first offset whose record has timestamp >= `ts`, or the log end when none does.
async fn offset_at_time(
    log: &Arc<PartitionLog>,
    remote: Option<&RemoteLogManager>,
    ts: i64,
) -> Result<i64, ExportError> {
    Ok(first_record_at_or_after(log, remote, ts)
        .await?
        .map_or(log.log_end_offset(), |(offset, _)| offset))
}

/// Resolves `from`/`to` for one partition. Offsets outside the log are an error naming the
/// log's actual range; times resolve like ListOffsets (`to` time `T`: the last offset before the
/// first record stamped after `T`). A range reaching into history that retention or
/// DeleteRecords deleted (an offset below the log start, or a `from` time earlier than the
/// first record left) is [`ExportError::Expired`] rather than silently starting later.
pub async fn resolve_range(
    log: &Arc<PartitionLog>,
    remote: Option<&RemoteLogManager>,
    from: Bound,
    to: Bound,
) -> Result<PartitionRange, ExportError> {
    let (start, end) = log_bounds(log);
    let mut from_expired = false;
    let from_offset = match from {
        Bound::Offset(o) => o,
        Bound::Time(t) => {
            let first = first_record_at_or_after(log, remote, t).await?;
            // The first record at or after `t` is deleted history, or is the first one left and
            // stamped after `t`: records stamped from `t` on may have been deleted before it.
            from_expired = start > 0
                && first.is_some_and(|(offset, stamped)| {
                    offset < start || (offset == start && stamped > t)
                });
            first
                .map_or(log.log_end_offset(), |(offset, _)| offset)
                .max(start)
        }
    };
    let to_offset = match to {
        Bound::Offset(o) => o,
        Bound::Time(t) => offset_at_time(log, remote, t.saturating_add(1)).await? - 1,
    };
    let expired_below = |o: i64| o < start && start > 0;
    if from_expired
        || matches!(from, Bound::Offset(o) if expired_below(o))
        || matches!(to, Bound::Time(_) if expired_below(to_offset))
    {
        return Err(ExportError::Expired {
            topic: log.topic().to_string(),
            partition: log.partition(),
            log_start: start,
            log_end: end,
        });
    }
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

/// Runs one export to completion (or resumes an interrupted one at `dest`): see the module doc.
/// Fails before reading any record when `dest` is not writable or the request is wrong.
pub async fn run_export(
    source: &ExportSource,
    request: &ExportRequest,
    dest: &Destination,
    progress: &ExportProgress,
) -> Result<Manifest, ExportError> {
    super::parquet_writer::zstd(request.zstd_level)?;
    dest.probe_writable().await?;
    if dest.read_small(MANIFEST_FILE).await?.is_some() {
        return Err(ExportError::BadRequest(format!(
            "{} already holds a complete export ({MANIFEST_FILE}); choose another destination",
            dest
        )));
    }
    let claims = match (request.verify_claims, &source.claims) {
        (false, _) => None,
        (true, Some(store)) => Some(ClaimChecker::new(store.clone())),
        (true, None) => {
            return Err(ExportError::BadRequest(
                "--verify-claims needs the claim store (the broker's remote tier)".into(),
            ));
        }
    };
    let plan = plan(source, request).await?;
    let requested: Vec<RequestedRange> = plan
        .iter()
        .map(|(_, r)| RequestedRange {
            partition: r.partition,
            from_offset: r.from,
            to_offset: r.to,
        })
        .collect();
    let mut manifest = match Manifest::read(dest, PARTIAL_MANIFEST_FILE).await? {
        Some(partial) => {
            if partial.topic != request.topic
                || partial.partitions != requested
                || partial.max_file_bytes != request.max_file_bytes
                || partial.value_format != request.value_format
            {
                return Err(ExportError::BadRequest(format!(
                    "{} holds an interrupted export of other ranges ({}); re-run it with the same \
                     parameters or choose another destination",
                    dest,
                    describe_ranges(&partial.partitions)
                )));
            }
            // The manifest's claim findings must hold for every file, the earlier ones too.
            if partial.verify_claims != request.verify_claims {
                let (was, now) = if partial.verify_claims {
                    ("with", "without")
                } else {
                    ("without", "with")
                };
                return Err(ExportError::BadRequest(format!(
                    "{dest} holds an interrupted export started {was} claim payload checks \
                     (--verify-claims, \"verify_claims\"), resumed {now}; re-run it with the same \
                     setting or choose another destination"
                )));
            }
            tracing::info!(dest = %dest, files = partial.files.len(), "resuming an interrupted export");
            partial
        }
        None => {
            let fresh = Manifest {
                version: MANIFEST_VERSION,
                topic: request.topic.clone(),
                created_at: now_rfc3339(),
                partitions: requested.clone(),
                max_file_bytes: request.max_file_bytes,
                value_format: request.value_format,
                verify_claims: request.verify_claims,
                files: Vec::new(),
                claims: None,
            };
            dest.write_small(PARTIAL_MANIFEST_FILE, fresh.to_json()?)
                .await?;
            fresh
        }
    };
    if request.verify_claims || manifest.claims.is_some() {
        let report = manifest.claims.get_or_insert_with(ClaimsReport::default);
        report.verified = request.verify_claims;
    }
    for leftover in dest.discard_unfinished().await? {
        tracing::info!(file = %leftover, "discarded an unfinished file of an interrupted export");
    }
    progress.set_plan(
        plan.iter()
            .map(|(_, r)| {
                let files = manifest.files.iter().filter(|f| f.partition == r.partition);
                let mut p = PartitionProgress {
                    partition: r.partition,
                    from_offset: r.from,
                    to_offset: r.to,
                    ..Default::default()
                };
                for f in files {
                    p.offsets_done += (f.requested_to_offset - f.requested_from_offset + 1) as u64;
                    p.records_done += f.records;
                    p.bytes_written += f.bytes;
                    p.files_done += 1;
                }
                p.done = p.offsets_done >= p.offsets_total() && p.files_done > 0;
                p
            })
            .collect(),
    );

    for (log, range) in plan {
        let recorded = manifest
            .files
            .iter()
            .filter(|f| f.partition == range.partition)
            .map(|f| f.requested_to_offset + 1)
            .max();
        let mut next = recorded.unwrap_or(range.from);
        // Not `next == range.from`: an empty range's file ends where the range starts, and a
        // resume would write it a second time.
        let mut first = recorded.is_none();
        // Small files need small steps: a file is only closed between chunks.
        let chunk_bytes = request.max_file_bytes.map_or(READ_CHUNK_BYTES, |limit| {
            (limit as usize / 2).clamp(MIN_CHUNK_BYTES, READ_CHUNK_BYTES)
        });
        let mut chunks = RecordReader::new(log.clone(), source.remote.clone(), next, range.to)
            .with_chunk_bytes(chunk_bytes)
            .prefetch(PREFETCH_CHUNKS);
        // One file at least per partition (an empty range gives an empty file).
        while next <= range.to || first {
            first = false;
            let (file, claim_report) = export_file(
                &log,
                &mut chunks,
                PartitionRange {
                    partition: range.partition,
                    from: next,
                    to: range.to,
                },
                request,
                dest,
                progress,
                claims.as_ref(),
            )
            .await?;
            next = file.requested_to_offset + 1;
            if let Some(found) = claim_report {
                let report = manifest.claims.get_or_insert_with(ClaimsReport::default);
                report.tickets += found.tickets;
                report.failures.extend(found.failures);
            }
            manifest.files.push(file);
            dest.write_small(PARTIAL_MANIFEST_FILE, manifest.to_json()?)
                .await?;
        }
        progress.update(range.partition, |p| p.done = true);
    }

    manifest.created_at = now_rfc3339();
    dest.write_small(MANIFEST_FILE, manifest.to_json()?).await?;
    dest.remove(PARTIAL_MANIFEST_FILE).await?;
    Ok(manifest)
}

fn describe_ranges(ranges: &[RequestedRange]) -> String {
    ranges
        .iter()
        .map(|r| format!("p{} {}..={}", r.partition, r.from_offset, r.to_offset))
        .collect::<Vec<_>>()
        .join(", ")
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

/// Resolves the request against the log: the partitions and their offset ranges.
pub async fn plan(
    source: &ExportSource,
    request: &ExportRequest,
) -> Result<Vec<(Arc<PartitionLog>, PartitionRange)>, ExportError> {
    let topic = &request.topic;
    let meta = source
        .log
        .topic(topic)
        .ok_or_else(|| ExportError::BadRequest(format!("topic {topic} does not exist")))?;
    let wanted: Vec<i32> = if request.partitions.is_empty() {
        (0..meta.partitions).collect()
    } else {
        request.partitions.clone()
    };
    let mut plan = Vec::new();
    for p in wanted {
        let partition = source.log.partition(topic, p).ok_or_else(|| {
            ExportError::BadRequest(format!(
                "topic {topic} has no partition {p} (it has {})",
                meta.partitions
            ))
        })?;
        if let Some(remote) = &source.remote {
            remote.register_partition(topic, partition.topic_id(), p);
        }
        let range =
            resolve_range(&partition, source.remote.as_ref(), request.from, request.to).await?;
        plan.push((partition, range));
    }
    Ok(plan)
}

/// Exports offsets from `range.from` (where `chunks` is) to one file, up to `range.to` or
/// until the file reaches `request.max_file_bytes` (closed at a batch boundary).
#[allow(clippy::too_many_arguments)]
async fn export_file(
    log: &PartitionLog,
    chunks: &mut PrefetchedChunks,
    range: PartitionRange,
    request: &ExportRequest,
    dest: &Destination,
    progress: &ExportProgress,
    claims: Option<&ClaimChecker>,
) -> Result<(ManifestFile, Option<ClaimsReport>), ExportError> {
    let name = file_name(log.topic(), range.partition, range.from);
    let sink = dest.create(&name).await?;
    let mut writer = PartitionParquetWriter::create(
        sink,
        log.topic(),
        range.partition,
        request.value_format,
        request.zstd_level,
    )?;
    let mut claim_report = ClaimsReport::default();
    let filled = fill_file(
        &mut writer,
        chunks,
        range,
        request,
        progress,
        claims,
        &mut claim_report,
    )
    .await;
    // A failed file leaves no `.tmp` and no open multipart upload behind.
    let to = match filled {
        Ok(to) => to,
        Err(e) => {
            writer.abort().await;
            return Err(e);
        }
    };
    let summary = writer.finish().await?;
    progress.count_file(summary.bytes, summary.records);
    progress.update(range.partition, |p| {
        p.bytes_written += summary.bytes;
        p.files_done += 1;
    });
    let file = ManifestFile {
        file: name,
        partition: range.partition,
        requested_from_offset: range.from,
        requested_to_offset: to,
        first_offset: summary.offsets.map(|o| o.0),
        last_offset: summary.offsets.map(|o| o.1),
        min_timestamp_ms: summary.timestamps.map(|t| t.0),
        max_timestamp_ms: summary.timestamps.map(|t| t.1),
        records: summary.records,
        bytes: summary.bytes,
        sha256: summary.sha256,
    };
    let claims_seen = (claim_report.tickets > 0).then_some(claim_report);
    Ok((file, claims_seen))
}

/// Appends chunks to `writer` from `range.from` up to `range.to`, or until the file reaches
/// `request.max_file_bytes` (at a batch boundary); returns the last offset the file covers.
async fn fill_file(
    writer: &mut PartitionParquetWriter,
    chunks: &mut PrefetchedChunks,
    range: PartitionRange,
    request: &ExportRequest,
    progress: &ExportProgress,
    claims: Option<&ClaimChecker>,
    claim_report: &mut ClaimsReport,
) -> Result<i64, ExportError> {
    let mut reported_offset = range.from;
    let mut to = range.to;
    loop {
        let next = tokio::select! {
            biased;
            () = progress.cancelled() => return Err(ExportError::Cancelled),
            next = chunks.next() => next?,
        };
        let Some(chunk) = next else { break };
        let records = chunk.records;
        for r in &records {
            if let Some(claim) = &r.claim {
                claim_report.tickets += 1;
                // Hashing a payload of gigabytes takes a while: cancelling must not wait for it.
                let checked = match claims {
                    Some(checker) => tokio::select! {
                        biased;
                        () = progress.cancelled() => return Err(ExportError::Cancelled),
                        checked = checker.check(claim) => checked?,
                    },
                    None => None,
                };
                if let Some(problem) = checked {
                    claim_report.failures.push(super::manifest::ClaimFailure {
                        partition: range.partition,
                        offset: r.offset,
                        id: claim.id.clone(),
                        problem,
                    });
                }
            }
        }
        let record_count = records.len() as u64;
        writer.write(records).await?;
        let at = chunk.position.min(range.to + 1);
        progress.update(range.partition, |p| {
            p.offsets_done += (at - reported_offset).max(0) as u64;
            p.records_done += record_count;
            p.log_bytes_read = p.log_bytes_read.max(chunk.bytes_read);
        });
        reported_offset = at;
        if let Some(limit) = request.max_file_bytes
            && writer.size_estimate() >= limit
            && at <= range.to
        {
            to = at - 1;
            break;
        }
    }
    Ok(to)
}
