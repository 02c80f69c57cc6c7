"""kafka-python: OffsetDelete (`kafka-consumer-groups --delete-offsets`) with Kafka's rules.

Phase `delete`: a group with an active member subscribed to topic A commits offsets for A-0, A-1
and B-0. Deleting A-0 and B-0 while it runs deletes B-0 only (A is subscribed:
GROUP_SUBSCRIBED_TO_TOPIC). Once the member leaves, A-0 is deleted; A-1 keeps its offset, and a
new member of the group starts A-0 from the beginning (nothing committed) and A-1 after its
commit. Unknown groups and topics get Kafka's errors.
Phase `after-restart`: the deletions survived a broker restart.
"""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import (GroupIdNotFoundError, GroupSubscribedToTopicError, NoError,
                          UnknownTopicOrPartitionError)
from kafka.structs import OffsetAndMetadata

bootstrap, phase, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
topic_a, topic_b, group = f"{prefix}-a", f"{prefix}-b", f"{prefix}-g"
per_partition = 10
a0, a1, b0 = TopicPartition(topic_a, 0), TopicPartition(topic_a, 1), TopicPartition(topic_b, 0)

admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kp-offset-delete")


def committed():
    return {tp: o.offset for tp, o in admin.list_group_offsets(group)[group].items()}


if phase == "delete":
    admin.create_topics([NewTopic(topic_a, num_partitions=2, replication_factor=1),
                         NewTopic(topic_b, num_partitions=1, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for tp in (a0, a1, b0):
        for i in range(per_partition):
            producer.send(tp.topic, value=f"{tp.topic}/{tp.partition}/{i}".encode(), partition=tp.partition)
    producer.flush(30)
    producer.close()

    member = KafkaConsumer(topic_a, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                           auto_offset_reset="earliest", consumer_timeout_ms=15000)
    seen = sum(1 for _, msg in zip(range(2 * per_partition), member))
    assert seen == 2 * per_partition, f"the member read {seen} records"
    member.commit({a0: OffsetAndMetadata(per_partition, "", -1), a1: OffsetAndMetadata(per_partition, "", -1),
                   b0: OffsetAndMetadata(7, "", -1)})
    assert committed() == {a0: per_partition, a1: per_partition, b0: 7}, committed()

    # The member still runs and subscribes to A: A-0 is refused, B-0 is deleted.
    results = admin.delete_group_offsets(group, [a0, b0])
    assert results == {a0: GroupSubscribedToTopicError, b0: NoError}, results
    assert committed() == {a0: per_partition, a1: per_partition}, committed()

    member.close()  # leaves the group: it is now empty
    results = admin.delete_group_offsets(group, [a0])
    assert results == {a0: NoError}, results
    assert committed() == {a1: per_partition}, committed()
    # Deleting again, or a partition with no committed offset, is not an error.
    assert admin.delete_group_offsets(group, [a0, b0]) == {a0: NoError, b0: NoError}

    # A topic that does not exist, and a group that does not.
    missing = TopicPartition(f"{prefix}-missing", 0)
    results = admin.delete_group_offsets(group, [missing, a1])
    assert results == {missing: UnknownTopicOrPartitionError, a1: NoError}, results
    assert committed() == {}, committed()
    try:
        admin.delete_group_offsets(f"{prefix}-no-such-group", [a0])
        raise AssertionError("deleting offsets of an unknown group succeeded")
    except GroupIdNotFoundError:
        pass

    # Put A-1 back, delete nothing else, and check what a new member reads.
    admin.alter_group_offsets(group, {a1: OffsetAndMetadata(per_partition - 3, "", -1)})
    assert committed() == {a1: per_partition - 3}, committed()
    print("OK deleted")

elif phase == "after-restart":
    assert committed() == {a1: per_partition - 3}, committed()
    reader = KafkaConsumer(topic_a, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                           auto_offset_reset="earliest", consumer_timeout_ms=10000)
    values = sorted(msg.value.decode() for msg in reader)
    reader.close()
    # A-0 has no committed offset (deleted): read from its start; A-1 resumes after its commit.
    expected = sorted([f"{topic_a}/0/{i}" for i in range(per_partition)]
                      + [f"{topic_a}/1/{i}" for i in range(per_partition - 3, per_partition)])
    assert values == expected, values
    print("OK after restart")
else:
    raise SystemExit(f"unknown phase {phase}")
