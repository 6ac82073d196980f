#!/usr/bin/env bash
# Block store end to end (issue #3): load a release server (2 shards, no rate limits) for
# DURATION, /flush, measure bytes per span of the block files, wait until compaction settles,
# then read every acknowledged trace back by ID and report lookup latency percentiles.
#
#   bench/blocks_e2e.sh 70s      (~10M spans on this 2-core machine at ~140k spans/s)
#
# Prints the figures; bench/BLOCKS.md records a run (bench/run.sh appends it to RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-70s}
cargo build --release -q -p allegro-net --bin allegro -p allegro-loadgen --bin loadgen
dir=$(mktemp -d "${ALLEGRO_BENCH_DIR:-target}/blocks-e2e.XXXXXX")
. bench/lib.sh
http_port=${HTTP_PORT:-$(free_port)}; grpc_port=${GRPC_PORT:-$(free_port)}
write_config "$dir" "$http_port" "$grpc_port" "$(free_port)"
server=""
trap 'kill $server 2>/dev/null || true' EXIT
start_server "$dir"
target/release/loadgen --endpoint "127.0.0.1:$grpc_port" --duration "$duration" \
  --record "$dir/acked.txt" --quiet | grep RESULT
curl -s -o /dev/null -w "flush: HTTP %{http_code} in %{time_total}s\n" "http://127.0.0.1:$http_port/flush"
spans=$(awk '{s+=$2} END {print s}' "$dir/acked.txt")
bytes=$(find "$dir/traces" -name data -printf "%s\n" | awk '{s+=$1} END {print s}')
echo "spans acked: $spans; block data bytes: $bytes; bytes per span: $(echo "scale=1; $bytes/$spans" | bc)"
wait_for_compaction "$dir"
echo "compaction settled after ${waited}s: $(ls "$dir"/traces/single-tenant | wc -l) blocks"
target/release/loadgen verify --record "$dir/acked.txt" --http "127.0.0.1:$http_port" --quiet 2>&1 | tail -n 4
