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
http_port=${HTTP_PORT:-3299}; grpc_port=${GRPC_PORT:-4399}
cat > "$dir/tempo.yaml" <<YAML
server:
  http_listen_address: 127.0.0.1
  http_listen_port: $http_port
  grpc_listen_port: 0
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:$grpc_port
storage:
  trace:
    backend: local
    local:
      path: $dir/traces
    wal:
      path: $dir/wal
overrides:
  defaults:
    ingestion:
      rate_limit_bytes: 0
      max_traces_per_user: 0
    global:
      max_bytes_per_trace: 0
allegro:
  shards: 2
YAML
target/release/allegro -config.file="$dir/tempo.yaml" > "$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
sleep 1.5
target/release/loadgen --endpoint "127.0.0.1:$grpc_port" --duration "$duration" \
  --record "$dir/acked.txt" --quiet | grep RESULT
curl -s -o /dev/null -w "flush: HTTP %{http_code} in %{time_total}s\n" "http://127.0.0.1:$http_port/flush"
spans=$(awk '{s+=$2} END {print s}' "$dir/acked.txt")
bytes=$(find "$dir/traces" -name data -printf "%s\n" | awk '{s+=$1} END {print s}')
echo "spans acked: $spans; block data bytes: $bytes; bytes per span: $(echo "scale=1; $bytes/$spans" | bc)"
prev=""; same=0; waited=0
while [ $waited -lt 300 ] && [ $same -lt 3 ]; do
  sleep 10; waited=$((waited + 10))
  cur=$(ls -a "$dir"/traces/single-tenant | tr '\n' ' ')
  if [ "$cur" = "$prev" ] && ! echo "$cur" | grep -q tmp; then same=$((same + 1)); else same=0; fi
  prev=$cur
done
echo "compaction settled after ${waited}s: $(ls "$dir"/traces/single-tenant | wc -l) blocks"
target/release/loadgen verify --record "$dir/acked.txt" --http "127.0.0.1:$http_port" --quiet 2>&1 | tail -n 4
