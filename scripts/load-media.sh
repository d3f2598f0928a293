#!/usr/bin/env bash
# The media load figures of docs/benchmarks.md: 50 calls held at once, each
# with real WebRTC peers in foyer-load (a door station and 7 devices), against
# one `foyer serve` node, first with a UDP port per peer connection (the
# default), then with the single mux port and batched writes (the production
# recommendation). Run it inside the loopback-only namespace, after
# `make build`:
#
#   scripts/netns.sh scripts/load-media.sh
#
# Reports go to stdout; JSON reports to $OUT (default /tmp/foyer-load-media).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/foyer-load-media}
CALLS=${CALLS:-50}
SETUPS=${SETUPS:-ports mux-batch}
DATA=$OUT/data
rm -rf "$OUT"
mkdir -p "$DATA"
ulimit -n 20000 2>/dev/null || true

bin/foyer-load --devices $((CALLS * 7)) --doors "$CALLS" --foyer bin/foyer \
  --data-dir "$DATA" --seed-only --tokens-out "$OUT/tokens.json"

. scripts/load-serve.sh

for setup in $SETUPS; do
  case $setup in
  ports) serve ;;
  mux) serve FOYER_MEDIA_UDP_MUX_PORT=50000 ;;
  mux-batch) serve FOYER_MEDIA_UDP_MUX_PORT=50000 FOYER_MEDIA_UDP_BATCH_WRITE=16 ;;
  *) echo "unknown set-up $setup: want ports, mux or mux-batch" >&2; exit 2 ;;
  esac
  echo "== media set-up: $setup"
  bin/foyer-load --scenario media --tokens "$OUT/tokens.json" --calls "$CALLS" \
    --preview 2s --hold 20s --json "$OUT/media-$setup.json"
  stop
done
