#!/usr/bin/env bash
# The cluster load figures of docs/benchmarks.md: two `foyer serve` nodes
# sharing one redis-server, all on this machine, with 19,005 devices and 600
# door stations spread over both nodes (foyer-load takes the nodes in turn,
# so every ID has devices on both and calls cross between them). Run it
# inside the loopback-only namespace, after `make build` (redis-server from
# Debian's package, which `make test` installs):
#
#   scripts/netns.sh scripts/load-cluster.sh
#
# It runs the idle, reconnect and 200 calls/s storm scenarios and stops what
# it started by PID. Reports go to stdout; JSON reports to $OUT (default
# /tmp/foyer-load-cluster).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/foyer-load-cluster}
rm -rf "$OUT"
mkdir -p "$OUT"
ulimit -n 20000 2>/dev/null || true

PIDS=()
# Stop the nodes before Redis: last started, first stopped.
stop_all() {
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
}
trap stop_all EXIT

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

bin/foyer-load --scenario idle --devices 19005 --doors 600 --foyer bin/foyer \
  --config "$OUT/foyer.yaml" --seed-only --tokens-out "$OUT/tokens.json"

URLS= METRICS=
for port in 8081 8082; do
  mkdir -p "$OUT/node-$port"
  bin/foyer serve --config "$OUT/foyer.yaml" --data-dir "$OUT/node-$port" --listen 127.0.0.1:$port >"$OUT/serve-$port.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:$port/readyz >/dev/null && break
    sleep 0.2
  done
  curl -sf http://127.0.0.1:$port/readyz >/dev/null || { echo "node :$port did not become ready; see $OUT/serve-$port.log" >&2; exit 1; }
  URLS=${URLS:+$URLS,}ws://127.0.0.1:$port/v1/signal
  METRICS=${METRICS:+$METRICS,}http://127.0.0.1:$port/metrics
done

load() { bin/foyer-load --url "$URLS" --metrics "$METRICS" --tokens "$OUT/tokens.json" "$@"; }
load --scenario idle --hold 30s --json "$OUT/idle.json"
load --scenario reconnect --json "$OUT/reconnect.json"
load --scenario storm --rate 200 --duration 20s --answer 7 --json "$OUT/storm.json"
