//! The Parquet files and the manifest: writer and reader round trip, value formats, verify
//! (flipped byte, gaps and overlaps, files the manifest does not name), manifest versions.

use super::*;

#[tokio::test]
async fn writer_and_manifest_round_trip_and_verify_detects_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::Local(dir.path().to_path_buf());
    let name = "orders-p00003-00000000000000000010.parquet";
    let path = dir.path().join(name);
    let records: Vec<_> = (10..110).map(record).collect();
    let sink = dest.create(name).await.unwrap();
    // Row groups of a few records: many are encoded at once and must land in order.
    let mut writer =
        PartitionParquetWriter::create(sink, "orders", 3, ValueFormat::Binary, DEFAULT_ZSTD_LEVEL)
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

/// Writes `values` (offsets 100, 101, ...) to one file in `format`; the file's path, or the
/// export's error.
async fn write_values(
    dir: &std::path::Path,
    format: ValueFormat,
    values: &[Option<&[u8]>],
) -> Result<std::path::PathBuf, ExportError> {
    let dest = Destination::Local(dir.to_path_buf());
    let name = "v.parquet";
    let mut writer = PartitionParquetWriter::create(
        dest.create(name).await?,
        "t",
        0,
        format,
        DEFAULT_ZSTD_LEVEL,
    )?
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
        let stray = crate::export::job::file_name("t", 0, 10);
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
                crate::export::manifest::Mismatch {
                    file: stray.clone(),
                    problem: "not in the manifest".into(),
                },
                crate::export::manifest::Mismatch {
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

/// The zstd level trades file size for speed and nothing else: the same records at levels -5,
/// 1 and 19 read back the same, each file smaller than the one at the level below; a level zstd
/// does not have is refused before anything is read or written.
#[tokio::test]
async fn zstd_level_changes_the_file_size_and_nothing_else() {
    // Text-like values with some repetition, as payloads usually have.
    let mut seed = 7u64;
    let values: Vec<Bytes> = (0..4000)
        .map(|_| {
            let mut value = String::new();
            while value.len() < 120 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let word =
                    ["strata", "tier", "segment", "offset", "claim"][(seed >> 60) as usize % 5];
                value.push_str(&format!("{word} {} ", (seed >> 33) % 100_000));
            }
            Bytes::from(value)
        })
        .collect();
    let mut sizes = Vec::new();
    for level in [-5, 1, 19] {
        let dir = tempfile::tempdir().unwrap();
        let dest = Destination::Local(dir.path().to_path_buf());
        let mut writer = PartitionParquetWriter::create(
            dest.create("z.parquet").await.unwrap(),
            "t",
            0,
            ValueFormat::Binary,
            level,
        )
        .unwrap();
        let records = values
            .iter()
            .enumerate()
            .map(|(i, v)| ExportRecord {
                value: Some(v.clone()),
                ..record(i as i64)
            })
            .collect();
        writer.write(records).await.unwrap();
        let summary = writer.finish().await.unwrap();
        let file = std::fs::File::open(dir.path().join("z.parquet")).unwrap();
        let read_back: Vec<Bytes> = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .flat_map(|b| {
                let column = b.unwrap().column(6).as_binary::<i32>().clone();
                (0..column.len())
                    .map(|i| Bytes::copy_from_slice(column.value(i)))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(read_back, values, "level {level}");
        sizes.push(summary.bytes);
    }
    assert!(
        sizes[0] > sizes[1] && sizes[1] > sizes[2],
        "sizes at -5, 1, 19: {sizes:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let dest = Destination::Local(dir.path().to_path_buf());
    let error = PartitionParquetWriter::create(
        dest.create("z.parquet").await.unwrap(),
        "t",
        0,
        ValueFormat::Binary,
        23,
    )
    .err()
    .expect("level 23 refused");
    let message = error.to_string();
    assert!(
        matches!(error, ExportError::BadRequest(_)) && message.contains("zstd level 23"),
        "{message}"
    );
}
