"""confluent-kafka (librdkafka): an idempotent producer with zstd, then a consumer reading the
topic from the beginning; every key, value, header and timestamp must round-trip exactly."""
import sys

from confluent_kafka import Consumer, Producer, TopicPartition

from records import check_log, make_records

bootstrap, topic = sys.argv[1], sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 500
records = make_records(count, tag="ck")

producer = Producer({
    "bootstrap.servers": bootstrap,
    "enable.idempotence": True,
    "compression.type": "zstd",
    "linger.ms": 5,
    "acks": "all",
})
errors = []
for r in records:
    producer.produce(topic, key=r["key"], value=r["value"], headers=r["headers"], timestamp=r["timestamp"],
                     partition=0, on_delivery=lambda err, msg: err and errors.append(str(err)))
    producer.poll(0)
left = producer.flush(30)
assert left == 0 and not errors, f"undelivered: {left}, errors: {errors[:5]}"

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "roundtrip-reader", "enable.auto.commit": False,
                     "auto.offset.reset": "earliest"})
consumer.assign([TopicPartition(topic, 0, 0)])
got = []
while len(got) < count:
    msg = consumer.poll(15)
    assert msg is not None, f"timed out after {len(got)} records"
    assert msg.error() is None, msg.error()
    got.append({"key": msg.key(), "value": msg.value(), "headers": msg.headers() or [],
                "timestamp": msg.timestamp()[1], "offset": msg.offset()})
consumer.close()

problems = check_log(records, got, "confluent-kafka")
assert not problems, "\n".join(problems[:10])
print(f"OK {count}")
