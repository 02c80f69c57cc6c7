"""A chunk-mode consumer (claimcheck/src/chunked.rs, docs/claim-ticket.md) that can be stopped
halfway: it reassembles payloads from `claimcheck.chunk.*` records per partition, and commits
only the *safe* offset (the first offset of the oldest incomplete payload, else one past the
last record), so after a restart every incomplete payload is re-read from its first chunk.

usage: claims_chunks.py BOOTSTRAP TOPIC GROUP MAX_RECORDS
Consumes at most MAX_RECORDS records (0 = until idle), prints one line per delivered payload:
"PAYLOAD <id> <size> <sha256>", then "COMMITTED <offset>"."""
import hashlib
import sys

from confluent_kafka import Consumer, TopicPartition

bootstrap, topic, group, max_records = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                     "auto.offset.reset": "earliest"})
consumer.subscribe([topic])

incomplete = {}  # id -> {"first": offset, "chunks": [bytes], "next": index}
seen = 0
last_offset = None


def safe_offset():
    if incomplete:
        return min(p["first"] for p in incomplete.values())
    return last_offset + 1


idle = 0
while max_records == 0 or seen < max_records:
    msg = consumer.poll(5)
    if msg is None:
        idle += 1
        if idle >= 2:
            break
        continue
    assert msg.error() is None, msg.error()
    idle = 0
    seen += 1
    last_offset = msg.offset()
    headers = {k: v for k, v in (msg.headers() or [])}
    cid = headers.get("claimcheck.chunk.id")
    if cid is None:
        continue
    cid = cid.decode()
    if "claimcheck.chunk.index" in headers:
        index = int(headers["claimcheck.chunk.index"])
        if index == 0:
            incomplete[cid] = {"first": msg.offset(), "chunks": [], "next": 0}
        p = incomplete.get(cid)
        if p is None:  # continuation of a payload delivered before the restart point
            continue
        if index < p["next"]:  # duplicate
            continue
        assert index == p["next"], f"gap in {cid}: {index} after {p['next']}"
        p["chunks"].append(msg.value())
        p["next"] += 1
    elif headers.get("claimcheck.chunk.final") == b"true":
        p = incomplete.pop(cid, None)
        if p is None:
            continue
        data = b"".join(p["chunks"])
        sha = hashlib.sha256(data).hexdigest()
        assert int(headers["claimcheck.chunk.count"]) == p["next"], "count"
        assert int(headers["claimcheck.chunk.size"]) == len(data), "size"
        assert headers["claimcheck.chunk.sha256"].decode() == sha, "sha256"
        print(f"PAYLOAD {cid} {len(data)} {sha}", flush=True)
    elif "claimcheck.chunk.aborted" in headers:
        incomplete.pop(cid, None)

if last_offset is not None:
    commit = safe_offset()
    consumer.commit(offsets=[TopicPartition(topic, 0, commit)], asynchronous=False)
    print(f"COMMITTED {commit}", flush=True)
consumer.close()
