#!/usr/bin/env bash
# Runs a command in a private network namespace that has only loopback, so
# that no test can send a packet anywhere but 127.0.0.0/8 and ::1 (WebRTC and
# browsers probe every interface by default). Needs root (or user namespaces).
set -euo pipefail
if [ "${IN_LOOPBACK_NETNS:-}" = 1 ]; then
  exec "$@"
fi
exec unshare --net -- env IN_LOOPBACK_NETNS=1 GOPROXY=off bash -c 'ip link set lo up && exec "$@"' netns "$@"
