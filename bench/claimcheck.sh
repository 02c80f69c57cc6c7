#!/usr/bin/env bash
# Claim-check gateway benchmark (not in CI): upload and download throughput of one big payload
# through the gateway (curl -> POST /v1/topics/T/claims -> object store; GET /v1/claims/{id} ->
# curl), compared in the same run with writing and reading the same file straight to the same
# object store through object_store (claimcheck/examples/raw_store_ceiling.rs: BufWriter
# multipart upload with the same part size and parts in flight, one streaming GET), plus the
# broker's peak RSS during the upload and during the download (VmHWM, reset in between).
#
# Usage: bench/claimcheck.sh [BYTES] [BACKEND...]
#   BYTES    payload size (default 5 GiB = 5368709120)
#   BACKEND  local (remote tier in a local directory) and/or s3 (needs a running S3 server:
#            STRATA_TEST_S3_ENDPOINT, STRATA_TEST_S3_BUCKET and AWS_* credentials, as printed by
#            scripts/test.sh, or s3s-fs: see BENCHMARKS.md). Default: local, plus s3 when STRATA_TEST_S3_ENDPOINT is set.
# Env: S3_BYTES (payload size on s3, default BYTES: moto keeps objects in RAM), PART_BYTES and
#      CONCURRENCY (claimcheck.multipart.part.bytes / .concurrency, default 8 MiB and 2, used by
#      both sides), STRATA_BIN and RAW_CEILING_BIN (release builds of strata and of the example
#      to use instead of building them),
#      ROUNDS (alternating rounds, best of each kept; default 3),
#      BENCH_DIR (where the payload and the local remote tier go, default a mktemp -d under /tmp).
# Prints MB/s (10^6 bytes/s) per direction, gateway/raw ratios (target >= 0.80) and peak RSS
# (target < 128 MiB).
set -euo pipefail
cd "$(dirname "$0")/.."
BYTES=${1:-5368709120}
shift || true
BACKENDS=("$@")
if [[ ${#BACKENDS[@]} -eq 0 ]]; then
  BACKENDS=(local)
  [[ -n "${STRATA_TEST_S3_ENDPOINT:-}" ]] && BACKENDS+=(s3)
fi
PART_BYTES=${PART_BYTES:-8388608}
CONCURRENCY=${CONCURRENCY:-2}
ROUNDS=${ROUNDS:-3}
TARGET=${CARGO_TARGET_DIR:-target}

RAW=${RAW_CEILING_BIN:-}
if [[ -z "$RAW" ]]; then
  cargo build --release -q -p strata-claimcheck --example raw_store_ceiling
  RAW="$TARGET/release/examples/raw_store_ceiling"
fi
if [[ -z "${STRATA_BIN:-}" ]]; then
  cargo build --release -q -p strata-broker --bin strata
  STRATA_BIN="$TARGET/release/strata"
fi

WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/claimbench.XXXXXX")
PID=
cleanup() {
  [[ -n "$PID" ]] && { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }
  rm -rf "$WORK"
}
trap cleanup EXIT

# VmHWM of $PID in KiB; reset_peak makes the next reading cover only what follows (clear_refs 5).
peak_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$PID/status"; }
reset_peak() { echo 5 >"/proc/$PID/clear_refs"; }
# Every timed phase starts from the same state: no dirty pages and, where this user may drop
# them (root), an empty page cache, so neither side inherits the other's cached pages. Uploads
# then read the payload from the page cache (warmed here: the client's disk reads are not what
# is measured); downloads read the stored object from disk on both sides.
settle() {
  sync
  if [[ -w /proc/sys/vm/drop_caches ]]; then echo 3 >/proc/sys/vm/drop_caches; fi
  if [[ -n "${1:-}" ]]; then cat "$1" >/dev/null; fi
}
best() { awk -v a="$1" -v b="$2" 'BEGIN {print (b > a ? b : a)}'; }
# Frees the store after each round (the payload objects are the bench's own): the local
# directory directly, S3 through tests/clients/s3_objects.py (signed requests, any S3 server).
delete_claim_object() {
  local backend=$1 url=$2 id=$3
  if [[ $backend == local ]]; then
    rm -rf "${url#file://}/claimcheck/claims/$id"
  else
    .venv/bin/python tests/clients/s3_objects.py delete "$url/claimcheck/claims/$id/" >/dev/null
  fi
}
mbps() { awk -v b="$1" -v s="$2" 'BEGIN {printf "%.1f", b / 1e6 / s}'; }
ratio() { awk -v g="$1" -v r="$2" 'BEGIN {printf "%.2f", g / r}'; }

run_backend() {
  local backend=$1 size=$2 url
  case $backend in
    local) url="file://$WORK/remote" ;;
    s3)
      export AWS_ENDPOINT_URL=$STRATA_TEST_S3_ENDPOINT
      url="s3://$STRATA_TEST_S3_BUCKET/claimbench-$$-$RANDOM"
      ;;
    *) echo "unknown backend $backend" >&2; exit 2 ;;
  esac
  local file="$WORK/payload-$size"
  if [[ ! -f $file ]]; then
    rm -f "$WORK"/payload-*
    "$RAW" generate "$file" "$size"
  fi
  local sha
  sha=$(sha256sum "$file" | cut -d' ' -f1)

  # One broker on the store for all rounds.
  local kport=$((20000 + RANDOM % 20000)) hport
  hport=$((kport + 1))
  "$STRATA_BIN" serve --data-dir "$WORK/data-$backend" --remote "$url" \
    --kafka-listen 127.0.0.1:$kport --http-listen 127.0.0.1:$hport \
    --set claimcheck.multipart.part.bytes="$PART_BYTES" \
    --set claimcheck.multipart.concurrency="$CONCURRENCY" >"$WORK/strata-$backend.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null && break; sleep 0.1; done
  local base_kib
  base_kib=$(peak_kib)

  # An untimed warm-up round trip of the raw path first, so that the first timed writer does not
  # alone pay for evicting the page cache (on this VM that made the first of two identical runs
  # up to 8x slower). Then ROUNDS rounds, each side in turn per direction; the best of each is
  # kept, so a slow moment of the shared disk hits both sides alike.
  "$RAW" upload "$url/warmup" "$file" "$PART_BYTES" "$CONCURRENCY" >/dev/null
  "$RAW" download "$url/warmup" "$size" >/dev/null
  local raw_up=0 raw_down=0 gw_up=0 gw_down=0 up_peak_kib=0 down_peak_kib=0 round
  for round in $(seq "$ROUNDS"); do
    local out status secs bytes uri id mbps_now
    settle "$file"
    out=$("$RAW" upload "$url/raw-$round" "$file" "$PART_BYTES" "$CONCURRENCY")
    raw_up=$(best "$raw_up" "$(sed -E 's/.*raw_upload_mbps=([0-9.]+).*/\1/' <<<"$out")")

    settle "$file"
    reset_peak
    out=$(curl -sS -X POST -T "$file" -H 'Expect:' -H 'content-type: application/octet-stream' \
      -H "x-strata-sha256: $sha" -o "$WORK/receipt.json" -w '%{http_code} %{time_total}' \
      "http://127.0.0.1:$hport/v1/topics/bench/claims")
    read -r status secs <<<"$out"
    [[ $status == 201 ]] || { echo "upload answered $status: $(cat "$WORK/receipt.json")" >&2; exit 1; }
    gw_up=$(best "$gw_up" "$(mbps "$size" "$secs")")
    up_peak_kib=$(( $(peak_kib) > up_peak_kib ? $(peak_kib) : up_peak_kib ))
    uri=$(sed -E 's/.*"uri":"([^"]+)".*/\1/' "$WORK/receipt.json")
    id=$(sed -E 's/.*"id":"([^"]+)".*/\1/' "$WORK/receipt.json")

    settle
    out=$("$RAW" download "$url/raw-$round" "$size")
    raw_down=$(best "$raw_down" "$(sed -E 's/.*raw_download_mbps=([0-9.]+).*/\1/' <<<"$out")")

    settle
    reset_peak
    out=$(curl -sS -o /dev/null -w '%{http_code} %{time_total} %{size_download}' "$uri")
    read -r status secs bytes <<<"$out"
    [[ $status == 200 && $bytes == "$size" ]] || { echo "download: $out" >&2; exit 1; }
    gw_down=$(best "$gw_down" "$(mbps "$size" "$secs")")
    down_peak_kib=$(( $(peak_kib) > down_peak_kib ? $(peak_kib) : down_peak_kib ))

    if [[ $round == 1 ]]; then
      # Content check (untimed): the bytes served are the bytes uploaded.
      local got
      got=$(curl -sS "$uri" | sha256sum | cut -d' ' -f1)
      [[ $got == "$sha" ]] || { echo "download sha256 $got != $sha" >&2; exit 1; }
    fi
    delete_claim_object "$backend" "$url" "$id"
  done
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  rm -rf "$WORK/remote" "$WORK/data-$backend"

  printf '%-6s size=%d part=%d concurrency=%d sha256=ok\n' "$backend" "$size" "$PART_BYTES" "$CONCURRENCY"
  printf '  upload    gateway %8s MB/s   raw %8s MB/s   ratio %s   broker peak RSS %d MiB\n' \
    "$gw_up" "$raw_up" "$(ratio "$gw_up" "$raw_up")" $((up_peak_kib / 1024))
  printf '  download  gateway %8s MB/s   raw %8s MB/s   ratio %s   broker peak RSS %d MiB\n' \
    "$gw_down" "$raw_down" "$(ratio "$gw_down" "$raw_down")" $((down_peak_kib / 1024))
  printf '  broker RSS at start %d MiB\n' $((base_kib / 1024))
}

for backend in "${BACKENDS[@]}"; do
  size=$BYTES
  [[ $backend == s3 ]] && size=${S3_BYTES:-$BYTES}
  run_backend "$backend" "$size"
done
