package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// testDevices: 29 IDs of 7, over 3 sites of 10 IDs; with --per-worker 100
// that takes several workers.
const (
	testDevices = 203
	testDoors   = 30
	testCalls   = 50
	// testRate is the storms' call rate: a call is skipped when its site
	// has no free door station or ID, so at this rate a call cycle may
	// take some 3 s before one is. At 50/s, 0.6 s was enough: on a loaded
	// 2-core machine, cycles up to 0.69 s skipped 1 and 5 of 50 calls.
	testRate = 10
)

// TestScenarios runs every scenario small against a real server and checks
// that the report is whole and sane.
func TestScenarios(t *testing.T) {
	srv := startServer(t, testDevices, testDoors)
	common := []string{"--url", srv.signal, "--metrics", srv.metrics, "--tokens", srv.tokens, "--per-worker", "100"}
	args := func(more ...string) []string { return append(append([]string{}, common...), more...) }

	t.Run("idle", func(t *testing.T) {
		rep := runLoad(t, args("--scenario", "idle", "--devices", fmt.Sprint(testDevices), "--settle", "500ms", "--hold", "2s")...)
		checkClean(t, rep)
		i := rep.Idle
		if i == nil || i.Connections != testDevices {
			t.Fatalf("idle report %+v", i)
		}
		if i.BytesPerConn <= 0 || i.RSSAfterBytes <= i.RSSBeforeBytes {
			t.Errorf("memory per idle connection %.0f B (RSS %.0f → %.0f)", i.BytesPerConn, i.RSSBeforeBytes, i.RSSAfterBytes)
		}
		if i.HoldSeconds < 1.5 || i.CPUSeconds < 0 || i.CPUMicrosPerConnSec < 0 {
			t.Errorf("idle figures: %+v", i)
		}
		// The server parks idle connections in its poller (Linux): the
		// goroutine count, read from its metrics, does not grow with them.
		// It may end a goroutine or two lower than it began (a reader the
		// connect burst started, done since): a fraction of one per
		// connection either way.
		if i.GoroutinesPerConn <= -0.5 || (runtime.GOOS == "linux" && i.GoroutinesPerConn >= 0.5) {
			t.Errorf("%.2f server goroutines per idle connection, want none", i.GoroutinesPerConn)
		}
		if i.ServerConnected != testDevices {
			t.Errorf("the server counts %.0f connected devices, want %d", i.ServerConnected, testDevices)
		}
	})

	t.Run("idle lean", func(t *testing.T) {
		rep := runLoad(t, args("--scenario", "idle", "--client", "lean", "--devices", fmt.Sprint(testDevices), "--settle", "500ms", "--hold", "1s")...)
		checkClean(t, rep)
		if rep.Client != "lean" || rep.Idle == nil || rep.Idle.Connections != testDevices || rep.Idle.ServerConnected != testDevices {
			t.Fatalf("client %q, idle report %+v", rep.Client, rep.Idle)
		}
	})

	for _, k := range []int{1, 3, 7} {
		t.Run(fmt.Sprintf("storm answer %d", k), func(t *testing.T) {
			rep := runLoad(t, args("--scenario", "storm", "--calls", fmt.Sprint(testCalls), "--rate", fmt.Sprint(testRate), "--answer", fmt.Sprint(k))...)
			checkClean(t, rep)
			s := rep.Storm
			if s.Planned != testCalls || s.Placed != testCalls || s.Completed != testCalls || s.Skipped != 0 {
				t.Errorf("calls: planned %d, placed %d, completed %d, skipped %d; want %d each and none skipped",
					s.Planned, s.Placed, s.Completed, s.Skipped, testCalls)
			}
			if len(s.Errors) != 0 {
				t.Errorf("errors: %v", s.Errors)
			}
			if want := testCalls * (k - 1); s.CallTaken != want {
				t.Errorf("call_taken %d, want exactly %d (k−1 per call)", s.CallTaken, want)
			}
			for name, l := range map[string]latency{"call → last ring": s.CallToLastRing, "answer → last cancel": s.AnswerToCancel, "cycle": s.Cycle} {
				if l.N != testCalls || l.P50 <= 0 || l.P99 < l.P50 || l.P999 < l.P99 || l.Max < l.P999 {
					t.Errorf("%s: %+v", name, l)
				}
			}
			if s.CyclesPerSecond <= 0 {
				t.Errorf("cycles/s %.2f", s.CyclesPerSecond)
			}
			if got := rep.Server[`foyer_calls_ended_total{reason="hangup"}`]; got != testCalls {
				t.Errorf("the server ended %.0f calls with hangup, want %d (all: %v)", got, testCalls, rep.Server)
			}
		})
	}

	// The command as a person runs it: the report as a table on stdout and,
	// with --json, as JSON in a file.
	t.Run("table and JSON", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "report.json")
		var stdout, stderr bytes.Buffer
		if code := run(args("--scenario", "storm", "--calls", "10", "--rate", fmt.Sprint(testRate), "--answer", "2",
			"--json", path, "--log-level", "warn"), &stdout, &stderr); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr.String())
		}
		for _, row := range []string{"call → last ring", "answer → last cancel", "full cycles/s", "p999"} {
			if !strings.Contains(stdout.String(), row) {
				t.Errorf("the table has no %q:\n%s", row, stdout.String())
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Storm map[string]json.RawMessage `json:"storm"`
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"call_to_last_ring", "answer_to_last_cancel"} {
			var l map[string]float64
			if err := json.Unmarshal(rep.Storm[k], &l); err != nil {
				t.Fatalf("storm.%s: %v", k, err)
			}
			if l["n"] != 10 || l["p50_ms"] <= 0 || l["p99_ms"] < l["p50_ms"] || l["p999_ms"] < l["p99_ms"] {
				t.Errorf("storm.%s = %v", k, l)
			}
		}
		var cps float64
		var errs map[string]int
		if json.Unmarshal(rep.Storm["cycles_per_second"], &cps) != nil || cps <= 0 || json.Unmarshal(rep.Storm["errors"], &errs) != nil || len(errs) != 0 {
			t.Errorf("storm cycles_per_second %s, errors %s", rep.Storm["cycles_per_second"], rep.Storm["errors"])
		}
	})

	// Media: real PeerConnections in the workers, preview on all 7 ringing
	// devices, one answer, audio both ways, the losers' media closed.
	t.Run("media", func(t *testing.T) { checkMedia(t, args, 3) })

	for _, tc := range []struct {
		resume bool
		client string
	}{{false, "auto"}, {true, "auto"}, {true, "gorilla"}} {
		t.Run(fmt.Sprintf("reconnect resume=%v client=%s", tc.resume, tc.client), func(t *testing.T) {
			rep := runLoad(t, args("--scenario", "reconnect", "--devices", fmt.Sprint(testDevices), "--settle", "500ms",
				fmt.Sprintf("--resume=%v", tc.resume), "--client", tc.client)...)
			checkClean(t, rep)
			if want := map[string]string{"auto": "lean", "gorilla": "gorilla"}[tc.client]; rep.Client != want {
				t.Errorf("reconnect ran on the %q client, want %s", rep.Client, want)
			}
			r := rep.Reconnect
			if r.Wanted != testDevices || r.Back != testDevices || len(r.Errors) != 0 {
				t.Errorf("back %d of %d, errors %v", r.Back, r.Wanted, r.Errors)
			}
			if r.AllBackSeconds <= 0 || r.DropToWelcome.N != testDevices || r.DropToWelcome.P50 <= 0 {
				t.Errorf("reconnect times: all back %.3f s, %+v", r.AllBackSeconds, r.DropToWelcome)
			}
			if r.AllBackSeconds*1000 < r.DropToWelcome.Max*0.999 {
				t.Errorf("all back after %.3f s, but one took %.3f ms", r.AllBackSeconds, r.DropToWelcome.Max)
			}
			if r.ServerConnected != testDevices {
				t.Errorf("the server counts %.0f connected devices after the reconnect, want %d", r.ServerConnected, testDevices)
			}
		})
	}
}

// checkMedia runs the media scenario with calls calls and checks its report:
// preview on all 7 ringing devices, one answer, audio both ways, the
// losers' media closed.
func checkMedia(t *testing.T, args func(...string) []string, calls int) {
	rep := runLoad(t, args("--scenario", "media", "--devices", fmt.Sprint(testDevices), "--doors", fmt.Sprint(testDoors),
		"--calls", fmt.Sprint(calls), "--preview", "500ms", "--hold", "1s")...)
	checkClean(t, rep)
	m := rep.Media
	if m == nil || m.Placed != calls || m.Connected != calls || len(m.Errors) != 0 {
		t.Fatalf("media report %+v", m)
	}
	for name, c := range map[string]struct {
		l latency
		n int
	}{
		"call → preview": {m.Preview, calls * idSize}, "call → all previews": {m.AllPreview, calls},
		"answer → audio": {m.Audio, calls}, "answer → microphone": {m.Mic, calls},
	} {
		if c.l.N != c.n || c.l.P50 <= 0 || c.l.Max < c.l.P50 {
			t.Errorf("%s: %+v, want %d samples", name, c.l, c.n)
		}
	}
	// 1.5 s of 100 video packets a second reach the winner; audio and
	// microphone run 1 s at 50 a second. Loopback loses nothing to the
	// network; allow 1 % for a packet in flight when a peer closes.
	n := int64(calls)
	for name, least := range map[string]int64{"video to the winner": n * 100, "audio to the winner": n * 30,
		"microphone to the door": n * 30, "video previews (losers)": n * (idSize - 1) * 20} {
		s := m.Streams[name]
		if s.Received < least || s.loss() > 1 {
			t.Errorf("%s: %d of %d packets (loss %.2f %%), want at least %d and under 1 %% lost", name, s.Received, s.Expected, s.loss(), least)
		}
	}
	if m.Losers != calls*(idSize-1) || m.LosersClosed != m.Losers || m.LosersHeard != 0 {
		t.Errorf("losers %d, their media closed for %d, heard the door %d", m.Losers, m.LosersClosed, m.LosersHeard)
	}
	if c := rep.ServerCPU; c == nil || c.Work < float64(m.Streams["video to the winner"].Received) || c.CPUSeconds <= 0 {
		t.Errorf("server CPU %+v: the server must have forwarded at least what the winners received", c)
	}
}

func TestOnlyLoopback(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"ws://127.0.0.1:8080/v1/signal", true},
		{"ws://127.9.8.7:1/v1/signal", true},
		{"ws://localhost:8080/v1/signal", true},
		{"ws://10.0.0.1:8080/v1/signal", false},
		{"ws://example.com/v1/signal", false},
		{"ws://[::1]:8080/v1/signal", false},
		{"wss://127.0.0.1/v1/signal", false},
	} {
		if err := loopbackURL(tc.url, "ws"); (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.url, err, tc.ok)
		}
	}
	if _, err := parseOptions([]string{"--tokens", "x", "--url", "ws://192.168.1.1:8080/v1/signal"}, io.Discard); err == nil {
		t.Error("a non-loopback --url was accepted")
	}
}

// TestScenariosAcrossNodes drives two nodes that share a real Redis: the
// tool takes the nodes in turn for its connections, so every ID has
// devices on both and calls cross between them. The report adds up both
// nodes' metrics.
func TestScenariosAcrossNodes(t *testing.T) {
	nodes := startCluster(t, 2, testDevices, testDoors)
	var signal, metrics []string
	for _, n := range nodes {
		signal, metrics = append(signal, n.signal), append(metrics, n.metrics)
	}
	common := []string{"--url", strings.Join(signal, ","), "--metrics", strings.Join(metrics, ","),
		"--tokens", nodes[0].tokens, "--per-worker", "100"}
	args := func(more ...string) []string { return append(append([]string{}, common...), more...) }
	count := func(t *testing.T, n *testServer, metric, typ string) float64 {
		t.Helper()
		s, err := scrape(t.Context(), n.metrics)
		if err != nil {
			t.Fatal(err)
		}
		return s.series[metric+`{type="`+typ+`"}`]
	}

	t.Run("idle", func(t *testing.T) {
		rep := runLoad(t, args("--scenario", "idle", "--devices", fmt.Sprint(testDevices), "--settle", "500ms", "--hold", "1s")...)
		checkClean(t, rep)
		if i := rep.Idle; i == nil || i.Connections != testDevices || i.ServerConnected != testDevices {
			t.Fatalf("idle report %+v: want %d connections, all counted by the two nodes together", i, testDevices)
		}
		for _, n := range nodes {
			// Half of the devices each, give or take one; a welcome each.
			if got := count(t, n, "foyer_signaling_messages_sent_total", "welcome"); got < testDevices/2 || got > testDevices/2+1 {
				t.Errorf("%s sent %.0f welcomes, want half of %d", n.signal, got, testDevices)
			}
		}
	})

	t.Run("storm answer 7", func(t *testing.T) {
		const k = idSize
		before := make([]float64, len(nodes))
		for i, n := range nodes {
			before[i] = count(t, n, "foyer_signaling_messages_received_total", "answer")
		}
		rep := runLoad(t, args("--scenario", "storm", "--calls", fmt.Sprint(testCalls), "--rate", fmt.Sprint(testRate), "--answer", fmt.Sprint(k))...)
		checkClean(t, rep)
		s := rep.Storm
		if s.Placed != testCalls || s.Completed != testCalls || len(s.Errors) != 0 {
			t.Errorf("calls: placed %d, completed %d of %d, errors %v", s.Placed, s.Completed, testCalls, s.Errors)
		}
		if want := testCalls * (k - 1); s.CallTaken != want {
			t.Errorf("call_taken %d, want exactly %d (k−1 per call): one winner across both nodes", s.CallTaken, want)
		}
		if l := s.CallToLastRing; l.N != testCalls || l.P50 <= 0 || l.Max < l.P50 {
			t.Errorf("call → last ring %+v", l)
		}
		if got := rep.Server[`foyer_calls_ended_total{reason="hangup"}`]; got != testCalls {
			t.Errorf("the nodes ended %.0f calls with hangup together, want %d (all: %v)", got, testCalls, rep.Server)
		}
		for i, n := range nodes {
			// Every call has devices on both nodes, and all 7 answer.
			if got := count(t, n, "foyer_signaling_messages_received_total", "answer") - before[i]; got < testCalls*3 {
				t.Errorf("%s received %.0f answers, want at least %d (3 or 4 of each call's 7)", n.signal, got, testCalls*3)
			}
		}
	})

	t.Run("media", func(t *testing.T) { checkMedia(t, args, 2) })

	t.Run("reconnect", func(t *testing.T) {
		rep := runLoad(t, args("--scenario", "reconnect", "--devices", fmt.Sprint(testDevices), "--settle", "500ms")...)
		checkClean(t, rep)
		if r := rep.Reconnect; r.Back != testDevices || len(r.Errors) != 0 || r.ServerConnected != testDevices {
			t.Errorf("back %d of %d, errors %v, the nodes count %.0f connected", r.Back, testDevices, r.Errors, r.ServerConnected)
		}
	})
}

func TestSeveralURLs(t *testing.T) {
	o, err := parseOptions([]string{"--tokens", "x", "--url", "ws://127.0.0.1:8080/v1/signal, ws://127.0.0.2:8080/v1/signal",
		"--metrics", "http://127.0.0.1:8080/metrics,http://127.0.0.2:8080/metrics"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.signalURLs) != 2 || o.signalURLs[1] != "ws://127.0.0.2:8080/v1/signal" || len(o.metricsURLs) != 2 {
		t.Errorf("nodes %q, metrics %q", o.signalURLs, o.metricsURLs)
	}
	for _, bad := range [][]string{
		{"--url", "ws://127.0.0.1:8080/v1/signal,ws://10.0.0.1:8080/v1/signal"},  // one node off loopback
		{"--url", "ws://127.0.0.1:8080/v1/signal,ws://127.0.0.1:8080/v1/signal"}, // the same node twice
		{"--url", " , "}, // no node
		{"--metrics", "http://127.0.0.1:8080/metrics,http://127.0.0.1:8080/metrics"}, // counted twice
	} {
		if _, err := parseOptions(append([]string{"--tokens", "x"}, bad...), io.Discard); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
	if o, err := parseOptions([]string{"--tokens", "x", "--metrics", ""}, io.Discard); err != nil || len(o.metricsURLs) != 0 {
		t.Errorf("--metrics \"\": %v, %q; want no scraping", err, o.metricsURLs)
	}
}

// TestClientOption: auto takes the lean client for reconnect only (where
// the system has it), lean
// is refused where calls are placed, and an unknown client is refused.
func TestClientOption(t *testing.T) {
	reconnect := "lean"
	if !leanAvailable {
		reconnect = "gorilla"
	}
	for scenario, want := range map[string]string{"idle": "gorilla", "reconnect": reconnect, "storm": "gorilla", "media": "gorilla"} {
		o, err := parseOptions([]string{"--tokens", "x", "--scenario", scenario}, io.Discard)
		if err != nil || o.client != want {
			t.Errorf("%s: client %q, err %v; want %q", scenario, o.client, err, want)
		}
	}
	for _, bad := range [][]string{{"--scenario", "storm", "--client", "lean"}, {"--scenario", "media", "--client", "lean"}, {"--client", "fast"}} {
		if _, err := parseOptions(append([]string{"--tokens", "x"}, bad...), io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if o, err := parseOptions([]string{"--tokens", "x", "--scenario", "idle", "--client", "lean"}, io.Discard); err != nil || o.client != "lean" {
		t.Errorf("idle --client lean: %v", err)
	}
}

// TestBadNumbers: a count, rate or duration out of its range is refused
// with an error naming the flag, before anything connects.
func TestBadNumbers(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--answer", "0"}, "--answer"},
		{[]string{"--answer", "8"}, "--answer"},
		{[]string{"--rate", "0"}, "--rate"},
		{[]string{"--rate", "-5"}, "--rate"},
		{[]string{"--scenario", "storm", "--duration", "0s"}, "--duration"},
		{[]string{"--scenario", "storm", "--duration", "-1s"}, "--duration"},
		{[]string{"--cycle-timeout", "0s"}, "--cycle-timeout"},
		{[]string{"--dial-timeout", "-1s"}, "--dial-timeout"},
		{[]string{"--per-worker", "0"}, "--per-worker"},
		{[]string{"--dial-concurrency", "0"}, "--dial-concurrency"},
		{[]string{"--devices", "-7"}, "negative"},
		{[]string{"--hold", "-1s"}, "--hold"},
	} {
		_, err := parseOptions(append([]string{"--tokens", "x"}, tc.args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%v: err %v, want one naming %s", tc.args, err, tc.flag)
		}
	}
	for _, ok := range [][]string{
		{"--scenario", "storm", "--duration", "0s", "--calls", "50"}, // --calls sets the storm's length
		{"--scenario", "media", "--duration", "0s"},                  // media holds its calls for --hold
	} {
		if _, err := parseOptions(append([]string{"--tokens", "x"}, ok...), io.Discard); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
}

// TestStormSummary merges three workers' storm results, worked by hand:
// counts and errors are summed, the samples pooled, and cycles per second
// are all the completed cycles over the span from the earliest first call
// (the second worker's, at 1 s) to the latest last cycle (the first
// worker's, at 9 s): 15 cycles over 8 s, 1.875 per second. The third
// worker placed nothing and has no times.
func TestStormSummary(t *testing.T) {
	o := &options{rate: 40, answer: 3}
	replies := []reply{
		{Storm: &stormResult{Planned: 10, Placed: 9, Completed: 8, Skipped: 1, CallTaken: 16, Errors: map[string]int{"ended: timeout": 1},
			RingNS: []int64{1e6, 2e6}, CancelNS: []int64{5e6, 6e6}, CycleNS: []int64{10e6, 20e6}, LagNS: []int64{0, 1e6},
			FirstCallUnix: 3e9, LastDoneUnixNS: 9e9}},
		{Storm: &stormResult{Planned: 10, Placed: 8, Completed: 7, Skipped: 2, CallTaken: 14, Errors: map[string]int{"ended: timeout": 2, "cancel: busy": 1},
			RingNS: []int64{3e6}, CancelNS: []int64{7e6}, CycleNS: []int64{30e6}, LagNS: []int64{2e6},
			FirstCallUnix: 1e9, LastDoneUnixNS: 6e9}},
		{Storm: &stormResult{Planned: 0, Errors: map[string]int{}}},
	}
	want := &stormReport{
		Rate: 40, Answer: 3, Planned: 20, Placed: 17, Completed: 15, Skipped: 3, CallTaken: 30,
		Seconds: 8, CyclesPerSecond: 1.875,
		// Of 3 samples the p50 is the 2nd (rank ⌈1.5⌉), p99 and p999 the 3rd.
		CallToLastRing: latency{N: 3, P50: 2, P99: 3, P999: 3, Max: 3, Mean: 2},
		AnswerToCancel: latency{N: 3, P50: 6, P99: 7, P999: 7, Max: 7, Mean: 6},
		Cycle:          latency{N: 3, P50: 20, P99: 30, P999: 30, Max: 30, Mean: 20},
		ScheduleLag:    latency{N: 3, P50: 1, P99: 2, P999: 2, Max: 2, Mean: 1},
		Errors:         map[string]int{"ended: timeout": 3, "cancel: busy": 1},
	}
	if got := stormSummary(o, replies); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// TestConnectSummary merges two workers' connect results: 198 of 200
// connected over the span from the earliest start (1 s) to the latest end
// (4 s), 66 a second; the errors summed, the handshakes pooled.
func TestConnectSummary(t *testing.T) {
	replies := []reply{
		{Connect: &connectResult{Wanted: 100, Connected: 98, Errors: map[string]int{"dial: refused": 2},
			HandshakeNS: []int64{1e6, 3e6}, StartUnixNS: 2e9, EndUnixNS: 4e9}},
		{Connect: &connectResult{Wanted: 100, Connected: 100, Errors: map[string]int{"dial: refused": 1},
			HandshakeNS: []int64{2e6}, StartUnixNS: 1e9, EndUnixNS: 3e9}},
	}
	want := &connectReport{Wanted: 200, Connected: 198, Seconds: 3, PerSecond: 66,
		Handshake: latency{N: 3, P50: 2, P99: 3, P999: 3, Max: 3, Mean: 2}, Errors: map[string]int{"dial: refused": 3}}
	if got := connectSummary(replies); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// TestIdleSummary works the idle figures out by hand for 1,000
// connections: RSS 10 MB before connecting → 30 MB after the hold is
// 20,000 B each (from before connecting, not from the mid scrape at 29 MB);
// heap 4 → 12 MB is 8,000 B each; 20 → 22 goroutines 0.002 each; 0.5 CPU-s
// over the 4 s hold (mid → after, not before → after) is 0.5 / 1,000 / 4
// s = 125 µs per connection per second.
func TestIdleSummary(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	metrics := func(at time.Time, rss, heap, goroutines, cpu, connected float64) *sample {
		return &sample{at: at, sums: map[string]float64{metricRSS: rss, metricHeap: heap, metricGoroutine: goroutines,
			metricCPU: cpu, metricConnected: connected}}
	}
	before := metrics(t0, 10e6, 4e6, 20, 1, 0)
	mid := metrics(t0.Add(time.Second), 29e6, 11e6, 22, 2.5, 1000)
	after := metrics(t0.Add(5*time.Second), 30e6, 12e6, 22, 3, 1000)
	got := idleSummary(before, mid, after, 1000)
	want := &idleReport{Connections: 1000, RSSBeforeBytes: 10e6, RSSAfterBytes: 30e6, BytesPerConn: 20000,
		HeapBytesPerConn: 8000, GoroutinesPerConn: 0.002, HoldSeconds: 4, CPUSeconds: 0.5, CPUMicrosPerConnSec: 125,
		ServerConnected: 1000}
	g, w := reflect.ValueOf(*got), reflect.ValueOf(*want)
	for i := range g.NumField() {
		a, b := g.Field(i).Convert(reflect.TypeFor[float64]()).Float(), w.Field(i).Convert(reflect.TypeFor[float64]()).Float()
		if math.Abs(a-b) > 1e-9*math.Abs(b) {
			t.Errorf("%s = %v, want %v", g.Type().Field(i).Name, a, b)
		}
	}
}

// TestServerCPU: 2 CPU-s over 10 s of wall clock for 500 cycles is 250
// cycles per CPU-second (not per second of wall clock); no scrape, no
// report; no CPU time, no rate.
func TestServerCPU(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	before := &sample{at: t0, sums: map[string]float64{metricCPU: 1}}
	after := &sample{at: t0.Add(10 * time.Second), sums: map[string]float64{metricCPU: 3}}
	want := &cpuReport{Seconds: 10, CPUSeconds: 2, Work: 500, Unit: "full cycles", WorkPerCPUSecond: 250}
	if got := serverCPU(before, after, 500, "full cycles"); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if got := serverCPU(before, before, 500, "full cycles"); got.WorkPerCPUSecond != 0 {
		t.Errorf("no CPU time: %+v", got)
	}
	if got := serverCPU(nil, after, 500, "full cycles"); got != nil {
		t.Errorf("without a first scrape: %+v", got)
	}
}

// TestStormTable: each figure of the storm's rows in the table is the
// report's own, in its column: p50, p99 and p999 differ here, and the
// call_taken expected is k−1 per completed cycle (15 × 2 = 30).
func TestStormTable(t *testing.T) {
	r := &report{Scenario: "storm", Storm: &stormReport{Rate: 40, Answer: 3, Planned: 20, Placed: 17, Completed: 15, Skipped: 3,
		CallTaken: 29, Seconds: 8, CyclesPerSecond: 1.875,
		CallToLastRing: latency{N: 15, P50: 1.5, P99: 2.25, P999: 3.125, Max: 4},
		AnswerToCancel: latency{N: 15, P50: 0.5, P99: 0.75, P999: 0.875, Max: 1}}}
	var b bytes.Buffer
	r.writeTable(&b)
	for label, cells := range map[string][]string{
		"call → last ring":     {"p50 1.500 ms", "p99 2.250 ms", "p999 3.125 ms", "max 4.000 ms", "(n=15)"},
		"answer → last cancel": {"p50 0.500 ms", "p99 0.750 ms", "p999 0.875 ms", "max 1.000 ms", "(n=15)"},
		"answering at once":    {"3 of 7; call_taken seen 29 (want 30)"},
		"full cycles/s":        {"1.9 over 8.00 s"},
		"calls":                {"20 planned at 40/s, 17 placed, 15 full cycles, 3 skipped"},
	} {
		line := ""
		for l := range strings.SplitSeq(b.String(), "\n") {
			if strings.HasPrefix(l, label+" ") {
				line = l
			}
		}
		for _, c := range cells {
			if !strings.Contains(line, c) {
				t.Errorf("row %q = %q, want %q in it", label, line, c)
			}
		}
	}
}

// TestCycleTimes drives one storm cycle by hand, with the times its
// messages were read made up: the call sent at t0, the 7 rings read at
// t0 + 1..7 ms, the first answer sent at t0 + 10 ms, the 6 cancels read at
// t0 + 11..16 ms, ended at t0 + 50 ms. Call → last ring is the 7th ring's
// 7 ms (not the first's 1 ms), answer → last cancel the 6th cancel's 6 ms,
// the cycle 50 ms. The devices' and the door's writes go to a stand-in
// server that reads them.
func TestCycleTimes(t *testing.T) {
	read := make(chan string, 64) // what the stand-in server read, by type
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			var m inbound
			if err := ws.ReadJSON(&m); err != nil {
				return
			}
			read <- m.Type
		}
	}))
	t.Cleanup(srv.Close)
	dial := func() *client {
		ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		return &client{ws: ws}
	}
	waitRead := func(typ string, n int) {
		t.Helper()
		for range n {
			if got := <-read; got != typ {
				t.Fatalf("the server read %s, want %s", got, typ)
			}
		}
	}

	e := &stormEngine{job: stormJob{Answer: 2}, timeout: time.Minute, doors: map[*client]*doorSlot{}, res: stormResult{Errors: map[string]int{}}}
	door := &doorSlot{c: dial()}
	id := &idGroup{number: "100"}
	for i := range id.devices {
		id.devices[i] = dial()
		id.devices[i].id = id
	}
	e.wg.Add(1)
	cyc := newCycle(e, 0, door, id)
	door.cur, id.cur = cyc, cyc
	cyc.start()
	waitRead("call", 1)
	t0 := time.Unix(1_000_000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	cyc.mu.Lock()
	cyc.sent = t0
	cyc.mu.Unlock()

	cyc.doorMsg(&inbound{Type: "calling", CallID: "c1", Ringing: idSize}, ms(0))
	for i, d := range id.devices {
		cyc.deviceMsg(d, &inbound{Type: "ring", CallID: "c1"}, ms(i+1))
	}
	waitRead("answer", 2) // the two answerers, once all 7 rang
	cyc.mu.Lock()
	cyc.answerSent = ms(10)
	cyc.mu.Unlock()
	winner, loser := cyc.answerers[0], cyc.answerers[1]
	cyc.doorMsg(&inbound{Type: "answered", CallID: "c1"}, ms(10))
	cyc.deviceMsg(winner, &inbound{Type: "answered", CallID: "c1"}, ms(10))
	cyc.deviceMsg(loser, &inbound{Type: "error", CallID: "c1", Code: "call_taken"}, ms(10))
	n := 0
	for _, d := range id.devices {
		if d != winner {
			n++
			cyc.deviceMsg(d, &inbound{Type: "cancel", CallID: "c1", Reason: "answered_elsewhere"}, ms(10+n))
		}
	}
	waitRead("hangup", 1)
	cyc.doorMsg(&inbound{Type: "ended", CallID: "c1", Reason: "hangup"}, ms(50))
	cyc.deviceMsg(winner, &inbound{Type: "ended", CallID: "c1", Reason: "hangup"}, ms(50))
	e.wg.Wait()

	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.res
	if r.Completed != 1 || r.CallTaken != 1 || len(r.Errors) != 0 {
		t.Errorf("completed %d, call_taken %d, errors %v; want 1, 1 and none", r.Completed, r.CallTaken, r.Errors)
	}
	for name, c := range map[string]struct{ got, want []int64 }{
		"call → last ring": {r.RingNS, []int64{7e6}}, "answer → last cancel": {r.CancelNS, []int64{6e6}}, "cycle": {r.CycleNS, []int64{50e6}},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: %v ns, want %v", name, c.got, c.want)
		}
	}
}
