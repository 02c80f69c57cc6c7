//! Loading a partition directory at startup, and repairing it after an unclean stop.
//!
//! - **Clean stop** (`.clean_shutdown` present): every segment is trusted. Indexes are loaded and
//!   sanity-checked (O(index entries), no log reads); the active segment's tail after its last
//!   index entry is scanned to find the log end. Startup cost does not grow with the data size.
//! - **Unclean stop**: segments at or after the recovery point (the offset below which everything
//!   was fsynced, from `recovery-point-offset-checkpoint`) are scanned batch by batch: length,
//!   magic, CRC and offset continuity. The log is truncated at the first bad or torn batch, later
//!   segments are deleted, and indexes are rebuilt from the scan. A tail of zeros is the
//!   zeroed tail of durable appends (`segment.rs`): it is cut off and later segments stay.
//! - A damaged or missing index of a trusted segment is rebuilt from its log, whatever the case.
//! - Producer state = newest readable `<offset>.snapshot` at or below the log end + replay of the
//!   batch headers after it.
//!
//! Nothing here panics on bad files: every problem becomes a repair (logged with `tracing` fields)
//! or a `LogError::Storage` naming the file.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::offset_index::OffsetIndex;
use super::partition_log::{DELETED_BELOW_FILE, LOG_START_FILE, LogState};
use super::producer_state::ProducerStateManager;
use super::segment::{
    BatchPlacement, Segment, SegmentMeta, parse_segment_file_name, scan_batches, segment_file_name,
};
use super::time_index::TimeIndex;
use super::{LogError, TopicConfig, now_ms};

/// What recovery produced for one partition.
pub(crate) struct Recovered {
    pub state: LogState,
    pub recovery_point: i64,
}

fn storage(path: &Path, verb: &str, error: io::Error) -> LogError {
    LogError::storage(format!("{verb} {}", path.display()), error)
}

/// Loads (and if needed repairs) the partition in `dir`.
pub(crate) fn load_partition(
    dir: &Path,
    config: &TopicConfig,
    recovery_point: i64,
    clean: bool,
) -> Result<Recovered, LogError> {
    let mut log_bases = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| storage(dir, "listing", e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".deleted") || name.ends_with(".tmp") {
            let _ = std::fs::remove_file(entry.path());
            continue;
        }
        if let Some((base, "log")) = parse_segment_file_name(&name) {
            log_bases.push(base);
        }
    }
    log_bases.sort_unstable();

    let mut segments: BTreeMap<i64, Arc<Segment>> = BTreeMap::new();
    let mut truncated = false;
    let started = std::time::Instant::now();
    let mut scanned_bytes = 0u64;
    for (i, &base) in log_bases.iter().enumerate() {
        let log_path = dir.join(segment_file_name(base, "log"));
        if truncated {
            // Everything after a truncation point is no longer part of the log.
            tracing::warn!(segment = %log_path.display(), "deleting segment after truncation point");
            remove_segment_files(dir, base);
            continue;
        }
        let next_base = log_bases.get(i + 1).copied();
        let must_scan = !clean && next_base.is_none_or(|next| next > recovery_point);
        let trusted = if must_scan {
            None
        } else {
            match load_trusted(dir, base, config, next_base)? {
                Ok(segment) => Some(segment),
                Err(reason) => {
                    tracing::warn!(segment = %log_path.display(), %reason, "index unusable; rebuilding from the log");
                    None
                }
            }
        };
        let segment = match trusted {
            Some(segment) => segment,
            None => {
                let (segment, cut) = rebuild_segment(dir, base, config)?;
                scanned_bytes += segment.size();
                truncated = cut;
                // A rebuilt segment that stays closed gets what a roll gives it: the final
                // time-index entry (its max timestamp, which the next start reads from there).
                if next_base.is_some() && !truncated {
                    segment
                        .close()
                        .map_err(|e| storage(&log_path, "closing rebuilt", e))?;
                }
                // What the scan read may still sit only in the page cache (a process crash,
                // not a power loss): made durable now, so the recovery point can cover it.
                segment
                    .sync_all()
                    .map_err(|e| storage(&log_path, "fsyncing rebuilt", e))?;
                segment
            }
        };
        if let Some((_, previous)) = segments.iter().next_back()
            && previous.next_offset() != base
        {
            tracing::warn!(dir = %dir.display(), expected = previous.next_offset(), found = base, "offset gap between segments");
        }
        // An empty segment in the middle (crash during roll) is harmless but useless.
        if segment.is_empty() && next_base.is_some() && !truncated {
            drop(segment);
            remove_segment_files(dir, base);
            continue;
        }
        segments.insert(base, Arc::new(segment));
    }

    let persisted_start = read_log_start(dir);
    if segments.is_empty() {
        let base = persisted_start.unwrap_or(0).max(0);
        let segment = Segment::create(dir, base, config.segment_index_bytes)
            .map_err(|e| storage(dir, "creating first segment in", e))?;
        segments.insert(base, Arc::new(segment));
    }
    let next_offset = segments
        .values()
        .next_back()
        .expect("non-empty")
        .next_offset();
    let first_base = *segments.keys().next().expect("non-empty");
    let log_start_offset = persisted_start
        .unwrap_or(first_base)
        .max(first_base)
        .min(next_offset);
    let producers = load_producer_state(dir, &segments, next_offset, first_base)?;
    if !clean {
        tracing::info!(dir = %dir.display(), recovery_point, next_offset, scanned_bytes, truncated,
            elapsed_ms = started.elapsed().as_millis() as u64, producers = producers.len(), "recovered partition after unclean shutdown");
    }
    if !clean {
        // The directory entries of the segments kept (and the removal of those after a
        // truncation point) are durable before the recovery point vouches for them.
        super::partition_log::sync_dir(dir).map_err(|e| storage(dir, "fsyncing", e))?;
    }
    // Clean: everything was flushed. Unclean: every segment from the old recovery point on was
    // scanned and fsynced above, and those below it were durable already.
    let recovery_point = next_offset;
    Ok(Recovered {
        state: LogState {
            segments,
            log_start_offset,
            deleted_below: read_offset_file(dir, DELETED_BELOW_FILE).unwrap_or(-1),
            next_offset,
            producers,
            oldest_unflushed_ms: None,
            dir_sync_needed: true,
        },
        recovery_point,
    })
}

fn read_log_start(dir: &Path) -> Option<i64> {
    read_offset_file(dir, LOG_START_FILE)
}

fn read_offset_file(dir: &Path, name: &str) -> Option<i64> {
    let text = std::fs::read_to_string(dir.join(name)).ok()?;
    text.trim().parse().ok()
}

fn remove_segment_files(dir: &Path, base: i64) {
    for extension in ["log", "index", "timeindex"] {
        let _ = std::fs::remove_file(dir.join(segment_file_name(base, extension)));
    }
}

fn open_log(path: &Path) -> Result<File, LogError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| storage(path, "opening", e))
}

fn empty_meta(dir: &Path, base: i64, config: &TopicConfig) -> SegmentMeta {
    SegmentMeta {
        size: 0,
        file_len: 0,
        next_offset: base,
        max_timestamp: -1,
        offset_of_max_timestamp: base,
        offset_index: OffsetIndex::new(
            dir.join(segment_file_name(base, "index")),
            base,
            config.segment_index_bytes,
        ),
        time_index: TimeIndex::new(
            dir.join(segment_file_name(base, "timeindex")),
            base,
            config.segment_index_bytes,
        ),
        bytes_since_last_index_entry: 0,
        first_append_ms: None,
        closed: false,
    }
}

/// Scans a whole segment, validating every batch, truncating at the first bad one and rebuilding
/// both indexes. Returns the segment and whether it was truncated.
fn rebuild_segment(
    dir: &Path,
    base: i64,
    config: &TopicConfig,
) -> Result<(Segment, bool), LogError> {
    let log_path = dir.join(segment_file_name(base, "log"));
    let file = open_log(&log_path)?;
    let file_size = file
        .metadata()
        .map_err(|e| storage(&log_path, "reading size of", e))?
        .len();
    let mut meta = empty_meta(dir, base, config);
    let mut bad_batch = None;
    let outcome = scan_batches(&file, 0, file_size, |position, batch| {
        let problem = match batch.validate() {
            Err(error) => Some(error.to_string()),
            Ok(()) if batch.base_offset() != meta.next_offset => Some(format!(
                "batch base offset {} where {} was expected",
                batch.base_offset(),
                meta.next_offset
            )),
            Ok(()) => None,
        };
        if let Some(problem) = problem {
            bad_batch = Some((position, problem));
            return ControlFlow::Break(());
        }
        let placement = BatchPlacement {
            relative_position: 0,
            size: batch.size(),
            base_offset: batch.base_offset(),
            last_offset: batch.last_offset(),
            max_timestamp: batch.max_timestamp(),
        };
        meta.index_batch(position, &placement, config.index_interval_bytes);
        ControlFlow::Continue(())
    })
    .map_err(|e| storage(&log_path, "scanning", e))?;
    let valid_end = outcome.valid_end;
    let mut truncated = false;
    if valid_end < file_size {
        let zeros = is_all_zeros(&file, valid_end..file_size)
            .map_err(|e| storage(&log_path, "reading the tail of", e))?;
        if zeros {
            // The zeroed tail durable appends write ahead of themselves (segment.rs): not data,
            // and nothing after this segment depends on it.
            tracing::info!(segment = %log_path.display(), position = valid_end, tail_bytes = file_size - valid_end,
                next_offset = meta.next_offset, "dropping the zeroed tail of the log");
        } else {
            truncated = true;
            let reason = bad_batch
                .map(|(_, p)| p)
                .or(outcome.torn)
                .unwrap_or_else(|| "trailing bytes".into());
            tracing::warn!(segment = %log_path.display(), position = valid_end, discarded_bytes = file_size - valid_end,
                next_offset = meta.next_offset, %reason, "truncating log at first invalid batch");
        }
        file.set_len(valid_end)
            .map_err(|e| storage(&log_path, "truncating", e))?;
        file.sync_all()
            .map_err(|e| storage(&log_path, "fsyncing", e))?;
    }
    meta.size = valid_end;
    meta.file_len = valid_end;
    if valid_end > 0 {
        meta.first_append_ms = Some(roll_clock_start(&file));
    }
    // Fresh index files, written from the scan.
    for path in [
        meta.offset_index.path().to_path_buf(),
        meta.time_index.path().to_path_buf(),
    ] {
        File::create(&path).map_err(|e| storage(&path, "recreating", e))?;
    }
    let segment = Segment::from_recovered(base, file, log_path.clone(), meta)
        .map_err(|e| storage(&log_path, "opening", e))?;
    segment
        .persist_indexes()
        .map_err(|e| storage(&log_path, "writing indexes of", e))?;
    Ok((segment, truncated))
}

/// Where a loaded active segment's `segment.ms` clock starts: its first batch's max timestamp,
/// as Kafka's rollingBasedTimestamp (a restart must not restart the clock, or a low-volume
/// topic restarted more often than `segment.ms` never rolls, uploads or expires), or now when
/// that batch has no usable timestamp. One header read.
fn roll_clock_start(file: &File) -> i64 {
    use std::os::unix::fs::FileExt;
    let now = now_ms();
    let mut header = [0u8; strata_format::BATCH_HEADER_SIZE];
    match file.read_exact_at(&mut header, 0) {
        Ok(()) => Some(strata_format::header_max_timestamp(&header))
            .filter(|ts| (0..=now).contains(ts))
            .unwrap_or(now),
        Err(_) => now,
    }
}

/// Whether `range` of `file` holds only zero bytes (stops at the first other byte).
fn is_all_zeros(file: &File, range: std::ops::Range<u64>) -> io::Result<bool> {
    use std::os::unix::fs::FileExt;
    let mut buffer = vec![0u8; 64 << 10];
    let mut position = range.start;
    while position < range.end {
        let len = (range.end - position).min(buffer.len() as u64) as usize;
        file.read_exact_at(&mut buffer[..len], position)?;
        if buffer[..len].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        position += len as u64;
    }
    Ok(true)
}

/// Loads a segment without reading its log, except the active segment's tail after its last
/// index entry. `Ok(Err(reason))` means the indexes are unusable and the caller must rebuild.
fn load_trusted(
    dir: &Path,
    base: i64,
    config: &TopicConfig,
    next_base: Option<i64>,
) -> Result<Result<Segment, String>, LogError> {
    let log_path = dir.join(segment_file_name(base, "log"));
    let file = open_log(&log_path)?;
    let size = file
        .metadata()
        .map_err(|e| storage(&log_path, "reading size of", e))?
        .len();
    let index_path = dir.join(segment_file_name(base, "index"));
    let time_path = dir.join(segment_file_name(base, "timeindex"));
    let offset_index =
        match OffsetIndex::load(index_path, base, config.segment_index_bytes, size.max(1)) {
            Ok(index) => index,
            Err(damage) => return Ok(Err(format!("offset index: {damage}"))),
        };
    let time_index = match TimeIndex::load(time_path, base, config.segment_index_bytes, next_base) {
        Ok(index) => index,
        Err(damage) => return Ok(Err(format!("time index: {damage}"))),
    };
    let mut meta = empty_meta(dir, base, config);
    let last_entry = offset_index.last();
    let last_time = time_index.last();
    meta.offset_index = offset_index;
    meta.time_index = time_index;
    if let Some(entry) = last_time {
        meta.max_timestamp = entry.timestamp;
        meta.offset_of_max_timestamp = entry.offset;
    }
    meta.size = size;
    meta.file_len = size;
    if size > 0 {
        meta.first_append_ms = Some(if next_base.is_none() {
            roll_clock_start(&file)
        } else {
            now_ms() // closed: never rolls again
        });
    }
    match next_base {
        Some(next) => {
            meta.next_offset = next;
            meta.closed = true;
        }
        None => {
            // Scan the tail after the last index entry to find the log end: bounded by
            // index.interval.bytes plus one batch.
            let (start_position, start_offset) =
                last_entry.map_or((0, base), |e| (u64::from(e.position), e.offset));
            meta.next_offset = start_offset;
            let mut problem = None;
            let mut tail = Vec::new();
            let outcome = scan_batches(&file, start_position, size, |position, batch| {
                if batch.base_offset() != meta.next_offset || batch.validate().is_err() {
                    problem = Some(position);
                    return ControlFlow::Break(());
                }
                meta.next_offset = batch.next_offset();
                tail.push((position, batch.max_timestamp(), batch.base_offset()));
                ControlFlow::Continue(())
            })
            .map_err(|e| storage(&log_path, "scanning tail of", e))?;
            if problem.is_some() || outcome.torn.is_some() {
                return Ok(Err("active segment tail does not match its index".into()));
            }
            for (_, timestamp, offset) in tail {
                if timestamp > meta.max_timestamp {
                    meta.max_timestamp = timestamp;
                    meta.offset_of_max_timestamp = offset;
                }
            }
            meta.bytes_since_last_index_entry = size - start_position;
        }
    }
    let segment = Segment::from_recovered(base, file, log_path.clone(), meta)
        .map_err(|e| storage(&log_path, "opening", e))?;
    Ok(Ok(segment))
}

/// Newest readable snapshot at or below `next_offset`, plus replay of the batches after it.
fn load_producer_state(
    dir: &Path,
    segments: &BTreeMap<i64, Arc<Segment>>,
    next_offset: i64,
    first_base: i64,
) -> Result<ProducerStateManager, LogError> {
    let mut snapshots: Vec<(i64, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| storage(dir, "listing", e))?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let (offset, extension) = parse_segment_file_name(&name)?;
            (extension == "snapshot").then_some((offset, entry.path()))
        })
        .collect();
    snapshots.sort();
    let mut loaded = None;
    while let Some((offset, path)) = snapshots.pop() {
        if offset > next_offset {
            // Written for log that no longer exists (truncated by recovery).
            let _ = std::fs::remove_file(&path);
            continue;
        }
        match std::fs::read(&path)
            .ok()
            .and_then(|bytes| ProducerStateManager::decode(&bytes))
        {
            Some(state) => {
                loaded = Some((offset, state));
                break;
            }
            None => {
                tracing::warn!(snapshot = %path.display(), "unreadable producer snapshot; ignoring it");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let (from, mut state) = loaded.unwrap_or((first_base, ProducerStateManager::default()));
    let from = from.max(first_base);
    if from >= next_offset {
        return Ok(state);
    }
    let mut replayed = 0u64;
    for segment in segments.values().filter(|s| s.next_offset() > from) {
        segment
            .for_each_batch_from(from.max(segment.base_offset), |batch| {
                if batch.base_offset() >= from {
                    state.record(batch, batch.base_offset(), batch.last_offset());
                    replayed += 1;
                }
            })
            .map_err(|e| storage(segment.log_path(), "replaying producer state from", e))?;
    }
    tracing::debug!(dir = %dir.display(), from, replayed, "producer state rebuilt");
    Ok(state)
}
