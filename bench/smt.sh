#!/usr/bin/env bash
# Single Message Transform benchmark (not in CI).
#
#   produce: 5 MB records to a ClaimCheck topic (tickets in the log, payloads in the bucket)
#            vs the same records inline (max.message.bytes raised)
#   consume: the ClaimCheck topic with fetch-side resolution (claimcheck.fetch.resolve=true)
#            vs reading tickets and resolving them through the gateway (GET /v1/claims/{id},
#            what strata_claimcheck::client does)
#
# Usage: bench/smt.sh [RECORDS]   (default 40 records of 5 MiB = 200 MiB per run)
# Needs: cargo, the project's .venv (confluent-kafka). Prints MB/s and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${1:-40}
SIZE=$((5 * 1024 * 1024))
PY=.venv/bin/python

cargo build --release -q -p strata-broker --bin strata
WORK=$(mktemp -d)
KPORT=$((20000 + RANDOM % 20000))
HPORT=$((KPORT + 1))
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
target/release/strata serve --data-dir "$WORK/data" --kafka-listen 127.0.0.1:$KPORT \
  --http-listen 127.0.0.1:$HPORT --set message.max.bytes=10485760 >"$WORK/strata.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$HPORT/healthz >/dev/null && break; sleep 0.1; done

$PY - "127.0.0.1:$KPORT" "http://127.0.0.1:$HPORT" "$RECORDS" "$SIZE" <<'EOF'
import json, os, sys, time, urllib.request
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, http, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
BIG = 200 * 1024 * 1024
admin = AdminClient({"bootstrap.servers": bootstrap})
common = {"max.message.bytes": "10485760"}
topics = {
    "inline": dict(common),
    "cc": dict(common, **{"transforms": "cc", "transforms.cc.type": "ClaimCheck",
                          "transforms.cc.threshold.bytes": "1048576"}),
    "ccr": dict(common, **{"transforms": "cc", "transforms.cc.type": "ClaimCheck",
                           "transforms.cc.threshold.bytes": "1048576", "claimcheck.fetch.resolve": "true",
                           "claimcheck.fetch.resolve.max.bytes": str(64 * 1024 * 1024)}),
}
for f in admin.create_topics([NewTopic(t, 1, 1, config=c) for t, c in topics.items()]).values():
    f.result(30)
payload = os.urandom(size)
mb = count * size / 1e6

def produce(topic):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.max.bytes": BIG, "linger.ms": 5})
    start = time.perf_counter()
    for i in range(count):
        p.produce(topic, value=payload, key=str(i).encode(), partition=0)
        p.poll(0)
    p.flush(300)
    return mb / (time.perf_counter() - start)

def consume(topic, resolve_client_side):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-" + topic + str(resolve_client_side),
                  "fetch.max.bytes": BIG, "max.partition.fetch.bytes": BIG,
                  "receive.message.max.bytes": BIG + (1 << 20), "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    start, seen, got = time.perf_counter(), 0, 0
    while seen < count:
        m = c.poll(30)
        assert m is not None and m.error() is None, m and m.error()
        value = m.value()
        if resolve_client_side:
            ticket = json.loads(value)
            with urllib.request.urlopen(f"{http}/v1/claims/{ticket['id']}") as r:
                value = r.read()
        got += len(value)
        seen += 1
    c.close()
    assert got == count * size, got
    return mb / (time.perf_counter() - start)

p_inline, p_cc = produce("inline"), produce("cc")
produce("ccr")
c_fetch, c_client, c_inline = consume("ccr", False), consume("cc", True), consume("inline", False)
print(f"records: {count} x {size / 1e6:.1f} MB")
print(f"produce inline          {p_inline:8.1f} MB/s")
print(f"produce ClaimCheck      {p_cc:8.1f} MB/s   ratio {p_cc / p_inline:.2f}x of inline")
print(f"consume inline          {c_inline:8.1f} MB/s")
print(f"consume fetch-resolve   {c_fetch:8.1f} MB/s")
print(f"consume client-resolve  {c_client:8.1f} MB/s   fetch-resolve/client-resolve {c_fetch / c_client:.2f}x")
EOF
