//! One conformance suite, run against every backend: in-memory, a local directory, and a real S3
//! server (`STRATA_TEST_S3_ENDPOINT`; see `common::s3_backend`).

mod common;

use common::{Backend, LocalSegment, manager, test_config, write_segment};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use strata_tiering::manager::UploadOutcome;
use strata_tiering::manifest::{ManifestStore, SegmentState};
use strata_tiering::{PartitionId, RemoteStore, TieringError, keys};
use uuid::Uuid;

fn prefix() -> String {
    format!("conf-{}", Uuid::new_v4().simple())
}

/// Upload three segments (one multipart-sized), read every batch back byte-identical, look up
/// timestamps, restore from the bucket with a fresh manager, expire by retention.
async fn round_trip(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let remote = backend.remote(&prefix());
    let cfg = strata_tiering::TieringConfig {
        multipart_part_size: backend.part_size(),
        ..test_config()
    };
    let big = if matches!(backend, Backend::S3 { .. }) {
        4200
    } else {
        300
    };
    let topic_id = Uuid::new_v4();
    let segs: Vec<LocalSegment> = vec![
        write_segment(dir.path(), "orders", topic_id, 0, 40, 5, true),
        write_segment(dir.path(), "orders", topic_id, 200, big, 3, false),
        write_segment(dir.path(), "orders", topic_id, 200 + big * 3, 25, 4, true),
    ];
    assert!(
        segs[1].desc.size_bytes > cfg.multipart_threshold,
        "second segment goes multipart"
    );
    let mgr = manager(&remote, cfg.clone());
    assert!(!mgr.may_delete_locally("orders", 0, 0, 200).await);
    for s in &segs {
        assert!(matches!(
            mgr.upload_now(&s.desc).await.unwrap(),
            UploadOutcome::Uploaded(_)
        ));
        assert!(
            mgr.may_delete_locally("orders", 0, s.desc.base_offset, s.desc.next_offset)
                .await
        );
    }
    // idempotent
    assert_eq!(
        mgr.upload_now(&segs[0].desc).await.unwrap(),
        UploadOutcome::AlreadyTiered
    );
    let last = segs[2].desc.next_offset - 1;
    assert_eq!(mgr.highest_tiered_offset("orders", 0).await.unwrap(), last);
    assert_eq!(
        mgr.remote_log_start_offset("orders", 0).await.unwrap(),
        Some(0)
    );

    // A fresh manager knows nothing but the bucket (restore from bucket).
    let cold = manager(&remote, test_config());
    let parts = cold.list_remote_partitions().await.unwrap();
    assert_eq!(parts, vec![PartitionId::new("orders", topic_id, 0)]);
    for s in &segs {
        for (i, (base, _, _)) in s.batches.iter().enumerate() {
            for off in [*base, *base + 1] {
                let got = cold.read("orders", 0, off, 1).await.unwrap().unwrap();
                assert_eq!(&got[..], s.batch_at(off), "offset {off}");
            }
            if i % 7 == 0 {
                // multi-batch reads stay whole-batch and byte-identical to the file range
                let got = cold
                    .read("orders", 0, *base, 10_000)
                    .await
                    .unwrap()
                    .unwrap();
                let (_, pos, _) = s.batches[i];
                assert!(got.len() <= 10_000 || got.len() == s.batches[i].2);
                let mut expect: Vec<u8> = s.bytes[pos..].to_vec();
                for later in segs
                    .iter()
                    .filter(|l| l.desc.base_offset > s.desc.base_offset)
                {
                    expect.extend_from_slice(&later.bytes);
                }
                assert_eq!(&got[..], &expect[..got.len()]);
            }
        }
    }
    assert_eq!(cold.read("orders", 0, last + 1, 1000).await.unwrap(), None);
    let all: Vec<u8> = segs.iter().flat_map(|s| s.bytes.clone()).collect();
    assert_eq!(
        &cold
            .read("orders", 0, 0, usize::MAX)
            .await
            .unwrap()
            .unwrap()[..],
        &all[..]
    );
    // timestamps: record at offset o has timestamp 1_000_000 + o
    for o in [0, 1, 7, 199, 200, 450, last] {
        assert_eq!(
            cold.offset_for_timestamp("orders", 0, 1_000_000 + o)
                .await
                .unwrap(),
            Some((o, 1_000_000 + o))
        );
    }
    assert_eq!(
        cold.offset_for_timestamp("orders", 0, 0).await.unwrap(),
        Some((0, 1_000_000))
    );
    // From a floor (the broker's log start, above the remote start after DeleteRecords): the
    // first record at or after the time among those at or above the floor.
    for (ts, floor, expected) in [(0, 7, 7), (10, 450, 450), (460, 450, 460), (10, 201, 201)] {
        assert_eq!(
            cold.offset_for_timestamp_from("orders", 0, 1_000_000 + ts, floor)
                .await
                .unwrap(),
            Some((expected, 1_000_000 + expected)),
            "time {ts} from {floor}"
        );
    }
    assert_eq!(
        cold.offset_for_timestamp("orders", 0, 1_000_000 + last + 1)
            .await
            .unwrap(),
        None
    );

    // DeleteRecords up to inside the second segment: the first (wholly below) goes, the second
    // stays, and the remote log start is the deleted-up-to offset itself
    let floor = segs[1].desc.base_offset + 1;
    let out = mgr
        .run_retention("orders", 0, -1, -1, 0, floor)
        .await
        .unwrap();
    assert_eq!(out.deleted_segments, 1);
    assert_eq!(out.log_start_offset, floor);
    assert_eq!(
        mgr.remote_log_start_offset("orders", 0).await.unwrap(),
        Some(floor)
    );
    // retention by bytes keeps the newest segments whose total fits
    let keep = segs[2].desc.size_bytes as i64;
    let out = mgr
        .run_retention("orders", 0, -1, keep, 0, -1)
        .await
        .unwrap();
    assert_eq!(out.deleted_segments, 1);
    assert_eq!(out.log_start_offset, segs[2].desc.base_offset);
    assert!(matches!(
        mgr.read("orders", 0, 5, 100).await,
        Err(TieringError::OffsetOutOfRange { .. })
    ));
    assert_eq!(
        mgr.remote_log_start_offset("orders", 0).await.unwrap(),
        Some(segs[2].desc.base_offset)
    );
    let objects: Vec<_> = remote
        .store
        .list(Some(&keys::format_segments_dir(&remote.prefix, &parts[0])))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(objects.len(), 1, "expired objects deleted");
    // retention by time: everything is older than now
    let out = mgr
        .run_retention("orders", 0, 1000, -1, i64::MAX / 2, -1)
        .await
        .unwrap();
    assert_eq!(out.deleted_segments, 1);
    assert_eq!(mgr.highest_tiered_offset("orders", 0).await.unwrap(), -1);
    mgr.shutdown().await;
}

/// Conditional writes: two writers from one version, exactly one wins, on this backend.
async fn fenced_manifest(backend: &Backend) {
    let remote: RemoteStore = backend.remote(&prefix());
    let ms = ManifestStore::new(remote.clone());
    let p = PartitionId::new("t", Uuid::new_v4(), 1);
    let v0 = ms.load_or_empty(&p, 1).await.unwrap();
    let (a, b) = tokio::join!(
        ms.save(&v0, v0.manifest.clone(), 1, 1),
        ms.save(&v0, v0.manifest.clone(), 1, 1)
    );
    assert!(
        a.is_ok() ^ b.is_ok(),
        "create: exactly one wins ({a:?} / {b:?})"
    );
    let v1 = ms.load(&p).await.unwrap().unwrap();
    let (a, b) = tokio::join!(
        ms.save(&v1, v1.manifest.clone(), 1, 2),
        ms.save(&v1, v1.manifest.clone(), 1, 2)
    );
    assert!(
        a.is_ok() ^ b.is_ok(),
        "update: exactly one wins ({a:?} / {b:?})"
    );
    assert!(matches!(
        a.err().or(b.err()),
        Some(TieringError::Conflict { .. })
    ));

    // A manifest that vanished underneath a writer (bucket wiped or restored) is a lost race too:
    // the writer must re-read (nothing there) and create, not fail for good.
    let v2 = ms.load(&p).await.unwrap().unwrap();
    remote.store.delete(&ms.key(&p)).await.unwrap();
    let stale = ms.save(&v2, v2.manifest.clone(), 1, 3).await;
    assert!(
        matches!(stale, Err(TieringError::Conflict { .. })),
        "update of a vanished manifest: {stale:?}"
    );
    let fresh = ms.load_or_empty(&p, 1).await.unwrap();
    assert!(fresh.version.is_none(), "nothing left to update");
    ms.save(&fresh, fresh.manifest.clone(), 1, 4)
        .await
        .expect("re-created after the re-read");

    // A manager started with a low epoch (it could not read the bucket's) is fenced until it
    // raises its epoch past the bucket's.
    let dir = tempfile::tempdir().unwrap();
    let seg = write_segment(dir.path(), "t", p.topic_id, 0, 4, 2, false);
    let mut seg_desc = seg.desc.clone();
    seg_desc.partition = 1;
    let newer = ms.load(&p).await.unwrap().unwrap();
    ms.save(&newer, newer.manifest.clone(), 7, 5).await.unwrap();
    let low = manager(&remote, test_config());
    let fenced = low.upload_now(&seg_desc).await;
    assert!(
        matches!(fenced, Err(TieringError::Fenced { .. })),
        "{fenced:?}"
    );
    assert_eq!(low.raise_writer_epoch(8), 8);
    assert_eq!(low.raise_writer_epoch(3), 8, "never lowered");
    assert!(matches!(
        low.upload_now(&seg_desc).await.unwrap(),
        UploadOutcome::Uploaded(_)
    ));
    assert_eq!(ms.load(&p).await.unwrap().unwrap().manifest.writer_epoch, 8);
}

/// Background uploads through the queue, status, and concurrent managers not losing updates.
async fn background_and_status(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let remote = backend.remote(&prefix());
    let mgr = manager(&remote, test_config());
    let topic_id = Uuid::new_v4();
    let segs: Vec<_> = (0..4)
        .map(|i| write_segment(dir.path(), "bg", topic_id, i * 50, 10, 5, i % 2 == 0))
        .collect();
    for s in &segs {
        mgr.on_segment_closed(s.desc.clone());
    }
    mgr.wait_idle().await;
    let st = mgr.partition_status().await.unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].remote_segments, 4);
    assert_eq!(st[0].highest_tiered_offset, 199);
    assert_eq!(st[0].queued_segments, 0);
    assert_eq!(st[0].last_error, None);
    assert_eq!(
        st[0].remote_bytes,
        segs.iter().map(|s| s.desc.size_bytes).sum::<u64>()
    );
    let v = ManifestStore::new(remote.clone())
        .load(&segs[0].desc.partition_id())
        .await
        .unwrap()
        .unwrap();
    assert!(
        v.manifest
            .segments
            .iter()
            .all(|s| s.state == SegmentState::CopySegmentFinished)
    );
    mgr.shutdown().await;
}

/// The markers of multipart uploads under `prefix`: (marker key, upload key, upload id).
async fn multipart_markers(
    remote: &RemoteStore,
) -> Vec<(object_store::path::Path, String, String)> {
    let dir = keys::format_multipart_markers_dir(&remote.prefix);
    let metas: Vec<_> = remote.store.list(Some(&dir)).try_collect().await.unwrap();
    let mut markers = Vec::new();
    for meta in metas {
        let body = remote
            .store
            .get(&meta.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let m: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let field = |f: &str| m[f].as_str().unwrap().to_string();
        markers.push((meta.location, field("key"), field("upload_id")));
    }
    markers
}

/// A writer killed in the middle of a multipart upload leaves nothing once the sweeps ran: on S3
/// (and memory) the upload is aborted, on a local directory its staging file is removed. A marker
/// that outlived its completed upload goes without touching the object.
async fn interrupted_multipart_upload(backend: &Backend) {
    use object_store::multipart::MultipartStore;
    use std::time::Duration;
    let remote = backend.remote(&prefix());
    let key = keys::format_topics_root(&remote.prefix)
        .join("t-x")
        .join("a.seg");
    let part = vec![7u8; backend.part_size()];
    let mut upload = remote.store.put_multipart(&key).await.unwrap();
    upload.put_part(part.clone().into()).await.unwrap();
    let markers = multipart_markers(&remote).await;
    if matches!(backend, Backend::Local(_)) {
        assert!(markers.is_empty(), "a local directory stages files instead");
    } else {
        assert_eq!(markers.len(), 1);
        assert_eq!(markers[0].1, key.as_ref());
    }
    // What a broker runs at start and every reconcile interval (`test_config`: no grace period).
    let reconciler = manager(&remote, test_config());
    let sweep = || async {
        let report = reconciler.reconcile().await.unwrap();
        remote.remove_stale_staging_files(&remote.prefix, Duration::ZERO);
        report.multipart_uploads_aborted
    };
    // Running: left alone, however old.
    assert_eq!(sweep().await, 0);
    let raw = backend.raw_s3();
    if let Some(raw) = &raw {
        raw.put_part(&key, &markers[0].2, 1, b"more".to_vec().into())
            .await
            .expect("the upload is open");
    }
    drop(upload);
    let swept = sweep().await;
    assert!(multipart_markers(&remote).await.is_empty());
    assert!(remote.store.head(&key).await.is_err(), "nothing visible");
    match backend {
        Backend::Local(dir) => {
            let mut left = Vec::new();
            let mut dirs = vec![dir.path().to_path_buf()];
            while let Some(d) = dirs.pop() {
                for e in std::fs::read_dir(d).unwrap().flatten() {
                    if e.path().is_dir() {
                        dirs.push(e.path());
                    } else {
                        left.push(e.path());
                    }
                }
            }
            assert!(left.is_empty(), "staging files left: {left:?}");
        }
        _ => assert_eq!(swept, 1),
    }
    if let Some(raw) = &raw {
        let gone = raw
            .put_part(&key, &markers[0].2, 2, b"more".to_vec().into())
            .await;
        assert!(gone.is_err(), "the interrupted upload was aborted");
    }

    // Completed, but the process died before deleting the marker: the sweep deletes the marker,
    // and the object stays whole. (S3 answers NoSuchUpload; InMemory has no such answer.)
    if !matches!(backend, Backend::S3 { .. }) {
        return;
    }
    let mut upload = remote.store.put_multipart(&key).await.unwrap();
    upload.put_part(part.clone().into()).await.unwrap();
    let (marker, _, _) = multipart_markers(&remote).await.remove(0);
    let marker_body = remote
        .store
        .get(&marker)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    upload.complete().await.unwrap();
    assert!(multipart_markers(&remote).await.is_empty());
    remote.store.put(&marker, marker_body.into()).await.unwrap();
    assert_eq!(sweep().await, 1);
    assert!(multipart_markers(&remote).await.is_empty());
    let got = remote.store.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(got.len(), part.len());
    assert!(got.iter().all(|b| *b == 7));
}

macro_rules! suite {
    ($($name:ident),*) => {
        mod memory {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(&super::Backend::Memory).await } )*
        }
        mod local_dir {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(&super::Backend::Local(tempfile::tempdir().unwrap())).await } )*
        }
        mod s3 {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() {
                   let Some(b) = super::common::s3_backend().await else { return };
                   super::$name(&b).await
               } )*
        }
    };
}

suite!(
    round_trip,
    fenced_manifest,
    background_and_status,
    interrupted_multipart_upload
);
