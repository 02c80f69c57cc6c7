#!/usr/bin/env bash
# Tiered storage: replay of a topic from offset 0, hot (local disk) vs cold (all remote), on the
# local-directory backend and on an S3 server, plus produce throughput with tiering on vs off.
#
#   bash bench/tiering.sh                    # full run: 2 GiB topics (about 10 minutes)
#   SIZE_MB=256 bash bench/tiering.sh        # quick development run
#   BROKER_SET="remote.log.chunk.compression=lz4" bash bench/tiering.sh   # extra broker configs
#   PRODUCE_ROUNDS=1 bash bench/tiering.sh   # one produce pair instead of three
#   PRODUCE_ONLY=1 PRODUCE_ROUNDS=8 bash bench/tiering.sh   # only the produce pairs (local backend)
#   STRATA_TEST_S3_ENDPOINT=http://127.0.0.1:8014 STRATA_TEST_S3_BUCKET=tb S3_PREFIX=t \
#     S3_NAME=s3s-fs bash bench/tiering.sh   # the S3 leg on another server (s3s-fs, MinIO, ...)
#
# One run does, on one release `strata` per backend:
#   1. local-directory backend (`--remote file://...`):
#      produce SIZE_MB to `hot`  (remote.storage.enable=false)             -> produce, tiering off
#      produce SIZE_MB to `cold` (remote.storage.enable=true, local.retention.ms=1, segment.ms
#        so the last segment rolls too)                                    -> produce, tiering on
#      wait until `cold` has no local data left (GET /v1/tier/status: local log start = log end)
#      PRODUCE_ROUNDS-1 more pairs to new topics, alternately on first and off first, each
#        tiering-on produce followed by the same wait; the ratio is the median of the pairs.
#        Each produce starts from the same page-cache state: `sync`, then (as root) the page
#        cache dropped. On a VM whose host reclaims the pages a guest frees, writing into pages
#        the guest has not touched lately runs at ~250 MB/s of system time and into just-freed
#        ones at GB/s (dd, BENCHMARKS.md): without the drop, whichever produce came after a
#        large free got the fast pages and one pair ranged from 0.55 to 1.15.
#      replay `hot` and `cold` from offset 0 with kcat and with the confluent-kafka consumer
#   2. S3 backend (the server in STRATA_TEST_S3_ENDPOINT/AWS_* if set -- MinIO, s3s-fs, real
#      S3; S3_NAME names it in the table -- else a moto server started here from .venv): the
#      same `cold` topic, produced, tiered, replayed.
#   3. Tansu (`cargo install tansu --features dynostore,libsql`; skipped with a notice when it is
#      not installed, or with TANSU=0) on the same S3 server, its storage engine `s3://BUCKET/`:
#      the same producer and the same confluent-kafka consumer (Tansu 0.6 rejects Debian's
#      librdkafka, so kcat cannot drive it) produce TANSU_SIZE_MB (default SIZE_MB) and replay it
#      from offset 0. Tansu keeps its whole log in the bucket (one object per produced batch),
#      so this is the broker-on-S3 design Strata's tiering is measured against.
# The broker restarts before every replay, so no replay finds chunks cached by the one before
# (the chunk cache's disk tier is wiped at start), and (as root) the OS page cache is dropped:
# the hot replay reads the segment files from disk, the cold ones the bucket's objects (from
# disk on the local-directory backend). Before session 7 the page cache was left as it was.
# Records: 1 KiB (RECORD_BYTES), acks=1, no client compression; text-like values from a pool of
# 8192 (bench/tiering_client.py), so the remote tier's zstd chunk compression works as on logs.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
py="$root/.venv/bin/python"
client="$root/bench/tiering_client.py"
size_mb="${SIZE_MB:-2048}"
record_bytes="${RECORD_BYTES:-1024}"
segment_bytes="${SEGMENT_BYTES:-67108864}"
records=$(( size_mb * 1048576 / record_bytes ))

[ -x "$py" ] || { echo "run scripts/install-test-deps.sh first (needs the Python clients)" >&2; exit 1; }
command -v kcat >/dev/null || { echo "kcat is needed" >&2; exit 1; }
if [ -n "${STRATA_BIN:-}" ]; then
  strata="$STRATA_BIN"
else
  echo "building strata (release)..." >&2
  cargo build -q --release -p strata-broker --bin strata
  strata="${CARGO_TARGET_DIR:-$root/target}/release/strata"
fi

work="$(mktemp -d -t strata-tier-bench.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap "exit 143" INT TERM

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }
now() { date +%s.%N; }

# --- the S3 server ------------------------------------------------------------------------------
if [ -z "${STRATA_TEST_S3_ENDPOINT:-}" ]; then
  moto_port="$(free_port)"
  "$root/.venv/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 & pids+=($!)
  wait_port "$moto_port"
  "$py" -c "import urllib.request; urllib.request.urlopen(urllib.request.Request('http://127.0.0.1:$moto_port/strata-test', method='PUT'), timeout=10)"
  export STRATA_TEST_S3_ENDPOINT="http://127.0.0.1:$moto_port" STRATA_TEST_S3_BUCKET=strata-test
fi
s3_env=(AWS_ENDPOINT_URL="$STRATA_TEST_S3_ENDPOINT" AWS_REGION="${AWS_REGION:-us-east-1}"
  AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}" AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
  AWS_ALLOW_HTTP=true)
# S3_PREFIX: the key prefix of this run. s3s-fs keeps each object's metadata in a file named
# after the base64 of bucket + key, which must fit in 255 bytes: with it use a short bucket and
# prefix (for example STRATA_TEST_S3_BUCKET=tb S3_PREFIX=t).
s3_url="s3://${STRATA_TEST_S3_BUCKET:-strata-test}/${S3_PREFIX:-tier-bench-$$}"

# --- one broker at a time -----------------------------------------------------------------------
broker_pid=""; kafka=""; http=""
start_broker() { # name remote-url [env...]
  local name="$1" remote="$2"; shift 2
  kafka="127.0.0.1:$(free_port)"; http="127.0.0.1:$(free_port)"
  env "$@" "$strata" serve --data-dir "$work/data-$name" --remote "$remote" \
    --kafka-listen "$kafka" --http-listen "$http" \
    --set log.retention.check.interval.ms=1000 --set remote.log.manager.task.interval.ms=1000 \
    ${BROKER_SET:+$(printf -- '--set %s ' $BROKER_SET)} \
    >>"$work/strata-$name.log" 2>&1 &
  broker_pid=$!; pids+=("$broker_pid")
  wait_port "${kafka##*:}"; wait_port "${http##*:}"
}
stop_broker() { kill "$broker_pid" 2>/dev/null || true; wait "$broker_pid" 2>/dev/null || true; }
restart_broker() { local name="$1" remote="$2"; shift 2; stop_broker; start_broker "$name" "$remote" "$@"; }

create_topic() { # topic key=value...
  local topic="$1"; shift
  "$py" "$root/tests/clients/tiering_client.py" create "$kafka" "$topic" \
    "segment.bytes=$segment_bytes" "retention.ms=-1" "$@" >/dev/null
}

status_of() { # topic -> JSON of its partition 0 in /v1/tier/status (or {})
  "$py" - "$http" "$1" <<'PY'
import json, sys, urllib.request
report = json.load(urllib.request.urlopen(f"http://{sys.argv[1]}/v1/tier/status", timeout=5))
print(json.dumps(next((p for p in report["partitions"] if p["topic"] == sys.argv[2]), {})))
PY
}

wait_all_remote() { # topic: until no record of it is on local disk any more
  local topic="$1" started; started=$(now)
  for _ in $(seq 1 1200); do
    local s; s="$(status_of "$topic" 2>/dev/null || echo '{}')"
    if "$py" -c "import json,sys; s=json.loads(sys.argv[1]); sys.exit(0 if s and s['log_end_offset']>0 and s['local_log_start_offset']==s['log_end_offset'] and s['highest_tiered_offset']==s['log_end_offset']-1 and s['log_start_offset']==0 else 1)" "$s"; then
      echo "  $topic all remote after $("$py" -c "print(round($(now)-$started,1))") s: $s" >&2
      return 0
    fi
    sleep 0.5
  done
  echo "timed out waiting for $topic to be all remote: $s" >&2; return 1
}

results="$work/results.jsonl"
record() { echo "{\"backend\":\"$1\",\"case\":\"$2\",${3#\{}" >>"$results"; echo "  $1 $2: $3" >&2; }

produce() { # topic -> JSON
  timeout 900 "$py" "$client" produce --bootstrap "$kafka" --topic "$1" --bytes $(( size_mb * 1048576 )) --size "$record_bytes"
}

# Before each produce and each replay: no dirty pages left by the step before, and (where this
# user may) the page cache dropped, so every measured step starts from the same memory state
# (see above).
settle() {
  sync
  if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 >/proc/sys/vm/drop_caches; fi
}

read_all() { # consumer-json expected-records what: stop the run unless every record was read
  "$py" -c "import json,sys; sys.exit(0 if json.loads(sys.argv[1])['records']==int(sys.argv[2]) else 1)" "$1" "$2" \
    || { echo "confluent-kafka read too little from $3: $1" >&2; exit 1; }
}

replay() { # backend case topic: kcat, then confluent-kafka, each after a broker restart
  local backend="$1" case="$2" topic="$3" name="$4" remote="$5"; shift 5
  restart_broker "$name" "$remote" "$@"
  settle
  local start end bytes count
  start=$(now)
  # -f '%s': values only, so bytes counted = record value bytes (as for the Python consumer).
  bytes=$(timeout 900 kcat -C -b "$kafka" -t "$topic" -p 0 -o beginning -e -q -f '%s' \
    -X fetch.max.bytes=67108864 -X fetch.message.max.bytes=16777216 \
    -X queued.max.messages.kbytes=262144 -X fetch.wait.max.ms=500 | wc -c)
  end=$(now)
  count=$(( bytes / record_bytes ))
  [ "$count" -eq "$records" ] || { echo "kcat read $count records of $records from $topic" >&2; exit 1; }
  record "$backend" "$case-kcat" "$("$py" -c "print('{\"records\":$count,\"seconds\":%.3f,\"mb_per_s\":%.1f}' % ($end-$start, $bytes/($end-$start)/1e6))")"
  restart_broker "$name" "$remote" "$@"
  settle
  local out; out="$(timeout 900 "$py" "$client" consume --bootstrap "$kafka" --topic "$topic" --count "$records")"
  read_all "$out" "$records" "$topic"
  record "$backend" "$case-python" "$out"
}

echo "topic size ${size_mb} MiB, ${records} records of ${record_bytes} B, segment.bytes=${segment_bytes}" >&2

# --- 1. local-directory backend -----------------------------------------------------------------
local_url="file://$work/bucket"
start_broker local "$local_url"
produce_rounds="${PRODUCE_ROUNDS:-3}"
for round in $(seq 1 "$produce_rounds"); do
  suffix=""; [ "$round" -gt 1 ] && suffix="-$round"
  # Even rounds produce tiering-on first: whichever goes first gets the pages freed before it.
  order=(off on); [ $(( round % 2 )) -eq 0 ] && order=(on off)
  for mode in "${order[@]}"; do
    if [ "$mode" = off ]; then
      create_topic "hot$suffix" remote.storage.enable=false
      settle
      record local "produce-tiering-off$suffix" "$(produce "hot$suffix")"
    else
      create_topic "cold$suffix" remote.storage.enable=true local.retention.ms=1 segment.ms=5000
      settle
      record local "produce-tiering-on$suffix" "$(produce "cold$suffix")"
      wait_all_remote "cold$suffix"
    fi
  done
  if [ "$round" -eq 1 ]; then
    echo "  bucket: $(du -sm "$work/bucket" | cut -f1) MiB on disk for ${size_mb} MiB of values" >&2
  fi
done
if [ "${PRODUCE_ONLY:-0}" = 1 ]; then
  stop_broker
  "$py" - "$results" <<'PY'
import json, statistics, sys
mb = {r["case"]: r["mb_per_s"] for r in map(json.loads, open(sys.argv[1]))}
ratios = []
for case in sorted(c for c in mb if c.startswith("produce-tiering-on")):
    suffix = case[len("produce-tiering-on"):]
    off, on = mb["produce-tiering-off" + suffix], mb[case]
    ratios.append(on / off)
    print(f"pair {suffix.lstrip('-') or '1'}: tiering off {off} MB/s, on {on} MB/s, on/off {on / off:.2f}")
print(f"produce on/off median {statistics.median(ratios):.2f} over {len(ratios)} pairs (target 0.90)")
PY
  exit 0
fi
replay local hot hot local "$local_url"
replay local cold cold local "$local_url"
stop_broker

# --- 2. S3 backend ------------------------------------------------------------------------------
start_broker s3 "$s3_url" "${s3_env[@]}"
create_topic cold remote.storage.enable=true local.retention.ms=1 segment.ms=5000
record s3 produce-tiering-on "$(produce cold)"
wait_all_remote cold
replay s3 cold cold s3 "$s3_url" "${s3_env[@]}"
stop_broker

# --- 3. Tansu on the same S3 server -------------------------------------------------------------
tansu="$(command -v tansu || echo "$HOME/.cargo/bin/tansu")"
if [ "${TANSU:-1}" != 0 ] && [ -x "$tansu" ]; then
  tansu_mb="${TANSU_SIZE_MB:-$size_mb}"
  tansu_records=$(( tansu_mb * 1048576 / record_bytes ))
  tansu_port="$(free_port)"
  # Tansu's object_store client reads AWS_ENDPOINT; its keys go under clusters/<cluster id>/.
  (cd "$work" && env "${s3_env[@]}" AWS_ENDPOINT="$STRATA_TEST_S3_ENDPOINT" AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}" \
    "$tansu" broker --cluster-id "tier-bench-$$" --listener-url "tcp://127.0.0.1:$tansu_port" \
    --advertised-listener-url "tcp://127.0.0.1:$tansu_port" \
    --storage-engine "s3://${STRATA_TEST_S3_BUCKET:-strata-test}/" >"$work/tansu.log" 2>&1) &
  pids+=($!)
  wait_port "$tansu_port"
  "$tansu" topic create --broker "tcp://127.0.0.1:$tansu_port" --partitions 1 cold >/dev/null
  settle
  record tansu produce "$(timeout 1800 "$py" "$client" produce --bootstrap "127.0.0.1:$tansu_port" --topic cold \
    --bytes $(( tansu_mb * 1048576 )) --size "$record_bytes")"
  settle
  out="$(timeout 1800 "$py" "$client" consume --bootstrap "127.0.0.1:$tansu_port" --topic cold --count "$tansu_records")"
  read_all "$out" "$tansu_records" "cold on Tansu"
  record tansu replay-python "$out"
  pkill -f "tansu broker --cluster-id tier-bench-$$" 2>/dev/null || true
else
  echo "  Tansu leg skipped: install it with cargo install tansu --features dynostore,libsql" >&2
fi

# --- summary ------------------------------------------------------------------------------------
"$py" - "$results" "$size_mb" "${S3_NAME:-moto}" "$produce_rounds" <<'PY'
import json, statistics, sys
rows = {(r["backend"], r["case"]): r for r in map(json.loads, open(sys.argv[1])) if r}
mb = lambda b, c: rows.get((b, c), {}).get("mb_per_s")
print(f"\nreplay of a {sys.argv[2]} MiB topic from offset 0 (MB/s of record values)\n")
print(f"| consumer | hot (local disk) | cold, local-directory backend | cold/hot | cold, S3 ({sys.argv[3]}) | cold/hot |")
print("|---|---|---|---|---|---|")
for client in ("kcat", "python"):
    hot, local, s3 = mb("local", f"hot-{client}"), mb("local", f"cold-{client}"), mb("s3", f"cold-{client}")
    ratio = lambda x: f"{x / hot:.2f}" if x and hot else "-"
    name = "kcat" if client == "kcat" else "confluent-kafka (Python)"
    print(f"| {name} | {hot} | {local} | {ratio(local)} (target 0.80) | {s3} | {ratio(s3)} (target 0.50) |")
suffixes = [""] + [f"-{n}" for n in range(2, int(sys.argv[4]) + 1)]
pairs = [(mb("local", f"produce-tiering-off{s}"), mb("local", f"produce-tiering-on{s}")) for s in suffixes]
print("\nproduce, tiering off / on, local-directory backend (MB/s): "
      + ", ".join(f"{off} / {on} = {on / off:.2f}" for off, on in pairs))
print(f"produce, tiering on / off: median {statistics.median(on / off for off, on in pairs):.2f} (target >= 0.90); "
      f"tiering on (S3) {mb('s3', 'produce-tiering-on')} MB/s")
tansu_produce, tansu_replay = mb("tansu", "produce"), mb("tansu", "replay-python")
if tansu_produce:
    ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
    s3_produce, s3_replay = mb("s3", "produce-tiering-on"), mb("s3", "cold-python")
    print(f"\nStrata (tiered to S3) vs Tansu (log in S3), same S3 server ({sys.argv[3]}), same client "
          "(confluent-kafka, Python), MB/s of record values\n")
    print("| step | Strata | Tansu | Strata/Tansu |")
    print("|---|---|---|---|")
    print(f"| produce (acks=1) | {s3_produce} | {tansu_produce} | {ratio(s3_produce, tansu_produce)} |")
    print(f"| replay from offset 0 (Strata: all remote, after a restart) | {s3_replay} | {tansu_replay} | {ratio(s3_replay, tansu_replay)} |")
PY
