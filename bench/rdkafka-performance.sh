#!/usr/bin/env bash
# Builds librdkafka's own benchmark client, `rdkafka_performance`, the consumer the export
# issue names for the replay side of `bench/export.sh`, and prints its path. Debian packages
# librdkafka but not its examples, so the example's source comes from the `rdkafka-sys` crate
# on crates.io (which vendors librdkafka) and is linked against Debian's librdkafka, the same
# library kcat uses. Idempotent: an existing build is reused.
#
#   bash bench/rdkafka-performance.sh        # -> target/bench-tools/rdkafka_performance
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${CARGO_TARGET_DIR:-$root/target}/bench-tools"
binary="$out/rdkafka_performance"
if [ -x "$binary" ]; then echo "$binary"; exit 0; fi

fail() { echo "rdkafka-performance: $*" >&2; exit 1; }
# The vendored librdkafka is the one rdkafka-sys 4.10 carries (2.12.1); the example uses only
# public API that Debian's 2.0.2 also has, plus inline helpers from librdkafka's own headers.
crate_version="4.10.0+2.12.1"

if [ ! -e /usr/include/librdkafka/rdkafka.h ] || ! command -v gcc >/dev/null; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq librdkafka-dev gcc make \
    >/dev/null || fail "could not install librdkafka-dev gcc make with apt-get"
fi

work="$(mktemp -d -t rdkafka-performance.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# A throwaway manifest so that cargo fetches the crate's source into its registry cache.
mkdir -p "$work/fetch/src"
cat >"$work/fetch/Cargo.toml" <<EOF
[package]
name = "fetch-rdkafka-sys"
version = "0.0.0"
edition = "2021"
[dependencies]
rdkafka-sys = "=$crate_version"
EOF
echo 'fn main() {}' >"$work/fetch/src/main.rs"
(cd "$work/fetch" && cargo fetch -q) || fail "cargo could not fetch rdkafka-sys $crate_version"
src="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/"rdkafka-sys-$crate_version"/librdkafka | head -1)"
[ -f "$src/examples/rdkafka_performance.c" ] || fail "no rdkafka_performance.c under $src"

# The example includes librdkafka's internal headers, which want the config.h of a configured
# tree: configure a copy (nothing is built but the example).
cp -r "$src" "$work/librdkafka"
chmod -R u+w "$work/librdkafka"
(cd "$work/librdkafka" && chmod +x configure && ./configure --disable-ssl --disable-gssapi \
  --disable-zstd --disable-curl --disable-sasl >"$work/configure.log" 2>&1) \
  || { cat "$work/configure.log" >&2; fail "configuring librdkafka's headers failed"; }
mkdir -p "$out"
gcc -O2 -w -I"$work/librdkafka/src" -o "$binary" \
  "$work/librdkafka/examples/rdkafka_performance.c" -lrdkafka -lpthread -lm \
  || fail "compiling rdkafka_performance failed"
echo "$binary"
