"""Dynamic broker configs through confluent-kafka's AdminClient.

phase "alter": set num.partitions=3 (dynamic), check DescribeConfigs reports it as a dynamic
broker config; a static config (socket.request.max.bytes) and a bad value are refused with
clear messages. phase "after-restart": the dynamic value is still in effect (described, and an
auto-created topic gets 3 partitions)."""
import sys
import time

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource

bootstrap, phase, topic = sys.argv[1], sys.argv[2], sys.argv[3]
admin = AdminClient({"bootstrap.servers": bootstrap})
broker = ConfigResource(ConfigResource.Type.BROKER, "0")


def describe():
    return admin.describe_configs([broker])[broker].result(20)


def alter(key, value):
    resource = ConfigResource(ConfigResource.Type.BROKER, "0", incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(20)


def refused(key, value, expected_text):
    try:
        alter(key, value)
    except KafkaException as e:
        assert expected_text in str(e), (key, value, str(e))
        return
    raise AssertionError(f"{key}={value} was accepted")


if phase == "alter":
    assert describe()["num.partitions"].value == "1", describe()["num.partitions"]
    alter("num.partitions", "3")
    entry = describe()["num.partitions"]
    assert entry.value == "3", entry
    assert entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value, entry.source
    assert not entry.is_read_only
    assert describe()["socket.request.max.bytes"].is_read_only
    refused("socket.request.max.bytes", "2000000", "cannot be changed while the broker runs")
    refused("num.partitions", "many", "num.partitions")
    assert describe()["num.partitions"].value == "3"
    print("OK altered")
elif phase == "after-restart":
    entry = describe()["num.partitions"]
    assert entry.value == "3", entry
    assert entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value, entry.source
    producer = Producer({"bootstrap.servers": bootstrap})
    producer.produce(topic, b"v")
    assert producer.flush(20) == 0
    deadline = time.time() + 10
    while True:
        partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
        if len(partitions) == 3:
            break
        assert time.time() < deadline, f"auto-created topic has {len(partitions)} partitions"
        time.sleep(0.2)
    print("OK persisted")
else:
    raise SystemExit(f"unknown phase {phase}")
