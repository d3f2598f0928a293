package signaling

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"weak"

	"github.com/foyer-intercom/foyer/directory"
)

// TestDeclinedCannotAnswer: a device that declined (or hung up while
// ringing, which is a decline) may not win the call afterwards, not even
// from a new connection; another device still can.
func TestDeclinedCannotAnswer(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	bram := devices["bram-phone"]
	bram.send(map[string]any{"type": "decline", "call_id": callID, "scope": "device"})
	bram.send(map[string]any{"type": "answer", "call_id": callID, "ref": "a1"})
	if e := bram.expectError("forbidden"); !strings.Contains(e["message"].(string), "declined") || e["ref"] != "a1" || e["call_id"] != callID {
		t.Fatalf("answer after declining: %v", e)
	}
	hall := devices["hall-101"]
	hall.send(map[string]any{"type": "hangup", "call_id": callID})
	hall.send(map[string]any{"type": "answer", "call_id": callID})
	hall.expectError("forbidden")
	bram = ts.connect(t, "bram-phone") // a declined device is not rung again
	bram.send(map[string]any{"type": "answer", "call_id": callID})
	bram.expectError("forbidden")
	bram.send(map[string]any{"type": "open_door", "call_id": callID})
	if e := bram.expectError("forbidden"); !strings.Contains(e["message"].(string), "no longer ringing") {
		t.Fatalf("open_door after declining: %v, want it to say the device no longer rings", e)
	}
	devices["anna-phone"].send(map[string]any{"type": "answer", "call_id": callID})
	devices["anna-phone"].expect("answered")
	if by := door.expect("answered")["by"].(map[string]any); by["device_id"] != devices["anna-phone"].welcome["device_id"] {
		t.Fatalf("won by %v, want anna-phone", by)
	}
}

// TestDeclineAfterEnd: a decline for an ended call is answered call_ended,
// like answer and hangup, for either scope, to a device that was rung; a
// device never rung gets not_found, as for a call that never was.
func TestDeclineAfterEnd(t *testing.T) {
	for _, scope := range []string{ScopeDevice, ScopeEveryone} {
		t.Run(scope, func(t *testing.T) {
			ts := newTestServer(t, harborView, Config{})
			door, devices, callID := ringAll(t, ts)
			dirk := ts.connect(t, "dirk-phone") // never rung for 101
			door.send(map[string]any{"type": "hangup", "call_id": callID})
			door.expect("ended")
			anna := devices["anna-phone"]
			anna.expect("cancel")
			anna.send(map[string]any{"type": "decline", "call_id": callID, "scope": scope, "ref": "d1"})
			if e := anna.expectError("call_ended"); e["ref"] != "d1" || e["call_id"] != callID {
				t.Fatalf("decline after the end: %v", e)
			}
			dirk.send(map[string]any{"type": "decline", "call_id": callID, "scope": scope})
			dirk.expectError("not_found")
		})
	}
}

// TestStrangerMediaNotFound: sdp and candidate from a device never rung
// for a call answer not_found, while the call rings and after it ended, so
// call IDs reveal nothing.
func TestStrangerMediaNotFound(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	dirk := ts.connect(t, "dirk-phone") // replaces ringAll's connection of it
	sdp := map[string]any{"type": "sdp", "call_id": callID, "description": map[string]string{"type": "answer", "sdp": "v=0"}}
	cand := map[string]any{"type": "candidate", "call_id": callID, "candidate": map[string]string{"candidate": ""}}
	dirk.send(sdp)
	dirk.expectError("not_found")
	door.send(map[string]any{"type": "hangup", "call_id": callID})
	devices["anna-phone"].expect("cancel")
	dirk.send(sdp)
	dirk.expectError("not_found")
	dirk.send(cand)
	dirk.expectError("not_found")
}

// TestMultiSiteCallPicksRingableSite: a door station calling for two sites
// dials a number both have without site_id: the call goes to the site
// where somebody can ring, not merely the first that has the number.
func TestMultiSiteCallPicksRingableSite(t *testing.T) {
	ts := fiveOnSites(t, Config{}, []string{"North"}, "North", "South")
	south := ts.siteNamed(t, "South")
	northCalls(t, ts, south)
	phone := ts.connect(t, "south-phone")
	door := ts.connect(t, "north-door")
	_, ringing := door.call("5")
	if ringing != 1 {
		t.Fatalf("ringing %d, want South's one device", ringing)
	}
	if r := phone.expect("ring"); r["from"].(map[string]any)["site_id"] != string(south) {
		t.Fatalf("ring %v, want it from the South site", r)
	}
}

// fiveOnSites provisions the sites named, each with ID 5 and one app user
// (device <site>-phone, in lower case), pending on the sites in pending;
// the first site has the door station north-door.
func fiveOnSites(t *testing.T, cfg Config, pending []string, sites ...string) *testServer {
	t.Helper()
	var b strings.Builder
	b.WriteString("sites:\n")
	for i, site := range sites {
		name := strings.ToLower(site)
		fmt.Fprintf(&b, "  - name: %s\n", site)
		if i == 0 {
			b.WriteString("    door_stations: [north-door]\n")
		}
		fmt.Fprintf(&b, "    ids:\n      - id: \"5\"\n        name: %s\n        app_users:\n          - email: %s@example.com\n", site, name)
		if slices.Contains(pending, site) {
			b.WriteString("            status: pending\n")
		}
		fmt.Fprintf(&b, "            devices: [%s-phone]\n", name)
	}
	return newTestServer(t, b.String(), cfg)
}

// northCalls lets the door station north-door of the site North call the
// IDs of sites too (its call_sites), as an installer of both would.
func northCalls(t *testing.T, ts *testServer, sites ...directory.SiteID) {
	t.Helper()
	ctx := context.Background()
	d, err := ts.store.DeviceByName(ctx, directory.KindDoorStation, string(ts.siteNamed(t, "North")), "north-door")
	if err != nil {
		t.Fatal(err)
	}
	d.CallSites = sites
	if err := ts.store.Apply(ctx, directory.PutDevice{Device: d}); err != nil {
		t.Fatal(err)
	}
}

// TestCallSiteID: a door station calling for two sites that share a
// number picks the site with site_id, even when the other one (its own)
// could ring too; a site_id that is not one of its sites is not_found,
// like an ID it may not call, and rings nobody there.
func TestCallSiteID(t *testing.T) {
	ts := fiveOnSites(t, Config{}, nil, "North", "South", "East")
	south, east := ts.siteNamed(t, "South"), ts.siteNamed(t, "East")
	northCalls(t, ts, south)
	northPhone, southPhone, eastPhone := ts.connect(t, "north-phone"), ts.connect(t, "south-phone"), ts.connect(t, "east-phone")
	door := ts.connect(t, "north-door")

	door.send(map[string]any{"type": "call", "to": "5", "site_id": string(south)})
	calling := door.expect("calling")
	if r := southPhone.expect("ring"); r["from"].(map[string]any)["site_id"] != string(south) {
		t.Fatalf("ring %v, want it from the South site", r)
	}
	door.send(map[string]any{"type": "hangup", "call_id": calling["call_id"]})
	door.expect("ended")
	southPhone.expect("cancel")

	door.send(map[string]any{"type": "call", "to": "5", "site_id": string(east)})
	door.expectError("not_found")
	for _, c := range []*client{northPhone, eastPhone} {
		c.pingPong() // a ring would have come first
	}
}

// TestUnavailableCallInFirstSite: a door station calling for two sites
// dials a number both have, and nobody can ring on either: the call ends
// unavailable in the first of its sites that has the number (its own),
// whose call log shows it, not in the other site's.
func TestUnavailableCallInFirstSite(t *testing.T) {
	records := make(chan CallRecord, 1)
	ts := fiveOnSites(t, Config{OnCallEnded: func(r CallRecord) { records <- r }}, []string{"North", "South"}, "North", "South")
	north, south := ts.siteNamed(t, "North"), ts.siteNamed(t, "South")
	northCalls(t, ts, south)
	door := ts.connect(t, "north-door")
	door.send(map[string]any{"type": "call", "to": "5"})
	if e := door.expect("ended"); e["reason"] != "unavailable" {
		t.Fatalf("ended %v", e)
	}
	select {
	case r := <-records:
		if r.Site != north || r.Reason != EndUnavailable {
			t.Fatalf("call log: site %s, reason %s; want North (%s), unavailable", r.Site, r.Reason, north)
		}
	case <-time.After(readTimeout):
		t.Fatal("the call was never recorded")
	}
}

// TestEndedCallForgotten: once a call ends, its node keeps only who took
// part, for endedLinger: the call itself (legs, frames, timers) is let go
// at once. Until then a party's late message about it gets call_ended and
// anyone else's not_found; after it, everyone's not_found.
func TestEndedCallForgotten(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	dirk := ts.connect(t, "dirk-phone") // never rung for 101
	owner, _ := ts.ownedCall(t, callID)
	ref := weak.Make(owner.call(CallID(callID)))
	door.send(map[string]any{"type": "hangup", "call_id": callID})
	door.expect("ended")
	anna := devices["anna-phone"]
	anna.expect("cancel")

	waitUnreachable(t, ref)

	answer := map[string]any{"type": "answer", "call_id": callID}
	hangup := map[string]any{"type": "hangup", "call_id": callID}
	anna.send(answer)
	anna.expectError("call_ended")
	door.send(hangup)
	door.expectError("call_ended")
	dirk.send(answer)
	dirk.expectError("not_found")

	ts.clock.Advance(endedLinger - time.Second)
	anna.send(answer)
	anna.expectError("call_ended")
	ts.clock.Advance(time.Second)
	anna.send(answer)
	anna.expectError("not_found")
	door.send(hangup)
	door.expectError("not_found")
	owner.mu.Lock()
	kept, queued := len(owner.endedCalls), len(owner.endedQ)
	owner.mu.Unlock()
	if kept != 0 || queued != 0 {
		t.Fatalf("after endedLinger the node keeps %d ended calls (%d queued), want none", kept, queued)
	}
}

// waitUnreachable waits until the ended call ref points to is let go.
func waitUnreachable(t *testing.T, ref weak.Pointer[Call]) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ref.Value() != nil; {
		if time.Now().After(deadline) {
			t.Fatal("the ended call is still reachable")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEndedCallForgottenWhilePartyAway: a call that ends while its winner's
// rejoin window runs (the door station hangs up) is let go at once too:
// the window's timer, called off, does not keep it until it would have run
// out.
func TestEndedCallForgottenWhilePartyAway(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, anna, callID := answered(t, ts)
	_, call := ts.ownedCall(t, callID)
	ref := weak.Make(call)
	_ = anna.ws.Close()
	waitAway(t, call, &call.winnerAway)
	door.send(map[string]any{"type": "hangup", "call_id": callID})
	door.expect("ended")
	waitUnreachable(t, ref)
}

// TestRemoteCallsForgotten: a connection records the calls owned by other
// nodes that its device acted on, to tell their owners when it goes. A call
// acted on longer ago than any call can last is over and forgotten, so a
// device connected for months does not keep every call it ever answered;
// every call that may still run is kept.
func TestRemoteCallsForgotten(t *testing.T) {
	clock := newFakeClock()
	c := &Conn{hub: &Hub{clock: clock}}
	const n, every = 1000, 10 * time.Second
	for i := range n {
		if i > 0 {
			clock.Advance(every)
		}
		c.actedOn(CallID(fmt.Sprintf("c_%d", i)))
	}
	got := c.takeRemoteCalls()
	live := int(remoteCallLife/every) + 1 // acted on within remoteCallLife of the last
	for i := n - live; i < n; i++ {
		if !slices.Contains(got, CallID(fmt.Sprintf("c_%d", i))) {
			t.Fatalf("c_%d, acted on %v before the last, was forgotten", i, time.Duration(n-1-i)*every)
		}
	}
	if len(got) > 2*live { // the 1,000 span ten times remoteCallLife
		t.Fatalf("%d remote calls kept, want at most %d: calls over are not forgotten", len(got), 2*live)
	}
	if again := c.takeRemoteCalls(); len(again) != 0 {
		t.Fatalf("takeRemoteCalls returned %d calls a second time", len(again))
	}
	// With fewer recorded than remoteCallsPrune, nothing prunes as calls
	// are recorded: one that is over is still not told to its owner.
	c.actedOn("c_over")
	clock.Advance(remoteCallLife + time.Second)
	c.actedOn("c_live")
	if got := c.takeRemoteCalls(); !slices.Equal(got, []CallID{"c_live"}) {
		t.Fatalf("takeRemoteCalls returned %v, want only c_live", got)
	}
}

// TestEndedCallsForgottenInOrder: calls that end at different times are
// each forgotten endedLinger after their own end, by the one timer that
// waits for the oldest.
func TestEndedCallsForgottenInOrder(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, first := ringAll(t, ts)
	anna := devices["anna-phone"]
	hangUp := func(callID string) {
		door.send(map[string]any{"type": "hangup", "call_id": callID})
		door.expect("ended")
		for _, d := range devices {
			d.expect("cancel")
		}
	}
	hangUp(first)
	ts.clock.Advance(10 * time.Second)
	second, _ := door.call("101")
	for _, d := range devices {
		d.expect("ring")
	}
	hangUp(second)

	answerGets := func(callID, code string) {
		t.Helper()
		anna.send(map[string]any{"type": "answer", "call_id": callID})
		if e := anna.expectError(code); e["call_id"] != callID {
			t.Fatalf("answer to %s: %v", callID, e)
		}
	}
	ts.clock.Advance(endedLinger - 10*time.Second)
	answerGets(first, "not_found")
	answerGets(second, "call_ended")
	ts.clock.Advance(10 * time.Second)
	answerGets(second, "not_found")
}
