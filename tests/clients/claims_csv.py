"""Consumes a CSV-split topic (claimcheck/src/csv_split.rs) from the beginning up to its summary
record and checks the rows arrive in file order (`claimcheck.csv.line` strictly increasing).
Prints a JSON line {"rows", "first", "last", "summary"}."""
import json
import sys

from confluent_kafka import Consumer, TopicPartition

bootstrap, topic = sys.argv[1], sys.argv[2]
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "claims-csv", "enable.auto.commit": False,
                     "fetch.max.bytes": 52428800, "max.partition.fetch.bytes": 10485760})
consumer.assign([TopicPartition(topic, 0, 0)])
rows, first, last, summary, last_line = 0, None, None, None, 0
while summary is None:
    batch = consumer.consume(num_messages=10000, timeout=30)
    assert batch, f"timed out after {rows} rows"
    for msg in batch:
        assert msg.error() is None, msg.error()
        headers = {k: v for k, v in (msg.headers() or [])}
        if headers.get("claimcheck.csv.summary") == b"true":
            summary = json.loads(msg.value())
            break
        line = int(headers["claimcheck.csv.line"])
        assert line > last_line, f"row out of order: line {line} after {last_line}"
        last_line = line
        row = json.loads(msg.value())
        if first is None:
            first = row
        last = row
        rows += 1
consumer.close()
print(json.dumps({"rows": rows, "first": first, "last": last, "summary": summary}))
