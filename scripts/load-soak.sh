#!/usr/bin/env bash
# A soak: 19,005 devices and 600 door stations through $ROUNDS long call
# storms, each ending with every device gone, against one `foyer serve`
# node (NODES=1, the embedded store) or two sharing a redis-server
# (NODES=2). SCENARIO=media makes each round $CALLS media calls held at
# once instead (real WebRTC peers, talk for $DURATION), for what the media
# sessions leave. Each node's memory, goroutines and calls are sampled from its
# metrics every $EVERY seconds, and after each storm once the ended calls'
# 30 s have passed. A node that leaks per call or per connection shows it
# here as heap or goroutines that grow with the calls placed, or that stay
# higher after each round; with two nodes, Redis's key count shows what
# the cluster leaves there. Run it inside the loopback-only namespace,
# after `make build`:
#
#   scripts/netns.sh scripts/load-soak.sh   # NODES=1 RATE=100 DURATION=5m ANSWER=3 ROUNDS=2
#   SCENARIO=media CALLS=50 DURATION=20s ROUNDS=4 scripts/netns.sh scripts/load-soak.sh
#
# Samples go to $OUT/soak.tsv (default /tmp/foyer-soak), the rounds'
# reports to stdout and $OUT/<scenario>-<round>.json, the heap profile of what
# each round left on each node to $OUT/heap-<round>-<node>.pprof
# (`go tool pprof -base` between two of them shows what grew).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/foyer-soak}
NODES=${NODES:-1}
SCENARIO=${SCENARIO:-storm}
CALLS=${CALLS:-50}
RATE=${RATE:-100}
DURATION=${DURATION:-5m}
ANSWER=${ANSWER:-3}
ROUNDS=${ROUNDS:-2}
EVERY=${EVERY:-30}
rm -rf "$OUT"
mkdir -p "$OUT"
ulimit -n 20000 2>/dev/null || true

case $SCENARIO in
storm | media) ;;
*)
  echo "SCENARIO=$SCENARIO: want storm or media" >&2
  exit 2
  ;;
esac
# Each node's operator listener (metrics and profiler): OPS.
case $NODES in
1)
  DATA=$OUT/data
  mkdir -p "$DATA"
  bin/foyer-load --scenario idle --devices 19005 --doors 600 --foyer bin/foyer \
    --data-dir "$DATA" --seed-only --tokens-out "$OUT/tokens.json"
  . scripts/load-serve.sh
  OPS=(127.0.0.1:9090)
  serve FOYER_METRICS_LISTEN=${OPS[0]} FOYER_METRICS_PPROF=true
  URLS=ws://127.0.0.1:8080/v1/signal METRICS=http://${OPS[0]}/metrics
  ;;
2)
  . scripts/load-cluster-serve.sh
  redis_up
  bin/foyer-load --scenario idle --devices 19005 --doors 600 --foyer bin/foyer \
    --config "$OUT/foyer.yaml" --seed-only --tokens-out "$OUT/tokens.json"
  OPERATOR_PORTS=1 nodes_up
  OPS=(127.0.0.1:9081 127.0.0.1:9082)
  ;;
*)
  echo "NODES=$NODES: want 1 or 2" >&2
  exit 2
  ;;
esac

# sample prints a line for each node: the time, the node's operator
# listener; its resident memory, live heap and heap in use (MB) after
# forced collections (the profiler's heap profile with gc=1): live is what
# the objects reachable then take, in use the spans that hold them; its
# goroutines, connected devices, calls in progress and calls ended so far;
# and, with two nodes, the keys in Redis.
sample() {
  local t keys=- op
  t=$(date +%s)
  [ "$NODES" = 2 ] && keys=$(redis-cli -p 6390 dbsize)
  for op in "${OPS[@]}"; do
    # Twice: what sits in a sync.Pool (Pion's packet buffers) outlives
    # one collection.
    curl -sf -o /dev/null "http://$op/debug/pprof/heap?gc=1"
    curl -sf -o /dev/null "http://$op/debug/pprof/heap?gc=1"
    curl -sf "http://$op/metrics" | awk -v t="$t" -v op="$op" -v keys="$keys" '
      /^process_resident_memory_bytes / { rss = $2 }
      /^go_memstats_heap_alloc_bytes / { live = $2 }
      /^go_memstats_heap_inuse_bytes / { heap = $2 }
      /^go_goroutines / { g = $2 }
      /^foyer_signaling_connected_devices\{/ { dev += $2 }
      /^foyer_calls_active / { act = $2 }
      /^foyer_calls_total\{/ { calls += $2 }
      END { printf "%d\t%s\t%.1f\t%.1f\t%.1f\t%d\t%d\t%d\t%d\t%s\n", t, op, rss/1e6, live/1e6, heap/1e6, g, dev, act, calls, keys }'
  done
}
printf 'unix\tnode\trss_mb\tlive_mb\theap_inuse_mb\tgoroutines\tdevices\tactive_calls\tcalls\tredis_keys\n' >"$OUT/soak.tsv"
sample >>"$OUT/soak.tsv" # before any device connects
( while sleep "$EVERY"; do sample >>"$OUT/soak.tsv" || true; done ) &
SAMPLER=$!
# The sampler first, then what the set-up started (its own trap, replaced).
if [ "$NODES" = 1 ]; then
  trap 'kill "$SAMPLER" 2>/dev/null || true; kill "$SPID" 2>/dev/null || true' EXIT
else
  trap 'kill "$SAMPLER" 2>/dev/null || true; stop_all' EXIT
fi

for round in $(seq 1 "$ROUNDS"); do
  case $SCENARIO in
  storm) args=(--devices 19005 --doors 600 --rate "$RATE" --duration "$DURATION" --answer "$ANSWER") ;;
  media) args=(--calls "$CALLS" --preview 2s --hold "$DURATION") ;;
  esac
  bin/foyer-load --scenario "$SCENARIO" --url "$URLS" --metrics "$METRICS" --tokens "$OUT/tokens.json" \
    "${args[@]}" --json "$OUT/$SCENARIO-$round.json"
  sleep 40 # the ended calls' 30 s, and a heartbeat
  sample >>"$OUT/soak.tsv"
  for op in "${OPS[@]}"; do
    curl -sf -o "$OUT/heap-$round-${op##*:}.pprof" "http://$op/debug/pprof/heap" # what is left
  done
done
kill "$SAMPLER"
if [ "$NODES" = 1 ]; then stop; else stop_all; fi
column -t "$OUT/soak.tsv"
