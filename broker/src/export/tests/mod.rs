//! Export unit tests, by concern (one module each); the fixtures they share are here: records,
//! a tiered log over an in-memory remote tier, small whole exports.

use super::destination::Destination;
use super::job::{Bound, DEFAULT_ZSTD_LEVEL, resolve_range};
use super::manifest::{
    MANIFEST_FILE, MANIFEST_VERSION, Manifest, ManifestFile, RequestedRange, coverage_problems,
    verify,
};
use super::parquet_writer::{PartitionParquetWriter, schema};
use super::reader::RecordReader;
use super::{ClaimFields, ExportError, ExportRecord, TimestampKind, ValueFormat};
use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, StructArray};
use bytes::Bytes;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use strata_tiering::RemoteStore;

mod destinations;
mod files;
mod ranges;
mod resume;

fn record(offset: i64) -> ExportRecord {
    ExportRecord {
        offset,
        timestamp: 1_700_000_000_000 + offset,
        timestamp_type: TimestampKind::CreateTime,
        key: (offset % 3 != 0).then(|| Bytes::from(format!("key-{offset}"))),
        value: (offset % 5 != 0).then(|| Bytes::from(vec![offset as u8, 0, 255, b'\n'])),
        headers: if offset % 2 == 0 {
            vec![
                ("origin".into(), Some(Bytes::from_static(b"test"))),
                ("empty".into(), None),
            ]
        } else {
            vec![]
        },
        producer_id: if offset < 50 { -1 } else { 7 },
        claim: (offset == 42).then(|| ClaimFields {
            id: "0123456789abcdef0123456789abcdef".into(),
            uri: "/v1/claims/0123456789abcdef0123456789abcdef".into(),
            size: 12345,
            sha256: "ab".repeat(32),
        }),
    }
}

/// When the first batch of [`tiered_log`] is stamped: an hour ago (the log engine checks
/// timestamps against the clock), the same for every test.
fn first_batch_ms() -> i64 {
    static AT: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *AT.get_or_init(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        now.as_millis() as i64 - 3_600_000
    })
}

/// A one-partition topic `tiered` with `batches` batches of ten records (offsets
/// `0..10 * batches`, value `value-<offset>`, batch `b` stamped `first_batch_ms() + b` seconds),
/// one segment per batch, every closed segment uploaded to an in-memory remote tier.
async fn tiered_log(
    dir: &std::path::Path,
    batches: i64,
) -> (
    std::sync::Arc<crate::log::LogManager>,
    std::sync::Arc<crate::log::PartitionLog>,
    strata_tiering::RemoteLogManager,
) {
    use strata_format::testing::BatchBuilder;
    let manager = crate::log::LogManager::open(crate::log::LogManagerConfig::new(dir))
        .await
        .unwrap();
    let overrides = [("segment.bytes".to_string(), "300".to_string())].into();
    manager.create_topic("tiered", 1, overrides, false).unwrap();
    let log = manager.partition("tiered", 0).unwrap();
    for batch in 0..batches {
        let bytes = BatchBuilder::new()
            .base_offset(batch * 10)
            .records(10)
            .timestamp(first_batch_ms() + batch * 1000)
            .values(|offset| Bytes::from(format!("value-{offset}")))
            .build();
        log.append(bytes, crate::log::Durability::Written)
            .await
            .unwrap();
    }
    let remote = strata_tiering::RemoteLogManager::new(
        std::sync::Arc::new(object_store::memory::InMemory::new()),
        "remote",
        strata_tiering::TieringConfig::default(),
    )
    .unwrap();
    // Rolled segments are offered for upload once their close is fsynced.
    log.flush().await.unwrap();
    for segment in log.closed_segments() {
        remote
            .upload_now(&crate::tiered::pump::descriptor(segment))
            .await
            .unwrap();
    }
    (manager, log, remote)
}

async fn read_all(reader: &mut RecordReader) -> Result<Vec<ExportRecord>, ExportError> {
    let mut records = Vec::new();
    while let Some(chunk) = reader.next_chunk().await? {
        records.extend(chunk);
    }
    Ok(records)
}

/// Writes a one-file export of offsets 0..10 of `t` partition 0 (file and `manifest.json`).
async fn one_file_export(dest: &Destination) -> String {
    let name = super::job::file_name("t", 0, 0);
    let mut writer = PartitionParquetWriter::create(
        dest.create(&name).await.unwrap(),
        "t",
        0,
        ValueFormat::Binary,
        DEFAULT_ZSTD_LEVEL,
    )
    .unwrap();
    writer.write((0..10).map(record).collect()).await.unwrap();
    let summary = writer.finish().await.unwrap();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        topic: "t".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        partitions: vec![RequestedRange {
            partition: 0,
            from_offset: 0,
            to_offset: 9,
        }],
        max_file_bytes: None,
        value_format: ValueFormat::Binary,
        verify_claims: false,
        files: vec![ManifestFile {
            file: name.clone(),
            partition: 0,
            requested_from_offset: 0,
            requested_to_offset: 9,
            first_offset: Some(0),
            last_offset: Some(9),
            min_timestamp_ms: summary.timestamps.map(|t| t.0),
            max_timestamp_ms: summary.timestamps.map(|t| t.1),
            records: 10,
            bytes: summary.bytes,
            sha256: summary.sha256,
        }],
        claims: None,
    };
    dest.write_small(MANIFEST_FILE, manifest.to_json().unwrap())
        .await
        .unwrap();
    name
}

/// An export of the whole of `log` (small files), its request and source.
fn whole_log_export(
    log: &crate::log::PartitionLog,
    manager: &std::sync::Arc<crate::log::LogManager>,
    verify_claims: bool,
) -> (super::job::ExportSource, super::job::ExportRequest) {
    let claims = strata_claimcheck::ClaimStore::new(
        std::sync::Arc::new(object_store::memory::InMemory::new()),
        "claims",
    )
    .unwrap();
    let source = super::job::ExportSource {
        log: manager.clone(),
        remote: None,
        claims: Some(claims),
    };
    let request = super::job::ExportRequest {
        topic: log.topic().to_string(),
        partitions: vec![],
        from: Bound::Offset(0),
        to: Bound::Offset(log.high_watermark() - 1),
        max_file_bytes: Some(1),
        verify_claims,
        value_format: ValueFormat::Binary,
        zstd_level: DEFAULT_ZSTD_LEVEL,
    };
    (source, request)
}
