"""Tiered-storage checks with confluent-kafka (and its AdminClient):

  create   BOOTSTRAP TOPIC key=value...        create a 1-partition topic with configs
  alter    BOOTSTRAP TOPIC key=value...        IncrementalAlterConfigs SET
  broker-config BOOTSTRAP - key=value...       IncrementalAlterConfigs on the broker: SET, or
                                               DELETE for `key=`; then checks DescribeConfigs
  delete   BOOTSTRAP TOPIC                     DeleteTopics
  partitions BOOTSTRAP TOPIC N                 CreatePartitions: grow the topic to N partitions
  delete-records BOOTSTRAP TOPIC OFFSET        DeleteRecords below OFFSET; prints the new low watermark
  produce  BOOTSTRAP TOPIC N TAG [START]       N deterministic records (records.py), acks=all
  consume  BOOTSTRAP TOPIC N TAG GROUP [FIRST] a NEW group from offset 0 reads N records and
                                               checks keys, values, headers, timestamps byte for
                                               byte plus a SHA-256 over everything
  offsets  BOOTSTRAP TOPIC                     ListOffsets -1/-2/-4/-5 as JSON
  seek     BOOTSTRAP TOPIC TIMESTAMP           offsets_for_times -> offset, then fetch that record
Prints `OK ...` on success; exits non-zero with a message otherwise."""
import hashlib
import json
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic,
                                   OffsetSpec)

from records import BASE_TS, check_same, make_records

cmd, bootstrap, topic = sys.argv[1], sys.argv[2], sys.argv[3]
rest = sys.argv[4:]


def configs(pairs):
    return dict(p.split("=", 1) for p in pairs)


def digest(records):
    h = hashlib.sha256()
    for r in records:
        for part in (r["key"] or b"<null>", r["value"], repr(r["headers"]).encode(), str(r["timestamp"]).encode()):
            h.update(len(part).to_bytes(4, "big"))
            h.update(part)
    return h.hexdigest()


def records_for(n, tag, start=0):
    return make_records(start + n, tag)[start:]


if cmd == "create":
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config=configs(rest))])[topic].result(20)
    print("OK created")
elif cmd == "alter":
    admin = AdminClient({"bootstrap.servers": bootstrap})
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in configs(rest).items()]
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=entries)
    admin.incremental_alter_configs([resource])[resource].result(20)
    print("OK altered")
elif cmd == "broker-config":
    from confluent_kafka.admin import ConfigSource
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = configs(rest)
    entries = [ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET if v else AlterConfigOpType.DELETE)
               for k, v in wanted.items()]
    resource = ConfigResource(ConfigResource.Type.BROKER, "0", incremental_configs=entries)
    admin.incremental_alter_configs([resource])[resource].result(20)
    broker = ConfigResource(ConfigResource.Type.BROKER, "0")
    described = admin.describe_configs([broker])[broker].result(20)
    for k, v in wanted.items():
        entry = described[k]
        if v:
            assert entry.value == v and entry.source == ConfigSource.DYNAMIC_BROKER_CONFIG.value, entry
        else:
            assert entry.source != ConfigSource.DYNAMIC_BROKER_CONFIG.value, entry
    print("OK broker configs " + " ".join(f"{k}={described[k].value}" for k in wanted))
elif cmd == "partitions":
    from confluent_kafka.admin import NewPartitions
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_partitions([NewPartitions(topic, int(rest[0]))])[topic].result(20)
    print("OK partitions")
elif cmd == "delete":
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([topic])[topic].result(30)
    print("OK deleted")
elif cmd == "delete-records":
    admin = AdminClient({"bootstrap.servers": bootstrap})
    [result] = admin.delete_records([TopicPartition(topic, 0, int(rest[0]))]).values()
    print(f"OK low watermark {result.result(20).low_watermark}")
elif cmd == "produce":
    n, tag = int(rest[0]), rest[1]
    start = int(rest[2]) if len(rest) > 2 else 0
    errors = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "batch.num.messages": 50, "message.timeout.ms": 180000})
    for r in records_for(n, tag, start):
        while True:
            try:
                producer.produce(topic, key=r["key"], value=r["value"], headers=r["headers"],
                                 timestamp=r["timestamp"], on_delivery=lambda err, m: err and errors.append(err))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(200)
    assert left == 0 and not errors, f"{left} undelivered, errors: {errors[:3]}"
    print(f"OK produced {n}")
elif cmd == "consume":
    n, tag, group = int(rest[0]), rest[1], rest[2]
    first = int(rest[3]) if len(rest) > 3 else 0
    expected = make_records(first + n, tag)[first:]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "fetch.wait.max.ms": 500})
    consumer.assign([TopicPartition(topic, 0, first)])
    got, deadline = [], time.time() + 120
    while len(got) < n and time.time() < deadline:
        m = consumer.poll(1.0)
        if m is None:
            continue
        if m.error():
            raise SystemExit(f"consume error at {len(got)}: {m.error()}")
        assert m.offset() == first + len(got), f"offset {m.offset()} != expected {first + len(got)}"
        got.append({"key": m.key(), "value": m.value(), "headers": m.headers() or [],
                    "timestamp": m.timestamp()[1]})
    consumer.close()
    assert len(got) == n, f"got {len(got)} of {n} records"
    problems = [p for i, (e, g) in enumerate(zip(expected, got)) for p in check_same(e, g, f"record {first + i}")]
    assert not problems, problems[:5]
    assert digest(expected) == digest(got)
    print(f"OK consumed {n} sha256={digest(got)}")
elif cmd == "consume-prefix":
    # Reads for SECONDS and checks that whatever arrived is the right prefix; prints the count.
    n, tag, group, seconds = int(rest[0]), rest[1], rest[2], float(rest[3])
    expected = make_records(n, tag)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got, deadline, errors = [], time.time() + seconds, []
    while len(got) < n and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            errors.append(str(m.error()))
            continue
        got.append({"key": m.key(), "value": m.value(), "headers": m.headers() or [], "timestamp": m.timestamp()[1]})
    consumer.close()
    problems = [p for i, (e, g) in enumerate(zip(expected, got)) for p in check_same(e, g, f"record {i}")]
    assert not problems, problems[:5]
    print(f"OK prefix {len(got)} errors={len(errors)}")
elif cmd == "offsets":
    admin = AdminClient({"bootstrap.servers": bootstrap})
    tp = TopicPartition(topic, 0)
    out = {}
    for name, spec in (("latest", OffsetSpec.latest()), ("earliest", OffsetSpec.earliest()),
                       ("earliest_local", OffsetSpec.for_timestamp(-4)),
                       ("latest_tiered", OffsetSpec.for_timestamp(-5))):
        try:
            out[name] = admin.list_offsets({tp: spec})[tp].result(20).offset
        except KafkaException as e:
            out[name] = f"error: {e}"
    print(json.dumps(out))
elif cmd == "seek":
    ts = int(rest[0])
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"seek-{time.time()}"})
    [found] = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=30)
    assert found.error is None, found.error
    consumer.assign([found])
    m, deadline = None, time.time() + 60
    while m is None and time.time() < deadline:
        m = consumer.poll(1.0)
        if m is not None and m.error():
            raise SystemExit(f"error: {m.error()}")
    consumer.close()
    assert m is not None, "no record at the found offset"
    print(f"OK seek offset={found.offset} timestamp={m.timestamp()[1]}")
else:
    raise SystemExit(f"unknown command {cmd}")
