#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine that has only
# Go: Debian packages (when missing) and the Go modules. Runs before the
# suite enters its loopback-only network namespace, which has no network.
set -euo pipefail

# Debian packages: command → package.
declare -A need=(
  [ip]=iproute2
  [unshare]=util-linux
  [prlimit]=util-linux
  [redis-server]=redis-server
  [redis-cli]=redis-tools
  [promtool]=prometheus
  [turnutils_uclient]=coturn
  [chromium]=chromium
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing ${missing[*]}; run as root or install them" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts the services it installs where an init system runs; the
# tests start their own throwaway servers on free loopback ports.
for pair in redis-server:redis-server prometheus:prometheus coturn:turnserver; do
  svc=${pair%%:*} proc=${pair##*:}
  if command -v service >/dev/null 2>&1 && pgrep -x "$proc" >/dev/null 2>&1; then
    service "$svc" stop >/dev/null 2>&1 || true
  fi
done

go mod download
