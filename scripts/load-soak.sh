#!/usr/bin/env bash
# A soak: one `foyer serve` node and 19,005 devices and 600 door stations
# through $ROUNDS long call storms, each ending with every device gone;
# the node's memory, goroutines and calls sampled from /metrics every
# $EVERY seconds, and after each storm once the ended calls' 30 s have
# passed. A node that leaks per call or per connection shows it here as
# heap or goroutines that grow with the calls placed, or that stay higher
# after each round. Run it inside the loopback-only namespace, after
# `make build`:
#
#   scripts/netns.sh scripts/load-soak.sh   # RATE=100 DURATION=5m ANSWER=3 ROUNDS=2
#
# Samples go to $OUT/soak.tsv (default /tmp/foyer-soak), the storms'
# reports to stdout and $OUT/storm-<round>.json, the heap profile of what
# each round left to $OUT/heap-<round>.pprof (`go tool pprof -base`
# between two of them shows what grew).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/foyer-soak}
DATA=$OUT/data
RATE=${RATE:-100}
DURATION=${DURATION:-5m}
ANSWER=${ANSWER:-3}
ROUNDS=${ROUNDS:-2}
EVERY=${EVERY:-30}
rm -rf "$OUT"
mkdir -p "$DATA"
ulimit -n 20000 2>/dev/null || true

bin/foyer-load --scenario idle --devices 19005 --doors 600 --foyer bin/foyer \
  --data-dir "$DATA" --seed-only --tokens-out "$OUT/tokens.json"

. scripts/load-serve.sh
METRICS=127.0.0.1:9090 # the operator's listener, with the profiler
serve FOYER_METRICS_LISTEN=$METRICS FOYER_METRICS_PPROF=true

# sample prints one line of the node's figures: the time; resident memory,
# live heap and heap in use (MB), after a forced collection (the
# profiler's heap profile with gc=1): live is what the objects reachable
# then take, in use the spans that hold them; goroutines, connected
# devices, calls in progress, and calls ended so far.
sample() {
  curl -sf -o /dev/null "http://$METRICS/debug/pprof/heap?gc=1"
  curl -sf "http://$METRICS/metrics" | awk -v t="$(date +%s)" '
    /^process_resident_memory_bytes / { rss = $2 }
    /^go_memstats_heap_alloc_bytes / { live = $2 }
    /^go_memstats_heap_inuse_bytes / { heap = $2 }
    /^go_goroutines / { g = $2 }
    /^foyer_signaling_connected_devices\{/ { dev += $2 }
    /^foyer_calls_active / { act = $2 }
    /^foyer_calls_total\{/ { calls += $2 }
    END { printf "%d\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\n", t, rss/1e6, live/1e6, heap/1e6, g, dev, act, calls }'
}
printf 'unix\trss_mb\tlive_mb\theap_inuse_mb\tgoroutines\tdevices\tactive_calls\tcalls\n' >"$OUT/soak.tsv"
sample >>"$OUT/soak.tsv" # before any device connects
( while sleep "$EVERY"; do sample >>"$OUT/soak.tsv" || true; done ) &
SAMPLER=$!
trap 'kill "$SAMPLER" 2>/dev/null || true; kill "$SPID" 2>/dev/null || true' EXIT

for round in $(seq 1 "$ROUNDS"); do
  bin/foyer-load --scenario storm --tokens "$OUT/tokens.json" --devices 19005 --doors 600 \
    --rate "$RATE" --duration "$DURATION" --answer "$ANSWER" \
    --metrics "http://$METRICS/metrics" --json "$OUT/storm-$round.json"
  sleep 40 # the ended calls' 30 s, and a heartbeat
  sample >>"$OUT/soak.tsv"
  curl -sf -o "$OUT/heap-$round.pprof" "http://$METRICS/debug/pprof/heap" # what is left
done
kill "$SAMPLER"
stop
column -t "$OUT/soak.tsv"
