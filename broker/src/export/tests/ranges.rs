//! What an export reads: ranges by offset and time, DeleteRecords and expired history, damaged
//! batches named by their offset.

use super::*;

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
