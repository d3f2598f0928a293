package signaling

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMessageRateLimit floods one connection: beyond the burst, messages
// are answered rate_limited and not processed; the connection stays, and
// another connection is served as usual.
func TestMessageRateLimit(t *testing.T) {
	ts := newTestServer(t, harborView, Config{MessageRate: 1, MessageBurst: 10})
	flood := ts.connect(t, "anna-phone")
	other := ts.connect(t, "bram-phone")
	for range 30 {
		if err := flood.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
	}
	pongs, limited := 0, 0
	for pongs+limited < 30 {
		m := flood.next()
		switch {
		case m["type"] == "pong":
			pongs++
		case m["type"] == "error" && m["code"] == "rate_limited":
			limited++
		default:
			t.Fatalf("unexpected %v", m)
		}
	}
	if pongs < 10 || pongs > 12 || limited < 18 {
		t.Fatalf("%d answered, %d rate_limited; want the burst of 10 (+ refill) answered, the rest limited", pongs, limited)
	}
	// Counted before each reply was queued.
	if n := testutil.ToFloat64(ts.hubs[ts.nodeOf("anna-phone")].metrics.rateLimited.WithLabelValues("message")); n != float64(limited) {
		t.Errorf("foyer_signaling_rate_limited_total{what=\"message\"} = %v, want %d", n, limited)
	}
	other.pingPong()
}

// TestCallRateLimit: a door station placing calls faster than its limit
// gets rate_limited; the limit refills with time. The rate is low enough
// that the four calls never take as long as one refill: at 20/s (50 ms),
// three calls on a loaded three-node CI machine sometimes did, and the
// fourth was let through.
func TestCallRateLimit(t *testing.T) {
	ts := newTestServer(t, harborView, Config{CallRate: 2, CallBurst: 3})
	door := ts.connect(t, "front-door")
	for i := range 3 {
		door.send(map[string]any{"type": "call", "to": "102"}) // nobody connected: ends unavailable at once
		if e := door.expect("ended"); e["reason"] != "unavailable" {
			t.Fatalf("call %d: %v", i, e)
		}
	}
	door.send(map[string]any{"type": "call", "to": "102"})
	door.expectError("rate_limited")
	if n := testutil.ToFloat64(ts.hubs[ts.nodeOf("front-door")].metrics.rateLimited.WithLabelValues("call")); n != 1 {
		t.Errorf("foyer_signaling_rate_limited_total{what=\"call\"} = %v, want 1", n)
	}
	time.Sleep(500 * time.Millisecond) // the limiter refills in real time (2/s)
	door.send(map[string]any{"type": "call", "to": "102"})
	door.expect("ended")
}

// TestRefusedCallsCountTowardCallLimit: every call counts toward a door
// station's call limit, refused ones too (a malformed "to"), so that a door
// station cannot make the server do work for calls faster than the limit by
// sending bad ones between good ones.
func TestRefusedCallsCountTowardCallLimit(t *testing.T) {
	ts := newTestServer(t, harborView, Config{CallRate: 0.001, CallBurst: 2}) // no refill within the test
	door := ts.connect(t, "front-door")
	door.send(map[string]any{"type": "call", "to": "12a"})
	door.expectError("bad_request")
	door.send(map[string]any{"type": "call", "to": "1234567"})
	door.expectError("bad_request")
	door.send(map[string]any{"type": "call", "to": "102"})
	door.expectError("rate_limited")
}
