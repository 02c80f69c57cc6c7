//! Tiered storage while the S3 server fails, with real processes: our own moto server stopped,
//! cut off behind a TCP relay or hung (SIGSTOP) during uploads, cold reads, a start, a restore
//! from the bucket and a shutdown. Nothing acknowledged is lost, errors are clear, and the tier
//! resumes by itself when the store answers again.

#[path = "s3_outage_support.rs"]
mod s3_outage;
#[path = "tiering_support.rs"]
mod support;

use std::time::Duration;

use s3_outage::{Moto, Relay, moto_and, s3_env};
use strata_tests::{Strata, Tool, create_tiered_topic, free_port, kcat};
use support::{
    client, consume_checked, partition_status, tiered_builder, tiered_topic_with_records,
    wait_tiered, wait_until,
};

#[test]
fn tiering_s3_outage_keeps_local_data_refuses_produce_clearly_and_resumes() {
    if !moto_and(&[Tool::Python, Tool::Kcat]) {
        return;
    }
    let port = free_port();
    let mut moto = Moto::start(port);
    let env = s3_env(&moto.endpoint());
    let strata = tiered_builder("s3://tier-faults/outage", &env)
        .set("remote.log.manager.max.upload.lag.bytes", "100000")
        .start();
    let topic = "outage";
    create_tiered_topic(&strata, topic, 20000);
    moto.stop();
    let bootstrap = strata.kafka_addr();
    let producer = std::thread::spawn(move || {
        strata_tests::python(
            "tiering_client.py",
            &["produce", &bootstrap, "outage", "3000", "a"],
        )
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    loop {
        let s = partition_status(&strata, topic);
        if s["upload_lag_bytes"].as_u64().unwrap_or(0) > 100_000 {
            break;
        }
        if std::time::Instant::now() > deadline {
            let logs = strata.logs();
            let tail: String = logs.lines().rev().take(40).collect::<Vec<_>>().join("\n");
            panic!("upload lag never went over the bound: {s}\n{tail}");
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    // Local data is kept, and a producer that does not retry sees the storage error.
    assert!(support::local_segments(strata.data_dir(), topic) > 5);
    let out = kcat(
        &[
            "-P",
            "-b",
            &strata.kafka_addr(),
            "-t",
            topic,
            "-X",
            "message.send.max.retries=0",
            "-X",
            "enable.idempotence=false",
            "-X",
            "message.timeout.ms=10000",
        ],
        b"refused\n",
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Disk error") || stderr.contains("storage"),
        "{stderr}"
    );
    // The failing uploads are visible while the store is down: the error in the status (and so
    // in `strata tier status`), a gauge in the metrics.
    wait_until("the upload error is shown", Duration::from_secs(60), || {
        partition_status(&strata, topic)["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty())
    });
    let metrics = strata.metrics();
    assert!(
        metrics.contains("strata_tier_upload_lag_bytes{topic=\"outage\",partition=\"0\"}")
            && metrics.contains("strata_tier_upload_failing{topic=\"outage\",partition=\"0\"} 1"),
        "{metrics}"
    );

    // The store comes back (a fresh moto: same port, bucket recreated): uploads resume, the
    // producer's retries go through, nothing is lost.
    let _moto = Moto::start(port);
    let produced = producer.join().unwrap();
    strata_tests::assert_success(&produced, "producing through the outage");
    // After a long outage the uploader is at its capped backoff (30 s) and object_store's own
    // retries may be sleeping too: resuming takes up to about a minute before the uploads run.
    support::wait_tiered_within(&strata, topic, 2999, Duration::from_secs(240));
    consume_checked(&strata.kafka_addr(), topic, 3000, "a", "outage-g", 0);
}

/// moto behind a TCP relay the test can cut, and a tiered broker writing to it under
/// `s3://tier-faults/<prefix>`. Keep the `Moto`: dropping it stops the server.
fn broker_behind_relay(prefix: &str) -> (Moto, Relay, Strata) {
    let moto = Moto::start(free_port());
    let relay = Relay::start(moto.port);
    let env = s3_env(&relay.endpoint());
    let strata = tiered_builder(&format!("s3://tier-faults/{prefix}"), &env).start();
    (moto, relay, strata)
}

/// The S3 server becomes unreachable while a consumer replays remote history: the broker keeps
/// serving (a hot topic produces and reads back meanwhile), the replay waits instead of failing
/// or skipping, and when the network comes back it completes byte for byte.
#[test]
fn tiering_cold_replay_waits_out_an_s3_outage_and_completes() {
    if !moto_and(&[Tool::Python]) {
        return;
    }
    let (_moto, mut relay, mut strata) = broker_behind_relay("cold-outage");
    let topic = "cold-outage";
    tiered_topic_with_records(&strata, topic, 3000, "c");
    // Empty chunk caches: the replay must reach the store.
    strata.restart();

    relay.cut();
    let outage = std::time::Instant::now();
    let bootstrap = strata.kafka_addr();
    let replay = std::thread::spawn(move || {
        strata_tests::python(
            "tiering_client.py",
            &["consume", &bootstrap, topic, "3000", "c", "cold-outage-g"],
        )
    });
    client(&["produce", &strata.kafka_addr(), "outage-hot", "50", "h"]);
    consume_checked(
        &strata.kafka_addr(),
        "outage-hot",
        50,
        "h",
        "outage-hot-g",
        0,
    );
    // Longer than the object-store client's own retries (15 s): reads fail and are retried.
    std::thread::sleep(Duration::from_secs(20).saturating_sub(outage.elapsed()));
    assert!(
        !replay.is_finished(),
        "the replay ended while the store was unreachable: {:?}",
        replay
            .join()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    );
    // The outage was real: reads of the store failed (and were answered as errors, not data).
    let logs = strata.logs();
    assert!(logs.contains("cold read failed"), "{logs}");
    relay.resume();
    let out = replay.join().unwrap();
    let text = strata_tests::assert_success(&out, "consuming through the outage");
    assert!(
        text.contains("OK consumed 3000"),
        "{text}\n{}",
        strata.logs()
    );
}

/// A broker that starts while the S3 server is unreachable cannot see its remote history yet
/// (its log start is the local one). Once the store answers again, the remote history comes
/// back by itself, without a restart: the log start moves down to the remote log start and a
/// new consumer group reads every record from offset 0.
#[test]
fn tiering_remote_history_returns_after_a_start_during_an_s3_outage() {
    if !moto_and(&[Tool::Python]) {
        return;
    }
    let (_moto, mut relay, mut strata) = broker_behind_relay("start-outage");
    let topic = "start-outage";
    tiered_topic_with_records(&strata, topic, 3000, "o");
    wait_until(
        "the status shows the local segments gone",
        Duration::from_secs(30),
        || partition_status(&strata, topic)["local_log_start_offset"].as_i64() > Some(0),
    );

    strata.stop();
    relay.cut();
    strata.restart();
    let status = partition_status(&strata, topic);
    assert!(
        status["log_start_offset"].as_i64().unwrap_or(0) > 0,
        "the remote history is not known while the store is unreachable: {status}"
    );
    relay.resume();
    wait_until(
        "the log start is the remote log start again",
        Duration::from_secs(90),
        || partition_status(&strata, topic)["log_start_offset"].as_i64() == Some(0),
    );
    consume_checked(&strata.kafka_addr(), topic, 3000, "o", "start-outage-g", 0);
}

/// Disaster recovery while the S3 server is unreachable: a broker started on an empty data
/// directory cannot read the bucket, so it refuses (retriably, with the reason) to create a topic
/// the bucket may hold, instead of giving it a new id that would hide its history for good. Once
/// the store answers, the restore finishes by itself, without a restart: every tiered record
/// reads back from offset 0, and the restored broker's uploads go on (its manifest writer epoch,
/// unknown at start, now out-ranks the previous broker's).
#[test]
fn tiering_restore_during_an_s3_outage_finishes_when_the_store_returns() {
    if !moto_and(&[Tool::Python, Tool::Kcat]) {
        return;
    }
    let moto = Moto::start(free_port());
    let mut relay = Relay::start(moto.port);
    let env = s3_env(&relay.endpoint());
    let url = "s3://tier-faults/restore-outage";
    let mut first = tiered_builder(url, &env).start();
    // Broker epoch 3: the manifests it writes fence writers of a lower epoch.
    first.restart();
    first.restart();
    let topic = "restore-outage";
    tiered_topic_with_records(&first, topic, 3000, "d");
    let tiered = partition_status(&first, topic)["highest_tiered_offset"]
        .as_i64()
        .unwrap()
        + 1;
    assert!(tiered > 2000, "{tiered}");
    first.stop();

    relay.cut();
    let mut second = tiered_builder(url, &env).start();
    let refused = strata_tests::python(
        "tiering_client.py",
        &[
            "create",
            &second.kafka_addr(),
            topic,
            "remote.storage.enable=true",
        ],
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "created during the outage");
    assert!(
        stderr.contains("LEADER_NOT_AVAILABLE") && stderr.contains("cannot be created yet"),
        "{stderr}"
    );
    // The refusal names the object store's own error, not only a guess at the cause.
    assert!(stderr.contains("last error:"), "{stderr}");
    assert!(
        second
            .data_dir()
            .join("restore-from-bucket.pending")
            .exists()
    );
    // Visible to operators: `strata tier status` (the same JSON) and the metrics.
    let tier_status = || -> serde_json::Value {
        reqwest::blocking::get(format!("{}/v1/tier/status", second.http_url()))
            .unwrap()
            .json()
            .unwrap()
    };
    assert_eq!(tier_status()["restore_pending"], "every_topic");
    assert!(second.metrics().contains("strata_tier_restore_pending 1"));

    relay.resume();
    wait_until("the topic is restored", Duration::from_secs(120), || {
        let out = strata_tests::python(
            "tiering_client.py",
            &["offsets", &second.kafka_addr(), topic],
        );
        out.status.success()
            && serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .is_ok_and(|o| o["latest"].as_i64() == Some(tiered) && o["earliest"] == 0)
    });
    assert!(
        !second
            .data_dir()
            .join("restore-from-bucket.pending")
            .exists()
    );
    assert!(tier_status().get("restore_pending").is_none());
    assert!(second.metrics().contains("strata_tier_restore_pending 0"));
    consume_checked(
        &second.kafka_addr(),
        topic,
        tiered as usize,
        "d",
        "restore-outage-g",
        0,
    );

    // The restored broker keeps tiering: its uploads are not fenced.
    let more = 1500;
    client(&[
        "produce",
        &second.kafka_addr(),
        topic,
        &more.to_string(),
        "d",
        &tiered.to_string(),
    ]);
    wait_tiered(&second, topic, tiered + more - 1);
    assert!(
        partition_status(&second, topic)["last_error"]
            .as_str()
            .is_none_or(str::is_empty),
        "{}",
        partition_status(&second, topic)
    );
    consume_checked(
        &second.kafka_addr(),
        topic,
        (tiered + more) as usize,
        "d",
        "restore-outage-g2",
        0,
    );

    // Restarted during another outage, it cannot read the bucket's epochs at start, and its
    // broker epoch (2) is below the one it writes manifests with since the restore: once the
    // store answers it raises its epoch again, and the uploads go on.
    second.stop();
    relay.cut();
    second.restart();
    let last = tiered + 2 * more;
    client(&[
        "produce",
        &second.kafka_addr(),
        topic,
        &more.to_string(),
        "d",
        &(tiered + more).to_string(),
    ]);
    relay.resume();
    support::wait_tiered_within(&second, topic, last - 1, Duration::from_secs(180));
    consume_checked(
        &second.kafka_addr(),
        topic,
        last as usize,
        "d",
        "restore-outage-g3",
        0,
    );
}

/// An S3 server that hangs (SIGSTOP: connections accepted, never answered) does not hold up a
/// shutdown: uploads still running are abandoned after the grace period (it waited for every
/// retry of every request, 150 s measured), and nothing is lost: restarted with the server back,
/// the broker uploads every segment and every record reads back byte for byte.
#[test]
fn tiering_shutdown_with_a_hung_s3_server_is_prompt_and_loses_nothing() {
    if !moto_and(&[Tool::Python, Tool::Kcat]) {
        return;
    }
    let moto = Moto::start(free_port());
    let env = s3_env(&moto.endpoint());
    let mut strata = tiered_builder("s3://tier-faults/hung", &env).start();
    let topic = "hung";
    tiered_topic_with_records(&strata, topic, 1000, "h");
    moto.pause();
    client(&["produce", &strata.kafka_addr(), topic, "1000", "h", "1000"]);
    wait_until(
        "uploads wait on the hung server",
        Duration::from_secs(30),
        || partition_status(&strata, topic)["upload_lag_bytes"].as_u64() > Some(0),
    );
    let stopping = std::time::Instant::now();
    let status = strata.stop();
    let took = stopping.elapsed();
    assert!(status.success(), "{status:?}\n{}", strata.logs());
    assert!(
        took < Duration::from_secs(25),
        "shutdown took {took:?}\n{}",
        strata.logs()
    );
    assert!(strata.logs().contains("abandoned"), "{}", strata.logs());

    moto.unpause();
    strata.restart();
    wait_tiered(&strata, topic, 1999);
    consume_checked(&strata.kafka_addr(), topic, 2000, "h", "hung-g", 0);
}
