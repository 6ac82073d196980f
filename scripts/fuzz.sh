#!/usr/bin/env bash
# Runs one fuzz target with cargo-fuzz (libFuzzer; needs a nightly toolchain, or
# RUSTC_BOOTSTRAP=1 on stable). Usage: scripts/fuzz.sh CRATE_DIR TARGET [SECONDS]
#   scripts/fuzz.sh net/h2 frames 60
#   scripts/fuzz.sh net/hpack hpack_decode
#   scripts/fuzz.sh engine otlp_split        (also: wal_replay, block_read, traceql)
#   scripts/fuzz.sh net http1                (HTTP/1.1 requests through the query API router)
#   scripts/fuzz.sh net/receivers otlp_json  (also: zipkin, jaeger)
# A crash input is minimised into CRATE_DIR/fuzz/regressions/TARGET/, which `cargo test`
# replays from then on: commit it with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
crate=${1:?crate dir, e.g. net/h2}; target=${2:?fuzz target}; seconds=${3:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q nightly; then toolchain=(+nightly); else export RUSTC_BOOTSTRAP=1; fi
cd "$crate"
mkdir -p "fuzz/corpus/$target" "fuzz/regressions/$target"
# New corpus entries go to the first (ignored) directory; saved regressions seed the run.
cargo "${toolchain[@]}" fuzz run "$target" "fuzz/corpus/$target" "fuzz/regressions/$target" -- -max_total_time="$seconds" \
  || { echo "crash: minimise it with 'cargo fuzz tmin $target <artifact>' and copy it to fuzz/regressions/$target/"; exit 1; }
