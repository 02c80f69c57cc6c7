#!/usr/bin/env bash
# Installs, idempotently and only what is missing, everything the test suite drives for real:
# kcat and strace (Debian), a Python virtualenv with confluent-kafka, kafka-python (+ codecs), moto[server],
# pyarrow and duckdb, and kafkajs from npm. Fails loudly, naming what could not be installed.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"

fail() { echo "install-test-deps: $*" >&2; exit 1; }

# --- Debian packages -------------------------------------------------------------------------
need_apt=()
command -v kcat >/dev/null 2>&1 || need_apt+=(kcat)
command -v strace >/dev/null 2>&1 || need_apt+=(strace)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs)
command -v npm  >/dev/null 2>&1 || need_apt+=(npm)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-deps: apt-get install ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null \
    || fail "could not install ${need_apt[*]} with apt-get"
fi
command -v kcat >/dev/null 2>&1 || fail "kcat is not on PATH after install"
command -v strace >/dev/null 2>&1 || fail "strace is not on PATH after install"

# --- Python virtualenv -----------------------------------------------------------------------
py_pkgs=(confluent-kafka kafka-python lz4 python-snappy zstandard "moto[server]" pyarrow duckdb pyyaml)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" || fail "could not create the virtualenv at $venv"
fi
if ! "$venv/bin/python" - <<'PY' >/dev/null 2>&1
import confluent_kafka, kafka, lz4, snappy, zstandard, moto, pyarrow, duckdb, yaml
PY
then
  echo "install-test-deps: pip install ${py_pkgs[*]}"
  "$venv/bin/pip" install -q --disable-pip-version-check "${py_pkgs[@]}" \
    || fail "pip could not install ${py_pkgs[*]}"
fi
"$venv/bin/python" -c 'import confluent_kafka, kafka, moto, pyarrow, duckdb' \
  || fail "the virtualenv at $venv lacks a client after install"

# --- kafkajs ---------------------------------------------------------------------------------
js="$root/tests/js"
if [ ! -d "$js/node_modules/kafkajs" ]; then
  echo "install-test-deps: npm install (tests/js)"
  (cd "$js" && npm install --silent --no-audit --no-fund) || fail "npm could not install kafkajs"
fi
echo "install-test-deps: kcat, python $("$venv/bin/python" -V 2>&1 | awk '{print $2}'), node $(node --version) ready"
