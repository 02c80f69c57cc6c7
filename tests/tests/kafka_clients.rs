//! confluent-kafka, kafka-python and kafkajs against a real `strata serve`. The client scripts
//! (tests/clients/*.py, tests/js/*.js) check content byte for byte and print `OK ...`.

use strata_tests::{Strata, Tool, assert_success, node, python, require};

fn broker() -> Strata {
    Strata::builder()
        .set("group.initial.rebalance.delay.ms", "0")
        .start()
}

#[test]
fn confluent_idempotent_zstd_producer_round_trips_content() {
    if !require(Tool::Python) {
        return;
    }
    let strata = broker();
    let out = python(
        "confluent_roundtrip.py",
        &[&strata.kafka_addr(), "ck-roundtrip", "1000"],
    );
    assert!(assert_success(&out, "confluent_roundtrip.py").contains("OK 1000"));
}

/// A topic's `compression.type` (zstd at creation, then gzip, lz4, snappy, uncompressed and
/// producer set live) decides the codec of the stored batches whatever the producer used; both clients read
/// every record back byte for byte (the script checks the segment files and the records); a
/// zstd compression bomb into an lz4 topic is refused with MSG_SIZE_TOO_LARGE, appending nothing.
#[test]
fn topic_compression_type_recompresses_stored_batches_and_clients_read_them_back() {
    if !require(Tool::Python) {
        return;
    }
    let strata = broker();
    let topic = "ck-compression";
    let partition_dir = strata.data_dir().join(format!("{topic}-0"));
    let out = python(
        "confluent_topic_compression.py",
        &[
            &strata.kafka_addr(),
            topic,
            partition_dir.to_str().expect("utf-8 path"),
        ],
    );
    assert!(assert_success(&out, "confluent_topic_compression.py").contains("OK compression"));
}

#[test]
fn confluent_admin_creates_alters_and_describes_topic_configs() {
    if !require(Tool::Python) {
        return;
    }
    let strata = broker();
    let out = python("confluent_admin.py", &[&strata.kafka_addr(), "ck-admin"]);
    assert!(assert_success(&out, "confluent_admin.py").contains("OK admin"));
}

/// `min.insync.replicas` above the one replica of a single node refuses acks=all produce with
/// NOT_ENOUGH_REPLICAS and claim-check uploads with 503 (nothing appended), leaves acks=1
/// alone, and follows a live change.
#[test]
fn min_insync_replicas_above_one_refuses_acks_all_and_appends_nothing() {
    if !require(Tool::Python) {
        return;
    }
    let strata = broker();
    let out = python(
        "confluent_min_insync.py",
        &[&strata.kafka_addr(), "ck-min-isr", &strata.http_url()],
    );
    assert!(assert_success(&out, "confluent_min_insync.py").contains("OK min.insync.replicas"));
}

#[test]
fn dynamic_broker_configs_are_validated_and_survive_a_restart() {
    if !require(Tool::Python) {
        return;
    }
    let mut strata = broker();
    let out = python(
        "confluent_broker_configs.py",
        &[&strata.kafka_addr(), "alter", "-"],
    );
    assert!(assert_success(&out, "confluent_broker_configs.py alter").contains("OK altered"));
    strata.restart();
    let out = python(
        "confluent_broker_configs.py",
        &[
            &strata.kafka_addr(),
            "after-restart",
            "auto-created-after-restart",
        ],
    );
    assert!(
        assert_success(&out, "confluent_broker_configs.py after-restart").contains("OK persisted")
    );
}

/// `offsets.retention.minutes`: offsets of a standalone consumer and of a group whose members
/// left expire after the retention (not before); a group with a member keeps its offset; the
/// expiry is durable and a restart does not expire the offsets of a group active at the stop.
#[test]
fn committed_offsets_expire_after_offsets_retention_minutes() {
    if !require(Tool::Python) {
        return;
    }
    let mut strata = Strata::builder()
        .set("group.initial.rebalance.delay.ms", "0")
        .set("offsets.retention.minutes", "1")
        .set("offsets.retention.check.interval.ms", "500")
        .start();
    let out = python(
        "confluent_offset_expiry.py",
        &[&strata.kafka_addr(), "expire", "offset-expiry"],
    );
    let text = assert_success(&out, "confluent_offset_expiry.py expire");
    assert!(text.contains("OK expired"), "{text}");
    eprintln!("{text}");
    assert!(
        strata
            .logs()
            .contains("removed expired committed offsets (offsets.retention.minutes)"),
        "{}",
        strata.logs()
    );
    strata.restart();
    let out = python(
        "confluent_offset_expiry.py",
        &[&strata.kafka_addr(), "after-restart", "offset-expiry"],
    );
    assert!(
        assert_success(&out, "confluent_offset_expiry.py after-restart")
            .contains("OK after restart")
    );
}

/// OffsetDelete (`kafka-consumer-groups --delete-offsets`, kafka-python's
/// `delete_group_offsets`): Kafka's rules for active and empty groups, unknown groups and
/// topics; what a new member then reads; the deletions survive a restart.
#[test]
fn kafka_python_deletes_committed_offsets_with_kafkas_group_rules() {
    if !require(Tool::Python) {
        return;
    }
    let mut strata = broker();
    let out = python(
        "kafka_python_delete_offsets.py",
        &[&strata.kafka_addr(), "delete", "kp-offset-delete"],
    );
    assert!(assert_success(&out, "kafka_python_delete_offsets.py delete").contains("OK deleted"));
    strata.restart();
    let out = python(
        "kafka_python_delete_offsets.py",
        &[&strata.kafka_addr(), "after-restart", "kp-offset-delete"],
    );
    assert!(
        assert_success(&out, "kafka_python_delete_offsets.py after-restart")
            .contains("OK after restart")
    );
}

/// A transactional producer's `init_transactions` fails at once with librdkafka's fatal
/// TRANSACTIONAL_ID_AUTHORIZATION_FAILED instead of retrying until its timeout (strata has no
/// transactions); idempotent producers keep working.
#[test]
fn confluent_transactional_producer_is_refused_fast_and_for_good() {
    if !require(Tool::Python) {
        return;
    }
    let strata = broker();
    let out = python(
        "confluent_transactions.py",
        &[&strata.kafka_addr(), "ck-transactions"],
    );
    let text = assert_success(&out, "confluent_transactions.py");
    assert!(text.contains("OK refused"), "{text}");
}

/// Deleting a topic deletes every group's committed offsets of it, durably: a restart does not
/// bring them back, a commit to the deleted topic gets UNKNOWN_TOPIC_OR_PARTITION (and creates
/// nothing), and a topic created again under the name is read by the group from offset 0, not
/// from the old topic's position; the new topic's offsets and other topics' survive restarts.
#[test]
fn a_deleted_topic_takes_its_committed_offsets_with_it() {
    if !require(Tool::Python) {
        return;
    }
    let mut strata = broker();
    for phase in ["delete", "recreate", "after-restart"] {
        if phase != "delete" {
            strata.restart();
        }
        let out = python(
            "confluent_topic_recreate.py",
            &[&strata.kafka_addr(), phase, "ck-recreate"],
        );
        let text = assert_success(&out, &format!("confluent_topic_recreate.py {phase}"));
        assert!(text.contains("OK "), "{text}");
    }
}

/// DescribeLogDirs (`kafka-log-dirs --describe`, kafka-python's `describe_log_dirs`): each
/// partition's size is exactly the bytes of its segment files, as a clean stop leaves them.
#[test]
fn kafka_python_describes_log_dirs_with_the_segment_files_sizes() {
    if !require(Tool::Python) {
        return;
    }
    let mut strata = broker();
    let data_dir = strata.data_dir().display().to_string();
    let out = python(
        "kafka_python_log_dirs.py",
        &[&strata.kafka_addr(), "kp-log-dirs", &data_dir],
    );
    let text = assert_success(&out, "kafka_python_log_dirs.py");
    assert!(text.contains("OK log dirs"), "{text}");
    let sizes: serde_json::Value = serde_json::from_str(
        text.lines()
            .find_map(|line| line.strip_prefix("SIZES "))
            .expect("a SIZES line"),
    )
    .unwrap();
    // A clean stop cuts the active segment's zeroed tail: the files then hold exactly the log.
    assert!(strata.stop().success());
    for partition in ["0", "1"] {
        let dir = strata.data_dir().join(format!("kp-log-dirs-{partition}"));
        let on_disk: u64 = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "log"))
            .map(|path| std::fs::metadata(path).unwrap().len())
            .sum();
        assert_eq!(
            sizes[partition].as_u64(),
            Some(on_disk),
            "partition {partition}: reported {sizes}, segment files {on_disk}"
        );
    }
}

/// Static membership (KIP-345): a restarted member with the same `group.instance.id` takes
/// its place and partitions back at once, without a rebalance of the others; a second process
/// with that id fences the first.
#[test]
fn confluent_static_member_restarts_without_a_rebalance_and_fences_its_zombie() {
    if !require(Tool::Python) {
        return;
    }
    let strata = broker();
    let out = python(
        "confluent_static_member.py",
        &[&strata.kafka_addr(), "ck-static", "ck-static-g"],
    );
    let text = assert_success(&out, "confluent_static_member.py");
    assert!(text.contains("OK static member back"), "{text}");
}

#[test]
fn confluent_group_rebalances_without_loss_or_duplicates() {
    if !require(Tool::Python) {
        return;
    }
    let strata = broker();
    let out = python(
        "confluent_group.py",
        &[&strata.kafka_addr(), "ck-group", "ck-group-g"],
    );
    assert!(assert_success(&out, "confluent_group.py").contains("OK group"));
}

#[test]
fn kafka_python_produces_consumes_in_a_group_and_administers_topics() {
    if !require(Tool::Python) {
        return;
    }
    let strata = broker();
    let out = python(
        "kafka_python_client.py",
        &[&strata.kafka_addr(), "kp-topic", "kp-group"],
    );
    assert!(assert_success(&out, "kafka_python_client.py").contains("OK kafka-python"));
}

#[test]
fn kafkajs_produces_consumes_in_a_group_and_fetches_committed_offsets() {
    if !require(Tool::Node) {
        return;
    }
    let strata = broker();
    let out = node(
        "kafkajs_client.js",
        &[&strata.kafka_addr(), "js-topic", "js-group"],
    );
    assert!(assert_success(&out, "kafkajs_client.js").contains("OK kafkajs"));
}
