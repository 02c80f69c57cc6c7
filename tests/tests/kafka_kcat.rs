//! kcat (librdkafka) against a real `strata serve`: produce and consume with every compression
//! codec, `kcat -L`, and a consumer group that resumes from its committed offset after the
//! broker restarts.

use strata_tests::{Strata, Tool, assert_success, kcat, require};

const CODECS: &[&str] = &["none", "gzip", "snappy", "lz4", "zstd"];

fn lines(n: usize, tag: &str) -> String {
    (0..n)
        .map(|i| format!("{tag}-key-{i}:{tag}-value-{i}-{}\n", "x".repeat(i % 50)))
        .collect()
}

fn produce(strata: &Strata, topic: &str, codec: &str, input: &str) {
    let addr = strata.kafka_addr();
    let out = kcat(
        &[
            "-b",
            &addr,
            "-P",
            "-t",
            topic,
            "-K",
            ":",
            "-z",
            codec,
            "-H",
            "origin=kcat",
            "-H",
            "codec=".to_owned().as_str(),
        ],
        input.as_bytes(),
    );
    assert_success(&out, &format!("kcat produce ({codec})"));
}

fn consume_all(strata: &Strata, topic: &str) -> String {
    let addr = strata.kafka_addr();
    let out = kcat(
        &[
            "-b",
            &addr,
            "-C",
            "-t",
            topic,
            "-o",
            "beginning",
            "-e",
            "-f",
            "%k:%s|%h\n",
        ],
        b"",
    );
    assert_success(&out, "kcat consume")
}

#[test]
fn every_codec_round_trips_keys_values_and_headers() {
    if !require(Tool::Kcat) {
        return;
    }
    let strata = Strata::builder().set("num.partitions", "1").start();
    for codec in CODECS {
        let topic = format!("kcat-{codec}");
        let input = lines(300, codec);
        produce(&strata, &topic, codec, &input);
        let expected: String = input
            .lines()
            .map(|l| format!("{l}|origin=kcat,codec=\n"))
            .collect();
        assert_eq!(consume_all(&strata, &topic), expected, "codec {codec}");
    }
}

#[test]
fn metadata_listing_shows_the_broker_and_topics() {
    if !require(Tool::Kcat) {
        return;
    }
    let strata = Strata::builder().set("num.partitions", "3").start();
    produce(&strata, "listed", "none", "a:b\n");
    let addr = strata.kafka_addr();
    let out = assert_success(&kcat(&["-b", &addr, "-L"], b""), "kcat -L");
    assert!(out.contains(&format!("broker 0 at {addr}")), "{out}");
    assert!(out.contains("topic \"listed\" with 3 partitions"), "{out}");
    let json = assert_success(&kcat(&["-b", &addr, "-L", "-J"], b""), "kcat -L -J");
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("kcat -L -J is JSON");
    assert_eq!(parsed["controllerid"], 0, "{json}");
}

#[test]
fn consumer_group_resumes_from_committed_offset_after_restart() {
    if !require(Tool::Kcat) {
        return;
    }
    let mut strata = Strata::builder()
        .set("group.initial.rebalance.delay.ms", "0")
        .start();
    produce(&strata, "resume", "lz4", &lines(20, "first"));

    let consume_group = |strata: &Strata| {
        let addr = strata.kafka_addr();
        let out = kcat(
            &[
                "-b",
                &addr,
                "-G",
                "resume-group",
                "-X",
                "auto.offset.reset=earliest",
                "-e",
                "-f",
                "%k\n",
                "-X",
                "auto.commit.interval.ms=100",
                "resume",
            ],
            b"",
        );
        assert_success(&out, "kcat -G")
    };
    let first = consume_group(&strata);
    assert_eq!(first.lines().count(), 20, "{first}");

    strata.restart();
    produce(&strata, "resume", "lz4", &lines(5, "second"));
    let second = consume_group(&strata);
    let keys: Vec<&str> = second.lines().collect();
    assert_eq!(
        keys,
        (0..5)
            .map(|i| format!("second-key-{i}"))
            .collect::<Vec<_>>(),
        "{second}"
    );

    // And after a kill -9 too: commits were fsynced before they were acknowledged.
    strata.kill9();
    strata.restart();
    let third = consume_group(&strata);
    assert_eq!(
        third.lines().count(),
        0,
        "nothing new to consume, got:\n{third}"
    );
}
