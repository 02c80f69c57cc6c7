"""confluent-kafka consumer resolving a claim ticket: reads the ticket record at
(topic, partition, offset), checks the headers and the JSON value agree (docs/claim-ticket.md),
fetches the payload by its `claimcheck.uri` in a stream and checks size and SHA-256.
Prints "OK <size> <sha256>"."""
import hashlib
import json
import sys
import urllib.request

from confluent_kafka import Consumer, TopicPartition

bootstrap, topic, partition, offset, expected_sha = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "claims-resolver", "enable.auto.commit": False})
consumer.assign([TopicPartition(topic, partition, offset)])
msg = consumer.poll(30)
assert msg is not None, "no ticket record"
assert msg.error() is None, msg.error()
assert msg.offset() == offset, msg.offset()
consumer.close()

headers = {k: v.decode() for k, v in (msg.headers() or [])}
ticket = json.loads(msg.value())
assert headers["claimcheck.version"] == "1" and ticket["version"] == 1, (headers, ticket)
assert headers["claimcheck.id"] == ticket["id"], (headers, ticket)
assert headers["claimcheck.sha256"] == ticket["sha256"] == expected_sha, (headers, ticket, expected_sha)
assert int(headers["claimcheck.size"]) == ticket["size"]
assert headers["claimcheck.uri"] == ticket["uri"] and ticket["uri"].startswith("http"), ticket

digest = hashlib.sha256()
size = 0
with urllib.request.urlopen(ticket["uri"], timeout=120) as response:
    while True:
        chunk = response.read(1 << 20)
        if not chunk:
            break
        digest.update(chunk)
        size += len(chunk)
assert size == ticket["size"], (size, ticket["size"])
assert digest.hexdigest() == ticket["sha256"], (digest.hexdigest(), ticket["sha256"])
print(f"OK {size} {digest.hexdigest()}")
