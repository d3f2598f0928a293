# Sourced by the cluster load scripts: a redis-server on 127.0.0.1:6390
# (redis_up, its configuration for foyer in $OUT/foyer.yaml) and two
# `foyer serve` nodes sharing it on 127.0.0.1:8081 and :8082 (nodes_up
# [VAR=value…], the extra environment given to both; it sets URLS and
# METRICS, comma-separated, for foyer-load). Everything started is stopped
# by PID, nodes before Redis, when the script exits (stop_all).

PIDS=()
stop_all() {
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
}
trap stop_all EXIT

redis_up() {
  redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT" >"$OUT/redis.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    redis-cli -p 6390 ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  cat >"$OUT/foyer.yaml" <<YAML
redis:
  url: redis://127.0.0.1:6390/0
turn:
  enabled: false
media:
  loopback_only: true
log_level: warn
YAML
}

# nodes_up starts the nodes. With OPERATOR_PORTS=1 each node serves its
# metrics and Go's profiler on its own listener, its port plus 1000.
nodes_up() {
  URLS= METRICS=
  local port metrics extra
  for port in 8081 8082; do
    mkdir -p "$OUT/node-$port"
    metrics=127.0.0.1:$port extra=()
    if [ "${OPERATOR_PORTS:-0}" = 1 ]; then
      metrics=127.0.0.1:$((port + 1000))
      extra=(FOYER_METRICS_LISTEN=$metrics FOYER_METRICS_PPROF=true)
    fi
    env "$@" "${extra[@]}" bin/foyer serve --config "$OUT/foyer.yaml" --data-dir "$OUT/node-$port" \
      --listen 127.0.0.1:$port >"$OUT/serve-$port.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do
      curl -sf http://127.0.0.1:$port/readyz >/dev/null && break
      sleep 0.2
    done
    curl -sf http://127.0.0.1:$port/readyz >/dev/null || { echo "node :$port did not become ready; see $OUT/serve-$port.log" >&2; exit 1; }
    URLS=${URLS:+$URLS,}ws://127.0.0.1:$port/v1/signal
    METRICS=${METRICS:+$METRICS,}http://$metrics/metrics
  done
}
