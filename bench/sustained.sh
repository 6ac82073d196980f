#!/usr/bin/env bash
# Sustained ingest, the steady state a user lives in: the release server pinned to one core
# (one shard, wal_fsync: always, max_block_bytes lowered so the run crosses many head cuts and
# compactions), the loadgen pinned to the other core at max throughput, after a warm-up run.
# Writes bench/SUSTAINED.md (appended to RESULTS.md by bench/run.sh).
#
#   bench/sustained.sh [DURATION] [WARMUP]     defaults: 60s and 10s
#
# Env: MAX_BLOCK_BYTES (67108864), SHARDS (1), SERVER_CPUS (0), LOADGEN_CPU (1), OUT
# (bench/SUSTAINED.md), ALLEGRO_BENCH_DIR (target/allegro-bench), SERVER_BIN
# (target/release/allegro; another build to compare), BASELINE (a file appended to OUT: the
# previous figures to compare with).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
duration=${1:-60s}
warmup=${2:-10s}
max_block_bytes=${MAX_BLOCK_BYTES:-67108864}
shards=${SHARDS:-1}
server_cpus=${SERVER_CPUS:-0}
loadgen_cpu=${LOADGEN_CPU:-1}
out=${OUT:-bench/SUSTAINED.md}
server_bin=${SERVER_BIN:-target/release/allegro}
baseline=${BASELINE:-}
cargo build --release -q -p allegro-net --bin allegro -p allegro-loadgen --bin loadgen
base=${ALLEGRO_BENCH_DIR:-target/allegro-bench}
mkdir -p "$base"
dir=$(mktemp -d "$PWD/$base/sustained-XXXX")
http_port=$(free_port); otlp_port=$(free_port); grpc_port=$(free_port)
write_config "$dir" "$http_port" "$otlp_port" "$grpc_port"
# One shard per server core, fsync on every acknowledgement, small head blocks.
sed -i "s/^  shards: 2$/  shards: $shards\n  wal_fsync: always/" "$dir/tempo.yaml"
printf 'ingester:\n  max_block_bytes: %s\n' "$max_block_bytes" >> "$dir/tempo.yaml"

taskset -c "$server_cpus" "$server_bin" -config.file="$dir/tempo.yaml" > "$dir/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q listening "$dir/server.log" && break; sleep 0.1; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
metric() { curl -s "127.0.0.1:$http_port/metrics" | awk -v n="$1" '$1 ~ "^"n"({|$)" {s += $2} END {printf "%.0f", s}'; }
loadgen() { taskset -c "$loadgen_cpu" target/release/loadgen --endpoint "127.0.0.1:$otlp_port" --threads 1 "$@"; }

loadgen --duration "$warmup" --quiet > "$dir/warmup.out" 2> "$dir/warmup.err"
ticks_per_s=$(getconf CLK_TCK)
spans0=$(metric allegro_spans_received_total); wal0=$(metric allegro_wal_bytes_total)
cuts0=$(metric allegro_blocks_cut_total); compactions0=$(metric allegro_blocks_compacted_total)
cpu0=$(cpu_ticks "$server")
# CPU ticks per thread kind (shard, block builder, compaction, io_uring workers, ...).
thread_ticks() {
  for task in /proc/"$1"/task/*; do
    printf '%s %s\n' "$(sed 's/-[0-9]*$//' "$task/comm")" "$(awk '{print $14 + $15}' "$task/stat")"
  done | awk '{t[$1] += $2} END {for (k in t) print k, t[k]}' | sort
}
threads0=$(thread_ticks "$server")
( while kill -0 "$server" 2>/dev/null; do rss_kb "$server"; sleep 0.25; done ) > "$dir/rss.txt" &
sampler=$!
loadgen --duration "$duration" > "$dir/load.out" 2> "$dir/load.err"
cpu1=$(cpu_ticks "$server")
threads1=$(thread_ticks "$server")
kill "$sampler"
spans1=$(metric allegro_spans_received_total); wal1=$(metric allegro_wal_bytes_total)
cuts1=$(metric allegro_blocks_cut_total); compactions1=$(metric allegro_blocks_compacted_total)
hwm=$(hwm_kb "$server")

result=$(grep '^RESULT' "$dir/load.out")
num() { printf '%s' "$result" | grep -o "\"$1\":[0-9.]*" | cut -d: -f2; }
acked=$(num spans_acked); p50=$(num p50_us); p99=$(num p99_us); failed=$(num requests_failed)
cpu_s=$(echo "($cpu1 - $cpu0) / $ticks_per_s" | bc -l)
per_s=$(grep '^\[' "$dir/load.err" | sed 's/.*acked *\([0-9,]*\) spans.*/\1/' | tr -d ,)
zero=$(printf '%s\n' "$per_s" | awk '$1 == 0' | wc -l)
rss_sorted=$(sort -n "$dir/rss.txt")
n=$(printf '%s\n' "$rss_sorted" | wc -l)
rss_median=$(printf '%s\n' "$rss_sorted" | sed -n "$(( n / 2 + 1 ))p")
rss_max=$(printf '%s\n' "$rss_sorted" | tail -1)
commit=$(git rev-parse --short HEAD)$(git diff --quiet || echo '+changes')
{
  echo "# Sustained ingest (bench/sustained.sh)"
  echo
  echo "\`bench/sustained.sh $duration $warmup\` ($server_bin) at $commit, $(date -u '+%Y-%m-%d %H:%M UTC'):"
  echo "server on core(s) $server_cpus (\`allegro.shards: $shards\`, \`wal_fsync: always\`,"
  echo "\`ingester.max_block_bytes: $max_block_bytes\`), loadgen on core $loadgen_cpu at max throughput"
  echo "(4 connections x 16 in flight, 100 spans of ~433 B per request), after a $warmup warm-up."
  echo "Server CPU from /proc/PID/stat, RSS sampled every 250 ms."
  echo
  echo "| figure | this run |"
  echo "|---|---|"
  printf '| spans acknowledged | %s in %s (%s failed requests) |\n' "$acked" "$duration" "$failed"
  printf '| spans per server CPU-second | %.1fk (%.2f CPU-s) |\n' "$(echo "$acked / $cpu_s / 1000" | bc -l)" "$cpu_s"
  printf '| export p50 / p99 (64 in flight, max throughput) | %.1f ms / %.1f ms |\n' "$(echo "$p50 / 1000" | bc -l)" "$(echo "$p99 / 1000" | bc -l)"
  printf '| seconds with no span acknowledged | %s of %s |\n' "$zero" "$(printf '%s\n' "$per_s" | wc -l)"
  printf '| RSS median / max during the run, peak (VmHWM) | %s MB / %s MB, %s MB |\n' "$((rss_median / 1024))" "$((rss_max / 1024))" "$((hwm / 1024))"
  printf '| WAL bytes written per span | %.0f B |\n' "$(echo "($wal1 - $wal0) / ($spans1 - $spans0)" | bc -l)"
  printf '| head blocks cut / compactions during the run | %s / %s |\n' "$((cuts1 - cuts0))" "$((compactions1 - compactions0))"
  by_thread=$(join -a 2 -e 0 -o 0,1.2,2.2 <(printf '%s\n' "$threads0") <(printf '%s\n' "$threads1") |
    awk -v hz="$ticks_per_s" '$1 != "" {d = ($3 - $2) / hz; if (d > 0) {printf "%s%s %.2f", sep, $1, d; sep = ", "}}')
  printf '| server CPU-s by thread (threads that exited not counted) | %s |\n' "$by_thread"
  echo
  echo "Acknowledged spans per second:"
  echo
  echo '```text'
  printf '%s\n' "$per_s" | tr '\n' ' ' | fold -s -w 100
  echo
  echo '```'
  if [ -n "$baseline" ]; then echo; cat "$baseline"; fi
} > "$out"
cat "$out"
kill "$server"; wait "$server" 2>/dev/null || true
trap - EXIT
