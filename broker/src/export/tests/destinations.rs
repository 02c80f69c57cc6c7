//! Where files go: object stores (whole files only, multipart parts, interrupted uploads
//! aborted), failed files leaving nothing behind, one directory under different spellings.

use super::*;

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
    let mut writer =
        PartitionParquetWriter::create(sink, "t", 0, ValueFormat::Binary, DEFAULT_ZSTD_LEVEL)
            .unwrap();
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
    let mut writer =
        PartitionParquetWriter::create(sink, "t", 0, ValueFormat::Binary, DEFAULT_ZSTD_LEVEL)
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
    assert!(summary.bytes > 2 * crate::export::destination::PART_BYTES as u64);
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
        DEFAULT_ZSTD_LEVEL,
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

#[tokio::test]
async fn a_failed_file_aborts_its_multipart_upload() {
    let faulty = std::sync::Arc::new(strata_tiering::faults::FaultyStore::new(
        std::sync::Arc::new(object_store::memory::InMemory::new()),
    ));
    let faults = faulty.faults.clone();
    let dest = Destination::Object(RemoteStore::new(faulty, "out", "memory://out"));
    let name = "t-p00000-00000000000000000000.parquet";
    let mut writer = PartitionParquetWriter::create(
        dest.create(name).await.unwrap(),
        "t",
        0,
        ValueFormat::Utf8,
        DEFAULT_ZSTD_LEVEL,
    )
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
    assert!(writer.size_estimate() > crate::export::destination::PART_BYTES as u64);
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
    let error = crate::export::job::run_export(
        &source,
        &request,
        &dest,
        &crate::export::progress::ExportProgress::default(),
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
