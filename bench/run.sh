#!/usr/bin/env bash
# Writes bench/RESULTS.md: builds the release server and loadgen, then runs the micro-benchmarks
# and the end-to-end measurement (server pinned to core 0, loadgen to core 1).
#
#   bench/run.sh              full run (about 2-3 minutes after the build)
#   bench/run.sh --quick      shorter runs, rough figures
#   bench/run.sh --skip-e2e   micro-benchmarks only
#
# Other flags go to the results binary (`--out FILE`, `--server-cpu N`, `--loadgen-cpu N`,
# `--keep-dir`). Files go under target/allegro-bench (set ALLEGRO_BENCH_DIR for another disk).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p allegro-net --bin allegro -p allegro-loadgen --bin loadgen
cargo build --release -p allegro-bench --bin results
exec cargo run --release -q -p allegro-bench --bin results -- "$@"
