"""A topic's compression.type decides how its batches are stored, whatever the producer sent:
created with zstd, then altered live to gzip, lz4, snappy, uncompressed and back to producer,
with a producer on a different codec each time (zstd and gzip at non-default KIP-390 levels,
described back; an invalid level is refused). The segment files must hold each phase's batches in
the topic's codec (the producer's in the last phase), and confluent-kafka and kafka-python must
read every record back byte for byte (keys, values, repeated header keys, timestamps).
Then a compression bomb: one 80 MiB record of zeros zstd-compressed to a few KiB (well under
max.message.bytes) into a topic that stores lz4 must be refused with MSG_SIZE_TOO_LARGE
(it would inflate past the broker's 64 MiB limit), append nothing, and leave the broker serving.

usage: confluent_topic_compression.py BOOTSTRAP TOPIC PARTITION_DIR"""
import glob
import struct
import sys

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from kafka import KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

from records import check_log, make_records

bootstrap, topic, partition_dir = sys.argv[1], sys.argv[2], sys.argv[3]
PER_PHASE = 300
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
# (topic compression.type, producer compression.type, codec the log must store)
PHASES = [("zstd", "none", "zstd"), ("gzip", "lz4", "gzip"), ("lz4", "zstd", "lz4"), ("snappy", "none", "snappy"),
          ("uncompressed", "snappy", "none"), ("producer", "lz4", "lz4")]

admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                              config={"compression.type": PHASES[0][0], "compression.zstd.level": "-5",
                                      "compression.gzip.level": "9"})])[topic].result(20)
levels = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
levels = list(levels.values())[0].result(20)
assert levels["compression.zstd.level"].value == "-5", levels["compression.zstd.level"]
assert levels["compression.gzip.level"].value == "9", levels["compression.gzip.level"]
bad = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
    ConfigEntry("compression.gzip.level", "0", incremental_operation=AlterConfigOpType.SET)])
try:
    admin.incremental_alter_configs([bad])[bad].result(20)
    refusal = None
except Exception as e:  # KafkaException(INVALID_CONFIG)
    refusal = str(e)
assert refusal is not None, "compression.gzip.level=0 must be refused, as Kafka does"
assert "INVALID_CONFIG" in refusal or "nvalid" in refusal, refusal


def set_topic_compression(value):
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("compression.type", value, incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(20)
    described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    got = list(described.values())[0].result(20)["compression.type"].value
    assert got == value, f"compression.type is {got}, expected {value}"


records = make_records(PER_PHASE * len(PHASES), tag="tc")
phase_of_offset = []
for phase, (topic_codec, producer_codec, _) in enumerate(PHASES):
    if phase > 0:
        set_topic_compression(topic_codec)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
                         "compression.type": producer_codec, "linger.ms": 20})
    errors = []
    for r in records[phase * PER_PHASE:(phase + 1) * PER_PHASE]:
        producer.produce(topic, key=r["key"], value=r["value"], headers=r["headers"], timestamp=r["timestamp"],
                         partition=0, on_delivery=lambda err, msg: err and errors.append(str(err)))
        phase_of_offset.append(phase)
    left = producer.flush(30)
    assert left == 0 and not errors, f"phase {phase}: undelivered {left}, errors {errors[:5]}"

# What the log stores: every batch of a phase in that phase's codec.
batches_per_phase = [0] * len(PHASES)
problems = []
for path in sorted(glob.glob(f"{partition_dir}/*.log")):
    data = open(path, "rb").read()
    position = 0
    while position + 61 <= len(data):
        base_offset, length = struct.unpack_from(">qi", data, position)
        if length == 0:  # the zeroed tail after acks=all appends
            break
        attributes = struct.unpack_from(">h", data, position + 21)[0]
        phase = phase_of_offset[base_offset]
        want = CODEC_IDS[PHASES[phase][2]]
        if attributes & 0x07 != want:
            problems.append(f"batch at offset {base_offset} (phase {phase}) stored with codec "
                            f"{attributes & 0x07}, expected {want}")
        batches_per_phase[phase] += 1
        position += 12 + length
assert not problems, "\n".join(problems[:10])
assert all(batches_per_phase), f"a phase has no batch in the segment files: {batches_per_phase}"


def compare(got, client):
    problems = check_log(records, got, client)
    assert not problems, "\n".join(problems[:10])


consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "compression-reader",
                     "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, 0, 0)])
got = []
while len(got) < len(records):
    msg = consumer.poll(15)
    assert msg is not None, f"confluent-kafka timed out after {len(got)} records"
    assert msg.error() is None, msg.error()
    got.append({"key": msg.key(), "value": msg.value(), "headers": msg.headers() or [],
                "timestamp": msg.timestamp()[1], "offset": msg.offset()})
consumer.close()
compare(got, "confluent-kafka")

kp = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=15000)
tp = KpTopicPartition(topic, 0)
kp.assign([tp])
kp.seek(tp, 0)
got = []
for msg in kp:
    got.append({"key": msg.key, "value": msg.value, "headers": [(k, v) for k, v in msg.headers],
                "timestamp": msg.timestamp, "offset": msg.offset})
    if len(got) == len(records):
        break
kp.close()
compare(got, "kafka-python")
bomb_topic = topic + "-bomb"
admin.create_topics([NewTopic(bomb_topic, num_partitions=1, replication_factor=1,
                              config={"compression.type": "lz4"})])[bomb_topic].result(20)
outcomes = []
bomber = Producer({"bootstrap.servers": bootstrap, "compression.type": "zstd", "acks": "all",
                   "message.max.bytes": 200_000_000, "retries": 0})
bomber.produce(bomb_topic, value=bytes(80 << 20), partition=0,
               on_delivery=lambda err, msg: outcomes.append((err, msg.offset())))
bomber.produce(bomb_topic, value=b"after the bomb", partition=0,
               on_delivery=lambda err, msg: outcomes.append((err, msg.offset())))
assert bomber.flush(60) == 0, "undelivered"
(bomb_error, _), (after_error, after_offset) = outcomes
assert bomb_error is not None and bomb_error.name() == "MSG_SIZE_TOO_LARGE", bomb_error
assert after_error is None and after_offset == 0, (after_error, after_offset)
print(f"OK compression {batches_per_phase}, bomb refused")
