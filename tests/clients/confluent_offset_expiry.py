"""offsets.retention.minutes with confluent-kafka, against a broker started with
offsets.retention.minutes=1 (the smallest Kafka allows) and a short check interval.

phase "expire" (BOOTSTRAP expire TOPIC):
  - "lone" commits offset 4 without joining a group (assign + commit, as standalone consumers do);
  - "gone" joins, reads all 10 records, commits 10 and leaves;
  - "live" joins, reads, commits 10 and stays a member, polling, for the whole phase.
  Then it watches the committed offsets once a second: "lone" and "gone" must keep theirs for
  most of the minute and lose them shortly after it; "live" keeps its offset throughout.
phase "after-restart" (BOOTSTRAP after-restart TOPIC): "lone" and "gone" are still gone; "live"
  (whose member left with the old broker) still has offset 10.
Prints `OK ...`; exits non-zero with a message otherwise."""
import sys
import time

from confluent_kafka import OFFSET_INVALID, Consumer, Producer, TopicPartition

bootstrap, phase, topic = sys.argv[1], sys.argv[2], sys.argv[3]
RETENTION_S = 60


def committed(group):
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        [tp] = probe.committed([TopicPartition(topic, 0)], timeout=20)
        return tp.offset
    finally:
        probe.close()


def member(group):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "session.timeout.ms": 10000})
    consumer.subscribe([topic])
    got, deadline = 0, time.time() + 60
    while got < 10:
        assert time.time() < deadline, f"{group} read {got} of 10 records"
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            got += 1
    consumer.commit(asynchronous=False)
    return consumer


if phase == "expire":
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(10):
        producer.produce(topic, f"v{i}".encode())
    assert producer.flush(20) == 0

    lone = Consumer({"bootstrap.servers": bootstrap, "group.id": "lone", "enable.auto.commit": False})
    lone.assign([TopicPartition(topic, 0)])
    lone.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    lone.close()
    committed_at = time.time()
    gone = member("gone")
    gone.close()
    live = member("live")
    assert committed("lone") == 4 and committed("gone") == 10 and committed("live") == 10

    vanished = {}
    deadline = committed_at + RETENTION_S + 40
    # Past the others' expiry by several check intervals, so that an expiry of "live" shows.
    keep_watching_until = committed_at + RETENTION_S + 8
    while len(vanished) < 2 or time.time() < keep_watching_until:
        assert time.time() < deadline, f"offsets still there after {time.time() - committed_at:.0f} s: {vanished}"
        live.poll(1.0)  # stays a member
        for group in ("lone", "gone"):
            if group not in vanished and committed(group) == OFFSET_INVALID:
                vanished[group] = time.time() - committed_at
        assert committed("live") == 10, "the live group lost its offset"
    for group, after in vanished.items():
        # The broker checks every second; the client's clock started a little after the commit.
        assert RETENTION_S - 5 <= after <= RETENTION_S + 30, f"{group} expired after {after:.1f} s"
    live.close()
    print("OK expired " + " ".join(f"{g}={a:.1f}s" for g, a in sorted(vanished.items())))
elif phase == "after-restart":
    assert committed("lone") == OFFSET_INVALID, committed("lone")
    assert committed("gone") == OFFSET_INVALID, committed("gone")
    assert committed("live") == 10, committed("live")
    print("OK after restart")
else:
    raise SystemExit(f"unknown phase {phase}")
