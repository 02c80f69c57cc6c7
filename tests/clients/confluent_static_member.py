"""confluent-kafka static group membership (KIP-345, `group.instance.id`).

Two static members share four partitions. Member A commits offset 5 on each of its partitions
and stops; a static member does not send LeaveGroup, so A's place stays. A restarted process
with A's instance id takes that place back at once: the same partitions, no rebalance for B (no
revoke or assign callback on B), and it resumes at A's commits. A third process with the same
instance id then fences the second, whose client gets a fatal FENCED_INSTANCE_ID error.

Without static membership the restarted process would be a new member: B would be revoked
and the round would wait for the old member until its session (15 s here) expired.
"""
import sys
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
partitions, per_partition, resume_at = 4, 10, 5

admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(20)
producer = Producer({"bootstrap.servers": bootstrap})
for p in range(partitions):
    for i in range(per_partition):
        producer.produce(topic, value=f"p{p}-{i}".encode(), partition=p)
assert producer.flush(30) == 0

events = []  # (member, "assign" | "revoke", [partitions])
assigned = {}


def member(name, instance):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.instance.id": instance,
                  "client.id": name, "session.timeout.ms": 15000, "max.poll.interval.ms": 20000,
                  "heartbeat.interval.ms": 500, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "partition.assignment.strategy": "range"})

    def on_assign(consumer, parts):
        events.append((name, "assign", sorted(p.partition for p in parts)))
        assigned[name] = sorted(p.partition for p in parts)

    def on_revoke(consumer, parts):
        events.append((name, "revoke", sorted(p.partition for p in parts)))
        assigned[name] = []

    c.subscribe([topic], on_assign=on_assign, on_revoke=on_revoke)
    return c


messages = {}  # member name -> records it received


def poll_until(consumers, condition, limit, what):
    """Polls every consumer in turn until `condition()`, keeping their records in `messages`."""
    deadline = time.time() + limit
    while not condition():
        assert time.time() < deadline, f"{what}: not within {limit} s; events {events}"
        for name, c in consumers:
            msg = c.poll(0.05)
            if msg is not None and not msg.error():
                messages.setdefault(name, []).append(msg)


a, b = member("a1", "instance-a"), member("b", "instance-b")
poll_until([("a1", a), ("b", b)],
           lambda: sorted(assigned.get("a1", []) + assigned.get("b", [])) == list(range(partitions))
           and assigned.get("a1") and assigned.get("b"), 60, "both static members assigned")
a_parts = assigned["a1"]
a.commit(offsets=[TopicPartition(topic, p, resume_at) for p in a_parts], asynchronous=False)
a.close()  # static: no LeaveGroup

b_events_before = [e for e in events if e[0] == "b"]
started = time.time()
a2 = member("a2", "instance-a")
poll_until([("a2", a2), ("b", b)], lambda: assigned.get("a2") == a_parts, 10,
           "the restarted member takes A's place")
took = time.time() - started
# Read what A left: from its commits on, every record of its partitions, in order.
expected = len(a_parts) * (per_partition - resume_at)
poll_until([("a2", a2), ("b", b)], lambda: len(messages.get("a2", [])) >= expected, 30,
           "reading from A's commits")
by_partition = {}
for msg in messages["a2"]:
    by_partition.setdefault(msg.partition(), []).append((msg.offset(), msg.value().decode()))
for p in a_parts:
    want = [(i, f"p{p}-{i}") for i in range(resume_at, per_partition)]
    assert by_partition.get(p) == want, f"partition {p}: {by_partition.get(p)} != {want}"
assert [e for e in events if e[0] == "b"] == b_events_before, f"B was rebalanced: {events}"

# A third process with the same instance id fences the second.
a3 = member("a3", "instance-a")
fenced = None
deadline = time.time() + 30
while fenced is None or assigned.get("a3") != a_parts:
    assert time.time() < deadline, f"fencing: a2 got {fenced}, events {events}"
    for name, c in (("a3", a3), ("b", b), ("a2", a2)):
        msg = c.poll(0.05)
        if msg is not None and msg.error() is not None:
            # librdkafka reports the broker's FENCED_INSTANCE_ID as a fatal consumer error.
            assert name == "a2" and msg.error().code() == KafkaError._FATAL, (name, msg.error())
            fenced = msg.error()
assert "fenced" in fenced.str(), fenced
assert [e for e in events if e[0] == "b"] == b_events_before, f"B was rebalanced: {events}"
for c in (a3, b):
    c.close()
print(f"OK static member back in {took:.1f}s with partitions {a_parts}")
