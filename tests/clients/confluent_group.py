"""confluent-kafka consumer group: two members across three partitions with synchronous commits
after every record; one member leaves half-way, the other takes over its partitions from the
committed offsets. No record may be lost or consumed twice."""
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
total = 600

admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(20)
producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
for i in range(total):
    producer.produce(topic, key=str(i).encode(), value=f"v{i}".encode(), partition=i % 3)
assert producer.flush(30) == 0


def consumer(name):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "session.timeout.ms": 10000, "client.id": name,
                  "partition.assignment.strategy": "range"})
    c.subscribe([topic])
    return c


a, b = consumer("member-a"), consumer("member-b")
seen = {}
per_member = {"a": 0, "b": 0}
b_open = True
deadline = time.time() + 120
while len(seen) < total:
    assert time.time() < deadline, f"timed out with {len(seen)} of {total} (a={per_member['a']}, b={per_member['b']})"
    for name, c in (("a", a), ("b", b)) if b_open else (("a", a),):
        msg = c.poll(0.05)
        if msg is None or msg.error():
            continue
        key = msg.key().decode()
        assert key not in seen, f"record {key} consumed twice (first by {seen[key]}, now by {name})"
        seen[key] = name
        per_member[name] += 1
        c.commit(message=msg, asynchronous=False)
    if b_open and per_member["b"] >= 50 and per_member["a"] >= 50:
        b.close()  # LeaveGroup -> rebalance; a inherits b's partitions from b's commits
        b_open = False

assert not b_open, f"member b never consumed enough to leave: {per_member}"
assert len(seen) == total
assignment = a.assignment()
assert len(assignment) == 3, f"after b left, a should own all 3 partitions, owns {assignment}"
a.close()
print(f"OK group a={per_member['a']} b={per_member['b']}")
