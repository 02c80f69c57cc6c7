#!/usr/bin/env bash
# The whole test suite, as the README's second command and CI run it:
#   1. installs what the tests drive (kcat, Python clients, moto, kafkajs) when missing;
#   2. starts an S3 server (moto's server mode) on a free loopback port, unless
#      STRATA_TEST_S3_ENDPOINT points at another one (MinIO, real S3, ...);
#   3. checks formatting and lints, builds, and runs every Rust test and end-to-end test.
# Nothing is skipped silently: a client or S3 server that cannot be installed or started fails
# the run and says which.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n==> %s\n' "$*"; }

# A fresh clone (CI) gains nothing from incremental compilation, which doubles what the build
# writes to disk.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

free_kib="$(df -Pk . | awk 'NR==2 {print $4}')"
if [ "${free_kib:-0}" -lt $((8 * 1024 * 1024)) ]; then
  echo "test.sh: warning: only $((free_kib / 1024)) MiB free on $(df -P . | awk 'NR==2 {print $6}');" \
    "a clean build and test run writes about 8 GiB (free space, or point CARGO_TARGET_DIR elsewhere)" >&2
fi

step "installing test dependencies (only what is missing)"
bash scripts/install-test-deps.sh

export STRATA_TEST_REQUIRE_ALL=1
export STRATA_TEST_REQUIRE_S3=1
moto_pid=""
cleanup() {
  if [ -n "$moto_pid" ]; then kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

if [ -z "${STRATA_TEST_S3_ENDPOINT:-}" ]; then
  step "starting moto's S3 server on loopback"
  port="$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  moto_log="$(mktemp -t strata-moto.XXXXXX.log)"
  .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
  moto_pid=$!
  export STRATA_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
  export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
  export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
  export AWS_REGION="${AWS_REGION:-us-east-1}"
  export AWS_ALLOW_HTTP=true
  export STRATA_TEST_S3_BUCKET="${STRATA_TEST_S3_BUCKET:-strata-test}"
  for _ in $(seq 1 100); do
    if .venv/bin/python -c "import urllib.request; urllib.request.urlopen('$STRATA_TEST_S3_ENDPOINT/', timeout=1)" 2>/dev/null; then break; fi
    kill -0 "$moto_pid" 2>/dev/null || { cat "$moto_log"; echo "test.sh: moto_server exited during start-up" >&2; exit 1; }
    sleep 0.2
  done
  # moto accepts unsigned requests, so a plain PUT creates the bucket.
  .venv/bin/python - <<PY || { cat "$moto_log"; echo "test.sh: could not create bucket $STRATA_TEST_S3_BUCKET on moto" >&2; exit 1; }
import urllib.request
req = urllib.request.Request("$STRATA_TEST_S3_ENDPOINT/$STRATA_TEST_S3_BUCKET", method="PUT")
urllib.request.urlopen(req, timeout=10)
PY
  echo "moto S3 server at $STRATA_TEST_S3_ENDPOINT, bucket $STRATA_TEST_S3_BUCKET"
else
  export STRATA_TEST_S3_BUCKET="${STRATA_TEST_S3_BUCKET:-strata-test}"
  export AWS_ALLOW_HTTP="${AWS_ALLOW_HTTP:-true}"
  echo "using the S3 endpoint $STRATA_TEST_S3_ENDPOINT, bucket $STRATA_TEST_S3_BUCKET (it must exist)"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -q -- -D warnings

step "building"
cargo build --workspace --all-targets -q
cargo build -q -p strata-broker --bin strata

step "running the tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  echo "(cargo-nextest not installed: using cargo test)"
  cargo test --workspace --no-fail-fast
fi
