#!/usr/bin/env bash
# Export throughput vs a cold replay of the same range, same run, same data.
#
#   bash bench/export.sh                 # 2 GiB of 1 KiB records (about 10 minutes)
#   SIZE_MB=128 bash bench/export.sh     # quick
#   KEEP_WORK=1 ...                      # keep the data, bucket and export for a look
#   ZSTD_LEVEL=-1 ...                    # export with `--zstd-level -1` (default: the export's, 1)
#   CPUS=0 ...                           # replays (broker and client) and export on these CPUs
#                                        # only (taskset list): how each scales with cores
#
# 1. A release `strata serve` with a local-directory remote tier; one tiered topic
#    (segment.bytes=64 MiB, local.retention.bytes=1), SIZE_MB of RECORD_BYTES records produced
#    with confluent-kafka (values drawn from 4096 distinct text-like payloads, so Parquet cannot
#    reduce them to a dictionary), then wait until all but the active segment is remote.
# 2. Cold replays: restart the broker (its chunk caches start empty) and read every record from
#    offset 0 with `rdkafka_performance -C` (librdkafka's own benchmark client, the one the
#    export issue names; built by bench/rdkafka-performance.sh), then again (restarted, cold)
#    with kcat to /dev/null; each must count every record. The ratio is against the first.
# 3. Export: stop the broker, `strata export` of the same offsets from the data directory and the
#    bucket (its remote reads start cold too), under /usr/bin/time -v for the peak RSS;
#    the manifest's record count must equal what was produced.
# Both read the bucket files through the OS page cache (local-directory backend), so neither
# pays network latency; the figures compare the read + decode + write paths.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"
size_mb="${SIZE_MB:-2048}"
record_bytes="${RECORD_BYTES:-1024}"
count=$(( size_mb * 1048576 / record_bytes ))
topic=export-bench
target="${CARGO_TARGET_DIR:-$root/target}"

[ -x "$py" ] || { echo "run scripts/install-test-deps.sh first (needs confluent-kafka)" >&2; exit 1; }
command -v kcat >/dev/null || { echo "kcat is needed for the replay" >&2; exit 1; }
rdkafka_performance="$(bash "$root/bench/rdkafka-performance.sh")"

echo "building strata (release)..." >&2
( flock 9; cargo build -q --release -p strata-broker --bin strata ) 9>/tmp/strata-build.lock
work="$(mktemp -d -t strata-export-bench.XXXXXX)"
cp "$target/release/strata" "$work/strata"
strata="$work/strata"
broker_pid=""
cleanup() {
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
kafka_port="$(free_port)"; http_port="$(free_port)"
bootstrap="127.0.0.1:$kafka_port"
# The timed phases run under `taskset -c $CPUS` when CPUS is set (producing does not).
pin=()
start_broker() {
  "${pin[@]}" "$strata" serve --data-dir "$work/data" --remote "file://$work/bucket" \
    --kafka-listen "$bootstrap" --http-listen "127.0.0.1:$http_port" \
    --set log.retention.check.interval.ms=1000 --set remote.log.manager.task.interval.ms=1000 \
    >>"$work/broker.log" 2>&1 &
  broker_pid=$!
  wait_port "$kafka_port"
}
# Each timed phase starts with no dirty pages and, where this user may drop them (root), an empty
# page cache: neither the replay nor the export competes with writeback of the produce or
# inherits the other's cached bucket files.
settle() {
  sync
  if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 >/proc/sys/vm/drop_caches; fi
}
stop_broker() { kill -TERM "$broker_pid"; wait "$broker_pid" || true; broker_pid=""; }

start_broker
"$py" tests/clients/tiering_client.py create "$bootstrap" "$topic" remote.storage.enable=true \
  segment.bytes=67108864 local.retention.bytes=1 retention.ms=-1 >/dev/null

echo "producing $count records of $record_bytes bytes ($size_mb MiB)..." >&2
"$py" - "$bootstrap" "$topic" "$count" "$record_bytes" <<'PY'
import random, sys, time
from confluent_kafka import Producer
bootstrap, topic, count, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
words = [b"strata", b"tier", b"segment", b"offset", b"claim", b"kafka", b"bucket", b"batch"]
rng = random.Random(7)
def payload():
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words) + b" " + str(rng.randint(0, 10**9)).encode() + b" "
    return bytes(out[:size])
pool = [payload() for _ in range(4096)]
p = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5, "batch.size": 1048576,
              "queue.buffering.max.kbytes": 1048576, "enable.idempotence": False, "log_level": 3})
errors = [0]
def report(err, _msg):
    if err is not None:
        errors[0] += 1
start = time.perf_counter()
for i in range(count):
    while True:
        try:
            p.produce(topic, pool[i % 4096], key=b"%d" % i, partition=0, on_delivery=report)
            break
        except BufferError:
            p.poll(0.01)
    if i % 10000 == 0:
        p.poll(0)
p.flush(300)
if errors[0]:
    sys.exit(f"{errors[0]} produce errors")
print(f"produced in {time.perf_counter() - start:.1f} s", file=sys.stderr)
PY

echo "waiting until all but the active segment is in the remote tier..." >&2
local_bytes() { du -sb "$work/data/$topic-0" | cut -f1; }
for _ in $(seq 1 600); do
  [ "$(local_bytes)" -lt $(( 2 * 67108864 )) ] && break
  sleep 1
done
remote_bytes="$(du -sb "$work/bucket" | cut -f1)"
echo "local $(( $(local_bytes) >> 20 )) MiB, remote $(( remote_bytes >> 20 )) MiB" >&2

# --- cold replays with real consumers ---
if [ -n "${CPUS:-}" ]; then pin=(taskset -c "$CPUS"); fi
# cold_replay NAME COMMAND...: restarts the broker, empties the page cache and times COMMAND (a
# consumer printing how many records it read) into replay_start / replay_end.
cold_replay() {
  local name="$1"; shift
  stop_broker; start_broker
  echo "replaying with $name..." >&2
  settle
  local replayed
  replay_start=$(date +%s.%N)
  replayed="$("$@")"
  replay_end=$(date +%s.%N)
  [ "$replayed" -eq "$count" ] || { echo "$name read $replayed records, expected $count" >&2; exit 1; }
}
# rdkafka_performance ends its run with "% N messages (B bytes) consumed in T ms: ...".
rdkafka_replay() {
  timeout 600 "${pin[@]}" "$rdkafka_performance" -C -t "$topic" -p 0 -b "$bootstrap" -o beginning \
    -c "$count" -q 2>&1 | sed -n 's/^% \([0-9]*\) messages .* consumed in .*/\1/p'
}
kcat_replay() {
  timeout 600 "${pin[@]}" kcat -C -b "$bootstrap" -t "$topic" -p 0 -o beginning -e -q -f '%o\n' | wc -l
}
cold_replay kcat kcat_replay
kcat_start=$replay_start; kcat_end=$replay_end
cold_replay rdkafka_performance rdkafka_replay
stop_broker

# --- export of the same offsets ---
echo "exporting..." >&2
settle
"${pin[@]}" /usr/bin/time -v -o "$work/time.txt" "$strata" export --data-dir "$work/data" \
  --remote "file://$work/bucket" --topic "$topic" --from-offset 0 --to-offset $(( count - 1 )) \
  --zstd-level "${ZSTD_LEVEL:-1}" --out "$work/out" >"$work/export.out" 2>"$work/export.err" || { cat "$work/export.err" >&2; exit 1; }
exported="$("$py" -c 'import json,sys; print(sum(f["records"] for f in json.load(open(sys.argv[1]))["files"]))' "$work/out/manifest.json")"
[ "$exported" -eq "$count" ] || { echo "export wrote $exported records, expected $count" >&2; exit 1; }
parquet_bytes="$(du -cb "$work/out"/*.parquet | tail -1 | cut -f1)"

"$py" - "$work/time.txt" "$replay_start" "$replay_end" "$count" "$record_bytes" "$remote_bytes" "$parquet_bytes" \
  "$kcat_start" "$kcat_end" <<'PY'
import json, os, re, sys
text = open(sys.argv[1]).read()
def field(name):
    return re.search(re.escape(name) + r": (.*)", text).group(1).strip()
h, m, s = (["0"] + field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":"))[-3:]
export_s = int(h) * 3600 + int(m) * 60 + float(s)
replay_s = float(sys.argv[3]) - float(sys.argv[2])
kcat_s = float(sys.argv[9]) - float(sys.argv[8])
count, size = int(sys.argv[4]), int(sys.argv[5])
mb = count * size / 1e6
rss_mib = int(field("Maximum resident set size (kbytes)")) / 1024
result = {
    "cpus": os.environ.get("CPUS") or "all", "zstd_level": int(os.environ.get("ZSTD_LEVEL") or 1),
    "records": count, "record_bytes": size, "value_mb": round(mb, 1),
    "remote_mib": int(sys.argv[6]) >> 20, "parquet_mib": int(sys.argv[7]) >> 20,
    "replay_s": round(replay_s, 2), "replay_records_s": round(count / replay_s),
    "replay_mb_s": round(mb / replay_s, 1),
    "kcat_replay_s": round(kcat_s, 2), "kcat_replay_mb_s": round(mb / kcat_s, 1),
    "export_s": round(export_s, 2), "export_records_s": round(count / export_s),
    "export_mb_s": round(mb / export_s, 1),
    "export_vs_replay": round(replay_s / export_s, 2),
    "export_vs_kcat_replay": round(kcat_s / export_s, 2),
    "export_peak_rss_mib": round(rss_mib, 1),
    "export_cpu_user_s": float(field("User time (seconds)")),
    "export_cpu_sys_s": float(field("System time (seconds)")),
}
print(json.dumps(result))
PY
