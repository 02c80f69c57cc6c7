//! Writer + manifest round trip: write records, read them back with the `parquet` crate's Arrow
//! reader, verify the manifest, then flip one byte and see `verify` catch it.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type, TimestampMillisecondType};
use arrow_array::{Array, StructArray};
use bytes::Bytes;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::manifest::{MANIFEST_VERSION, Manifest, ManifestFile, sha256_file, verify};
use super::parquet_writer::{PartitionParquetWriter, schema};
use super::{ExportRecord, TimestampKind};

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
    }
}

#[test]
fn writer_and_manifest_round_trip_and_verify_detects_a_flipped_byte() {
    let dir = tempfile::tempdir().unwrap();
    let name = "orders-3-10-109.parquet";
    let path = dir.path().join(name);
    let records: Vec<_> = (10..110).map(record).collect();
    let mut writer = PartitionParquetWriter::create(&path, "orders", 3).unwrap();
    writer.write(&records[..40]).unwrap();
    writer.write(&records[40..]).unwrap();
    let summary = writer.finish().unwrap();
    assert_eq!(summary.records, 100);
    assert_eq!(summary.offsets, Some((10, 109)));
    assert!(!dir.path().join("orders-3-10-109.parquet.tmp").exists());

    // Read back with the parquet crate and compare every column.
    let file = std::fs::File::open(&path).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    assert_eq!(reader.schema().fields(), schema().fields());
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
            row += 1;
        }
    }
    assert_eq!(row, 100);

    let (sha256, bytes) = sha256_file(&path).unwrap();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        topic: "orders".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
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
            bytes,
            sha256,
        }],
    };
    manifest.write(dir.path()).unwrap();
    assert_eq!(Manifest::read(dir.path()).unwrap(), manifest);
    let (_, problems) = verify(dir.path()).unwrap();
    assert!(problems.is_empty(), "{problems:?}");

    // Flip one byte in the middle of the file: verify must report it.
    let mut content = std::fs::read(&path).unwrap();
    let middle = content.len() / 2;
    content[middle] ^= 0x01;
    std::fs::write(&path, &content).unwrap();
    let (_, problems) = verify(dir.path()).unwrap();
    assert!(
        problems.iter().any(|p| p.problem.contains("SHA-256")),
        "{problems:?}"
    );
}

#[test]
fn manifest_rejects_an_unknown_version() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("manifest.json"),
        br#"{"version":99,"topic":"t","created_at":"x","files":[]}"#,
    )
    .unwrap();
    let error = Manifest::read(dir.path()).unwrap_err().to_string();
    assert!(error.contains("unknown version 99"), "{error}");
}
