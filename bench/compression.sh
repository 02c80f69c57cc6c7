#!/usr/bin/env bash
# Topic compression.type: what re-compressing on append costs a producer, and what it saves on disk.
#
#   bash bench/compression.sh                # 512 MiB of 1 KiB records per case (about 3 minutes)
#   SIZE_MB=128 bash bench/compression.sh    # quicker
#   STRATA_BIN=target/release/strata ...     # skip the build
#
# One release `strata serve`; for each producer codec (none, lz4) and each topic compression.type
# (producer = bytes kept as sent, zstd, lz4, gzip), a new one-partition topic and the same
# confluent-kafka producer (bench/tiering_client.py: acks=1, linger.ms=5, 1 MiB batches, text-like
# values from a pool of 8192 distinct ones, so codecs work as on logs). Prints MB/s of record values, the ratio to compression.type=producer with the
# same producer codec (the cost of the broker's re-compression), and the bytes the partition takes
# on disk. No Tansu column: Tansu stores batches as the producer sent them, whatever the topic's
# compression.type, so there is nothing to compare side by side.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"
client="$root/bench/tiering_client.py"
size_mb="${SIZE_MB:-512}"

[ -x "$py" ] || { echo "run scripts/install-test-deps.sh first (needs confluent-kafka)" >&2; exit 1; }
if [ -n "${STRATA_BIN:-}" ]; then
  strata="$STRATA_BIN"
else
  echo "building strata (release)..." >&2
  cargo build -q --release -p strata-broker --bin strata
  strata="${CARGO_TARGET_DIR:-$root/target}/release/strata"
fi

work="$(mktemp -d -t strata-compression-bench.XXXXXX)"
broker_pid=""
cleanup() { [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

port="$(free_port)"; http="$(free_port)"
bootstrap="127.0.0.1:$port"
"$strata" serve --data-dir "$work/data" --remote "file://$work/bucket" --kafka-listen "$bootstrap" \
  --http-listen "127.0.0.1:$http" >"$work/strata.log" 2>&1 &
broker_pid=$!
wait_port "$port"

results="$work/results.jsonl"
for producer_codec in none lz4; do
  for topic_codec in producer zstd lz4 gzip; do
    topic="c-$producer_codec-$topic_codec"
    "$py" tests/clients/tiering_client.py create "$bootstrap" "$topic" "compression.type=$topic_codec" >/dev/null
    out="$(timeout 600 "$py" "$client" produce --bootstrap "$bootstrap" --topic "$topic" \
      --bytes $(( size_mb << 20 )) --size 1024 --compression "$producer_codec")"
    disk="$(du -sb "$work/data/$topic-0" | cut -f1)"
    echo "{\"producer\":\"$producer_codec\",\"topic\":\"$topic_codec\",\"disk_bytes\":$disk,${out#\{}" >> "$results"
    echo "  producer $producer_codec, topic $topic_codec: $out" >&2
  done
done

"$py" - "$results" "$size_mb" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
base = {r["producer"]: r["mb_per_s"] for r in rows if r["topic"] == "producer"}
print(f"\n{sys.argv[2]} MiB of 1 KiB records per case, acks=1\n")
print("| producer codec | topic compression.type | MB/s | vs producer | on disk MiB |")
print("|---|---|---:|---:|---:|")
for r in rows:
    ratio = r["mb_per_s"] / base[r["producer"]]
    print(f"| {r['producer']} | {r['topic']} | {r['mb_per_s']} | {ratio:.2f} | {r['disk_bytes'] / 2**20:.1f} |")
PY
