#!/usr/bin/env bash
# The load figures of docs/benchmarks.md: 19,005 devices and 600 door
# stations against one `foyer serve` node on this machine. Run it inside the
# loopback-only namespace, after `make build`:
#
#   scripts/netns.sh scripts/load-19k.sh
#
# It seeds a fresh data directory, starts the server, runs the idle,
# reconnect (without and with resume tokens) and call-storm scenarios, then
# the two saturation storms, and stops the server. Reports go to stdout;
# JSON reports to $OUT (default /tmp/foyer-load).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/foyer-load}
DATA=$OUT/data
rm -rf "$OUT"
mkdir -p "$DATA"
ulimit -n 20000 2>/dev/null || true

bin/foyer-load --scenario idle --devices 19005 --doors 600 --foyer bin/foyer \
  --data-dir "$DATA" --seed-only --tokens-out "$OUT/tokens.json"

. scripts/load-serve.sh

serve
bin/foyer-load --scenario idle --tokens "$OUT/tokens.json" --hold 30s --json "$OUT/idle.json"
bin/foyer-load --scenario reconnect --tokens "$OUT/tokens.json" --json "$OUT/reconnect.json"
bin/foyer-load --scenario reconnect --resume --tokens "$OUT/tokens.json" --json "$OUT/reconnect-resume.json"
bin/foyer-load --scenario storm --tokens "$OUT/tokens.json" --rate 200 --duration 20s --answer 7 --json "$OUT/storm.json"
stop

# Saturation: the per-door call limit raised so that the door stations can
# call as fast as asked.
serve FOYER_SIGNALING_CALL_RATE=1000
for rate in 1000 2000; do
  bin/foyer-load --scenario storm --tokens "$OUT/tokens.json" --rate "$rate" --duration 10s --answer 7 --json "$OUT/storm-$rate.json"
done
stop
