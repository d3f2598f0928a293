package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/foyer-intercom/foyer/directory"
)

// ringers are the devices a call to 101 of Harbour View must ring.
var ringers = []string{"hall-101", "anna-phone", "anna-tablet", "bram-phone"}

// ringAll connects the door station and every ringer of 101, places a call
// and checks that exactly the ringers ring.
func ringAll(t *testing.T, ts *testServer) (door *client, devices map[string]*client, callID string) {
	t.Helper()
	devices = map[string]*client{}
	for _, n := range ringers {
		devices[n] = ts.connect(t, n)
	}
	notRung := []*client{ts.connect(t, "pending-phone"), ts.connect(t, "carol-phone"), ts.connect(t, "dirk-phone")}
	door = ts.connect(t, "front-door")
	callID, ringing := door.call("101")
	if ringing != len(ringers) {
		t.Fatalf("ringing = %d, want %d", ringing, len(ringers))
	}
	for n, d := range devices {
		r := d.expect("ring")
		if r["call_id"] != callID || r["to"] != "101" || r["preview"] != true {
			t.Fatalf("%s: bad ring %v", n, r)
		}
		from := r["from"].(map[string]any)
		if from["name"] != "front-door" || from["site_name"] != "Harbour View" || from["door_station_id"] != door.welcome["device_id"] {
			t.Fatalf("%s: bad ring.from %v", n, from)
		}
		if r["lifetime_ms"].(float64) != 30000 {
			t.Fatalf("%s: lifetime_ms = %v, want the site's 30 s", n, r["lifetime_ms"])
		}
	}
	for _, c := range notRung {
		c.pingPong() // a ring would have come first
	}
	return door, devices, callID
}

func TestWelcome(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	c := ts.connect(t, "anna-phone")
	w := c.welcome
	if w["kind"] != "app" || w["device_id"] == "" || w["heartbeat_s"].(float64) != 20 || w["resume_token"] == "" {
		t.Fatalf("bad welcome %v", w)
	}
	if sites := w["site_ids"].([]any); len(sites) != 1 {
		t.Fatalf("site_ids = %v, want Harbour View only", sites)
	}
	if ice, ok := w["ice_servers"].([]any); !ok || ice == nil {
		t.Fatalf("ice_servers must be a list, got %v", w["ice_servers"])
	}
}

func TestBearerHeaderAndResumeToken(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	ws := ts.dialRaw(t, map[string][]string{"Authorization": {"Bearer " + ts.tokens["anna-phone"]}})
	c := &client{t: t, ws: ws, name: "anna-phone"}
	c.send(map[string]any{"type": "hello", "version": 1, "ref": 7})
	w := c.expect("welcome")
	if w["ref"].(float64) != 7 {
		t.Fatalf("welcome lost the ref: %v", w)
	}
	_ = ws.Close()

	r := &client{t: t, ws: ts.dialRaw(t, nil), name: "resumed"}
	r.send(map[string]any{"type": "hello", "version": 1, "resume_token": w["resume_token"]})
	if got := r.expect("welcome"); got["device_id"] != w["device_id"] {
		t.Fatalf("resumed as %v, want %v", got["device_id"], w["device_id"])
	}
	again := &client{t: t, ws: ts.dialRaw(t, nil), name: "reused"}
	again.send(map[string]any{"type": "hello", "version": 1, "resume_token": w["resume_token"]})
	again.expectClose(int(CloseUnauthorized)) // single-use
}

// TestAuthorizationScheme: the Bearer scheme in any case; a header that is
// not "Bearer <token>" is refused like a bad token.
func TestAuthorizationScheme(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	tok := ts.tokens["anna-phone"]
	for _, h := range []string{"bearer " + tok, "BEARER  " + tok} {
		c := &client{t: t, ws: ts.dialRaw(t, map[string][]string{"Authorization": {h}}), name: "anna-phone"}
		c.send(map[string]any{"type": "hello", "version": 1})
		c.expect("welcome")
		_ = c.ws.Close()
	}
	for _, h := range []string{tok, "Basic " + tok, "Bearer", "Token " + tok} {
		c := &client{t: t, ws: ts.dialRaw(t, map[string][]string{"Authorization": {h}}), name: "anna-phone"}
		c.send(map[string]any{"type": "hello", "version": 1})
		c.expectClose(int(CloseUnauthorized))
	}
}

func TestFirstAnswerWins(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	win := devices["anna-tablet"]
	win.send(map[string]any{"type": "answer", "call_id": callID, "ref": "a"})
	got := win.expect("answered")
	if got["ref"] != "a" || got["by"].(map[string]any)["device_id"] != win.welcome["device_id"] {
		t.Fatalf("winner got %v", got)
	}
	by := door.expect("answered")["by"].(map[string]any)
	if by["kind"] != "app" || by["name"] != "Jansen" || by["device_id"] != win.welcome["device_id"] {
		t.Fatalf("door station got by=%v", by)
	}
	for n, d := range devices {
		if d == win {
			continue
		}
		if c := d.expect("cancel"); c["reason"] != "answered_elsewhere" || c["call_id"] != callID {
			t.Fatalf("%s: got %v", n, c)
		}
		d.send(map[string]any{"type": "answer", "call_id": callID})
		d.expectError("call_taken")
	}
	win.send(map[string]any{"type": "answer", "call_id": callID, "ref": "again"})
	if got := win.expect("answered"); got["ref"] != "again" {
		t.Fatalf("repeated answer: %v", got)
	}
	// decline everyone after the answer is ignored: the call goes on.
	devices["bram-phone"].send(map[string]any{"type": "decline", "call_id": callID, "scope": "everyone"})
	devices["bram-phone"].pingPong() // the decline is processed before the hangup: same connection, in order
	win.send(map[string]any{"type": "hangup", "call_id": callID})
	for _, c := range []*client{win, door} {
		if e := c.expect("ended"); e["reason"] != "hangup" {
			t.Fatalf("ended %v", e)
		}
	}
}

func TestDeclineScopes(t *testing.T) {
	t.Run("device", func(t *testing.T) {
		ts := newTestServer(t, harborView, Config{})
		door, devices, callID := ringAll(t, ts)
		devices["bram-phone"].send(map[string]any{"type": "decline", "call_id": callID, "scope": "device"})
		devices["bram-phone"].pingPong() // the decline is processed: same connection, in order
		devices["hall-101"].send(map[string]any{"type": "answer", "call_id": callID})
		devices["hall-101"].expect("answered")
		if by := door.expect("answered")["by"].(map[string]any); by["kind"] != "monitor" || by["name"] != "hall-101" {
			t.Fatalf("by = %v", by)
		}
		devices["anna-phone"].expect("cancel")
		devices["bram-phone"].pingPong() // no cancel for a device that declined
	})
	t.Run("none is device", func(t *testing.T) {
		ts := newTestServer(t, harborView, Config{})
		door, devices, callID := ringAll(t, ts)
		devices["bram-phone"].send(map[string]any{"type": "decline", "call_id": callID})
		devices["bram-phone"].pingPong() // the decline is processed
		devices["anna-phone"].send(map[string]any{"type": "answer", "call_id": callID})
		devices["anna-phone"].expect("answered")
		if by := door.expect("answered")["by"].(map[string]any); by["device_id"] != devices["anna-phone"].welcome["device_id"] {
			t.Fatalf("by = %v", by)
		}
	})
	t.Run("everyone", func(t *testing.T) {
		ts := newTestServer(t, harborView, Config{})
		door, devices, callID := ringAll(t, ts)
		devices["bram-phone"].send(map[string]any{"type": "decline", "call_id": callID, "scope": "everyone"})
		if e := door.expect("ended"); e["reason"] != "declined" || e["duration_ms"].(float64) != 0 {
			t.Fatalf("ended %v", e)
		}
		for n, d := range devices {
			if n == "bram-phone" {
				continue
			}
			if c := d.expect("cancel"); c["reason"] != "declined_elsewhere" {
				t.Fatalf("%s: %v", n, c)
			}
		}
		devices["anna-phone"].send(map[string]any{"type": "answer", "call_id": callID})
		devices["anna-phone"].expectError("call_ended")
	})
	t.Run("all devices", func(t *testing.T) {
		ts := newTestServer(t, harborView, Config{})
		door, devices, callID := ringAll(t, ts)
		for _, d := range devices {
			d.send(map[string]any{"type": "decline", "call_id": callID})
		}
		if e := door.expect("ended"); e["reason"] != "declined" {
			t.Fatalf("ended %v", e)
		}
	})
	t.Run("bad scope", func(t *testing.T) {
		ts := newTestServer(t, harborView, Config{})
		_, devices, callID := ringAll(t, ts)
		devices["anna-phone"].send(map[string]any{"type": "decline", "call_id": callID, "scope": "building"})
		devices["anna-phone"].expectError("bad_request")
	})
}

func TestRingTimeout(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, _ := ringAll(t, ts)
	ts.clock.Advance(29 * time.Second)
	door.pingPong() // not ended yet
	ts.clock.Advance(time.Second)
	if e := door.expect("ended"); e["reason"] != "no_answer" {
		t.Fatalf("ended %v", e)
	}
	for n, d := range devices {
		if c := d.expect("cancel"); c["reason"] != "timeout" {
			t.Fatalf("%s: %v", n, c)
		}
	}
}

func TestCallTimeLimit(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	ts.clock.Advance(4 * time.Second)
	devices["anna-phone"].send(map[string]any{"type": "answer", "call_id": callID})
	devices["anna-phone"].expect("answered")
	door.expect("answered")
	ts.clock.Advance(180 * time.Second) // the default call time limit
	for _, c := range []*client{door, devices["anna-phone"]} {
		if e := c.expect("ended"); e["reason"] != "time_limit" || e["duration_ms"].(float64) != 180000 {
			t.Fatalf("ended %v", e)
		}
	}
}

func TestCallerHangupWhileRinging(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	door.send(map[string]any{"type": "hangup", "call_id": callID})
	if e := door.expect("ended"); e["reason"] != "hangup" {
		t.Fatalf("ended %v", e)
	}
	for n, d := range devices {
		if c := d.expect("cancel"); c["reason"] != "caller_hangup" {
			t.Fatalf("%s: %v", n, c)
		}
	}
}

func TestUnavailable(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	ts.connect(t, "eve-phone") // connected, but pending: not ringable
	door := ts.connect(t, "front-door")
	door.send(map[string]any{"type": "call", "to": "103", "ref": "x"})
	e := door.expect("ended")
	if e["reason"] != "unavailable" || e["ref"] != "x" || e["call_id"] == "" {
		t.Fatalf("ended %v", e)
	}
	// An ID whose devices are all offline is unavailable too.
	door.send(map[string]any{"type": "call", "to": 102})
	if e := door.expect("ended"); e["reason"] != "unavailable" {
		t.Fatalf("ended %v", e)
	}
}

func TestLateDeviceIsRung(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	ts.connect(t, "anna-phone")
	door := ts.connect(t, "front-door")
	callID, n := door.call("101")
	if n != 1 {
		t.Fatalf("ringing %d", n)
	}
	ts.clock.Advance(10 * time.Second)
	late := ts.connect(t, "bram-phone")
	r := late.expect("ring")
	if r["call_id"] != callID || r["lifetime_ms"].(float64) != 20000 {
		t.Fatalf("late ring %v", r)
	}
	late.send(map[string]any{"type": "answer", "call_id": callID})
	late.expect("answered")
}

// TestDisconnectIsNoDecline: a ringing device whose connection closes has
// not declined. When every other device declines, the call still rings
// (the phone may be changing networks); it is rung again as it comes back,
// and its answer wins.
func TestDisconnectIsNoDecline(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	h := ts.hubs[ts.nodeOf("front-door")]
	site := ts.siteNamed(t, "Harbour View")
	_ = devices["anna-phone"].ws.Close()
	waitMetric(t, "devices ringing", func() float64 { return float64(h.LiveCallsHere(site)[0].Ringing) }, 3)
	for _, n := range []string{"hall-101", "anna-tablet", "bram-phone"} {
		devices[n].send(map[string]any{"type": "decline", "call_id": callID})
		devices[n].pingPong() // the decline is processed: same connection, in order
	}
	door.pingPong() // an ended declined would have come first
	back := ts.connect(t, "anna-phone")
	if r := back.expect("ring"); r["call_id"] != callID {
		t.Fatalf("ring %v", r)
	}
	back.send(map[string]any{"type": "answer", "call_id": callID})
	back.expect("answered")
	door.expect("answered")
}

func TestPermissions(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	other := ts.connect(t, "other-door")
	// Another site's ID and an ID that does not exist look the same.
	other.send(map[string]any{"type": "call", "to": "101"})
	e1 := other.expectError("not_found")
	other.send(map[string]any{"type": "call", "to": "999"})
	e2 := other.expectError("not_found")
	if e1["message"] != e2["message"] {
		t.Fatalf("other-site and unknown IDs differ: %v vs %v", e1, e2)
	}
	// A device not rung for the call cannot act on it.
	dirk := ts.connect(t, "dirk-phone")
	for _, typ := range []string{"answer", "decline", "hangup", "open_door"} {
		dirk.send(map[string]any{"type": typ, "call_id": callID})
		dirk.expectError("not_found")
	}
	// Apps and monitors do not place calls; door stations do not answer.
	devices["anna-phone"].send(map[string]any{"type": "call", "to": "101"})
	devices["anna-phone"].expectError("forbidden")
	for _, typ := range []string{"answer", "decline", "open_door"} {
		door.send(map[string]any{"type": typ, "call_id": callID})
		door.expectError("forbidden")
	}
	// One call at a time per door station.
	door.send(map[string]any{"type": "call", "to": "102"})
	door.expectError("busy")
}

func TestOpenDoor(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	devices["anna-phone"].send(map[string]any{"type": "open_door", "call_id": callID, "relay": 1})
	devices["anna-phone"].expectError("forbidden") // this site does not open before answering
	devices["bram-phone"].send(map[string]any{"type": "answer", "call_id": callID})
	devices["bram-phone"].expect("answered")
	door.expect("answered")
	devices["bram-phone"].send(map[string]any{"type": "open_door", "call_id": callID, "relay": "2", "ref": "o"})
	u := door.expect("unlock")
	if u["relay"].(float64) != 2 || u["duration_ms"].(float64) != 5000 || u["call_id"] != callID {
		t.Fatalf("unlock %v", u)
	}
	if ok := devices["bram-phone"].expect("door_opened"); ok["ref"] != "o" {
		t.Fatalf("door_opened %v", ok)
	}
	devices["bram-phone"].send(map[string]any{"type": "open_door", "call_id": callID, "relay": 99})
	devices["bram-phone"].expectError("bad_request")
	// Without a relay, the door station drives relay 1 (its door).
	devices["bram-phone"].send(map[string]any{"type": "open_door", "call_id": callID})
	if u := door.expect("unlock"); u["relay"].(float64) != 1 {
		t.Fatalf("unlock without a relay asked: %v, want relay 1", u)
	}
	if ok := devices["bram-phone"].expect("door_opened"); ok["relay"].(float64) != 1 {
		t.Fatalf("door_opened %v, want relay 1", ok)
	}
}

// TestOpenDoorOnlyByWinnerOnceAnswered: once a device has answered, only
// it opens the door: a device that lost the answer, or declined before it,
// gets forbidden, and the door station no unlock.
func TestOpenDoorOnlyByWinnerOnceAnswered(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	bram := devices["bram-phone"]
	bram.send(map[string]any{"type": "decline", "call_id": callID})
	bram.pingPong() // the decline is processed: same connection, in order
	anna := devices["anna-phone"]
	anna.send(map[string]any{"type": "answer", "call_id": callID})
	anna.expect("answered")
	door.expect("answered")
	devices["hall-101"].expect("cancel")
	for _, n := range []string{"hall-101", "bram-phone"} {
		devices[n].send(map[string]any{"type": "open_door", "call_id": callID, "ref": "o"})
		if e := devices[n].expectError("forbidden"); e["ref"] != "o" || !strings.Contains(e["message"].(string), "answered") {
			t.Fatalf("%s: open_door after another device answered: %v", n, e)
		}
	}
	door.pingPong() // an unlock would have come first
}

// TestOpenDoorWhileRinging: on a site that allows it, a ringing device
// opens the door before answering: the door station gets unlock, the
// device door_opened, and the call rings on, for it and the others.
func TestOpenDoorWhileRinging(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	ctx := context.Background()
	site, err := ts.store.SiteByName(ctx, "", "Harbour View")
	if err != nil {
		t.Fatal(err)
	}
	site.Settings.OpenDoorWhileRinging = true
	if err := ts.store.Apply(ctx, directory.PutSite{Site: site}); err != nil {
		t.Fatal(err)
	}
	door, devices, callID := ringAll(t, ts)
	hall := devices["hall-101"]
	hall.send(map[string]any{"type": "open_door", "call_id": callID, "relay": 3, "ref": "o"})
	if u := door.expect("unlock"); u["relay"].(float64) != 3 || u["call_id"] != callID {
		t.Fatalf("unlock %v", u)
	}
	if ok := hall.expect("door_opened"); ok["ref"] != "o" || ok["relay"].(float64) != 3 {
		t.Fatalf("door_opened %v", ok)
	}
	hall.send(map[string]any{"type": "answer", "call_id": callID})
	hall.expect("answered")
	door.expect("answered")
	for _, n := range []string{"anna-phone", "anna-tablet", "bram-phone"} {
		if c := devices[n].expect("cancel"); c["reason"] != "answered_elsewhere" {
			t.Fatalf("%s: %v", n, c)
		}
	}
}

func TestPartyDisconnects(t *testing.T) {
	t.Run("door station while ringing", func(t *testing.T) {
		ts := newTestServer(t, harborView, Config{})
		door, devices, _ := ringAll(t, ts)
		_ = door.ws.Close()
		for n, d := range devices {
			if c := d.expect("cancel"); c["reason"] != "caller_hangup" {
				t.Fatalf("%s: %v", n, c)
			}
		}
	})
	// The winner while talking: TestWinnerGoneEndsAfterRejoinWindow.
}

// TestCallAgainRightAfterEnded: a door station that reads ended (here
// because the device that answered hung up, on another goroutine than the
// door's) and calls again at once is never told it is busy with the call
// that ended.
func TestCallAgainRightAfterEnded(t *testing.T) {
	ts := newTestServer(t, harborView, unlimited())
	door := ts.connect(t, "garage-door")
	phone := ts.connect(t, "dirk-phone")
	rounds := 200
	if testing.Short() {
		rounds = 20
	}
	for i := range rounds {
		door.send(map[string]any{"type": "call", "to": "102"})
		m := door.next()
		for m["type"] == "directory" {
			m = door.next()
		}
		if m["type"] != "calling" {
			t.Fatalf("round %d: the door's call got %v", i, m)
		}
		ring := phone.expect("ring")
		phone.send(map[string]any{"type": "answer", "call_id": ring["call_id"]})
		phone.expect("answered")
		door.expect("answered")
		phone.send(map[string]any{"type": "hangup", "call_id": ring["call_id"]})
		door.expect("ended")
		phone.expect("ended")
	}
}

// TestCallOverIsNotBusy: a call is over (its ended on the way to the
// door station) a moment before the registry forgets it. A door station
// that reads ended and calls again in that moment is not told it is busy
// with the call that ended: the moment is held open here by hand, as
// TestCallAgainRightAfterEnded cannot reach it at will.
func TestCallOverIsNotBusy(t *testing.T) {
	ts := newTestServer(t, harborView, unlimited())
	door := ts.connect(t, "front-door")
	ts.connect(t, "dirk-phone")
	first, _ := door.call("102")
	_, call := ts.ownedCall(t, first)
	call.over.Store(true) // as finishLocked does before it queues the ended
	door.send(map[string]any{"type": "call", "to": "102", "ref": "again"})
	if m := door.expect("calling"); m["call_id"] == first || m["ref"] != "again" {
		t.Fatalf("the call after the one that is over: %v", m)
	}
}

// TestCallLoggedOnceAtItsEnd: at info level a call is one line, written as
// it ends, with how it ended, how many devices rang, who answered when and
// whether the door opened; the answer itself is a debug line.
func TestCallLoggedOnceAtItsEnd(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	bram := devices["bram-phone"]
	bram.send(map[string]any{"type": "answer", "call_id": callID})
	bram.expect("answered")
	door.expect("answered")
	bram.send(map[string]any{"type": "open_door", "call_id": callID})
	door.expect("unlock")
	door.send(map[string]any{"type": "hangup", "call_id": callID})
	ended := door.expect("ended")

	var info, debug []map[string]any
	deadline := time.Now().Add(readTimeout)
	for {
		info, debug = nil, nil
		suiteLogs.mu.Lock()
		logs := suiteLogs.buf.String()
		suiteLogs.mu.Unlock()
		for line := range strings.SplitSeq(logs, "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil || m["call_id"] != callID {
				continue
			}
			switch m["level"] {
			case "INFO":
				info = append(info, m)
			case "DEBUG":
				debug = append(debug, m)
			}
		}
		if len(info) == 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // the line follows the ended frame
	}
	if len(info) != 2 || info[0]["msg"] != "door opened" || info[1]["msg"] != "call ended" {
		t.Fatalf("info lines of the call: %v; want door opened, then call ended", info)
	}
	end := info[1]
	want := map[string]any{
		"reason":          ended["reason"],
		"to":              "101",
		"rung":            float64(len(ringers)),
		"answered_by":     bram.welcome["device_id"],
		"door_opened":     true,
		"door_station_id": door.welcome["device_id"],
	}
	for k, v := range want {
		if end[k] != v {
			t.Errorf("call ended %s = %v, want %v (line %v)", k, end[k], v, end)
		}
	}
	for _, k := range []string{"answered_after_ms", "talk_ms"} {
		if ms, ok := end[k].(float64); !ok || ms < 0 {
			t.Errorf("call ended %s = %v, want a duration in ms", k, end[k])
		}
	}
	answered := false
	for _, m := range debug {
		answered = answered || m["msg"] == "call answered"
	}
	if !answered {
		t.Errorf("no debug line for the answer: %v", debug)
	}
}

// TestCallEndLineAllocs: the end line is written under the call's lock at
// every call's end, so it is built from typed attributes, not boxed
// arguments: 1 allocation (the JSON handler's) where boxing made 10; under
// the race detector 3 where boxing made 23.
func TestCallEndLineAllocs(t *testing.T) {
	h := &Hub{log: slog.New(slog.NewJSONHandler(io.Discard, nil))}
	r := CallRecord{
		CallID: "c_node_abc", Site: "s_site", Door: "d_door", Number: "101", Rung: make([]directory.DeviceID, 7),
		Answered: directory.Device{ID: "d_phone"}, AnsweredAfter: time.Second, Talk: time.Minute, Reason: EndHangup, DoorOpened: true,
	}
	want := 1.0
	if raceEnabled {
		want = 3
	}
	if a := testing.AllocsPerRun(200, func() { h.logEnded(r) }); a > want {
		t.Fatalf("the call's end line made %v allocations; want at most %v", a, want)
	}
}

// TestAnswerBeforeStart: a call is registered (and found by devices that
// connect) a moment before start rings its devices and sets its timers. A
// device connecting in that moment is not rung by ringLate, whose ring it
// could answer before the call has a timer to stop: start rings it with
// the others. The steps are driven by hand, in the order the goroutines
// can take.
func TestAnswerBeforeStart(t *testing.T) {
	ts := newTestServer(t, harborView, unlimited())
	door := ts.connect(t, "front-door")
	dirk := ts.connect(t, "dirk-phone")
	h, call, devices := callByHand(t, ts, door, "102")
	if cur, err := h.register(call); cur != nil || err != nil {
		t.Fatal(cur, err)
	}
	dirkID := directory.DeviceID(dirk.welcome["device_id"].(string))
	kc := h.router.Local(dirkID)
	if kc == nil {
		t.Skip("dirk-phone is on another node: ringLate is per node")
	}
	h.ringLate(kc) // dirk-phone (re)connects now
	if _, err := call.answer(kc.device, kc.id, Party{DeviceID: dirkID}, nil); !errors.Is(err, errNoSuchCall) {
		t.Fatalf("an answer before start: %v; want no such call (not rung yet)", err)
	}
	if n := call.start(devices, nil, time.Now()); n != 1 {
		t.Fatalf("start rang %d devices, want 1", n)
	}
	if r := dirk.expect("ring"); r["call_id"] != string(call.id) {
		t.Fatalf("ring %v", r)
	}
	dirk.send(map[string]any{"type": "answer", "call_id": string(call.id)})
	dirk.expect("answered")
	door.expect("calling")
	door.expect("answered")
}

// callByHand makes, as handleCall does, door's call to number and the
// devices it is to ring, on the door station's node, for tests that drive
// its steps (register, start) by hand.
func callByHand(t *testing.T, ts *testServer, door *client, number string) (*Hub, *Call, []directory.Device) {
	t.Helper()
	h := ts.hubs[ts.nodeOf(door.name)]
	dc := h.router.Local(directory.DeviceID(door.welcome["device_id"].(string)))
	site, devices, err := h.lookup(context.Background(), dc.sites, "", directory.Number(number))
	if err != nil {
		t.Fatal(err)
	}
	call := &Call{id: h.newCallID(), hub: h, door: dc.device, doorConn: dc.id, site: site, number: directory.Number(number),
		created: ts.clock.Now(), legs: map[directory.DeviceID]*leg{}}
	return h, call, devices
}

// TestDoorGoneBeforeCalling: the door station's connection closes while
// its call is being placed, after its leave was handled (no call of its
// was registered yet) and before start rings: start rings the devices,
// finds nobody to send calling to, and ends the call failed at once, the
// rings cancelled caller_hangup, rather than ringing them until the ring
// timeout for a caller who can no longer hear who answers. The steps are
// driven by hand, in the order the goroutines can take.
func TestDoorGoneBeforeCalling(t *testing.T) {
	ts := newTestServer(t, harborView, unlimited())
	door := ts.connect(t, "front-door")
	dirk := ts.connect(t, "dirk-phone")
	h, call, devices := callByHand(t, ts, door, "102")
	doorID := call.door.ID
	_ = door.ws.Close()
	for deadline := time.Now().Add(readTimeout); h.router.Local(doorID) != nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the door station's connection was never detached")
		}
	}
	if cur, err := h.register(call); cur != nil || err != nil {
		t.Fatal(cur, err)
	}
	call.start(devices, nil, time.Now())
	if r := dirk.expect("ring"); r["call_id"] != string(call.id) {
		t.Fatalf("ring %v", r)
	}
	if c := dirk.expect("cancel"); c["call_id"] != string(call.id) || c["reason"] != "caller_hangup" {
		t.Fatalf("cancel %v", c)
	}
	waitMetric(t, "failed calls", counter(h.metrics.outcomes.WithLabelValues("failed")), 1)
}

// TestCallOutcomesCounted: foyer_calls_total counts each call once, by
// what became of it: answered (however it ended then), no_answer (the
// visitor left before anyone answered, or the ring timed out), declined,
// unavailable (nobody to ring). Only calls that rang observe the ring
// latency; the first ring is timed too.
func TestCallOutcomesCounted(t *testing.T) {
	ts := newTestServer(t, harborView, unlimited())
	door := ts.connect(t, "front-door")
	dirk := ts.connect(t, "dirk-phone")
	m := ts.hubs[ts.nodeOf("front-door")].metrics

	place := func() string {
		id, _ := door.call("102")
		dirk.expect("ring")
		return id
	}
	id := place() // answered, then hung up
	dirk.send(map[string]any{"type": "answer", "call_id": id})
	dirk.expect("answered")
	door.expect("answered")
	door.send(map[string]any{"type": "hangup", "call_id": id})
	door.expect("ended")
	dirk.expect("ended")

	id = place() // the visitor leaves
	door.send(map[string]any{"type": "hangup", "call_id": id})
	door.expect("ended")
	dirk.expect("cancel")

	id = place() // declined
	dirk.send(map[string]any{"type": "decline", "call_id": id, "scope": "everyone"})
	door.expect("ended")

	place() // nobody answers in time
	ts.clock.Advance(31 * time.Second)
	door.expect("ended")
	dirk.expect("cancel")

	door.send(map[string]any{"type": "call", "to": "103"}) // nobody to ring
	if e := door.expect("ended"); e["reason"] != "unavailable" {
		t.Fatalf("ended %v", e)
	}

	// A call's end is counted just after its ended is queued: the last
	// one may still be on its way.
	want := map[string]float64{"answered": 1, "no_answer": 2, "declined": 1, "unavailable": 1, "failed": 0}
	counted := func() (wrong []string) {
		for o, n := range want {
			if got := testutil.ToFloat64(m.outcomes.WithLabelValues(o)); got != n {
				wrong = append(wrong, fmt.Sprintf("foyer_calls_total{outcome=%q} = %v, want %v", o, got, n))
			}
		}
		return wrong
	}
	for deadline := time.Now().Add(readTimeout); len(counted()) > 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
	}
	for _, w := range counted() {
		t.Error(w)
	}
	for name, h := range map[string]prometheus.Histogram{"ring": m.ringSeconds, "first ring": m.firstRingSeconds} {
		var out dto.Metric
		if err := h.Write(&out); err != nil {
			t.Fatal(err)
		}
		if n := out.GetHistogram().GetSampleCount(); n != 4 {
			t.Errorf("%s latency observed %d times, want 4 (the calls that rang)", name, n)
		}
	}
}

// TestAnsweredByOwnDisplayName: when an app answers, answered.by.name is
// the display name of that app's user for the ID, not another member's of
// the same ID: the door station shows who took the call.
func TestAnsweredByOwnDisplayName(t *testing.T) {
	ts := newTestServer(t, `
sites:
  - name: Harbour View
    door_stations: [front-door]
    ids:
      - id: "101"
        name: Jansen
        app_users:
          - email: anna@example.com
            display_name: Anna Jansen
            devices: [anna-phone]
          - email: bram@example.com
            display_name: Bram Jansen
            devices: [bram-phone]
`, unlimited())
	door := ts.connect(t, "front-door")
	phones := map[string]*client{"Anna Jansen": ts.connect(t, "anna-phone"), "Bram Jansen": ts.connect(t, "bram-phone")}
	for name, winner := range phones {
		callID, _ := door.call("101")
		for _, p := range phones {
			p.expect("ring")
		}
		winner.send(map[string]any{"type": "answer", "call_id": callID})
		if by := winner.expect("answered")["by"].(map[string]any); by["name"] != name {
			t.Errorf("%s answered: the winner's answered.by.name = %v, want %q", winner.name, by["name"], name)
		}
		if by := door.expect("answered")["by"].(map[string]any); by["name"] != name {
			t.Errorf("%s answered: the door station's answered.by.name = %v, want %q", winner.name, by["name"], name)
		}
		for _, p := range phones {
			if p != winner {
				p.expect("cancel")
			}
		}
		winner.send(map[string]any{"type": "hangup", "call_id": callID})
		door.expect("ended")
		winner.expect("ended")
	}
}
