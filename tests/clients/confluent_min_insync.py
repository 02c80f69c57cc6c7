"""min.insync.replicas on a single-node broker, with confluent-kafka: at 2, an acks=all produce is
refused with NOT_ENOUGH_REPLICAS and appends nothing, while acks=1 is accepted; the claim-check
gateway (whose tickets are acks=all appends) refuses an upload with 503 append_refused; lowered to 1 live
(IncrementalAlterConfigs), acks=all is accepted. The partition then holds exactly the two accepted
records, byte for byte, at offsets 0 and 1."""
import json
import sys
import urllib.error
import urllib.request

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

bootstrap, topic, http = sys.argv[1], sys.argv[2], sys.argv[3]
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1,
                              config={"min.insync.replicas": "2"})])[topic].result(20)


def produce(acks, value):
    """Produces one record without retries; returns (error or None, offset)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "retries": 0,
                         "enable.idempotence": False, "message.timeout.ms": 10000})
    reports = []
    producer.produce(topic, value=value, on_delivery=lambda err, msg: reports.append((err, msg.offset())))
    assert producer.flush(20) == 0, "delivery report missing"
    assert len(reports) == 1, reports
    return reports[0]


def high_watermark():
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic + "-wm"})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.close()
    return high


err, _ = produce("all", b"refused")
assert err is not None and err.code() == KafkaError.NOT_ENOUGH_REPLICAS, err
assert high_watermark() == 0, "a refused append must not be in the log"

upload = urllib.request.Request(f"{http}/v1/topics/{topic}/claims", data=b"payload" * 1000, method="POST",
                                headers={"Content-Type": "application/octet-stream"})
try:
    urllib.request.urlopen(upload, timeout=20)
    raise AssertionError("the gateway must refuse a ticket it cannot append with acks=all")
except urllib.error.HTTPError as e:
    body = json.loads(e.read())
    assert e.code == 503 and body["error"]["code"] == "append_refused", (e.code, body)
    assert "min.insync.replicas=2" in body["error"]["message"], body
assert high_watermark() == 0, "a refused ticket must not be in the log"

err, offset = produce("1", b"leader-only")
assert err is None and offset == 0, (err, offset)

resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
    ConfigEntry("min.insync.replicas", "1", incremental_operation=AlterConfigOpType.SET)])
admin.incremental_alter_configs([resource])[resource].result(20)
err, offset = produce("all", b"durable")
assert err is None and offset == 1, (err, offset)

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic + "-read",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, 0, 0)])
read = []
while len(read) < 2:
    msg = consumer.poll(10)
    assert msg is not None, f"timed out after {read}"
    assert msg.error() is None, msg.error()
    read.append((msg.offset(), msg.value()))
consumer.close()
assert read == [(0, b"leader-only"), (1, b"durable")], read
assert high_watermark() == 2
print("OK min.insync.replicas")
