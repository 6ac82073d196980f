# Shared by the end-to-end bench scripts (source it): free ports, the server's config, its
# start, and the wait for compaction to settle.

# A port nobody listens on, below Linux's ephemeral range (32768+), where an outgoing
# connection can hold a port that no listener shows.
free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 12000))
    ss -Htln "sport = :$port" 2>/dev/null | grep -q . || { echo "$port"; return; }
  done
}

# write_config DIR HTTP_PORT OTLP_GRPC_PORT GRPC_API_PORT: DIR/tempo.yaml for a release server
# on loopback with 2 shards, no ingestion limits, blocks and WAL under DIR.
write_config() {
  local dir=$1 http_port=$2 otlp_port=$3 grpc_api_port=$4
  cat > "$dir/tempo.yaml" <<YAML
server:
  http_listen_address: 127.0.0.1
  http_listen_port: $http_port
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: $grpc_api_port
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:$otlp_port
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
}

# start_server DIR: runs target/release/allegro on DIR/tempo.yaml (log in DIR/server.log),
# sets $server to its PID and returns once it listens; exits the script if it does not.
start_server() {
  local dir=$1
  target/release/allegro -config.file="$dir/tempo.yaml" > "$dir/server.log" 2>&1 &
  server=$!
  for _ in $(seq 1 100); do grep -q listening "$dir/server.log" && return; sleep 0.1; done
  echo "server did not start:"; cat "$dir/server.log"; exit 1
}

# wait_for_compaction DIR: until the tenant's block list stays the same (no temporary
# directory) for three checks 10 s apart, at most 300 s; sets $waited (seconds).
wait_for_compaction() {
  local dir=$1 prev="" same=0 cur
  waited=0
  while [ "$waited" -lt 300 ] && [ "$same" -lt 3 ]; do
    sleep 10; waited=$((waited + 10))
    cur=$(ls -a "$dir"/traces/single-tenant 2>/dev/null | tr '\n' ' ')
    if [ "$cur" = "$prev" ] && ! echo "$cur" | grep -q tmp; then same=$((same + 1)); else same=0; fi
    prev=$cur
  done
}
