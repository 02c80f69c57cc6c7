"""confluent-kafka AdminClient: create a topic with configs, describe, alter (incremental and
legacy), describe again, add partitions, describe the cluster, delete the topic."""
import sys
import time

from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewPartitions,
                                   NewTopic)

bootstrap, topic = sys.argv[1], sys.argv[2]
admin = AdminClient({"bootstrap.servers": bootstrap})


def describe(name):
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    return {k: v.value for k, v in admin.describe_configs([resource])[resource].result(20).items()}


new = NewTopic(topic, num_partitions=2, replication_factor=1,
               config={"retention.ms": "3600000", "cleanup.policy": "delete", "max.message.bytes": "2000000"})
admin.create_topics([new])[topic].result(20)

dup = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic]
try:
    dup.result(20)
    raise AssertionError("creating an existing topic must fail")
except Exception as e:  # KafkaException(TOPIC_ALREADY_EXISTS)
    assert "TOPIC_ALREADY_EXISTS" in str(e) or "already exists" in str(e), e

bad = admin.create_topics([NewTopic(topic + "-bad", num_partitions=1, replication_factor=1,
                                    config={"retention.ms": "not-a-number"})])[topic + "-bad"]
try:
    bad.result(20)
    raise AssertionError("an invalid config value must be refused")
except Exception as e:
    assert "INVALID_CONFIG" in str(e) or "nvalid" in str(e), e

configs = describe(topic)
assert configs["retention.ms"] == "3600000", configs["retention.ms"]
assert configs["max.message.bytes"] == "2000000", configs["max.message.bytes"]

resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
    ConfigEntry("retention.ms", "7200000", incremental_operation=AlterConfigOpType.SET),
    ConfigEntry("max.message.bytes", None, incremental_operation=AlterConfigOpType.DELETE),
])
admin.incremental_alter_configs([resource])[resource].result(20)
configs = describe(topic)
assert configs["retention.ms"] == "7200000", configs["retention.ms"]
assert configs["max.message.bytes"] != "2000000", configs["max.message.bytes"]

admin.create_partitions([NewPartitions(topic, 4)])[topic].result(20)
deadline = time.time() + 10
while len(admin.list_topics(topic, timeout=10).topics[topic].partitions) != 4:
    assert time.time() < deadline, "partitions did not grow"
    time.sleep(0.2)

broker = ConfigResource(ConfigResource.Type.BROKER, "0")
broker_configs = admin.describe_configs([broker])[broker].result(20)
assert "num.partitions" in broker_configs, sorted(broker_configs)

cluster = admin.describe_cluster().result(20)
assert len(cluster.nodes) == 1 and cluster.controller is not None, cluster

admin.delete_topics([topic])[topic].result(20)
deadline = time.time() + 10
while topic in admin.list_topics(timeout=10).topics:
    assert time.time() < deadline, "topic still listed after delete"
    time.sleep(0.2)
print("OK admin")
