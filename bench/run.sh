#!/usr/bin/env bash
# Writes bench/RESULTS.md: builds the release server and loadgen, then runs the micro-benchmarks
# and the end-to-end measurement (server pinned to core 0, loadgen to core 1).
#
#   bench/run.sh              full run (1.5-2 minutes after the build, plus any wait for idle cores)
#   bench/run.sh --quick      shorter runs, rough figures
#   bench/run.sh --skip-e2e   micro-benchmarks only
#   bench/run.sh --wait-quiet 0  do not wait for idle cores first (default: up to 60 s before each part)
#
# Other flags go to the results binary (`--out FILE`, `--server-cpu N`, `--loadgen-cpu N`,
# `--keep-dir`). Files go under target/allegro-bench (set ALLEGRO_BENCH_DIR for another disk).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p allegro-net --bin allegro -p allegro-loadgen --bin loadgen
cargo build --release -p allegro-bench --bin results
exec cargo run --release -q -p allegro-bench --bin results -- "$@"
