"""A full data disk, seen by a confluent-kafka producer and consumer.

  fill BOOTSTRAP TOPIC HTTP    acks=all records of 8 KiB until the broker refuses them; every
                               refusal must be KAFKA_STORAGE_ERROR, the broker keeps answering
                               /healthz and serving reads, and the partition holds exactly the
                               acknowledged records. Prints `ACKED n`.
  resume BOOTSTRAP TOPIC N     (after space returned) 20 more records are acknowledged right after
                               the first N, and the partition holds all N + 20, byte for byte.
  check BOOTSTRAP TOPIC N      the partition holds exactly records 0..N, byte for byte.
Prints `OK ...` on success."""
import sys
import urllib.request

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

cmd, bootstrap, topic = sys.argv[1], sys.argv[2], sys.argv[3]
value_size = 8192


def value(i):
    return f"{i:08d}".encode() * (value_size // 8)


def produce(start, count, stop_on_error):
    """acks=all, no retries, one record at a time; returns (acknowledged, errors)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0,
                         "enable.idempotence": False, "message.timeout.ms": 10000,
                         "linger.ms": 0})
    acked, errors = [], []
    for i in range(start, start + count):
        reports = []
        producer.produce(topic, key=str(i).encode(), value=value(i),
                         on_delivery=lambda err, msg: reports.append((err, msg.offset())))
        assert producer.flush(20) == 0, "delivery report missing"
        err, offset = reports[0]
        if err is None:
            assert offset == i, f"record {i} acknowledged at offset {offset}"
            acked.append(i)
        else:
            errors.append(err)
            if stop_on_error:
                break
    return acked, errors


def read_all(expected_count):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader-{expected_count}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    while len(got) < expected_count:
        msg = consumer.poll(10)
        assert msg is not None, f"read {len(got)} of {expected_count} records"
        assert msg.error() is None, msg.error()
        got.append(msg)
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.close()
    assert (low, high) == (0, expected_count), (low, high, expected_count)
    for i, msg in enumerate(got):
        assert msg.offset() == i and msg.key() == str(i).encode() and msg.value() == value(i), \
            f"record {i} differs: offset {msg.offset()} key {msg.key()}"


if cmd == "fill":
    http = sys.argv[4]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(20)
    acked, errors = produce(0, 100_000, stop_on_error=True)
    assert errors, "the disk never filled up"
    assert len(acked) > 10, f"only {len(acked)} records fit"
    # While the disk stays full, appends keep failing with the same clear error.
    more_acked, more_errors = produce(len(acked), 2, stop_on_error=False)
    assert not more_acked, f"records {more_acked} were acknowledged on a full disk"
    for err in errors + more_errors:
        assert err.code() == KafkaError.KAFKA_STORAGE_ERROR, err
    with urllib.request.urlopen(f"{http}/healthz", timeout=10) as response:
        assert response.status == 200
    read_all(len(acked))
    print(f"ACKED {len(acked)}")
    print(f"OK full: {len(acked)} acknowledged, then {errors[0].name()}")
elif cmd == "resume":
    before = int(sys.argv[4])
    acked, errors = produce(before, 20, stop_on_error=False)
    assert not errors, errors
    read_all(before + 20)
    print(f"OK resumed at {before}")
elif cmd == "check":
    read_all(int(sys.argv[4]))
    print(f"OK {sys.argv[4]} records")
else:
    raise SystemExit(f"unknown command {cmd}")
