#!/usr/bin/env bash
# Checks the operator configuration with promtool:
#   - configs/prometheus-alerts.yaml (promtool check rules, then unit tests of
#     the main alerts against synthetic series: promtool test rules),
#   - configs/prometheus.yml (promtool check config),
#   - configs/grafana-dashboard.json parses, and every PromQL query in it
#     parses (checked as recording rules),
#   - optionally a node's metrics: a URL (http://127.0.0.1:8080/metrics) or
#     a file saved from one (promtool check metrics).
# Usage: scripts/promtool-check.sh [METRICS_URL_OR_FILE]
# promtool comes with Debian's prometheus package (apt-get install prometheus).
set -euo pipefail
cd "$(dirname "$0")/.."

command -v promtool >/dev/null || { echo "promtool not found: apt-get install prometheus (or put promtool on PATH)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 not found: needed to read the dashboard JSON" >&2; exit 2; }

alerts=configs/prometheus-alerts.yaml
dashboard=configs/grafana-dashboard.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "--- promtool check rules $alerts"
promtool check rules "$alerts"

echo "--- promtool check config configs/prometheus.yml"
promtool check config --syntax-only configs/prometheus.yml

echo "--- promtool test rules (alert unit tests)"
# The tests check when each alert fires and with which labels; annotations
# (the last key of every rule here) are left out of the copy under test.
awk '/^ +annotations:/ {skip=1; next} /^ +- (alert|name):/ {skip=0} !skip' "$alerts" >"$tmp/alerts.yaml"
cat >"$tmp/alerts_test.yaml" <<'EOF'
rule_files: [alerts.yaml]
evaluation_interval: 1m
tests:
  # 1 call answered and 3 unanswered a minute: 25% answered, plenty of calls.
  - interval: 1m
    input_series:
      - series: 'foyer_calls_total{job="foyer",instance="n1",outcome="answered"}'
        values: '0+1x60'
      - series: 'foyer_calls_total{job="foyer",instance="n1",outcome="no_answer"}'
        values: '0+3x60'
      - series: 'foyer_calls_ended_total{job="foyer",instance="n1",reason="no_answer"}'
        values: '0+3x60'
      - series: 'foyer_calls_ended_total{job="foyer",instance="n1",reason="hangup"}'
        values: '0+1x60'
      - series: 'up{job="foyer",instance="n1"}'
        values: '1 1 1 0 0 0 0 0 0 0'
      - series: 'foyer_signaling_connected_devices{job="foyer",instance="n1",kind="app"}'
        values: '10x60'
    alert_rule_test:
      - eval_time: 30m
        alertname: FoyerAnswerRateCollapse
        exp_alerts:
          - exp_labels: {severity: critical}
      - eval_time: 30m
        alertname: FoyerManyFailedCalls
        exp_alerts: []
      - eval_time: 30m
        alertname: FoyerNoDevicesConnected
        exp_alerts: []
      - eval_time: 4m
        alertname: FoyerNodeDown
        exp_alerts: []
      - eval_time: 6m
        alertname: FoyerNodeDown
        exp_alerts:
          - exp_labels: {severity: critical, job: foyer, instance: n1}
  # A quiet night: 1 answered and 1 unanswered call in 15 minutes is too few to page.
  - interval: 1m
    input_series:
      - series: 'foyer_calls_total{outcome="answered"}'
        values: '0x30 1x30'
      - series: 'foyer_calls_total{outcome="no_answer"}'
        values: '0x30 1x30'
    alert_rule_test:
      - eval_time: 45m
        alertname: FoyerAnswerRateCollapse
        exp_alerts: []
  # Visitors give up before the ring times out: 1 call a minute answered,
  # 3 left ringing until the visitor hung up. All 4 end hangup (reason), and
  # the 3 are no_answer calls (outcome), as the server counts them.
  - interval: 1m
    input_series:
      - series: 'foyer_calls_total{outcome="answered"}'
        values: '0+1x60'
      - series: 'foyer_calls_total{outcome="no_answer"}'
        values: '0+3x60'
      - series: 'foyer_calls_answered_total{kind="app"}'
        values: '0+1x60'
      - series: 'foyer_calls_ended_total{reason="hangup"}'
        values: '0+4x60'
      - series: 'foyer_calls_ended_total{reason="no_answer"}'
        values: '0x60'
    alert_rule_test:
      - eval_time: 30m
        alertname: FoyerAnswerRateCollapse
        exp_alerts:
          - exp_labels: {severity: critical}
  # A node restarted behind a broken path: its series are there at 0 from
  # the start (signaling/metrics.go), no device connects, and the calls
  # its door stations place before that ring nobody who answers.
  - interval: 1m
    input_series:
      - series: 'foyer_signaling_connected_devices{job="foyer",instance="n1",kind="app"}'
        values: '0x30'
      - series: 'foyer_signaling_connected_devices{job="foyer",instance="n1",kind="door_station"}'
        values: '0x30'
      - series: 'foyer_calls_total{job="foyer",instance="n1",outcome="answered"}'
        values: '0x30'
      - series: 'foyer_calls_total{job="foyer",instance="n1",outcome="no_answer"}'
        values: '0+3x30'
    alert_rule_test:
      - eval_time: 4m
        alertname: FoyerNoDevicesConnected
        exp_alerts: []
      - eval_time: 10m
        alertname: FoyerNoDevicesConnected
        exp_alerts:
          - exp_labels: {severity: critical, job: foyer}
      - eval_time: 25m
        alertname: FoyerAnswerRateCollapse
        exp_alerts:
          - exp_labels: {severity: critical}
  # Failed calls: 10 calls a minute, 1 ends failed (a connection closed) and
  # 1 timeout (a door station's connection stopped answering heartbeats, as
  # when its network goes): 20 % failed, though neither reason alone is
  # over 10 %.
  - interval: 1m
    input_series:
      - series: 'foyer_calls_ended_total{reason="hangup"}'
        values: '0+8x40'
      - series: 'foyer_calls_ended_total{reason="failed"}'
        values: '0+1x40'
      - series: 'foyer_calls_ended_total{reason="timeout"}'
        values: '0+1x40'
    alert_rule_test:
      - eval_time: 5m
        alertname: FoyerManyFailedCalls
        exp_alerts: []
      - eval_time: 30m
        alertname: FoyerManyFailedCalls
        exp_alerts:
          - exp_labels: {severity: warning}
  # Ring latency: every ring takes 1–2.5 s.
  - interval: 1m
    input_series:
      - series: 'foyer_calls_ring_seconds_bucket{le="1"}'
        values: '0x20'
      - series: 'foyer_calls_ring_seconds_bucket{le="2.5"}'
        values: '0+10x20'
      - series: 'foyer_calls_ring_seconds_bucket{le="+Inf"}'
        values: '0+10x20'
      - series: 'foyer_calls_ring_seconds_count'
        values: '0+10x20'
    alert_rule_test:
      - eval_time: 15m
        alertname: FoyerRingLatencyHigh
        exp_alerts:
          - exp_labels: {severity: warning}
  # API: node n1 answers 100 requests a minute, 10 of them 503 (its Redis
  # gone); node n2 fails 1 of 5 (20 %), but that is one request in five
  # minutes: too few to page.
  - interval: 1m
    input_series:
      - series: 'foyer_api_requests_total{instance="n1",route="GET /v1/sites",code="200"}'
        values: '0+90x40'
      - series: 'foyer_api_requests_total{instance="n1",route="GET /v1/sites",code="503"}'
        values: '0x10 0+10x30'
      - series: 'foyer_api_requests_total{instance="n2",route="GET /v1/sites",code="200"}'
        values: '0+0.8x40'
      - series: 'foyer_api_requests_total{instance="n2",route="POST /v1/sites",code="500"}'
        values: '0+0.2x40'
    alert_rule_test:
      - eval_time: 15m
        alertname: FoyerAPIServerErrors
        exp_alerts: []
      - eval_time: 30m
        alertname: FoyerAPIServerErrors
        exp_alerts:
          - exp_labels: {severity: warning, instance: n1}
  # Presence: node n1 rebuilds for a lost event every minute, n2 once in half an hour.
  - interval: 1m
    input_series:
      - series: 'foyer_router_presence_resyncs_total{instance="n1",cause="lost_event"}'
        values: '0+1x40'
      - series: 'foyer_router_presence_resyncs_total{instance="n1",cause="periodic"}'
        values: '0x40'
      - series: 'foyer_router_presence_resyncs_total{instance="n2",cause="lost_event"}'
        values: '0x20 1x20'
    alert_rule_test:
      - eval_time: 10m
        alertname: FoyerPresenceEventsLost
        exp_alerts: []
      - eval_time: 35m
        alertname: FoyerPresenceEventsLost
        exp_alerts:
          - exp_labels: {severity: warning, instance: n1}
  # Mixed versions: n1 skips unknown envelopes for 40 minutes, n2 for 10.
  - interval: 1m
    input_series:
      - series: 'foyer_router_envelopes_dropped_total{instance="n1",reason="unknown_kind"}'
        values: '0+3x40'
      - series: 'foyer_router_envelopes_dropped_total{instance="n1",reason="malformed"}'
        values: '0x40'
      - series: 'foyer_router_envelopes_dropped_total{instance="n2",reason="unknown_kind"}'
        values: '0+3x10 30x30'
    alert_rule_test:
      - eval_time: 20m
        alertname: FoyerClusterVersionsMixed
        exp_alerts: []
      - eval_time: 40m
        alertname: FoyerClusterVersionsMixed
        exp_alerts:
          - exp_labels: {severity: warning, instance: n1}
  # Media: node n1 loses 5 of every 100 incoming packets, node n2 1 of 100.
  - interval: 1m
    input_series:
      - series: 'foyer_media_door_packets_received_total{instance="n1"}'
        values: '0+5700x40'
      - series: 'foyer_media_device_packets_received_total{instance="n1"}'
        values: '0+0x40'
      - series: 'foyer_media_packets_lost_total{instance="n1",direction="in"}'
        values: '0+300x40'
      - series: 'foyer_media_door_packets_received_total{instance="n2"}'
        values: '0+5940x40'
      - series: 'foyer_media_device_packets_received_total{instance="n2"}'
        values: '0+0x40'
      - series: 'foyer_media_packets_lost_total{instance="n2",direction="in"}'
        values: '0+60x40'
    alert_rule_test:
      - eval_time: 5m
        alertname: FoyerMediaPacketLoss
        exp_alerts: []
      - eval_time: 30m
        alertname: FoyerMediaPacketLoss
        exp_alerts:
          - exp_labels: {severity: warning, instance: n1}
  # Door stations offline: both nodes say 2 from minute 5 to 40, then 0.
  - interval: 1m
    input_series:
      - series: 'foyer_door_stations_offline{instance="n1"}'
        values: '0x4 2x35 0x20'
      - series: 'foyer_door_stations_offline{instance="n2"}'
        values: '0x4 2x35 0x20'
    alert_rule_test:
      - eval_time: 15m
        alertname: FoyerDoorStationsOffline
        exp_alerts: []
      - eval_time: 25m
        alertname: FoyerDoorStationsOffline
        exp_alerts:
          - exp_labels: {severity: warning}
      - eval_time: 50m
        alertname: FoyerDoorStationsOffline
        exp_alerts: []
  # Log entries: node n1 drops 40 entries at minute 10, node n2 none.
  - interval: 1m
    input_series:
      - series: 'foyer_log_entries_dropped_total{instance="n1"}'
        values: '0x9 40x30'
      - series: 'foyer_log_entries_dropped_total{instance="n2"}'
        values: '0x40'
    alert_rule_test:
      - eval_time: 5m
        alertname: FoyerLogEntriesDropped
        exp_alerts: []
      - eval_time: 12m
        alertname: FoyerLogEntriesDropped
        exp_alerts:
          - exp_labels: {severity: warning, instance: n1}
      - eval_time: 30m
        alertname: FoyerLogEntriesDropped
        exp_alerts: []
EOF
promtool test rules "$tmp/alerts_test.yaml"

echo "--- $dashboard"
python3 -m json.tool "$dashboard" >/dev/null
python3 - "$dashboard" >"$tmp/dashboard_rules.yaml" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d.get("schemaVersion", 0) >= 36, "schemaVersion too old"
assert any(i.get("name") == "DS_PROMETHEUS" for i in d.get("__inputs", [])), "no DS_PROMETHEUS input"
exprs = []
def walk(panels):
    for p in panels:
        walk(p.get("panels", []))
        for t in p.get("targets", []):
            exprs.append((p.get("title", "?"), t["expr"]))
walk(d["panels"])
assert exprs, "the dashboard has no queries"
print("groups:\n  - name: dashboard\n    rules:")
for i, (title, e) in enumerate(exprs):
    e = e.replace("$instance", ".*")  # the template variable, as "All" expands it
    print(f"      - record: dashboard_query_{i}\n        expr: {json.dumps(e)}")
print(f"{len(exprs)} queries", file=sys.stderr)
EOF
promtool check rules "$tmp/dashboard_rules.yaml" >/dev/null
echo "  every query parses"

if [ $# -ge 1 ]; then
  echo "--- promtool check metrics $1"
  if [[ "$1" == http://* || "$1" == https://* ]]; then
    curl -fsS --max-time 10 "$1" >"$tmp/metrics.txt"
  else
    cp "$1" "$tmp/metrics.txt"
  fi
  promtool check metrics <"$tmp/metrics.txt"
  echo "  metrics pass"
fi
echo "all checks passed"
