//! Fault tests: failing and slow stores, crashes mid-upload and mid-retention, corruption,
//! racing managers. Run on the in-memory store wrapped in `faults::FaultyStore`.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{manager, test_config, wrap, write_segment};
use futures::TryStreamExt;
use object_store::{ObjectStoreExt, PutPayload};
use strata_tiering::faults::FaultyStore;
use strata_tiering::manager::UploadOutcome;
use strata_tiering::manifest::{ManifestStore, SegmentState};
use strata_tiering::{PartitionId, RemoteStore, TieringConfig, TieringError, keys};
use uuid::Uuid;

fn faulty() -> (RemoteStore, Arc<FaultyStore>) {
    let base = RemoteStore::from_url("memory://x/faults").unwrap();
    let f = Arc::new(FaultyStore::new(base.store.clone()));
    (wrap(&base, f.clone()), f)
}

async fn objects(remote: &RemoteStore, p: &PartitionId) -> usize {
    let dir = keys::format_segments_dir(&remote.prefix, p);
    let v: Vec<_> = remote.store.list(Some(&dir)).try_collect().await.unwrap();
    v.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_puts_are_retried_without_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, f) = faulty();
    let mgr = manager(&remote, test_config());
    let small = write_segment(dir.path(), "t", Uuid::new_v4(), 0, 10, 5, false);
    f.faults.fail_next_puts(2);
    assert!(matches!(
        mgr.upload_now(&small.desc).await.unwrap(),
        UploadOutcome::Uploaded(_)
    ));
    assert_eq!(
        &mgr.read("t", 0, 0, usize::MAX).await.unwrap().unwrap()[..],
        &small.bytes[..]
    );

    // multipart: fail once 20 KiB of parts were accepted, then recover
    let big = write_segment(dir.path(), "t", small.desc.topic_id, 50, 300, 3, true);
    f.faults.fail_parts_after(20 * 1024);
    assert!(matches!(
        mgr.upload_now(&big.desc).await.unwrap(),
        UploadOutcome::Uploaded(_)
    ));
    assert!(
        f.faults.aborts.load(Ordering::SeqCst) >= 1,
        "failed multipart upload aborted"
    );
    let got = mgr.read("t", 0, 50, usize::MAX).await.unwrap().unwrap();
    assert_eq!(&got[..], &big.bytes[..]);
    // the dead attempt left nothing behind: one object per segment, all entries finished
    let p = small.desc.partition_id();
    assert_eq!(objects(&remote, &p).await, 2);
    let v = ManifestStore::new(remote.clone())
        .load(&p)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.manifest.segments.len(), 2);
    assert!(
        v.manifest
            .segments
            .iter()
            .all(|s| s.state == SegmentState::CopySegmentFinished)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_upload_survives_an_outage() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, f) = faulty();
    let cfg = TieringConfig {
        upload_max_attempts: 2,
        ..test_config()
    };
    let mgr = manager(&remote, cfg);
    let s = write_segment(dir.path(), "t", Uuid::new_v4(), 0, 10, 5, false);
    f.faults.fail_next_puts(5); // more than one retry round
    mgr.on_segment_closed(s.desc.clone());
    mgr.wait_idle().await;
    assert!(mgr.may_delete_locally("t", 0, 0, 50).await);
    let st = mgr.partition_status().await.unwrap();
    assert_eq!(
        (
            st[0].remote_segments,
            st[0].queued_segments,
            st[0].last_error.clone()
        ),
        (1, 0, None)
    );
}

/// A manifest write the store saved but whose answer was lost comes back as a conflict; the
/// re-read and re-applied change must find its own entry, not add a second one that a later
/// reconcile would take for an abandoned attempt and delete together with the segment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_manifest_write_whose_answer_was_lost_is_not_applied_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, f) = faulty();
    let mut config = test_config();
    config.orphan_grace = Duration::ZERO;
    let mgr = manager(&remote, config.clone());
    let s = write_segment(dir.path(), "t", Uuid::new_v4(), 0, 300, 3, false);
    let p = s.desc.partition_id();
    // Step 1 (copy started) and step 3 (copy finished) both lose their answers.
    f.faults.lose_next_conditional_answers(2);
    assert!(matches!(
        mgr.upload_now(&s.desc).await.unwrap(),
        UploadOutcome::Uploaded(_)
    ));
    let v = ManifestStore::new(remote.clone())
        .load(&p)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.manifest.segments.len(), 1, "{:?}", v.manifest.segments);
    assert_eq!(
        v.manifest.segments[0].state,
        SegmentState::CopySegmentFinished
    );

    // A restarted broker's reconcile, with no grace, finds nothing abandoned: the segment stays.
    let after = manager(&remote, config);
    let report = after.reconcile().await.unwrap();
    assert_eq!(report.abandoned_uploads, 0);
    assert_eq!(objects(&remote, &p).await, 1);
    assert!(
        after
            .may_delete_locally("t", 0, 0, s.desc.next_offset)
            .await
    );
    assert_eq!(
        &after.read("t", 0, 0, usize::MAX).await.unwrap().unwrap()[..],
        &s.bytes[..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_upload_is_never_read_and_reconcile_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, f) = faulty();
    let mgr = manager(&remote, test_config());
    let s = write_segment(dir.path(), "t", Uuid::new_v4(), 0, 300, 3, false);
    let p = s.desc.partition_id();
    f.faults.put_delay(Duration::from_millis(200));
    // "crash": the upload future is dropped midway through the multipart upload
    let cut = tokio::time::timeout(Duration::from_millis(300), mgr.upload_now(&s.desc)).await;
    assert!(cut.is_err(), "upload was cut off");
    f.faults.put_delay(Duration::ZERO);
    // plus an orphan object nobody references (e.g. a crash after an entry was retired)
    let orphan = keys::format_segment(
        &remote.prefix,
        &keys::SegmentKey {
            partition: p.clone(),
            base_offset: 999,
            upload_id: Uuid::new_v4(),
        },
    );
    remote
        .store
        .put(&orphan, PutPayload::from_static(b"junk"))
        .await
        .unwrap();

    let after = manager(&remote, test_config()); // a restarted broker
    assert!(
        !after.may_delete_locally("t", 0, 0, 900).await,
        "started upload is not tiered"
    );
    assert_eq!(after.read("t", 0, 0, 100).await.unwrap(), None);
    let v = ManifestStore::new(remote.clone())
        .load(&p)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        v.manifest.segments[0].state,
        SegmentState::CopySegmentStarted
    );

    let report = after.reconcile().await.unwrap();
    assert_eq!(report.abandoned_uploads, 1);
    assert!(report.orphans_deleted >= 1);
    assert_eq!(objects(&remote, &p).await, 0);
    let v = ManifestStore::new(remote.clone())
        .load(&p)
        .await
        .unwrap()
        .unwrap();
    assert!(v.manifest.segments.is_empty());
    // and the segment uploads fine afterwards
    assert!(matches!(
        after.upload_now(&s.desc).await.unwrap(),
        UploadOutcome::Uploaded(_)
    ));
    assert_eq!(
        &after.read("t", 0, 0, usize::MAX).await.unwrap().unwrap()[..],
        &s.bytes[..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_between_log_start_advance_and_delete_is_finished_by_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, f) = faulty();
    let mgr = manager(&remote, test_config());
    let id = Uuid::new_v4();
    let a = write_segment(dir.path(), "t", id, 0, 10, 5, false);
    let b = write_segment(dir.path(), "t", id, 50, 10, 5, false);
    mgr.upload_now(&a.desc).await.unwrap();
    mgr.upload_now(&b.desc).await.unwrap();
    f.faults.fail_deletes(true);
    let r = mgr
        .run_retention("t", 0, -1, b.desc.size_bytes as i64, 0, -1)
        .await;
    assert!(r.is_err(), "deletes failed after the manifest moved");
    // readers already see the new start; the object is still there
    assert!(matches!(
        mgr.read("t", 0, 0, 10).await,
        Err(TieringError::OffsetOutOfRange { .. })
    ));
    assert_eq!(mgr.remote_log_start_offset("t", 0).await.unwrap(), Some(50));
    let p = a.desc.partition_id();
    assert_eq!(objects(&remote, &p).await, 2);
    f.faults.fail_deletes(false);
    let report = manager(&remote, test_config()).reconcile().await.unwrap();
    assert_eq!(report.deletes_finished, 1);
    assert_eq!(objects(&remote, &p).await, 1);
    let v = ManifestStore::new(remote.clone())
        .load(&p)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.manifest.segments.len(), 1);
    assert_eq!(v.manifest.log_start_offset, 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_chunk_is_an_error_never_served() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, _f) = faulty();
    let mgr = manager(&remote, test_config());
    let s = write_segment(dir.path(), "t", Uuid::new_v4(), 0, 40, 5, false);
    let UploadOutcome::Uploaded(seg) = mgr.upload_now(&s.desc).await.unwrap() else {
        panic!()
    };
    let key = object_store::path::Path::from(seg.object_key.as_str());
    let mut bytes = remote
        .store
        .get(&key)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec();
    bytes[20] ^= 0x55; // inside chunk 0
    remote
        .store
        .put(&key, PutPayload::from(bytes))
        .await
        .unwrap();
    let cold = manager(&remote, test_config());
    let err = cold.read("t", 0, 0, 100).await.unwrap_err();
    assert!(matches!(err, TieringError::Corrupt { .. }), "{err}");
    assert!(!err.is_retryable());
    // still an error the second time (not cached as good)
    assert!(cold.read("t", 0, 0, 100).await.is_err());
    // other chunks are still served
    let last = s.batches.last().unwrap().0;
    assert_eq!(
        &cold.read("t", 0, last, 1).await.unwrap().unwrap()[..],
        s.batch_at(last)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_managers_one_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, _f) = faulty();
    let id = Uuid::new_v4();
    let segs: Vec<_> = (0..6)
        .map(|i| write_segment(dir.path(), "t", id, i * 50, 10, 5, false))
        .collect();
    // same epoch, concurrent writers of different segments: CAS + re-read, no lost update
    let (m1, m2) = (
        manager(&remote, test_config()),
        manager(&remote, test_config()),
    );
    let (r1, r2) = tokio::join!(
        async {
            for s in segs.iter().step_by(2) {
                m1.upload_now(&s.desc).await.unwrap();
            }
        },
        async {
            for s in segs.iter().skip(1).step_by(2) {
                m2.upload_now(&s.desc).await.unwrap();
            }
        }
    );
    let _ = (r1, r2);
    let p = segs[0].desc.partition_id();
    let v = ManifestStore::new(remote.clone())
        .load(&p)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v.manifest.finished().count(), 6, "every upload recorded");
    // a newer epoch takes over; the old writer is fenced, not merged
    let new = manager(
        &remote,
        TieringConfig {
            writer_epoch: 2,
            ..test_config()
        },
    );
    let extra = write_segment(dir.path(), "t", id, 300, 10, 5, false);
    new.upload_now(&extra.desc).await.unwrap();
    let late = write_segment(dir.path(), "t", id, 350, 10, 5, false);
    let fresh_old = manager(&remote, test_config());
    let err = fresh_old.upload_now(&late.desc).await.unwrap_err();
    assert!(matches!(err, TieringError::Fenced { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_store_concurrent_readers_share_one_download() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, f) = faulty();
    let mgr = manager(&remote, test_config());
    let s = write_segment(dir.path(), "t", Uuid::new_v4(), 0, 40, 5, false);
    mgr.upload_now(&s.desc).await.unwrap();
    let cold = manager(
        &remote,
        TieringConfig {
            read_ahead_chunks: 0,
            ..test_config()
        },
    );
    cold.read("t", 0, 199, 1).await.unwrap(); // warm manifest + footer
    f.faults.get_delay(Duration::from_millis(100));
    let before = cold.cache_stats().downloads.load(Ordering::SeqCst);
    let reads: Vec<_> = (0..8)
        .map(|_| {
            let c = cold.clone();
            tokio::spawn(async move { c.read("t", 0, 0, 1).await })
        })
        .collect();
    for r in reads {
        assert_eq!(&r.await.unwrap().unwrap().unwrap()[..], s.batch_at(0));
    }
    assert_eq!(
        cold.cache_stats().downloads.load(Ordering::SeqCst) - before,
        1
    );
}

/// A sequential reader at the end of one segment finds the first chunks of the next segment
/// already downloaded: read-ahead does not stop at segment boundaries (on a slow store each
/// boundary would otherwise cost a footer GET plus a chunk GET while the consumer waits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ahead_runs_on_into_the_next_segment() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, _faults) = faulty();
    let mgr = manager(&remote, test_config());
    let id = Uuid::new_v4();
    let first = write_segment(dir.path(), "t", id, 0, 40, 5, false);
    let second = write_segment(dir.path(), "t", id, 200, 40, 5, false);
    mgr.upload_now(&first.desc).await.unwrap();
    mgr.upload_now(&second.desc).await.unwrap();
    let cold = manager(
        &remote,
        TieringConfig {
            read_ahead_chunks: 2,
            ..test_config()
        },
    );
    let stats = cold.cache_stats();
    // The last batch of the first segment: its chunk is the segment's last.
    let last = cold.read("t", 0, 195, 1).await.unwrap().unwrap();
    assert_eq!(&last[..], first.batch_at(195));
    // The read-ahead runs in the background: its footer GET, then two chunk GETs.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while stats.downloads.load(Ordering::SeqCst) < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the next segment's chunks were never prefetched ({} downloads)",
            stats.downloads.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let hits = stats.memory_hits.load(Ordering::SeqCst);
    let next = cold.read("t", 0, 200, 1).await.unwrap().unwrap();
    assert_eq!(&next[..], second.batch_at(200));
    assert_eq!(
        stats.memory_hits.load(Ordering::SeqCst),
        hits + 1,
        "the next segment's first chunk came from the cache"
    );
}

/// A sequential reader whose read-ahead window is larger than the memory cache downloads (and
/// decompresses) each chunk once: the window is cut to what the cache holds, so prefetched
/// chunks are not evicted before their read. Every byte read back is the segment's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ahead_never_outgrows_the_memory_cache() {
    let (_dir, remote, s) = one_uploaded_segment().await;
    let chunk_size = test_config().chunk_size;
    // Without read-ahead, and with a cache larger than the segment: each chunk read once.
    let reference = manager(
        &remote,
        TieringConfig {
            read_ahead_chunks: 0,
            ..test_config()
        },
    );
    assert_eq!(read_sequentially(&reference, chunk_size).await, s.bytes);
    let chunks = reference.cache_stats().downloads.load(Ordering::SeqCst);
    assert!(
        chunks > 2,
        "the segment spans more chunks than the cache holds"
    );
    let cold = manager(
        &remote,
        TieringConfig {
            read_ahead_chunks: 6,
            cache_memory_bytes: 2 * chunk_size as u64,
            ..test_config()
        },
    );
    assert_eq!(read_sequentially(&cold, chunk_size).await, s.bytes);
    assert_eq!(
        cold.cache_stats().downloads.load(Ordering::SeqCst),
        chunks,
        "chunk downloads of a sequential read with read-ahead"
    );
}

/// A read spanning chunks as parts: one slice per chunk, in order, the same bytes as the joined
/// read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_across_chunks_comes_as_one_part_per_chunk() {
    let (_dir, remote, s) = one_uploaded_segment().await;
    let mgr = manager(&remote, test_config());
    let chunk_size = test_config().chunk_size;
    let parts = mgr.read_parts("t", 0, 0, 3 * chunk_size).await.unwrap();
    let joined = mgr.read("t", 0, 0, 3 * chunk_size).await.unwrap().unwrap();
    assert!(
        parts.len() >= 3,
        "{} parts for three chunks' worth",
        parts.len()
    );
    assert!(parts.iter().all(|p| p.len() <= chunk_size));
    assert_eq!(parts.concat(), joined);
    assert_eq!(&joined[..], &s.bytes[..joined.len()]);
    assert!(mgr.read_parts("t", 0, 300, 1).await.unwrap().is_empty());
}

/// A segment of partition `t`-0, offsets 0..300 in 60 batches, uploaded to a fresh store; the
/// directory holds its local files.
async fn one_uploaded_segment() -> (tempfile::TempDir, RemoteStore, common::LocalSegment) {
    let dir = tempfile::tempdir().unwrap();
    let (remote, _faults) = faulty();
    let s = write_segment(dir.path(), "t", Uuid::new_v4(), 0, 60, 5, false);
    manager(&remote, test_config())
        .upload_now(&s.desc)
        .await
        .unwrap();
    (dir, remote, s)
}

/// Reads partition `t`-0 from offset 0 to its end, `max_bytes` at a time, as a consumer does.
async fn read_sequentially(mgr: &strata_tiering::RemoteLogManager, max_bytes: usize) -> Vec<u8> {
    let mut offset = 0;
    let mut read_back = Vec::new();
    while let Some(bytes) = mgr.read("t", 0, offset, max_bytes).await.unwrap() {
        let last = strata_format::BatchIter::new(bytes.clone())
            .last()
            .expect("a read returns whole batches");
        offset = last.next_offset();
        read_back.extend_from_slice(&bytes);
    }
    read_back
}

/// The copy and fetch byte-rate quotas (KIP-956's `remote.log.manager.{copy,fetch}.max.bytes.per.second`)
/// pace uploads and cold reads to their rate (after a one-second burst), the bytes read are the
/// ones uploaded, and lifting the fetch quota while a read waits lets it finish at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_pace_uploads_and_cold_reads_and_change_live() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, _faults) = faulty();
    // Stored as is, so that the bytes charged are the segment's own.
    let config = TieringConfig {
        compression: strata_tiering::segment_object::Compression::None,
        ..test_config()
    };
    let segment = write_segment(dir.path(), "t", Uuid::new_v4(), 0, 60, 5, false);
    let size = segment.desc.size_bytes;
    // One second of burst, then 1.5 s more for the rest of the bytes.
    let rate = size * 2 / 5;
    let paced = Duration::from_millis(1400);

    let uploader = manager(
        &remote,
        TieringConfig {
            copy_max_bytes_per_second: Some(rate),
            ..config.clone()
        },
    );
    let started = std::time::Instant::now();
    uploader.upload_now(&segment.desc).await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= paced,
        "{size} bytes uploaded at {rate} B/s in {took:?}"
    );
    assert!(uploader.quota_throttled().0 >= paced);

    let reader = manager(
        &remote,
        TieringConfig {
            fetch_max_bytes_per_second: Some(rate),
            ..config.clone()
        },
    );
    let started = std::time::Instant::now();
    let all = reader.read("t", 0, 0, usize::MAX).await.unwrap().unwrap();
    let took = started.elapsed();
    assert_eq!(&all[..], &segment.bytes[..]);
    assert!(took >= paced, "{size} bytes read at {rate} B/s in {took:?}");
    assert!(reader.quota_throttled().1 >= paced);
    assert_eq!(reader.quota_throttled().0, Duration::ZERO);

    // A quota that would take over a minute, lifted while the read waits.
    let slow = manager(
        &remote,
        TieringConfig {
            fetch_max_bytes_per_second: Some(size / 60),
            ..config
        },
    );
    let read = {
        let slow = slow.clone();
        tokio::spawn(async move { slow.read("t", 0, 0, usize::MAX).await })
    };
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!read.is_finished(), "the read waits for its quota");
    slow.set_fetch_quota(None);
    assert_eq!(slow.quotas(), (None, None));
    let all = tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("lifting the quota ends the wait")
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&all[..], &segment.bytes[..]);
}

/// An upload that failed for good (here: the local file vanished) while the next segment
/// uploaded: `needs_upload` still names it, so the broker's catch-up scan offers it again,
/// and names nothing the bucket covers or remote retention already removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_whose_upload_failed_for_good_is_still_needed() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, _f) = faulty();
    let mgr = manager(&remote, test_config());
    let id = Uuid::new_v4();
    let first = write_segment(dir.path(), "t", id, 0, 10, 5, false);
    let second = write_segment(dir.path(), "t", id, 50, 10, 5, false);
    let third = write_segment(dir.path(), "t", id, 100, 10, 5, false);
    let ranges = [(0, 50), (50, 100), (100, 150)];
    assert_eq!(
        mgr.needs_upload("t", 0, &ranges).await.unwrap(),
        [true, true, true]
    );
    mgr.upload_now(&first.desc).await.unwrap();
    let moved = dir.path().join("moved.log");
    std::fs::rename(&second.desc.log_path, &moved).unwrap();
    let failed = mgr.upload_now(&second.desc).await;
    assert!(matches!(&failed, Err(e) if !e.is_retryable()), "{failed:?}");
    mgr.upload_now(&third.desc).await.unwrap();
    assert_eq!(
        mgr.needs_upload("t", 0, &ranges).await.unwrap(),
        [false, true, false]
    );
    std::fs::rename(&moved, &second.desc.log_path).unwrap();
    mgr.upload_now(&second.desc).await.unwrap();
    assert_eq!(
        mgr.needs_upload("t", 0, &ranges).await.unwrap(),
        [false, false, false]
    );
    // Remote retention took the first two: below the remote log start, not needed again.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    mgr.run_retention("t", 0, -1, -1, now, 100).await.unwrap();
    assert_eq!(
        mgr.needs_upload("t", 0, &[(0, 50), (50, 100), (100, 150), (150, 200)])
            .await
            .unwrap(),
        [false, false, false, true]
    );
}

/// A pass never expires past `expire_up_to` (the broker's log start, moved first on a plan
/// made from an older manifest), even when its rules would take more: an upload that finished
/// after the plan must not let it delete data the broker still serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_never_expires_past_the_brokers_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let (remote, _f) = faulty();
    let mgr = manager(&remote, test_config());
    let id = Uuid::new_v4();
    for base in [0, 50, 100] {
        let s = write_segment(dir.path(), "t", id, base, 10, 5, false);
        mgr.upload_now(&s.desc).await.unwrap();
    }
    let pass = strata_tiering::manager::RetentionPass {
        retention_ms: -1,
        retention_bytes: 0,
        now_ms: 0,
        deleted_below: -1,
        expire_up_to: 50,
    };
    let outcome = mgr.run_retention_pass("t", 0, pass).await.unwrap();
    assert_eq!(
        (outcome.deleted_segments, outcome.log_start_offset),
        (1, 50)
    );
    assert!(mgr.read("t", 0, 50, usize::MAX).await.unwrap().is_some());
    assert_eq!(
        mgr.needs_upload("t", 0, &[(50, 100), (100, 150)])
            .await
            .unwrap(),
        [false, false],
        "the other two are still there"
    );
    let pass = strata_tiering::manager::RetentionPass {
        expire_up_to: i64::MAX,
        ..pass
    };
    let outcome = mgr.run_retention_pass("t", 0, pass).await.unwrap();
    assert_eq!(outcome.deleted_segments, 2);
}
