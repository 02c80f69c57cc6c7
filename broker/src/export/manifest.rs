//! `manifest.json`, written next to the Parquet files once they are all closed: what was
//! asked for, and per file the exact offsets and times exported, the row count, the size and the
//! SHA-256. [`verify`] recomputes sizes and digests and reads each file's Parquet footer.
//!
//! The format is versioned (`version`); readers reject versions they do not know.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ExportError;

pub const MANIFEST_FILE: &str = "manifest.json";
pub const MANIFEST_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub version: u32,
    pub topic: String,
    /// RFC 3339, when the export finished.
    pub created_at: String,
    pub files: Vec<ManifestFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestFile {
    /// File name, relative to the manifest's directory.
    pub file: String,
    pub partition: i32,
    /// The offset range asked for (inclusive), after resolving times.
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

/// SHA-256 (hex) and size of a file, streamed.
pub fn sha256_file(path: &Path) -> Result<(String, u64), ExportError> {
    let mut file = std::fs::File::open(path).map_err(ExportError::io("opening", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(ExportError::io("reading", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

impl Manifest {
    /// Writes `dir/manifest.json` (temp file, fsync, rename).
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ExportError> {
        let path = dir.join(MANIFEST_FILE);
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
        let json =
            serde_json::to_vec_pretty(self).map_err(|e| ExportError::Manifest(e.to_string()))?;
        std::fs::write(&tmp, &json).map_err(ExportError::io("writing", &tmp))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(ExportError::io("syncing", &tmp))?;
        std::fs::rename(&tmp, &path).map_err(ExportError::io("renaming", &tmp))?;
        Ok(path)
    }

    pub fn read(dir: &Path) -> Result<Self, ExportError> {
        let path = dir.join(MANIFEST_FILE);
        let bytes = std::fs::read(&path).map_err(ExportError::io("reading", &path))?;
        let manifest: Self = serde_json::from_slice(&bytes)
            .map_err(|e| ExportError::Manifest(format!("{}: {e}", path.display())))?;
        if manifest.version != MANIFEST_VERSION {
            return Err(ExportError::Manifest(format!(
                "{}: unknown version {} (this strata reads version {MANIFEST_VERSION})",
                path.display(),
                manifest.version
            )));
        }
        Ok(manifest)
    }
}

/// One problem `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub file: String,
    pub problem: String,
}

/// Checks every file of `dir/manifest.json`: size, SHA-256, and the Parquet footer's row count.
/// `Ok(vec![])` means the export is intact.
pub fn verify(dir: &Path) -> Result<(Manifest, Vec<Mismatch>), ExportError> {
    let manifest = Manifest::read(dir)?;
    let mut problems = Vec::new();
    for entry in &manifest.files {
        let path = dir.join(&entry.file);
        let mut problem = |p: String| {
            problems.push(Mismatch {
                file: entry.file.clone(),
                problem: p,
            })
        };
        let (sha, bytes) = match sha256_file(&path) {
            Ok(found) => found,
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
        match parquet_rows(&path) {
            Ok(rows) if rows != entry.records => {
                problem(format!("{rows} rows, manifest says {}", entry.records))
            }
            Ok(_) => {}
            Err(e) => problem(format!("unreadable Parquet footer: {e}")),
        }
    }
    Ok((manifest, problems))
}

fn parquet_rows(path: &Path) -> Result<u64, ExportError> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let file = std::fs::File::open(path).map_err(ExportError::io("opening", path))?;
    let reader = SerializedFileReader::new(file)?;
    Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
}
