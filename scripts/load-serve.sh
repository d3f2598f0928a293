# Sourced by the load scripts: serve [VAR=value…] starts `foyer serve` on
# 127.0.0.1:8080 over $DATA (TURN off, media loopback-only, the extra
# environment given), waits until it is ready and keeps its PID in SPID;
# stop ends it. The server is stopped by its PID when the script exits.

serve() {
  env FOYER_TURN_ENABLED=false FOYER_MEDIA_LOOPBACK_ONLY=true FOYER_LOG_LEVEL=warn "$@" \
    bin/foyer serve --data-dir "$DATA" --listen 127.0.0.1:8080 >"$OUT/serve.log" 2>&1 &
  SPID=$!
  for _ in $(seq 1 100); do
    curl -sf http://127.0.0.1:8080/readyz >/dev/null && return
    sleep 0.2
  done
  echo "the server did not become ready; see $OUT/serve.log" >&2
  exit 1
}
stop() { kill "$SPID"; wait "$SPID" || true; }
trap 'kill "$SPID" 2>/dev/null || true' EXIT
