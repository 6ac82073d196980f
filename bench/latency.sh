#!/usr/bin/env bash
# Export latency at a fixed rate on a fresh server: the release server pinned to core 0 (one
# shard, wal_fsync: always, the bench/lib.sh config), the loadgen pinned to core 1 at RATE
# (open loop). Prints the loadgen's figures and the server's CPU ticks. Run it beside another
# build (BIN=...) in the same minutes: this machine's speed drifts by 2x within a day.
#
#   bench/latency.sh RATE DURATION        e.g. bench/latency.sh 60k 15s; RATE 0 = max
#
# Env: BIN (target/release/allegro), FSYNC (allegro.wal_fsync: always), LIVE
# (allegro.live_traces_bytes_max), BLOCK (ingester.max_block_bytes), KEEP=1 keeps the run's
# directory.
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
rate=$1; duration=$2
bin=${BIN:-target/release/allegro}
cargo build --release -q -p allegro-net --bin allegro -p allegro-loadgen --bin loadgen
mkdir -p target/allegro-bench
dir=$(mktemp -d "$PWD/target/allegro-bench/latency-XXXX")
http_port=$(free_port); otlp_port=$(free_port); grpc_port=$(free_port)
write_config "$dir" "$http_port" "$otlp_port" "$grpc_port"
sed -i "s/^  shards: 2$/  shards: 1\n  wal_fsync: ${FSYNC:-always}/" "$dir/tempo.yaml"
[ -n "${LIVE:-}" ] && sed -i "s/^  wal_fsync: .*$/&\n  live_traces_bytes_max: $LIVE/" "$dir/tempo.yaml"
[ -n "${BLOCK:-}" ] && printf 'ingester:\n  max_block_bytes: %s\n' "$BLOCK" >> "$dir/tempo.yaml"
taskset -c 0 "$bin" -config.file="$dir/tempo.yaml" > "$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
for _ in $(seq 1 100); do grep -q listening "$dir/server.log" && break; sleep 0.1; done
cpu0=$(awk '{print $14 + $15}' "/proc/$server/stat")
( while kill -0 "$server" 2>/dev/null; do awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$server/status"; sleep 0.5; done ) > "$dir/rss.txt" 2>/dev/null &
sampler=$!
taskset -c 1 /usr/bin/time -o "$dir/loadgen.time" -f '%U %S' target/release/loadgen --endpoint "127.0.0.1:$otlp_port" --threads 1 \
  --rate "$rate" --duration "$duration" --max-error-ratio 1 ${LOADGEN_ARGS:-} > "$dir/load.out" 2> "$dir/load.err" || true
cpu1=$(awk '{print $14 + $15}' "/proc/$server/stat")
kill "$sampler" 2>/dev/null || true
metrics=$(curl -s "http://127.0.0.1:$http_port/metrics" || true)
wal_bytes=$(echo "$metrics" | awk '/^allegro_wal_bytes_total/ {s += $2} END {printf "%.0f", s}')
spans=$(echo "$metrics" | awk '/^allegro_spans_received_total/ {s += $2} END {printf "%.0f", s}')
received=$(echo "$metrics" | awk '/^allegro_bytes_received_total/ {s += $2} END {printf "%.0f", s}')
grep -E '^(throughput|export latency|errors)' "$dir/load.err" || true
if [ "$spans" != 0 ]; then
  echo "WAL bytes per span: $(echo "$wal_bytes / $spans" | bc -l | cut -c1-6) (span payload bytes per span: $(echo "$received / $spans" | bc -l | cut -c1-6))"
fi
echo "server CPU: $(echo "($cpu1 - $cpu0) / $(getconf CLK_TCK)" | bc -l | cut -c1-6) s ($bin)"
rss_median=$(sort -n "$dir/rss.txt" | awk '{a[NR] = $1} END {print a[int(NR / 2) + 1]}')
echo "server RSS: median $rss_median MB, max $(sort -n "$dir/rss.txt" | tail -1) MB (every 0.5 s)"
echo "loadgen CPU: $(awk '{printf "%.3f", $1 + $2}' "$dir/loadgen.time") s (its core is the client's limit: near the run's duration, the client queues)"
