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

. scripts/load-cluster-serve.sh
redis_up
bin/foyer-load --scenario idle --devices 19005 --doors 600 --foyer bin/foyer \
  --config "$OUT/foyer.yaml" --seed-only --tokens-out "$OUT/tokens.json"
nodes_up

load() { bin/foyer-load --url "$URLS" --metrics "$METRICS" --tokens "$OUT/tokens.json" "$@"; }
load --scenario idle --hold 30s --json "$OUT/idle.json"
load --scenario reconnect --json "$OUT/reconnect.json"
load --scenario storm --rate 200 --duration 20s --answer 7 --json "$OUT/storm.json"
