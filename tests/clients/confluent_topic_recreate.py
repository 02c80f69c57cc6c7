"""A deleted topic takes its committed offsets with it (confluent-kafka), as in Kafka.

phase "delete" (BOOTSTRAP delete PREFIX): group PREFIX-g commits offset 6 on PREFIX-t (10
  records) and 3 on PREFIX-kept; PREFIX-t is deleted. Its offset is gone at once, and a commit to
  it now fails with UNKNOWN_TOPIC_OR_PART and does not create the topic.
  (The broker is restarted here: replaying the offsets journal must not bring the offset back.)
phase "recreate" (BOOTSTRAP recreate PREFIX): PREFIX-t still has no offset, PREFIX-kept still 3.
  PREFIX-t is created again with 8 new records; a member of the group reads all 8 from offset 0
  (a stale offset 6 would skip 6 of them) and commits 8.
  (The broker is restarted again.)
phase "after-restart" (BOOTSTRAP after-restart PREFIX): the new topic's offset 8 survived.
Prints `OK ...`; exits non-zero with a message otherwise."""
import sys
import time

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, phase, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
topic, kept, group = f"{prefix}-t", f"{prefix}-kept", f"{prefix}-g"
admin = AdminClient({"bootstrap.servers": bootstrap})


def committed(name):
    probe = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        [tp] = probe.committed([TopicPartition(name, 0)], timeout=20)
        return tp.offset
    finally:
        probe.close()


def produce(name, values):
    producer = Producer({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})
    for value in values:
        producer.produce(name, value.encode(), partition=0)
    assert producer.flush(20) == 0


def create(name):
    admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=1)])[name].result(20)


def listed():
    return set(admin.list_topics(timeout=10).topics)


if phase == "delete":
    create(topic)
    create(kept)
    produce(topic, [f"old-{i}" for i in range(10)])
    produce(kept, [f"kept-{i}" for i in range(5)])
    member = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    member.assign([TopicPartition(topic, 0), TopicPartition(kept, 0)])
    member.commit(offsets=[TopicPartition(topic, 0, 6), TopicPartition(kept, 0, 3)], asynchronous=False)
    member.close()
    assert (committed(topic), committed(kept)) == (6, 3), (committed(topic), committed(kept))

    admin.delete_topics([topic])[topic].result(20)
    deadline = time.time() + 10
    while topic in listed():
        assert time.time() < deadline, "topic still listed after delete"
        time.sleep(0.2)
    assert committed(topic) == OFFSET_INVALID, f"the deleted topic kept offset {committed(topic)}"
    assert committed(kept) == 3, committed(kept)

    late = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        result = late.commit(offsets=[TopicPartition(topic, 0, 9)], asynchronous=False)
        errors = [tp.error for tp in result]
    except KafkaException as e:
        errors = [e.args[0]]
    finally:
        late.close()
    assert [e.code() if e else None for e in errors] == [KafkaError.UNKNOWN_TOPIC_OR_PART], errors
    assert committed(topic) == OFFSET_INVALID, committed(topic)
    assert topic not in listed(), "OffsetCommit created the topic"
    print("OK deleted")

elif phase == "recreate":
    assert committed(topic) == OFFSET_INVALID, f"offset {committed(topic)} came back after a restart"
    assert committed(kept) == 3, committed(kept)
    create(topic)
    fresh = [f"new-{i}" for i in range(8)]
    produce(topic, fresh)
    member = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                       "auto.offset.reset": "earliest", "session.timeout.ms": 10000})
    member.subscribe([topic])
    values, deadline = [], time.time() + 30
    while len(values) < len(fresh) and time.time() < deadline:
        m = member.poll(0.5)
        if m is not None and not m.error():
            values.append((m.offset(), m.value().decode()))
    member.commit(offsets=[TopicPartition(topic, 0, 8)], asynchronous=False)
    member.close()
    assert values == list(enumerate(fresh)), f"the group read {values}"
    print("OK recreated")

elif phase == "after-restart":
    assert committed(topic) == 8, committed(topic)
    assert committed(kept) == 3, committed(kept)
    print("OK after restart")
