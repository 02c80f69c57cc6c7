#!/usr/bin/env bash
# Kafka produce/consume throughput of Strata vs Tansu, side by side, same machine, same client.
#
#   bash bench/kafka.sh            # full run (about 5 minutes)
#   RECORDS_1K=50000 bash bench/kafka.sh   # quicker
#
# Client: bench/kafka_client_bench.py (confluent-kafka, i.e. a current librdkafka: Tansu 0.6
# rejects Debian's librdkafka 2.0.2, so kcat/rdkafka_performance cannot drive it). Brokers:
# Strata (release build, data on this machine's disk), Tansu's in-memory engine, Tansu's SQLite
# engine (`cargo install tansu --features dynostore,libsql`). The disk's own sequential write
# bandwidth is measured in the same run, so Strata's figures read as a fraction of it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"
client="$root/bench/kafka_client_bench.py"
records_1k="${RECORDS_1K:-200000}"
records_100="${RECORDS_100:-1000000}"
tansu="$(command -v tansu || echo "$HOME/.cargo/bin/tansu")"

[ -x "$py" ] || { echo "run scripts/install-test-deps.sh first (needs the Python clients)" >&2; exit 1; }
[ -x "$tansu" ] || { echo "install Tansu first: cargo install tansu --features dynostore,libsql" >&2; exit 1; }

echo "building strata (release)..." >&2
cargo build -q --release -p strata-broker --bin strata --example fetch_throughput
strata="$root/target/release/strata"
fetch_raw="$root/target/release/examples/fetch_throughput"

work="$(mktemp -d -t strata-bench.XXXXXX)"
pids=()
cleanup() { for pid in "${pids[@]:-}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

# --- the machine's limit: sequential write (with fsync) and read of 1 GiB on the data disk ---
disk_json="$("$py" - "$work/disk-probe" <<'PY'
import os, sys, time, json
path, size, block = sys.argv[1], 1 << 30, b"\xa5" * (1 << 20)
start = time.perf_counter()
with open(path, "wb", buffering=0) as f:
    for _ in range(size >> 20):
        f.write(block)
    os.fsync(f.fileno())
write = size / (time.perf_counter() - start) / 1e6
try:
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")
    cold = True
except OSError:
    cold = False
start = time.perf_counter()
with open(path, "rb", buffering=0) as f:
    while f.read(1 << 20):
        pass
read = size / (time.perf_counter() - start) / 1e6
os.remove(path)
print(json.dumps({"disk_write_mb_s": round(write, 1), "disk_read_mb_s": round(read, 1), "read_cold_cache": cold}))
PY
)"
echo "disk: $disk_json" >&2

results="$work/results.jsonl"
run_cases() { # broker-name bootstrap create-topic-command-prefix
  local name="$1" bootstrap="$2" create="$3"
  for size in 100 1024; do
    local count=$records_1k; [ "$size" = 100 ] && count=$records_100
    for acks in 1 all; do
      for codec in none lz4; do
        local topic="bench-$size-$acks-$codec"
        [ -n "$create" ] && $create "$topic" >/dev/null 2>&1
        local out
        out="$(timeout 300 "$py" "$client" produce --bootstrap "$bootstrap" --topic "$topic" \
          --count "$count" --size "$size" --acks "$acks" --compression "$codec" 2>>"$work/client.log" || echo '{"error":"produce failed"}')"
        echo "{\"broker\":\"$name\",${out#\{}" >> "$results"
        echo "  $name produce size=$size acks=$acks $codec: $out" >&2
      done
    done
  done
  local out
  out="$(timeout 300 "$py" "$client" consume --bootstrap "$bootstrap" --topic bench-1024-1-none \
    --count "$records_1k" 2>>"$work/client.log" || echo '{"error":"consume failed"}')"
  echo "{\"broker\":\"$name\",${out#\{}" >> "$results"
  echo "  $name consume 1 KiB: $out" >&2
}

# --- Strata ----------------------------------------------------------------------------------
port="$(free_port)"; http="$(free_port)"
"$strata" serve --data-dir "$work/strata" --kafka-listen "127.0.0.1:$port" --http-listen "127.0.0.1:$http" \
  >"$work/strata.log" 2>&1 & pids+=($!)
wait_port "$port"
run_cases strata "127.0.0.1:$port" ""
kcat_json="{}"
if command -v kcat >/dev/null; then
  # kcat (C, librdkafka) reads much faster than a Python loop: Strata's consume ceiling.
  start=$(date +%s.%N)
  bytes=$(kcat -C -b "127.0.0.1:$port" -t bench-1024-1-none -o beginning -e -q -f '%s' 2>/dev/null | wc -c)
  end=$(date +%s.%N)
  kcat_json="$("$py" -c "print('{\"broker\":\"strata\",\"mode\":\"consume-kcat\",\"mb_per_s\":%.1f}' % ($bytes/($end-$start)/1e6))")"
  echo "$kcat_json" >> "$results"
  echo "  strata consume (kcat): $kcat_json" >&2
fi
# The broker's own serving rate from the page cache, with no per-record client work.
# 1 MiB per fetch is Kafka's default max.partition.fetch.bytes; 5 passes make it a steady state.
raw="$(FETCH_MAX_BYTES=1048576 FETCH_PASSES=5 "$fetch_raw" "127.0.0.1:$port" bench-1024-1-none 2>>"$work/client.log" || echo '{"error":"fetch-raw failed"}')"
echo "{\"broker\":\"strata\",${raw#\{}" >> "$results"
echo "  strata fetch (raw): $raw" >&2
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

# --- Tansu, memory and SQLite engines ---------------------------------------------------------
for engine in memory sqlite; do
  port="$(free_port)"
  url="memory://tansu/"; [ "$engine" = sqlite ] && url="sqlite://./tansu.db"  # relative: Tansu 0.6 fails on an absolute sqlite path
  (cd "$work" && "$tansu" broker --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine "$url" >"$work/tansu-$engine.log" 2>&1) & pids+=($!)
  wait_port "$port"
  run_cases "tansu-$engine" "127.0.0.1:$port" "$tansu topic create --broker tcp://127.0.0.1:$port --partitions 1"
  kill "${pids[-1]}" 2>/dev/null; pkill -f "tansu broker --listener-url tcp://127.0.0.1:$port" || true
done

"$py" - "$results" "$disk_json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
disk = json.loads(sys.argv[2])
def key(r): return (r.get("mode"), r.get("size"), r.get("acks"), r.get("compression"))
by = {}
for r in rows:
    by.setdefault(key(r), {})[r["broker"]] = r
print(f"disk sequential write {disk['disk_write_mb_s']} MB/s, read {disk['disk_read_mb_s']} MB/s"
      f" ({'cold' if disk['read_cold_cache'] else 'page'} cache)\n")
print("| case | Strata MB/s | p99 ms | Tansu memory MB/s | Tansu SQLite MB/s | Strata/Tansu-mem | Strata/Tansu-SQLite | Strata/disk write |")
print("|---|---|---|---|---|---|---|---|")
for k, brokers in by.items():
    mode, size, acks, codec = k
    s, m, q = brokers.get("strata", {}), brokers.get("tansu-memory", {}), brokers.get("tansu-sqlite", {})
    label = f"{mode} {size or ''} {'acks=' + acks if acks else ''} {codec or ''}".replace("  ", " ").strip()
    ratio = lambda a, b: f"{a['mb_per_s'] / b['mb_per_s']:.2f}" if a.get('mb_per_s') and b.get('mb_per_s') else "-"
    frac = f"{s['mb_per_s'] / disk['disk_write_mb_s']:.2f}" if s.get("mb_per_s") and mode == "produce" else "-"
    print(f"| {label} | {s.get('mb_per_s', '-')} | {s.get('p99_ms', '-')} | {m.get('mb_per_s', '-')} | {q.get('mb_per_s', '-')} | {ratio(s, m)} | {ratio(s, q)} | {frac} |")
PY
