package main

import (
	"fmt"
	"io"
	"runtime"
	"testing"
)

// testDevices: 29 IDs of 7, over 3 sites of 10 IDs; with --per-worker 100
// that takes several workers.
const (
	testDevices = 203
	testDoors   = 30
	testCalls   = 50
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

	for _, k := range []int{1, 3, 7} {
		t.Run(fmt.Sprintf("storm answer %d", k), func(t *testing.T) {
			rep := runLoad(t, args("--scenario", "storm", "--calls", fmt.Sprint(testCalls), "--rate", "50", "--answer", fmt.Sprint(k))...)
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

	// Media: real PeerConnections in the workers, preview on all 7 ringing
	// devices, one answer, audio both ways, the losers' media closed.
	t.Run("media", func(t *testing.T) {
		const calls = 3
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
		for name, least := range map[string]int64{"video to the winner": calls * 100, "audio to the winner": calls * 30,
			"microphone to the door": calls * 30, "video previews (losers)": calls * (idSize - 1) * 20} {
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
	})

	for _, resume := range []bool{false, true} {
		t.Run(fmt.Sprintf("reconnect resume=%v", resume), func(t *testing.T) {
			rep := runLoad(t, args("--scenario", "reconnect", "--devices", fmt.Sprint(testDevices), "--settle", "500ms",
				fmt.Sprintf("--resume=%v", resume))...)
			checkClean(t, rep)
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
