//! Tiered storage under faults, with real processes: `kill -9` of strata during uploads and
//! remote deletion, a corrupted remote chunk, tiering turned off and on again, topic deletion
//! and DeleteRecords into the remote range, and restores from the bucket after them. The S3
//! server's own failures are in `tiering_s3_outages.rs`.

#[path = "tiering_support.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use strata_tests::{Tool, create_tiered_topic, kcat, require};
use support::{
    active_segment_base, client, consume_checked, list_offset, local_segments, partition_status,
    tiered_builder, tiered_topic_with_records, wait_tiered, wait_until,
};

/// Every `.seg` object under `dir` and every object key the manifests reference.
fn objects_and_references(dir: &Path) -> (Vec<String>, Vec<String>) {
    let (mut objects, mut referenced) = (Vec::new(), Vec::new());
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            let rel = path
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if rel.contains("/segments/") {
                // Segment objects, and any staging file (`<key>#<n>`) an interrupted upload
                // left behind.
                objects.push(rel);
            } else if rel.ends_with("manifest.json") {
                let m: serde_json::Value =
                    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
                for s in m["segments"].as_array().unwrap() {
                    referenced.push(s["object_key"].as_str().unwrap().to_string());
                }
            }
        }
    }
    objects.sort();
    referenced.sort();
    (objects, referenced)
}

fn assert_no_orphans(dir: &Path) {
    let (objects, referenced) = objects_and_references(dir);
    assert_eq!(
        objects, referenced,
        "objects in the bucket vs manifest entries"
    );
}

#[test]
fn tiering_kill9_during_upload_and_remote_deletion_leaves_no_orphan_or_dangling_entry() {
    if !require(Tool::Python) || !require(Tool::Kcat) {
        return;
    }
    let remote = tempfile::tempdir().unwrap();
    let url = format!("file://{}", remote.path().display());
    let builder = tiered_builder(&url, &[]).set("remote.log.manager.orphan.grace.ms", "0");
    let mut strata = builder.start();
    let topic = "kill9";
    create_tiered_topic(&strata, topic, 20000);
    client(&["produce", &strata.kafka_addr(), topic, "3000", "a"]);
    // Uploads are in flight now: crash.
    strata.kill9();
    strata.restart();
    wait_tiered(&strata, topic, 2999);
    consume_checked(&strata.kafka_addr(), topic, 3000, "a", "g1", 0);
    assert_no_orphans(remote.path());

    // Remote retention deletes: crash in the middle, then check the bucket is consistent.
    client(&[
        "alter",
        &strata.kafka_addr(),
        topic,
        "retention.bytes=60000",
        "local.retention.bytes=1",
    ]);
    std::thread::sleep(Duration::from_millis(1300));
    strata.kill9();
    strata.restart();
    wait_until(
        "remote retention moved the log start",
        Duration::from_secs(60),
        || list_offset(&strata, topic, -2) > 0,
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_no_orphans(remote.path());
    let start = list_offset(&strata, topic, -2);
    let remote_start = partition_status(&strata, topic)["remote_log_start_offset"]
        .as_i64()
        .unwrap();
    assert!(
        remote_start <= start,
        "remote start {remote_start} > log start {start}"
    );
}

#[test]
fn tiering_corrupt_remote_chunk_is_an_error_never_bad_bytes() {
    if !require(Tool::Python) || !require(Tool::Kcat) {
        return;
    }
    let remote = tempfile::tempdir().unwrap();
    let strata = tiered_builder(&format!("file://{}", remote.path().display()), &[]).start();
    let topic = "corrupt";
    tiered_topic_with_records(&strata, topic, 3000, "a");
    // Flip bytes in the middle of the first segment object (inside its first chunk).
    let (objects, _) = objects_and_references(remote.path());
    let first: PathBuf = remote.path().join(&objects[0]);
    let mut bytes = std::fs::read(&first).unwrap();
    let mid = bytes.len() / 3;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0xA5;
    }
    std::fs::write(&first, bytes).unwrap();
    let out = client(&[
        "consume-prefix",
        &strata.kafka_addr(),
        topic,
        "3000",
        "a",
        "corrupt-g",
        "15",
    ]);
    let got: usize = out.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(got < 3000, "a corrupt chunk must not be served: {out}");
    assert!(
        strata.logs().contains("corrupt remote data"),
        "{}",
        strata.logs()
    );
}

#[test]
fn tiering_off_and_on_again_loses_nothing_and_delete_on_disable_empties_the_bucket() {
    if !require(Tool::Python) || !require(Tool::Kcat) {
        return;
    }
    let remote = tempfile::tempdir().unwrap();
    let strata = tiered_builder(&format!("file://{}", remote.path().display()), &[]).start();
    let topic = "offon";
    tiered_topic_with_records(&strata, topic, 1000, "a");
    client(&[
        "alter",
        &strata.kafka_addr(),
        topic,
        "remote.storage.enable=false",
    ]);
    // Segments closed while tiering is off stay local (retention.ms=-1, retention.bytes=-1) ...
    client(&["produce", &strata.kafka_addr(), topic, "1000", "a", "1000"]);
    client(&[
        "alter",
        &strata.kafka_addr(),
        topic,
        "remote.storage.enable=true",
    ]);
    // ... and are uploaded once it is back on.
    wait_tiered(&strata, topic, 1999);
    consume_checked(&strata.kafka_addr(), topic, 2000, "a", "offon-g", 0);
    assert_no_orphans(remote.path());

    // remote.log.copy.disable (KIP-950): new segments stay local, the remote ones stay readable.
    client(&[
        "alter",
        &strata.kafka_addr(),
        topic,
        "remote.log.copy.disable=true",
    ]);
    let tiered_before = partition_status(&strata, topic)["highest_tiered_offset"]
        .as_i64()
        .unwrap();
    assert!(tiered_before < 2000, "{tiered_before}");
    client(&["produce", &strata.kafka_addr(), topic, "1000", "a", "2000"]);
    // Time for the segments to close (segment.bytes, then segment.ms for the last) and for
    // several upload rounds (remote.log.manager.task.interval.ms=1000) that must do nothing.
    wait_until(
        "segments close while copy is disabled",
        Duration::from_secs(60),
        || local_segments(strata.data_dir(), topic) >= 4,
    );
    std::thread::sleep(Duration::from_secs(4));
    let status = partition_status(&strata, topic);
    assert_eq!(status["copy_enabled"], false, "{status}");
    assert_eq!(
        status["highest_tiered_offset"].as_i64(),
        Some(tiered_before),
        "nothing is uploaded while copy is disabled: {status}"
    );
    let local_start = list_offset(&strata, topic, -4);
    assert!(
        local_start <= 2000,
        "new data left local disk: -4 = {local_start}"
    );
    consume_checked(&strata.kafka_addr(), topic, 3000, "a", "copy-off-g", 0);
    // Copy enabled again: the held-back segments go up and leave local disk, nothing lost.
    client(&[
        "alter",
        &strata.kafka_addr(),
        topic,
        "remote.log.copy.disable=false",
    ]);
    wait_tiered(&strata, topic, 2999);
    consume_checked(&strata.kafka_addr(), topic, 3000, "a", "copy-on-g", 0);
    assert_no_orphans(remote.path());

    // Segments uploaded and still local when tiering goes off with delete.on.disable.
    client(&[
        "alter",
        &strata.kafka_addr(),
        topic,
        "local.retention.bytes=-2",
    ]);
    client(&["produce", &strata.kafka_addr(), topic, "1000", "a", "3000"]);
    wait_until(
        "the closed segments up to 3999 are uploaded (and kept local)",
        Duration::from_secs(90),
        || {
            let active = active_segment_base(strata.data_dir(), topic).unwrap_or(0);
            let status = partition_status(&strata, topic);
            active > 3000
                && status["highest_tiered_offset"].as_i64().unwrap_or(-1) + 1 >= active
                && status["upload_lag_bytes"].as_u64() == Some(0)
        },
    );
    assert!(local_segments(strata.data_dir(), topic) >= 4);
    client(&[
        "alter",
        &strata.kafka_addr(),
        topic,
        "remote.storage.enable=false",
        "remote.log.delete.on.disable=true",
    ]);
    wait_until("remote data deleted", Duration::from_secs(60), || {
        objects_and_references(remote.path()).0.is_empty()
    });
    let log_start = list_offset(&strata, topic, -2);
    assert_eq!(log_start, list_offset(&strata, topic, -4));
    assert!(log_start <= 3000, "{log_start}");

    // On again: the emptied remote log starts over at the log start, so the segments still
    // local are uploaded again and leave local disk like new ones (they counted as tiered and
    // stayed local for good), and every record is there, byte for byte.
    client(&[
        "alter",
        &strata.kafka_addr(),
        topic,
        "remote.storage.enable=true",
        "local.retention.bytes=1",
    ]);
    client(&["produce", &strata.kafka_addr(), topic, "1000", "a", "4000"]);
    wait_tiered(&strata, topic, 4999);
    wait_until(
        "the segments kept local across the off/on leave local disk",
        Duration::from_secs(60),
        || list_offset(&strata, topic, -4) > 4000,
    );
    assert_eq!(list_offset(&strata, topic, -2), log_start);
    consume_checked(
        &strata.kafka_addr(),
        topic,
        (5000 - log_start) as usize,
        "a",
        "on-again-g",
        log_start,
    );
    assert_no_orphans(remote.path());
}

/// Every file under the topic's directories in a local-directory bucket (`topics/<topic>-<id>/`).
fn topic_files(bucket: &Path, topic: &str) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let topics = bucket.join("topics");
    for dir in std::fs::read_dir(&topics).into_iter().flatten().flatten() {
        let name = dir.file_name().to_string_lossy().into_owned();
        // `<topic>-<36-char uuid>`
        if name.len() != topic.len() + 37 || !name.starts_with(&format!("{topic}-")) {
            continue;
        }
        let mut stack = vec![dir.path()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if entry.path().is_dir() {
                    stack.push(entry.path());
                } else {
                    files.push(entry.path());
                }
            }
        }
    }
    files
}

#[test]
fn tiering_topic_deletion_removes_remote_data_and_restore_never_resurrects_it() {
    if !require(Tool::Python) || !require(Tool::Kcat) {
        return;
    }
    let remote = tempfile::tempdir().unwrap();
    let url = format!("file://{}", remote.path().display());
    let mut strata = tiered_builder(&url, &[]).start();
    for topic in ["doomed", "kept", "interrupted"] {
        create_tiered_topic(&strata, topic, 20000);
        client(&["produce", &strata.kafka_addr(), topic, "3000", "a"]);
    }
    for topic in ["doomed", "kept", "interrupted"] {
        wait_tiered(&strata, topic, 2999);
        let files = topic_files(remote.path(), topic);
        assert!(
            files.iter().any(|f| f.ends_with("topic.json"))
                && files.iter().any(|f| f.ends_with("manifest.json"))
                && files
                    .iter()
                    .filter(|f| f.extension().is_some_and(|e| e == "seg"))
                    .count()
                    > 5,
            "{topic}: {files:?}"
        );
    }

    // DeleteTopics: segments, manifest, topic metadata all leave the bucket.
    client(&["delete", &strata.kafka_addr(), "doomed"]);
    wait_until(
        "the deleted topic's objects are gone",
        Duration::from_secs(60),
        || topic_files(remote.path(), "doomed").is_empty(),
    );
    assert_no_orphans(remote.path());
    assert!(topic_files(remote.path(), "kept").len() > 5);

    // A crash right after the tombstone was written (before anything was deleted): a broker
    // restored from the bucket must not bring the topic back, and finishes the deletion.
    strata.stop();
    let dir = topic_files(remote.path(), "interrupted")[0]
        .ancestors()
        .find(|d| d.parent() == Some(&remote.path().join("topics")))
        .unwrap()
        .to_path_buf();
    std::fs::write(dir.join("deleted.json"), b"{}").unwrap();
    let restored = tiered_builder(&url, &[]).start();
    assert_eq!(list_offset(&restored, "kept", -2), 0);
    consume_checked(&restored.kafka_addr(), "kept", 2800, "a", "kept-g", 0);
    for gone in ["doomed", "interrupted"] {
        assert!(
            !restored.data_dir().join(format!("{gone}-0")).exists(),
            "{gone} was restored"
        );
    }
    wait_until(
        "the interrupted deletion is finished",
        Duration::from_secs(60),
        || topic_files(remote.path(), "interrupted").is_empty(),
    );
    assert_no_orphans(remote.path());
}

/// DeleteRecords into the remote range: the records below the offset are gone for good. The
/// remote segments wholly below it leave the bucket, the remote log start becomes the offset
/// itself, a restart does not lower the log start back to the old remote start (it did), and a
/// broker restored from the bucket on an empty data directory starts there too.
#[test]
fn tiering_delete_records_into_the_remote_range_is_final_across_restart_and_restore() {
    if !require(Tool::Python) || !require(Tool::Kcat) {
        return;
    }
    let remote = tempfile::tempdir().unwrap();
    let url = format!("file://{}", remote.path().display());
    let mut strata = tiered_builder(&url, &[]).start();
    let topic = "pruned";
    tiered_topic_with_records(&strata, topic, 3000, "a");
    let segments = |dir: &Path| {
        topic_files(dir, topic)
            .iter()
            .filter(|f| f.extension().is_some_and(|e| e == "seg"))
            .count()
    };
    let before = segments(remote.path());

    let out = client(&["delete-records", &strata.kafka_addr(), topic, "1000"]);
    assert!(out.contains("OK low watermark 1000"), "{out}");
    assert_eq!(list_offset(&strata, topic, -2), 1000);
    wait_until(
        "remote segments below offset 1000 leave the bucket",
        Duration::from_secs(60),
        || partition_status(&strata, topic)["remote_log_start_offset"].as_i64() == Some(1000),
    );
    let after = segments(remote.path());
    assert!(
        after < before && after >= before - 5,
        "{before} segment objects before, {after} after"
    );
    assert_no_orphans(remote.path());

    // The first record served is 1000, byte for byte, before and after a restart.
    let read_from_start = |strata: &strata_tests::Strata| {
        let group = format!("g-{}", strata.kafka_addr());
        consume_checked(&strata.kafka_addr(), topic, 100, "a", &group, 1000);
    };
    read_from_start(&strata);
    strata.restart();
    assert_eq!(list_offset(&strata, topic, -2), 1000, "{}", strata.logs());
    let out = kcat(
        &[
            "-C",
            "-b",
            &strata.kafka_addr(),
            "-t",
            topic,
            "-o",
            "beginning",
            "-c",
            "1",
            "-e",
            "-f",
            "%o\n",
        ],
        b"",
    );
    assert_eq!(
        strata_tests::assert_success(&out, "kcat from the beginning").trim(),
        "1000"
    );

    // Disaster recovery from the bucket: the remote log start is 1000 there too.
    strata.stop();
    let restored = tiered_builder(&url, &[]).start();
    assert_eq!(
        list_offset(&restored, topic, -2),
        1000,
        "{}",
        restored.logs()
    );
    read_from_start(&restored);
}

/// Every record deleted (DeleteRecords up to the log end), so the bucket keeps no segment: a
/// broker restored from it goes on at the old log end and never hands out offsets 0.. again.
#[test]
fn tiering_restore_after_all_history_was_deleted_continues_at_the_old_log_end() {
    if !require(Tool::Python) || !require(Tool::Kcat) {
        return;
    }
    let remote = tempfile::tempdir().unwrap();
    let url = format!("file://{}", remote.path().display());
    let mut strata = tiered_builder(&url, &[]).start();
    let topic = "emptied";
    tiered_topic_with_records(&strata, topic, 1000, "a");
    let out = client(&["delete-records", &strata.kafka_addr(), topic, "1000"]);
    assert!(out.contains("OK low watermark 1000"), "{out}");
    wait_until(
        "the bucket keeps no segment of the topic",
        Duration::from_secs(60),
        || partition_status(&strata, topic)["remote_segments"].as_u64() == Some(0),
    );
    strata.stop();

    let restored = tiered_builder(&url, &[]).start();
    assert_eq!(
        list_offset(&restored, topic, -1),
        1000,
        "{}",
        restored.logs()
    );
    assert_eq!(list_offset(&restored, topic, -2), 1000);
    let out = kcat(
        &["-P", "-b", &restored.kafka_addr(), "-t", topic, "-p", "0"],
        b"after-restore\n",
    );
    strata_tests::assert_success(&out, "kcat produce");
    let out = kcat(
        &[
            "-C",
            "-b",
            &restored.kafka_addr(),
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-f",
            "%o %s\n",
        ],
        b"",
    );
    assert_eq!(
        strata_tests::assert_success(&out, "kcat consume").trim(),
        "1000 after-restore"
    );
}

/// A restore from the bucket that cannot finish (here: one topic's topic.json is damaged)
/// restores every other topic, and the next start finishes it once the record is readable
/// again (a restore starts only on a data directory without topics, so it never finished).
#[test]
fn tiering_restore_skips_a_damaged_topic_record_and_finishes_at_the_next_start() {
    if !require(Tool::Python) || !require(Tool::Kcat) {
        return;
    }
    let remote = tempfile::tempdir().unwrap();
    let url = format!("file://{}", remote.path().display());
    let mut strata = tiered_builder(&url, &[]).start();
    for topic in ["good", "bad"] {
        create_tiered_topic(&strata, topic, 20000);
        client(&["produce", &strata.kafka_addr(), topic, "1000", "a"]);
    }
    for topic in ["good", "bad"] {
        wait_tiered(&strata, topic, 999);
    }
    strata.stop();
    let record = topic_files(remote.path(), "bad")
        .into_iter()
        .find(|f| f.ends_with("topic.json"))
        .expect("bad's topic.json");
    let original = std::fs::read(&record).unwrap();
    std::fs::write(&record, b"{ not json").unwrap();

    // The restored log holds what was tiered: everything but the active segment.
    let tiered = |topic: &str| {
        let status: serde_json::Value = serde_json::from_slice(
            &std::fs::read(strata.data_dir().join("tier-status.json")).unwrap(),
        )
        .unwrap();
        status["partitions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["topic"] == topic)
            .unwrap()["highest_tiered_offset"]
            .as_i64()
            .unwrap()
            + 1
    };
    let (good_end, bad_end) = (tiered("good"), tiered("bad"));
    assert!(good_end >= 800 && bad_end >= 800, "{good_end} {bad_end}");
    let mut restored = tiered_builder(&url, &[]).start();
    assert_eq!(
        list_offset(&restored, "good", -1),
        good_end,
        "{}",
        restored.logs()
    );
    assert!(
        restored.logs().contains("unreadable topic.json"),
        "{}",
        restored.logs()
    );
    std::fs::write(&record, original).unwrap();
    restored.restart();
    assert_eq!(
        list_offset(&restored, "bad", -1),
        bad_end,
        "{}",
        restored.logs()
    );
    consume_checked(
        &restored.kafka_addr(),
        "bad",
        bad_end as usize,
        "a",
        "bad-g",
        0,
    );
    assert!(
        !restored
            .data_dir()
            .join("restore-from-bucket.pending")
            .exists()
    );
}
