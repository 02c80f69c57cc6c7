//! Writer + manifest round trip: write records through a destination's sink, read them back
//! with the `parquet` crate's Arrow reader, verify the manifest, then flip one byte and see
//! `verify` catch it. Manifest versions and coverage checks. Ranges and reads over a log with
//! an in-memory remote tier.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, StructArray};
use bytes::Bytes;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::destination::Destination;
use super::job::{Bound, resolve_range};
use super::manifest::{
    MANIFEST_FILE, MANIFEST_VERSION, Manifest, ManifestFile, RequestedRange, coverage_problems,
    verify,
};
use super::parquet_writer::{PartitionParquetWriter, schema};
use super::reader::RecordReader;
use super::{ClaimFields, ExportError, ExportRecord, TimestampKind, ValueFormat};
use strata_tiering::RemoteStore;

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

#[tokio::test]
async fn writer_and_manifest_round_trip_and_verify_detects_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::Local(dir.path().to_path_buf());
    let name = "orders-p00003-00000000000000000010.parquet";
    let path = dir.path().join(name);
    let records: Vec<_> = (10..110).map(record).collect();
    let sink = dest.create(name).await.unwrap();
    // Row groups of a few records: many are encoded at once and must land in order.
    let mut writer = PartitionParquetWriter::create(sink, "orders", 3, ValueFormat::Binary)
        .unwrap()
        .with_row_group_bytes(256);
    for chunk in records[..40].chunks(4) {
        writer.write(chunk.to_vec()).await.unwrap();
    }
    assert!(!path.exists(), "visible before it is complete");
    for chunk in records[40..].chunks(4) {
        writer.write(chunk.to_vec()).await.unwrap();
    }
    let summary = writer.finish().await.unwrap();
    assert_eq!(summary.records, 100);
    assert_eq!(summary.offsets, Some((10, 109)));
    assert!(!dir.path().join(format!("{name}.tmp")).exists());
    // The digest computed while writing is the file's.
    assert_eq!(
        dest.sha256(name).await.unwrap(),
        Some((summary.sha256.clone(), summary.bytes))
    );

    // Read back with the parquet crate and compare every column.
    let file = std::fs::File::open(&path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    assert_eq!(
        reader.schema().fields(),
        schema(ValueFormat::Binary).fields()
    );
    assert!(
        reader.metadata().num_row_groups() >= 10,
        "{} row groups",
        reader.metadata().num_row_groups()
    );
    let batches: Vec<_> = reader.build().unwrap().map(|b| b.unwrap()).collect();
    let mut row = 0usize;
    for batch in &batches {
        let topic = batch.column(0).as_string::<i32>();
        let partition = batch.column(1).as_primitive::<Int32Type>();
        let offset = batch.column(2).as_primitive::<Int64Type>();
        let ts = batch.column(3).as_primitive::<TimestampMillisecondType>();
        let ts_type = batch.column(4).as_string::<i32>();
        let key = batch.column(5).as_binary::<i32>();
        let value = batch.column(6).as_binary::<i32>();
        let headers = batch.column(7).as_list::<i32>();
        let producer = batch.column(8).as_primitive::<Int64Type>();
        let claim = batch.column(9).as_struct();
        for i in 0..batch.num_rows() {
            let want = &records[row];
            assert_eq!(topic.value(i), "orders");
            assert_eq!(partition.value(i), 3);
            assert_eq!(offset.value(i), want.offset);
            assert_eq!(ts.value(i), want.timestamp);
            assert_eq!(ts_type.value(i), "CreateTime");
            assert_eq!(key.is_valid(i).then(|| key.value(i)), want.key.as_deref());
            assert_eq!(
                value.is_valid(i).then(|| value.value(i)),
                want.value.as_deref()
            );
            let entries = headers.value(i);
            let entries: &StructArray = entries.as_struct();
            assert_eq!(entries.len(), want.headers.len());
            for (j, (k, v)) in want.headers.iter().enumerate() {
                assert_eq!(entries.column(0).as_string::<i32>().value(j), k);
                let vals = entries.column(1).as_binary::<i32>();
                assert_eq!(vals.is_valid(j).then(|| vals.value(j)), v.as_deref());
            }
            assert_eq!(producer.value(i), want.producer_id);
            assert_eq!(claim.is_valid(i), want.claim.is_some());
            if let Some(c) = &want.claim {
                assert_eq!(claim.column(0).as_string::<i32>().value(i), c.id);
                assert_eq!(claim.column(2).as_primitive::<Int64Type>().value(i), 12345);
                assert_eq!(claim.column(3).as_string::<i32>().value(i), c.sha256);
            }
            row += 1;
        }
    }
    assert_eq!(row, 100);

    let manifest = Manifest {
        version: MANIFEST_VERSION,
        topic: "orders".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        partitions: vec![RequestedRange {
            partition: 3,
            from_offset: 10,
            to_offset: 109,
        }],
        max_file_bytes: None,
        value_format: ValueFormat::Binary,
        verify_claims: false,
        files: vec![ManifestFile {
            file: name.into(),
            partition: 3,
            requested_from_offset: 10,
            requested_to_offset: 109,
            first_offset: Some(10),
            last_offset: Some(109),
            min_timestamp_ms: summary.timestamps.map(|t| t.0),
            max_timestamp_ms: summary.timestamps.map(|t| t.1),
            records: 100,
            bytes: summary.bytes,
            sha256: summary.sha256.clone(),
        }],
        claims: None,
    };
    dest.write_small(MANIFEST_FILE, manifest.to_json().unwrap())
        .await
        .unwrap();
    assert_eq!(
        Manifest::read(&dest, MANIFEST_FILE).await.unwrap(),
        Some(manifest.clone())
    );
    let (_, problems) = verify(&dest).await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");

    // Flip one byte in the middle of the file: verify must report it.
    let mut content = std::fs::read(&path).unwrap();
    let middle = content.len() / 2;
    content[middle] ^= 0x01;
    std::fs::write(&path, &content).unwrap();
    let (_, problems) = verify(&dest).await.unwrap();
    assert!(
        problems.iter().any(|p| p.problem.contains("SHA-256")),
        "{problems:?}"
    );
}

#[tokio::test]
async fn object_store_destination_writes_whole_files_and_verifies() {
    let store = std::sync::Arc::new(object_store::memory::InMemory::new());
    let dest = Destination::Object(RemoteStore::new(
        store,
        "exports/run1",
        "memory://exports/run1",
    ));
    dest.probe_writable().await.unwrap();
    let name = "t-p00000-00000000000000000000.parquet";
    let sink = dest.create(name).await.unwrap();
    let mut writer = PartitionParquetWriter::create(sink, "t", 0, ValueFormat::Binary).unwrap();
    let records: Vec<_> = (0..50).map(record).collect();
    writer.write(records.clone()).await.unwrap();
    assert_eq!(
        dest.sha256(name).await.unwrap(),
        None,
        "visible before complete"
    );
    let summary = writer.finish().await.unwrap();
    assert_eq!(
        dest.sha256(name).await.unwrap(),
        Some((summary.sha256.clone(), summary.bytes))
    );
    assert_eq!(dest.parquet_rows(name).await.unwrap(), 50);
}

#[test]
fn verify_reports_gaps_and_overlaps_between_files() {
    let file = |name: &str, from: i64, to: i64| ManifestFile {
        file: name.into(),
        partition: 0,
        requested_from_offset: from,
        requested_to_offset: to,
        first_offset: Some(from),
        last_offset: Some(to),
        min_timestamp_ms: None,
        max_timestamp_ms: None,
        records: (to - from + 1) as u64,
        bytes: 0,
        sha256: String::new(),
    };
    let mut manifest = Manifest {
        version: MANIFEST_VERSION,
        topic: "t".into(),
        created_at: String::new(),
        partitions: vec![RequestedRange {
            partition: 0,
            from_offset: 0,
            to_offset: 99,
        }],
        max_file_bytes: Some(1),
        value_format: ValueFormat::Binary,
        verify_claims: false,
        files: vec![file("a", 0, 49), file("b", 50, 99)],
        claims: None,
    };
    assert!(coverage_problems(&manifest).is_empty());
    manifest.files[1] = file("b", 40, 99);
    assert_eq!(coverage_problems(&manifest).len(), 1, "overlap");
    manifest.files[1] = file("b", 50, 90);
    assert_eq!(coverage_problems(&manifest).len(), 1, "short");
}

#[test]
fn manifest_version_1_still_parses() {
    let v1 = br#"{"version":1,"topic":"t","created_at":"2026-01-01T00:00:00Z","files":[
        {"file":"t-0-0-9.parquet","partition":0,"requested_from_offset":0,"requested_to_offset":9,
         "first_offset":0,"last_offset":9,"min_timestamp_ms":1,"max_timestamp_ms":2,"records":10,
         "bytes":100,"sha256":"00"}]}"#;
    let manifest = Manifest::parse(v1, "v1").unwrap();
    assert_eq!(manifest.files[0].records, 10);
    assert!(manifest.partitions.is_empty());
}

#[test]
fn manifest_rejects_an_unknown_version() {
    let error = Manifest::parse(
        br#"{"version":99,"topic":"t","created_at":"x","files":[]}"#,
        "manifest.json",
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("unknown version 99"), "{error}");
}

/// 320 records of 64 KiB of random bytes: more than two multipart parts' worth.
fn incompressible_records() -> Vec<ExportRecord> {
    (0..320)
        .map(|offset| {
            let mut r = record(offset);
            r.value = Some(Bytes::from(
                (0..64 * 1024)
                    .map(|_| rand::random::<u8>())
                    .collect::<Vec<_>>(),
            ));
            r
        })
        .collect()
}

/// An object-store destination whose multipart uploads leave markers (as S3's do), and the raw
/// store under it.
fn tracked_destination(
    prefix: &str,
) -> (std::sync::Arc<object_store::memory::InMemory>, Destination) {
    let store = std::sync::Arc::new(object_store::memory::InMemory::new());
    let remote =
        RemoteStore::with_tracked_multipart(store.clone(), prefix, format!("memory://{prefix}"));
    (store, Destination::Object(remote))
}

/// The (key, upload id) of every multipart upload marker under `prefix`.
async fn multipart_markers(
    store: &object_store::memory::InMemory,
    prefix: &str,
) -> Vec<(String, String)> {
    use futures::TryStreamExt;
    use object_store::ObjectStore;
    let dir = strata_tiering::keys::format_multipart_markers_dir(&prefix.into());
    let metas: Vec<_> = store.list(Some(&dir)).try_collect().await.unwrap();
    let mut markers = Vec::new();
    for meta in metas {
        let body = store
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let marker: serde_json::Value = serde_json::from_slice(&body).unwrap();
        markers.push((
            marker["key"].as_str().unwrap().to_string(),
            marker["upload_id"].as_str().unwrap().to_string(),
        ));
    }
    markers
}

#[tokio::test]
async fn object_store_destination_uploads_a_large_file_in_parts() {
    let (store, dest) = tracked_destination("big");
    let name = "t-p00000-00000000000000000000.parquet";
    let sink = dest.create(name).await.unwrap();
    let mut writer = PartitionParquetWriter::create(sink, "t", 0, ValueFormat::Binary)
        .unwrap()
        .with_row_group_bytes(4 << 20);
    for chunk in incompressible_records().chunks(40) {
        writer.write(chunk.to_vec()).await.unwrap();
    }
    assert_eq!(
        multipart_markers(&store, "big").await.len(),
        1,
        "upload running"
    );
    let summary = writer.finish().await.unwrap();
    assert!(summary.bytes > 2 * super::destination::PART_BYTES as u64);
    assert_eq!(
        dest.sha256(name).await.unwrap(),
        Some((summary.sha256.clone(), summary.bytes))
    );
    assert_eq!(dest.parquet_rows(name).await.unwrap(), 320);
    assert!(
        multipart_markers(&store, "big").await.is_empty(),
        "upload finished"
    );
    assert_eq!(
        dest.list_names().await.unwrap(),
        [name],
        "only the file is listed"
    );
}

#[tokio::test]
async fn the_next_export_aborts_the_upload_of_a_file_an_interrupted_one_left() {
    use object_store::multipart::MultipartStore;
    let (store, dest) = tracked_destination("out");
    let name = "t-p00000-00000000000000000000.parquet";
    let mut writer = PartitionParquetWriter::create(
        dest.create(name).await.unwrap(),
        "t",
        0,
        ValueFormat::Binary,
    )
    .unwrap()
    .with_row_group_bytes(4 << 20);
    for chunk in incompressible_records().chunks(40) {
        writer.write(chunk.to_vec()).await.unwrap();
    }
    let markers = multipart_markers(&store, "out").await;
    assert_eq!(markers.len(), 1);
    let (key, upload_id) = &markers[0];
    assert_eq!(key, &format!("out/{name}"));
    // Still running: a new export's sweep leaves it alone.
    assert!(dest.discard_unfinished().await.unwrap().is_empty());
    assert_eq!(multipart_markers(&store, "out").await.len(), 1);

    // The export dies mid-file (its writer dropped, nothing completed or aborted).
    drop(writer);
    assert!(
        dest.list_names().await.unwrap().is_empty(),
        "nothing visible"
    );
    dest.discard_unfinished().await.unwrap();
    assert!(multipart_markers(&store, "out").await.is_empty());
    let key = object_store::path::Path::from(key.as_str());
    assert!(
        store
            .put_part(&key, upload_id, 99, Bytes::from_static(b"x").into())
            .await
            .is_err(),
        "the interrupted upload was aborted"
    );
}

/// Writes `values` (offsets 100, 101, ...) to one file in `format`; the file's path, or the
/// export's error.
async fn write_values(
    dir: &std::path::Path,
    format: ValueFormat,
    values: &[Option<&[u8]>],
) -> Result<std::path::PathBuf, ExportError> {
    let dest = Destination::Local(dir.to_path_buf());
    let name = "v.parquet";
    let mut writer = PartitionParquetWriter::create(dest.create(name).await?, "t", 0, format)?
        .with_row_group_bytes(256);
    let records = values
        .iter()
        .enumerate()
        .map(|(i, v)| ExportRecord {
            value: v.map(Bytes::copy_from_slice),
            ..record(100 + i as i64)
        })
        .collect();
    writer.write(records).await?;
    writer.finish().await?;
    Ok(dir.join(name))
}

#[tokio::test]
async fn utf8_and_json_value_formats_write_typed_text_columns() {
    let values: Vec<Option<&[u8]>> = vec![
        Some(br#"{"id": 1, "name": "z\u00fcrich"}"#),
        None,
        Some(b"[1, 2.5, null]"),
        Some("\"gr\u{fc}\u{df}e\"".as_bytes()),
    ];
    for format in [ValueFormat::Utf8, ValueFormat::Json] {
        let dir = tempfile::tempdir().unwrap();
        let path = write_values(dir.path(), format, &values).await.unwrap();
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap()).unwrap();
        // Parquet's own type for the column: STRING, or JSON for readers such as DuckDB.
        let column = reader.metadata().file_metadata().schema_descr().column(6);
        assert_eq!(column.name(), "value");
        let expected = match format {
            ValueFormat::Json => parquet::basic::LogicalType::Json,
            _ => parquet::basic::LogicalType::String,
        };
        assert_eq!(column.logical_type_ref(), Some(&expected), "{format:?}");
        assert_eq!(reader.schema().fields(), schema(format).fields());
        let text: Vec<Option<String>> = reader
            .build()
            .unwrap()
            .flat_map(|b| {
                let b = b.unwrap();
                let column = b.column(6).as_string::<i32>().clone();
                (0..b.num_rows())
                    .map(|i| column.is_valid(i).then(|| column.value(i).to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let want: Vec<Option<String>> = values
            .iter()
            .map(|v| v.map(|v| String::from_utf8(v.to_vec()).unwrap()))
            .collect();
        assert_eq!(text, want, "{format:?}");
    }
}

#[tokio::test]
async fn a_value_that_does_not_fit_the_format_fails_the_export_naming_its_offset() {
    // (format, values at offsets 100.., offset of the first one that does not fit)
    type Case<'a> = (ValueFormat, Vec<Option<&'a [u8]>>, i64);
    let cases: [Case<'_>; 3] = [
        (
            ValueFormat::Utf8,
            vec![Some(b"ok"), Some(b"ok"), Some(&[0x66, 0xff, 0x66])],
            102,
        ),
        (
            ValueFormat::Json,
            vec![Some(b"{}"), Some(b"{\"a\": tru}")],
            101,
        ),
        (
            ValueFormat::Json,
            vec![Some(b"1"), None, Some(b"\"x\" trailing")],
            102,
        ),
    ];
    for (format, values, offset) in cases {
        let dir = tempfile::tempdir().unwrap();
        match write_values(dir.path(), format, &values).await {
            Err(ExportError::BadValue {
                offset: at,
                format: f,
                ..
            }) => {
                assert_eq!((at, f), (offset, format));
            }
            other => panic!("{format:?}: expected a bad value at {offset}, got {other:?}"),
        }
        // Nothing that looks like a complete file is left, nor the unfinished one.
        assert!(!dir.path().join("v.parquet").exists());
        assert!(!dir.path().join("v.parquet.tmp").exists());
    }
    // Binary takes any bytes.
    let dir = tempfile::tempdir().unwrap();
    write_values(dir.path(), ValueFormat::Binary, &[Some(&[0xff, 0xfe])])
        .await
        .unwrap();
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

#[tokio::test]
async fn records_below_the_delete_records_point_are_not_exported_though_the_remote_tier_holds_them()
{
    let dir = tempfile::tempdir().unwrap();
    let (manager, log, remote) = tiered_log(dir.path(), 20).await;
    assert_eq!(
        remote.remote_log_start_offset("tiered", 0).await.unwrap(),
        Some(0)
    );
    // DeleteRecords inside a batch; the remote tier keeps 0.. until its next retention pass.
    assert_eq!(log.delete_records_before(55).unwrap(), 55);

    // Running broker: a range from below the DeleteRecords point is refused, naming the range
    // a consumer can read.
    let error = resolve_range(&log, Some(&remote), Bound::Offset(0), Bound::Offset(199))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ExportError::Expired {
                log_start: 55,
                log_end: 200,
                ..
            }
        ),
        "{error}"
    );
    assert!(error.to_string().contains("[55, 200)"), "{error}");
    let range = resolve_range(&log, Some(&remote), Bound::Offset(55), Bound::Offset(199))
        .await
        .unwrap();
    assert_eq!((range.from, range.to), (55, 199));
    let records = read_all(&mut RecordReader::new(
        log.clone(),
        Some(remote.clone()),
        range.from,
        range.to,
    ))
    .await
    .unwrap();
    assert_eq!(
        records.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (55..200).collect::<Vec<_>>()
    );
    assert_eq!(records[0].value.as_deref(), Some(&b"value-55"[..]));

    // The reader itself never returns what the broker no longer serves.
    let error = read_all(&mut RecordReader::new(
        log.clone(),
        Some(remote.clone()),
        0,
        199,
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(error, ExportError::Expired { log_start: 55, .. }),
        "{error}"
    );

    // Stopped broker (the CLI): the log start comes back clamped to local data, and lowering
    // it over the remote tier stops at the persisted DeleteRecords point.
    manager.shutdown().await.unwrap();
    drop((manager, log));
    let manager = crate::log::LogManager::open(crate::log::LogManagerConfig::new(dir.path()))
        .await
        .unwrap();
    let log = manager.partition("tiered", 0).unwrap();
    assert_eq!(
        crate::tiered::retention::expose_remote_log_start(&remote, &log).await,
        55
    );
    let error = resolve_range(&log, Some(&remote), Bound::Offset(0), Bound::Offset(199))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("[55, 200)"), "{error}");
    manager.shutdown().await.unwrap();
}

#[test]
fn time_bounds_take_rfc_3339_offsets_and_refuse_times_without_one() {
    let parse = |text: &str| Bound::parse_time("--from-time", text);
    // 2025-03-01T00:00:00Z is 1_740_787_200_000 ms.
    for (text, ms) in [
        ("2025-03-01T00:00:00Z", 1_740_787_200_000),
        ("2025-03-01T00:00:00+02:00", 1_740_780_000_000),
        ("2025-03-01T00:00:00.000+02:00", 1_740_780_000_000),
        ("2025-03-01T00:00:00.250-05:30", 1_740_807_000_250),
        ("2025-03-01t00:00:00z", 1_740_787_200_000),
    ] {
        assert_eq!(parse(text).unwrap(), Bound::Time(ms), "{text}");
    }
    for text in ["2025-03-01T00:00:00", "2025-03-01 00:00:00.000"] {
        let error = parse(text).unwrap_err().to_string();
        assert!(
            error.contains("has no UTC offset") && error.contains("2025-03-01T00:00:00Z"),
            "{text}: {error}"
        );
    }
    let error = parse("yesterday").unwrap_err().to_string();
    assert!(
        error.starts_with("--from-time \"yesterday\" is not a time in RFC 3339"),
        "{error}"
    );
    let error = parse("1969-12-31T23:59:59Z").unwrap_err().to_string();
    assert!(error.contains("before 1970"), "{error}");
}

/// Writes a one-file export of offsets 0..10 of `t` partition 0 (file and `manifest.json`).
async fn one_file_export(dest: &Destination) -> String {
    let name = super::job::file_name("t", 0, 0);
    let mut writer = PartitionParquetWriter::create(
        dest.create(&name).await.unwrap(),
        "t",
        0,
        ValueFormat::Binary,
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

#[tokio::test]
async fn verify_names_parquet_files_the_manifest_does_not_list() {
    let dir = tempfile::tempdir().unwrap();
    let local = Destination::Local(dir.path().to_path_buf());
    let store = std::sync::Arc::new(object_store::memory::InMemory::new());
    let object = Destination::Object(RemoteStore::new(
        store.clone(),
        "exports/run1",
        "memory://exports/run1",
    ));
    for dest in [local, object] {
        let name = one_file_export(&dest).await;
        let (_, problems) = verify(&dest).await.unwrap();
        assert!(problems.is_empty(), "{dest}: {problems:?}");

        // A copy under another name, an unfinished file, and files that are not Parquet.
        let bytes = dest.read_small(&name).await.unwrap().unwrap();
        let stray = super::job::file_name("t", 0, 10);
        dest.write_small(&stray, bytes.clone()).await.unwrap();
        dest.write_small("t-p00001-00000000000000000000.parquet.tmp", b"x".to_vec())
            .await
            .unwrap();
        dest.write_small("README.txt", b"notes".to_vec())
            .await
            .unwrap();
        let (_, problems) = verify(&dest).await.unwrap();
        assert_eq!(
            problems,
            vec![
                super::manifest::Mismatch {
                    file: stray.clone(),
                    problem: "not in the manifest".into(),
                },
                super::manifest::Mismatch {
                    file: "t-p00001-00000000000000000000.parquet.tmp".into(),
                    problem: "an unfinished file, not in the manifest".into(),
                },
            ],
            "{dest}"
        );
    }
    // Objects under a longer prefix or in a sub-directory of it are another export's.
    store
        .put(
            &"exports/run10/t-p00000-00000000000000000000.parquet".into(),
            object_store::PutPayload::from_static(b"x"),
        )
        .await
        .unwrap();
    let elsewhere = Destination::Object(RemoteStore::new(
        store.clone(),
        "exports/run2",
        "memory://exports/run2",
    ));
    one_file_export(&elsewhere).await;
    store
        .put(
            &"exports/run2/old/t-p00000-00000000000000000000.parquet".into(),
            object_store::PutPayload::from_static(b"x"),
        )
        .await
        .unwrap();
    let (_, problems) = verify(&elsewhere).await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
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
    };
    (source, request)
}

/// Turns a complete export at `dest` back into one interrupted after its first `files` files.
async fn interrupt_after(dest: &Destination, files: usize) {
    let mut manifest = Manifest::read(dest, MANIFEST_FILE).await.unwrap().unwrap();
    for dropped in manifest.files.split_off(files) {
        dest.remove(&dropped.file).await.unwrap();
    }
    dest.write_small(
        super::manifest::PARTIAL_MANIFEST_FILE,
        manifest.to_json().unwrap(),
    )
    .await
    .unwrap();
    dest.remove(MANIFEST_FILE).await.unwrap();
}

#[tokio::test]
async fn a_resume_with_another_verify_claims_setting_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, log, _) = tiered_log(&dir.path().join("data"), 5).await;
    let progress = super::progress::ExportProgress::default();
    for started_with in [false, true] {
        let dest = Destination::Local(dir.path().join(format!("out-{started_with}")));
        let (source, request) = whole_log_export(&log, &manager, started_with);
        let manifest = super::job::run_export(&source, &request, &dest, &progress)
            .await
            .unwrap();
        assert_eq!(manifest.verify_claims, started_with);
        assert_eq!(manifest.files.len(), 5, "one file per batch");
        interrupt_after(&dest, 2).await;

        let (source, other) = whole_log_export(&log, &manager, !started_with);
        let error = super::job::run_export(&source, &other, &dest, &progress)
            .await
            .unwrap_err()
            .to_string();
        let (was, now) = if started_with {
            ("with", "without")
        } else {
            ("without", "with")
        };
        assert!(
            error.contains(&format!("started {was} claim payload checks"))
                && error.contains(&format!("resumed {now}"))
                && error.contains("--verify-claims"),
            "{error}"
        );
        assert!(
            Manifest::read(&dest, MANIFEST_FILE)
                .await
                .unwrap()
                .is_none()
        );

        // The same setting resumes, keeping the two files and writing the other three.
        let manifest = super::job::run_export(&source, &request, &dest, &progress)
            .await
            .unwrap();
        assert_eq!(manifest.verify_claims, started_with);
        assert_eq!(
            manifest
                .files
                .iter()
                .map(|f| (f.requested_from_offset, f.requested_to_offset))
                .collect::<Vec<_>>(),
            [(0, 9), (10, 19), (20, 29), (30, 39), (40, 49)]
        );
    }
    manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_compressed_batch_rotten_on_disk_fails_the_export_naming_its_offset() {
    use strata_format::testing::BatchBuilder;
    let dir = tempfile::tempdir().unwrap();
    let manager = crate::log::LogManager::open(crate::log::LogManagerConfig::new(dir.path()))
        .await
        .unwrap();
    manager
        .create_topic("rot", 1, Default::default(), false)
        .unwrap();
    let log = manager.partition("rot", 0).unwrap();
    for base in [0, 10] {
        let batch = BatchBuilder::new()
            .base_offset(base)
            .records(10)
            .timestamp(1_700_000_000_000)
            .values(|offset| Bytes::from(format!("value-{offset}")))
            .compression(strata_format::Compression::Zstd)
            .build();
        log.append(batch, crate::log::Durability::Written)
            .await
            .unwrap();
    }
    let read = |from: i64| read_all_from(&log, from);
    assert_eq!(read(0).await.unwrap().len(), 20);

    // One bit of the second batch's first timestamp (bytes 27..35 of a batch, under its CRC but
    // outside the compressed records) flips on disk: decoded unchecked, its records would be
    // exported 16 ms off.
    let first_batch_bytes = {
        let bytes = log.read(0, 1).unwrap().records;
        strata_format::BatchIter::new(bytes).next().unwrap().size() as u64
    };
    {
        use std::io::{Read, Seek, Write};
        let path = log.dir().join(format!("{:020}.log", 0));
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let at = first_batch_bytes + 34;
        let mut byte = [0u8];
        file.seek(std::io::SeekFrom::Start(at)).unwrap();
        file.read_exact(&mut byte).unwrap();
        file.seek(std::io::SeekFrom::Start(at)).unwrap();
        file.write_all(&[byte[0] ^ 0x10]).unwrap();
    }
    match read(0).await {
        Err(ExportError::Corrupt {
            offset, problem, ..
        }) => {
            assert_eq!(offset, 10);
            assert!(
                matches!(problem, strata_format::FormatError::CrcMismatch { .. }),
                "{problem}"
            );
        }
        other => panic!("expected the batch at 10 to be reported corrupt, got {other:?}"),
    }
    let error = read(0).await.unwrap_err().to_string();
    assert!(
        error.starts_with(
            "rot-0: the stored record batch at offset 10 is corrupt (record batch CRC mismatch"
        ),
        "{error}"
    );
    // The first batch is intact.
    let records = read_all(&mut RecordReader::new(log.clone(), None, 0, 9))
        .await
        .unwrap();
    assert_eq!(records.len(), 10);
    manager.shutdown().await.unwrap();
}

async fn read_all_from(
    log: &std::sync::Arc<crate::log::PartitionLog>,
    from: i64,
) -> Result<Vec<ExportRecord>, ExportError> {
    read_all(&mut RecordReader::new(
        log.clone(),
        None,
        from,
        log.high_watermark() - 1,
    ))
    .await
}

#[tokio::test]
async fn a_failed_file_aborts_its_multipart_upload() {
    let faulty = std::sync::Arc::new(strata_tiering::faults::FaultyStore::new(
        std::sync::Arc::new(object_store::memory::InMemory::new()),
    ));
    let faults = faulty.faults.clone();
    let dest = Destination::Object(RemoteStore::new(faulty, "out", "memory://out"));
    let name = "t-p00000-00000000000000000000.parquet";
    let mut writer =
        PartitionParquetWriter::create(dest.create(name).await.unwrap(), "t", 0, ValueFormat::Utf8)
            .unwrap()
            .with_row_group_bytes(1 << 20);
    // Text that zstd cannot shrink much: more than a part is uploaded before the bad value.
    let text = || {
        (0..64 * 1024)
            .map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789"[rand::random_range(0..36)])
            .collect::<Vec<u8>>()
    };
    let good: Vec<ExportRecord> = (0..320)
        .map(|offset| ExportRecord {
            value: Some(Bytes::from(text())),
            ..record(offset)
        })
        .collect();
    for chunk in good.chunks(16) {
        writer.write(chunk.to_vec()).await.unwrap();
    }
    assert!(writer.size_estimate() > super::destination::PART_BYTES as u64);
    let bad = ExportRecord {
        value: Some(Bytes::from_static(&[0xff, 0xfe])),
        ..record(320)
    };
    let failed = match writer.write(vec![bad]).await {
        Err(e) => Err(e),
        Ok(()) => writer.finish().await.map(|_| ()),
    };
    assert!(
        matches!(failed, Err(ExportError::BadValue { offset: 320, .. })),
        "{failed:?}"
    );
    assert_eq!(
        faults.aborts.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the multipart upload was aborted"
    );
    assert_eq!(dest.sha256(name).await.unwrap(), None);
}

#[tokio::test]
async fn an_export_that_fails_mid_file_leaves_no_tmp_file() {
    use strata_format::testing::BatchBuilder;
    let dir = tempfile::tempdir().unwrap();
    let manager =
        crate::log::LogManager::open(crate::log::LogManagerConfig::new(dir.path().join("data")))
            .await
            .unwrap();
    manager
        .create_topic("rot", 1, Default::default(), false)
        .unwrap();
    let log = manager.partition("rot", 0).unwrap();
    for base in [0, 10] {
        let batch = BatchBuilder::new()
            .base_offset(base)
            .records(10)
            .values(|offset| Bytes::from(format!("value-{offset}")))
            .build();
        log.append(batch, crate::log::Durability::Written)
            .await
            .unwrap();
    }
    // The second batch's CRC no longer matches: the reader fails after the first chunk.
    let second = log.read(0, 1).unwrap().records.len() as u64;
    {
        use std::io::{Seek, Write};
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(log.dir().join(format!("{:020}.log", 0)))
            .unwrap();
        file.seek(std::io::SeekFrom::Start(second + 17)).unwrap();
        file.write_all(&[0, 0, 0, 0]).unwrap();
    }
    let (source, mut request) = whole_log_export(&log, &manager, false);
    request.max_file_bytes = None;
    let out = dir.path().join("out");
    let dest = Destination::Local(out.clone());
    let error = super::job::run_export(
        &source,
        &request,
        &dest,
        &super::progress::ExportProgress::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, ExportError::Corrupt { offset: 10, .. }),
        "{error}"
    );
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    // Only the partial manifest, which a re-run resumes from.
    assert_eq!(left, ["manifest.partial.json"]);
    manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_from_time_before_the_first_record_left_says_the_history_expired() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, log, remote) = tiered_log(dir.path(), 20).await;
    let batch_time = |batch: i64| Bound::Time(first_batch_ms() + batch * 1000);
    // Before anything was deleted, a time before the first record is simply the log start.
    let range = resolve_range(&log, Some(&remote), Bound::Time(0), Bound::Offset(199))
        .await
        .unwrap();
    assert_eq!((range.from, range.to), (0, 199));

    // Offsets 50..54 (stamped like the rest of batch 5) go; 55 is the first record left.
    log.delete_records_before(55).unwrap();
    for (from, with_remote) in [
        (Bound::Time(0), true),
        (batch_time(3), true),
        (batch_time(3), false),
        // Records stamped at that time were deleted (50..54), the bucket still says so.
        (batch_time(5), true),
    ] {
        let error = resolve_range(
            &log,
            with_remote.then_some(&remote),
            from,
            Bound::Offset(199),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(
                error,
                ExportError::Expired {
                    log_start: 55,
                    log_end: 200,
                    ..
                }
            ),
            "{from:?}: {error}"
        );
        assert!(error.to_string().contains("has expired"), "{error}");
    }
    // A range wholly in deleted history, by offsets or times, is expired history too.
    for (from, to) in [
        (Bound::Offset(0), Bound::Offset(30)),
        (batch_time(3), Bound::Offset(30)),
        (Bound::Time(0), batch_time(2)),
    ] {
        let error = resolve_range(&log, Some(&remote), from, to)
            .await
            .unwrap_err();
        assert!(
            matches!(error, ExportError::Expired { log_start: 55, .. }),
            "{from:?}..{to:?}: {error}"
        );
    }
    // An offset beyond the log end is outside the log, naming the range it holds.
    let error = resolve_range(&log, Some(&remote), Bound::Offset(60), Bound::Offset(500))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("[55, 200)"), "{error}");
    assert!(matches!(error, ExportError::OutOfRange { .. }), "{error}");
    // From a time after the first record left, nothing of the range was deleted.
    let range = resolve_range(&log, Some(&remote), batch_time(6), Bound::Offset(199))
        .await
        .unwrap();
    assert_eq!((range.from, range.to), (60, 199));
    manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_resume_does_not_write_an_empty_range_file_again() {
    let dir = tempfile::tempdir().unwrap();
    let (manager, log, _) = tiered_log(&dir.path().join("data"), 3).await;
    let (source, mut request) = whole_log_export(&log, &manager, false);
    // Times after every record: an empty range, exported as one empty file.
    request.from = Bound::Time(first_batch_ms() + 86_400_000);
    request.to = Bound::Time(first_batch_ms() + 2 * 86_400_000);
    let dest = Destination::Local(dir.path().join("out"));
    let progress = super::progress::ExportProgress::default();
    let manifest = super::job::run_export(&source, &request, &dest, &progress)
        .await
        .unwrap();
    assert_eq!(manifest.files.len(), 1);
    assert_eq!(
        (
            manifest.files[0].requested_from_offset,
            manifest.files[0].records
        ),
        (30, 0)
    );
    // Interrupted after its only file was recorded, before manifest.json was written.
    interrupt_after(&dest, 1).await;
    let resumed = super::job::run_export(&source, &request, &dest, &progress)
        .await
        .unwrap();
    assert_eq!(resumed.files, manifest.files);
    let (_, problems) = verify(&dest).await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    manager.shutdown().await.unwrap();
}

#[tokio::test]
async fn one_directory_spelled_differently_is_one_destination() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a");
    let spelled = |text: String| Destination::parse(&text).unwrap();
    let plain = spelled(target.display().to_string());
    plain.probe_writable().await.unwrap();
    std::os::unix::fs::symlink(&target, dir.path().join("link")).unwrap();
    let same = [
        spelled(format!("{}/", target.display())),
        spelled(format!("file://{}", target.display())),
        spelled(format!("{}/./a", dir.path().display())),
        spelled(format!("{}/a/../a", dir.path().display())),
        spelled(format!("{}/link", dir.path().display())),
    ];
    for other in same {
        assert_eq!(other.identity().await, plain.identity().await, "{other}");
    }
    let elsewhere = spelled(dir.path().join("b").display().to_string());
    assert_ne!(elsewhere.identity().await, plain.identity().await);
    // Not created yet: still one place however it is spelled.
    assert_eq!(
        spelled(format!("{}/", dir.path().join("c").display()))
            .identity()
            .await,
        spelled(format!("file://{}/./c", dir.path().display()))
            .identity()
            .await
    );
}
