package main

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/internal/testtool"
)

// TestMetricsPassPromtool runs a node, places a call so that every kind of
// metric has samples, and checks /metrics with promtool (Debian's
// prometheus package): valid exposition, and the names an operator's
// dashboards rely on are there.
func TestMetricsPassPromtool(t *testing.T) {
	promtool := testtool.Require(t, "promtool", "prometheus")
	bin := foyerBin(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(siteFile), 0o600); err != nil {
		t.Fatal(err)
	}
	seed := exec.Command(bin, "seed", "site.yaml")
	seed.Dir = dir
	out, err := seed.Output()
	if err != nil {
		t.Fatal(err)
	}
	tokens := parseTokens(t, out)
	addr := freeAddr(t)
	serve := exec.Command(bin, "serve", "--listen", addr)
	serve.Dir = dir
	serve.Env = append(os.Environ(), "FOYER_MEDIA_LOOPBACK_ONLY=true")
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = serve.Process.Kill(); _ = serve.Wait() })
	waitReady(t, "http://"+addr+"/readyz")
	n := &node{addr: addr}
	phone := n.dial(t, tokens["anna-phone"])
	door := n.dial(t, tokens["front-door"])
	_ = door.WriteJSON(map[string]any{"type": "call", "to": "101"})
	readType(t, door, "calling")
	ring := readType(t, phone, "ring")
	_ = phone.WriteJSON(map[string]any{"type": "answer", "call_id": ring["call_id"]})
	readType(t, door, "answered")
	_ = door.WriteJSON(map[string]any{"type": "hangup", "call_id": ring["call_id"]})
	readType(t, door, "ended")
	resp, err := http.Get("http://" + addr + "/v1/sites")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("an API request without a session: %d, want 401", resp.StatusCode)
	}

	want := []string{
		"foyer_calls_ended_total{reason=\"hangup\"} 1",
		"foyer_calls_answered_total{kind=\"app\"} 1",
		"foyer_calls_ring_seconds_count 1",
		"foyer_calls_first_ring_seconds_count 1",
		"foyer_calls_total{outcome=\"answered\"} 1",
		"foyer_calls_cancel_seconds_count 1",
		"foyer_signaling_connected_devices{kind=\"door_station\"} 1",
		"foyer_signaling_messages_sent_total{type=\"ring\"} 1",
		"foyer_media_sessions_total 1",
		"foyer_calls_active 0",
		"foyer_log_entries_dropped_total 0",
		"foyer_api_requests_total{code=\"401\",route=\"GET /v1/sites\"} 1",
		"foyer_api_request_duration_seconds_count{route=\"GET /v1/sites\"} 1",
		"foyer_build_info{go_version=\"" + runtime.Version() + "\",version=\"dev\"} 1",
	}
	missing := func(body []byte) (lacks []string) {
		for _, name := range want {
			if !strings.Contains(string(body), name) {
				lacks = append(lacks, name)
			}
		}
		return lacks
	}
	// The call's end is counted (ended, outcome, active) just after its
	// ended is queued, and the answer's cancel latency on the answering
	// device's goroutine: a scrape right after the door read ended can
	// come first (a loaded CI machine's did).
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(missing(body)) == 0 || time.Now().After(deadline) {
			break
		}
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if msg, err := check.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, msg)
	}
	for _, name := range missing(body) {
		t.Errorf("/metrics lacks %q", name)
	}
}

// TestMetricsOwnListener: with metrics.listen, /metrics is served there and
// not on the public listener, and metrics.pprof adds Go's profiler there.
func TestMetricsOwnListener(t *testing.T) {
	metricsAddr := freeAddr(t)
	addr := serveQuiet(t, "FOYER_MEDIA_LOOPBACK_ONLY=true", "FOYER_METRICS_LISTEN="+metricsAddr, "FOYER_METRICS_PPROF=true")
	get := func(url string) (int, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("http://" + metricsAddr + "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "foyer_calls_active 0") {
		t.Fatalf("metrics listener /metrics: %d\n%.300s", code, body)
	}
	// A node that has connected no device and answered no call says so at
	// 0: the alerts on connected devices and on the answer rate sum these,
	// and an absent series would leave them silent.
	for _, zero := range []string{
		`foyer_signaling_connected_devices{kind="app"} 0`,
		`foyer_signaling_connected_devices{kind="door_station"} 0`,
		`foyer_signaling_connected_devices{kind="monitor"} 0`,
		`foyer_calls_answered_total{kind="app"} 0`,
		`foyer_calls_answered_total{kind="monitor"} 0`,
		`foyer_calls_ended_total{reason="no_answer"} 0`,
		`foyer_calls_ended_total{reason="failed"} 0`,
		`foyer_calls_total{outcome="answered"} 0`,
		`foyer_calls_total{outcome="no_answer"} 0`,
	} {
		if !strings.Contains(body, zero) {
			t.Errorf("a fresh node's /metrics lacks %s", zero)
		}
	}
	if code, body := get("http://" + addr + "/metrics"); code == http.StatusOK || strings.Contains(body, "foyer_calls_active") {
		t.Fatalf("public listener still serves /metrics: %d\n%.300s", code, body)
	}
	if code, body := get("http://" + metricsAddr + "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("pprof on the metrics listener: %d\n%.300s", code, body)
	}
	if code, _ := get("http://" + addr + "/debug/pprof/"); code == http.StatusOK {
		t.Fatal("the public listener serves the profiler")
	}
}

// TestPprofOnlyWhenAsked: with metrics.listen set and metrics.pprof left
// off, the metrics listener serves /metrics and not Go's profiler.
func TestPprofOnlyWhenAsked(t *testing.T) {
	metrics := freeAddr(t)
	serveQuiet(t, "FOYER_METRICS_LISTEN="+metrics)
	for path, want := range map[string]int{"/metrics": http.StatusOK, "/debug/pprof/": http.StatusNotFound, "/debug/pprof/goroutine": http.StatusNotFound} {
		resp, err := http.Get("http://" + metrics + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s on the metrics listener with metrics.pprof off: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
