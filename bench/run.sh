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
cargo run --release -q -p allegro-bench --bin results -- "$@"
# Recorded parts that take minutes or a profiler to produce are appended, each marked as
# such: sustained ingest across head cuts (bench/sustained.sh), the block store at ~10M spans (bench/blocks_e2e.sh), search at ~10M spans
# (bench/search_e2e.sh, and FLUSH=0 for live traces), TraceQL metrics at ~10M spans
# (bench/metrics_e2e.sh) and the profile behind missed ingest targets (bench/PROFILE.md;
# export latency at a fixed rate beside another build: bench/latency.sh).
if ! printf '%s\n' "$@" | grep -q -- '--out'; then
  for part in bench/SUSTAINED.md bench/SUSTAINED_2SHARDS.md bench/BLOCKS.md bench/SEARCH.md bench/SEARCH_LIVE.md bench/METRICS.md bench/PROFILE.md; do
    [ -f "$part" ] && { printf '\n' >> bench/RESULTS.md; sed '1s/^# /## /' "$part" >> bench/RESULTS.md; }
  done
fi
