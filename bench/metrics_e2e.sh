#!/usr/bin/env bash
# TraceQL metrics end to end (issue #11 item 5): load a release server (2 shards) for
# DURATION with the loadgen, /flush (unless FLUSH=0), wait until compaction settles, then run
# metrics queries over the last hour in 60 steps through GET /api/metrics/query_range, each
# RUNS times, and report latency percentiles and the scan rate per core. Correctness check
# beside the timings: the samples of `{ } | count_over_time()` must add up to the spans the
# loadgen had acknowledged (its own record), and `rate()` times the step to the same.
#
#   bench/metrics_e2e.sh 60s     (~10M spans at RATE=170k)
#   bench/metrics_e2e.sh 8s      (~1.4M spans: a quick check)
#   FLUSH=0 bench/metrics_e2e.sh 20s   (live traces and the WAL, no /flush)
#
# Environment: RATE (default 170k), RUNS (default 20), WARMUP (default 2), METRICS_MD (where
# the markdown section goes, default bench/METRICS.md), ALLEGRO_BENCH_DIR (scratch disk,
# default target), KEEP_DIR=1 (keep blocks and WAL).
set -euo pipefail
cd "$(dirname "$0")/.."
duration=${1:-60s}
rate=${RATE:-170k}
runs=${RUNS:-20}
warmup=${WARMUP:-2}
out_md=${METRICS_MD:-bench/METRICS.md}
cargo build --release -q -p allegro-net --bin allegro -p allegro-loadgen --bin loadgen
dir=$(mktemp -d "${ALLEGRO_BENCH_DIR:-target}/metrics-e2e.XXXXXX")
. bench/lib.sh
http_port=${HTTP_PORT:-$(free_port)}; grpc_port=${GRPC_PORT:-$(free_port)}
internal_grpc_port=${INTERNAL_GRPC_PORT:-$(free_port)}
write_config "$dir" "$http_port" "$grpc_port" "$internal_grpc_port"
server=""
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  [ -n "${KEEP_DIR:-}" ] || rm -rf "$dir/traces" "$dir/wal"
}
trap cleanup EXIT
start_server "$dir"
target/release/loadgen --endpoint "127.0.0.1:$grpc_port" --duration "$duration" --rate "$rate" \
  --record "$dir/acked.txt" --quiet | grep RESULT
if [ "${FLUSH:-1}" = 1 ]; then
  curl -s -o /dev/null -w "flush: HTTP %{http_code} in %{time_total}s\n" "http://127.0.0.1:$http_port/flush"
  wait_for_compaction "$dir"
fi
spans=$(awk '{s+=$2} END {print s+0}' "$dir/acked.txt")
blocks=$(ls "$dir"/traces/single-tenant 2>/dev/null | wc -l)
echo "spans acked: $spans; $blocks blocks"
# The last hour, 60 steps, ending a little after the load (as Grafana's "last 1 hour").
end_s=$(($(date +%s) + 30)); start_s=$((end_s - 3600)); step=60s
base="http://127.0.0.1:$http_port/api/metrics/query_range?start=$start_s&end=$end_s&step=$step&q="
enc() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1"; }
# sum_samples FILE: the sum of every sample value of a query_range JSON answer.
sum_samples() {
  python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(sum(s.get("value", 0) for t in d.get("series", []) for s in t.get("samples", [])))' "$1"
}
series_count() {
  python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1])).get("series", [])))' "$1"
}
inspected() {
  python3 -c 'import json, sys
m = json.load(open(sys.argv[1])).get("metrics", {})
print(int(m.get("inspectedSpans", 0) or 0), int(m.get("inspectedBytes", 0) or 0))' "$1"
}
: > "$dir/queries.out"
status=0
for q in '{ } | count_over_time()' '{ } | rate() by (resource.service.name)' \
  '{ } | quantile_over_time(duration, .99)' '{ status = error } | rate() by (resource.service.name)' \
  '{ span.http.status_code >= 500 } | count_over_time() by (span.http.status_code)' \
  '{ } | avg_over_time(duration) by (name)'; do
  url="$base$(enc "$q")"
  for _ in $(seq 1 "$warmup"); do curl -s -o /dev/null "$url"; done
  times=$(for _ in $(seq 1 "$runs"); do
    curl -s -o "$dir/answer.json" -w '%{http_code} %{time_total}\n' "$url"; done)
  if echo "$times" | grep -qv '^200 '; then
    echo "FAILED: $q answered $(echo "$times" | grep -v '^200 ' | head -1)"; head -c 300 "$dir/answer.json"; echo
    status=1; continue
  fi
  sorted=$(echo "$times" | awk '{print $2 * 1000}' | sort -n)
  p50=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  p99=$(echo "$sorted" | awk '{a[NR]=$1} END {i=int(NR*0.99+0.999); if (i>NR) i=NR; print a[i]}')
  max=$(echo "$sorted" | tail -1)
  n=$(series_count "$dir/answer.json")
  read -r ispans ibytes < <(inspected "$dir/answer.json")
  per_core=$(awk -v s="$spans" -v p="$p50" 'BEGIN {printf "%.1fM", s / (p / 1000) / 2 / 1e6}')
  check="-"
  if [ "$q" = '{ } | count_over_time()' ]; then
    total=$(sum_samples "$dir/answer.json")
    check="sum of samples $total vs $spans acked"
    awk -v t="$total" -v s="$spans" 'BEGIN {exit !(t == s)}' || { echo "FAILED: $check"; status=1; }
  fi
  printf '| `%s` | %s | %.1f | %.1f | %.1f | %s | %s | %s | %s |\n' \
    "$(echo "$q" | sed 's/|/\\|/g')" "$runs" "$p50" "$p99" "$max" "$n" "$ispans" "$per_core" "$check" \
    | tee -a "$dir/queries.out"
done
spans_m=$(echo "scale=2; $spans/1000000" | bc)
{
  echo "## TraceQL metrics at ${spans_m}M spans (issue #11 item 5)"
  echo
  echo "Recorded by \`bench/metrics_e2e.sh $duration\` on $(date -u +%Y-%m-%d), $(nproc) cores"
  if [ "${FLUSH:-1}" = 1 ]; then
    echo "(release build, \`allegro.shards: 2\`, loadgen at \`--rate $rate\` for $duration, then"
    echo "\`/flush\` and compaction settled: $blocks blocks)."
  else
    echo "(release build, \`allegro.shards: 2\`, loadgen at \`--rate $rate\` for $duration, no"
    echo "\`/flush\`: live traces, the WAL and $blocks blocks cut at \`max_block_bytes\`)."
  fi
  echo "Each query: the last hour in 60 steps of 60s, $runs runs after $warmup warm-up requests,"
  echo "one at a time, latency as curl measures it. Spans/s per core: spans stored divided by"
  echo "the p50 latency and 2 cores. Yardstick: Tempo 2.7.2 answers these only with a"
  echo "metrics-generator (\`local-blocks\`), over the generator's recent data."
  echo
  echo '```'
  echo "RATE=$rate RUNS=$runs WARMUP=$warmup bench/metrics_e2e.sh $duration"
  echo '```'
  echo
  echo "| query | runs | p50 ms | p99 ms | max ms | series | inspected spans | spans/s per core | check |"
  echo "|---|---|---|---|---|---|---|---|---|"
  cat "$dir/queries.out"
  echo
} > "$dir/section.md"
if [ "${FLUSH:-1}" = 1 ]; then cp "$dir/section.md" "$out_md"; else cat "$dir/section.md" >> "$out_md"; fi
echo "wrote $out_md"
exit $status
