"""kafka-python: admin create/describe topics, an idempotent producer, then a consumer group
with commits; a second consumer in the same group resumes after the committed offsets.
Every key, value, header and timestamp must round-trip exactly."""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

from records import check_same, index_of, make_records

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
count = 200

admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kp-admin")
admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1,
                              topic_configs={"retention.ms": "86400000"})])
described = admin.describe_topics([topic])
assert described[0]["name"] == topic and len(described[0]["partitions"]) == 2, described
assert topic in admin.list_topics()

records = make_records(count, tag="kp")
producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                         compression_type="lz4")
for r in records:
    producer.send(topic, key=r["key"], value=r["value"], headers=r["headers"], timestamp_ms=r["timestamp"],
                  partition=index_of(r["value"]) % 2)
producer.flush(30)
producer.close()


def consume(limit):
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=15000)
    got = []
    for msg in consumer:
        got.append({"key": msg.key, "value": msg.value, "headers": [(k, v) for k, v in msg.headers],
                    "timestamp": msg.timestamp})
        if len(got) == limit:
            break
    consumer.commit()
    consumer.close()
    return got


first = consume(120)
rest = consume(count - 120)
got = first + rest
assert len(got) == count, f"got {len(got)} of {count}"
by_index = {index_of(g["value"]): g for g in got}
assert len(by_index) == count, "a record was consumed twice"
problems = []
for i, r in enumerate(records):
    problems += check_same(r, by_index[i], f"record {i}")
assert not problems, "\n".join(problems[:10])

offsets = admin.list_group_offsets(group)[group]
assert sum(o.offset for o in offsets.values()) == count, offsets
groups = [g["group_id"] for g in admin.list_groups()]
assert group in groups, groups
print(f"OK kafka-python {count}")
