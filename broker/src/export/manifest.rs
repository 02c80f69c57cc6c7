//! `manifest.json`, written next to the Parquet files once they are all complete: what was
//! asked for (topic, offset range per partition, file size limit), and per file the exact
//! offsets and times exported, the row count, the size and the SHA-256. [`verify`] recomputes
//! sizes and digests, reads each file's Parquet footer, checks that the files of each
//! partition cover its requested range exactly once, and that the destination holds no other
//! Parquet file (nor an unfinished `.parquet.tmp`).
//!
//! While an export runs, the same document is kept as `manifest.partial.json`, rewritten after
//! every completed file: that is what a re-run resumes from (see `job.rs`).
//!
//! The format is versioned (`version`); readers accept every version in [`KNOWN_VERSIONS`].
//! Version 1 (no `partitions`, `max_file_bytes`, `claims`) still parses; `value_format` and
//! `verify_claims`, added within version 2, read as `binary` and `false` when absent.

use serde::{Deserialize, Serialize};

use super::destination::Destination;
use super::{ExportError, ValueFormat};

pub const MANIFEST_FILE: &str = "manifest.json";
pub const PARTIAL_MANIFEST_FILE: &str = "manifest.partial.json";
pub const MANIFEST_VERSION: u32 = 2;
pub const KNOWN_VERSIONS: &[u32] = &[1, 2];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub topic: String,
    /// RFC 3339: when the export finished (in the partial manifest: when it started).
    pub created_at: String,
    /// The offset range asked for per partition, after resolving times (version 2).
    #[serde(default)]
    pub partitions: Vec<RequestedRange>,
    /// Files were closed at about this size (version 2; `null`: one file per partition).
    #[serde(default)]
    pub max_file_bytes: Option<u64>,
    /// How the `value` column holds values (absent before it was an option: binary).
    #[serde(default)]
    pub value_format: ValueFormat,
    /// Whether every claim ticket's payload was checked (`--verify-claims`), fixed when the
    /// export starts so that a resume cannot mix checked and unchecked files (absent before it
    /// was recorded: false).
    #[serde(default)]
    pub verify_claims: bool,
    pub files: Vec<ManifestFile>,
    /// Claim tickets seen, and payload checks when `--verify-claims` was given (version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<ClaimsReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestedRange {
    pub partition: i32,
    pub from_offset: i64,
    pub to_offset: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// File name, relative to the manifest's directory or prefix.
    pub file: String,
    pub partition: i32,
    /// The offsets this file is responsible for (inclusive): consecutive files of a partition
    /// chain without gap or overlap.
    pub requested_from_offset: i64,
    pub requested_to_offset: i64,
    /// First and last offset actually exported (null when no record was in range).
    pub first_offset: Option<i64>,
    pub last_offset: Option<i64>,
    /// Smallest and largest record timestamp, ms since the epoch.
    pub min_timestamp_ms: Option<i64>,
    pub max_timestamp_ms: Option<i64>,
    pub records: u64,
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimsReport {
    /// Records that were claim tickets.
    pub tickets: u64,
    /// Whether each ticket's payload was read and hashed.
    pub verified: bool,
    /// Tickets whose payload is missing or does not match the ticket's size or SHA-256.
    pub failures: Vec<ClaimFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimFailure {
    pub partition: i32,
    pub offset: i64,
    pub id: String,
    pub problem: String,
}

impl Manifest {
    pub fn to_json(&self) -> Result<Vec<u8>, ExportError> {
        serde_json::to_vec_pretty(self).map_err(|e| ExportError::Manifest(e.to_string()))
    }

    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self, ExportError> {
        let manifest: Self = serde_json::from_slice(bytes)
            .map_err(|e| ExportError::Manifest(format!("{origin}: {e}")))?;
        if !KNOWN_VERSIONS.contains(&manifest.version) {
            return Err(ExportError::Manifest(format!(
                "{origin}: unknown version {} (this strata reads versions {KNOWN_VERSIONS:?})",
                manifest.version
            )));
        }
        Ok(manifest)
    }

    /// Reads `name` (the manifest or the partial one) from `dest`; `None` when absent.
    pub async fn read(dest: &Destination, name: &str) -> Result<Option<Self>, ExportError> {
        match dest.read_small(name).await? {
            Some(bytes) => Ok(Some(Self::parse(&bytes, &dest.describe(name))?)),
            None => Ok(None),
        }
    }
}

/// One problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    pub file: String,
    pub problem: String,
}

/// Checks every file of `manifest.json` at `dest`: size, SHA-256, the Parquet footer's row
/// count, (version 2) that each partition's files chain over its requested range, and that
/// `dest` holds no Parquet file the manifest does not list.
/// `Ok((_, vec![]))` means the export is complete and intact.
pub async fn verify(dest: &Destination) -> Result<(Manifest, Vec<Mismatch>), ExportError> {
    let manifest = Manifest::read(dest, MANIFEST_FILE).await?.ok_or_else(|| {
        ExportError::Manifest(format!(
            "{} does not exist (an export without it is incomplete)",
            dest.describe(MANIFEST_FILE)
        ))
    })?;
    let mut problems = Vec::new();
    for entry in &manifest.files {
        let mut problem = |p: String| {
            problems.push(Mismatch {
                file: entry.file.clone(),
                problem: p,
            })
        };
        let (sha, bytes) = match dest.sha256(&entry.file).await {
            Ok(Some(found)) => found,
            Ok(None) => {
                problem("missing".into());
                continue;
            }
            Err(e) => {
                problem(e.to_string());
                continue;
            }
        };
        if bytes != entry.bytes {
            problem(format!("size {bytes} bytes, manifest says {}", entry.bytes));
        }
        if sha != entry.sha256 {
            problem(format!("SHA-256 {sha}, manifest says {}", entry.sha256));
        }
        match dest.parquet_rows(&entry.file).await {
            Ok(rows) if rows != entry.records => {
                problem(format!("{rows} rows, manifest says {}", entry.records))
            }
            Ok(_) => {}
            Err(e) => problem(format!("unreadable Parquet footer: {e}")),
        }
    }
    problems.extend(coverage_problems(&manifest));
    problems.extend(stray_files(dest, &manifest).await?);
    Ok((manifest, problems))
}

/// Parquet files at `dest` that the manifest does not list (another export's, a copy, a file
/// added later), and unfinished `.parquet.tmp` files: a reader globbing `*.parquet` would read
/// the former as part of the export.
async fn stray_files(
    dest: &Destination,
    manifest: &Manifest,
) -> Result<Vec<Mismatch>, ExportError> {
    let listed: std::collections::HashSet<&str> =
        manifest.files.iter().map(|f| f.file.as_str()).collect();
    Ok(dest
        .list_names()
        .await?
        .into_iter()
        .filter_map(|name| {
            let problem = if name.ends_with(".parquet.tmp") {
                "an unfinished file, not in the manifest"
            } else if name.ends_with(".parquet") && !listed.contains(name.as_str()) {
                "not in the manifest"
            } else {
                return None;
            };
            Some(Mismatch {
                file: name,
                problem: problem.into(),
            })
        })
        .collect())
}

/// Each requested partition range must be covered by its files exactly once, in order.
pub fn coverage_problems(manifest: &Manifest) -> Vec<Mismatch> {
    let mut problems = Vec::new();
    for range in &manifest.partitions {
        let mut files: Vec<&ManifestFile> = manifest
            .files
            .iter()
            .filter(|f| f.partition == range.partition)
            .collect();
        files.sort_by_key(|f| f.requested_from_offset);
        let mut next = range.from_offset;
        for f in &files {
            if f.requested_from_offset != next {
                problems.push(Mismatch {
                    file: f.file.clone(),
                    problem: format!(
                        "starts at offset {}, expected {next} (gap or overlap)",
                        f.requested_from_offset
                    ),
                });
            }
            next = f.requested_to_offset + 1;
        }
        if next != range.to_offset + 1 && range.to_offset >= range.from_offset {
            problems.push(Mismatch {
                file: format!("partition {}", range.partition),
                problem: format!(
                    "files cover offsets up to {}, the export asked for up to {}",
                    next - 1,
                    range.to_offset
                ),
            });
        }
    }
    problems
}
