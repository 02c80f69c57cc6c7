"""kafka-python: DescribeLogDirs (`kafka-log-dirs --describe`).

Produces to partition 0 of a two-partition topic, then checks the answer: the broker's data
directory as the one log dir, every partition of the topic with partition 0's size covering its
values and partition 1 empty, filters by topic and by partition, unknown topics left out, and the
volume's total and usable bytes as `statvfs` sees them. Prints the sizes (`SIZES {json}`) for the
caller to check against the segment files.

With a fourth argument `size`, only prints `SIZE n`: partition 0's size as DescribeLogDirs reports
it, for a topic that already exists.
"""
import json
import os
import sys

from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

bootstrap, topic, data_dir = sys.argv[1], sys.argv[2], sys.argv[3]
count, value_size = 300, 1000

admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kp-log-dirs")
if sys.argv[4:] == ["size"]:
    [broker] = admin.describe_log_dirs({topic: [0]})
    [size] = [p["partition_size"] for d in broker["log_dirs"] for t in d["topics"] for p in t["partitions"]]
    print(f"SIZE {size}")
    sys.exit(0)
admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
for i in range(count):
    producer.send(topic, value=bytes([i % 256]) * value_size, partition=0)
producer.flush(30)
producer.close()


def sizes(answer):
    assert len(answer) == 1 and len(answer[0]["log_dirs"]) == 1, answer
    log_dir = answer[0]["log_dirs"][0]
    assert log_dir["error_code"] == 0, log_dir
    assert os.path.samefile(log_dir["log_dir"], data_dir), (log_dir["log_dir"], data_dir)
    return log_dir, {(t["name"], p["partition_index"]): p["partition_size"]
                     for t in log_dir["topics"] for p in t["partitions"]}


log_dir, everything = sizes(admin.describe_log_dirs())
mine = {k: v for k, v in everything.items() if k[0] == topic}
assert set(mine) == {(topic, 0), (topic, 1)}, everything
# Each record adds its value plus a few dozen bytes of record and batch framing.
assert count * value_size < mine[(topic, 0)] < count * (value_size + 100), mine
assert mine[(topic, 1)] == 0, mine

_, by_topic = sizes(admin.describe_log_dirs([topic, f"{topic}-missing"]))
assert by_topic == mine, by_topic
_, by_partition = sizes(admin.describe_log_dirs({topic: [1, 7]}))
assert by_partition == {(topic, 1): 0}, by_partition

volume = os.statvfs(data_dir)
assert log_dir["total_bytes"] == volume.f_blocks * volume.f_frsize, (log_dir, volume)
# Usable space moves as other processes write; it must be near what statvfs sees now.
usable_now = volume.f_bavail * volume.f_frsize
assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"], log_dir
assert abs(log_dir["usable_bytes"] - usable_now) < 512 * 1024 * 1024, (log_dir, usable_now)

print("SIZES " + json.dumps({str(p): size for (_, p), size in mine.items()}))
print("OK log dirs")
