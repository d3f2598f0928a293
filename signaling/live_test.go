package signaling

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// zonedClock is the wall clock read in a zone other than UTC, as a server
// whose local time zone is not UTC reads it.
type zonedClock struct {
	realClock
	loc *time.Location
}

func (c zonedClock) Now() time.Time { return time.Now().In(c.loc) }

// TestLiveCallsInUTC: the calls in progress the admin API lists carry
// their start and answer times in UTC, as every time of the API, whatever
// the server's local zone.
func TestLiveCallsInUTC(t *testing.T) {
	ts := newTestServer(t, harborView, Config{Clock: zonedClock{loc: time.FixedZone("IST", 5*3600+1800)}})
	door, devices, callID := ringAll(t, ts)
	anna := devices["anna-phone"]
	anna.send(map[string]any{"type": "answer", "call_id": callID})
	anna.expect("answered")
	door.expect("answered")
	live := ts.hubs[ts.nodeOf("front-door")].LiveCallsHere(ts.siteNamed(t, "Harbour View"))
	if len(live) != 1 || string(live[0].CallID) != callID {
		t.Fatalf("live calls %+v, want %s", live, callID)
	}
	if l := live[0]; l.Started.Location() != time.UTC || l.AnsweredAt.Location() != time.UTC {
		t.Fatalf("started %v, answered at %v: want both in UTC", l.Started, l.AnsweredAt)
	}
}

// TestLiveCallsCountRinging: a live call counts the devices still
// ringing: all rung at first, one fewer once one declines, none once one
// has answered (the winner no longer rings).
func TestLiveCallsCountRinging(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	h := ts.hubs[ts.nodeOf("front-door")]
	site := ts.siteNamed(t, "Harbour View")
	state := func() (string, int) {
		live := h.LiveCallsHere(site)
		if len(live) != 1 || string(live[0].CallID) != callID {
			t.Fatalf("live calls %+v, want %s", live, callID)
		}
		return live[0].State, live[0].Ringing
	}
	if s, n := state(); s != "ringing" || n != len(ringers) {
		t.Fatalf("live call %s with %d ringing, want ringing with %d", s, n, len(ringers))
	}
	bram := devices["bram-phone"]
	bram.send(map[string]any{"type": "decline", "call_id": callID})
	bram.pingPong() // the decline is processed: same connection, in order
	if s, n := state(); s != "ringing" || n != len(ringers)-1 {
		t.Fatalf("live call %s with %d ringing after a decline, want ringing with %d", s, n, len(ringers)-1)
	}
	anna := devices["anna-phone"]
	anna.send(map[string]any{"type": "answer", "call_id": callID})
	anna.expect("answered")
	door.expect("answered")
	if s, n := state(); s != "answered" || n != 0 {
		t.Fatalf("live call %s with %d ringing after the answer, want answered with none", s, n)
	}
}

// siteNamed returns the ID of the provisioned site with this name.
func (ts *testServer) siteNamed(t testing.TB, name string) directory.SiteID {
	t.Helper()
	sites, err := ts.store.Sites(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(sites, func(s directory.Site) bool { return s.Name == name })
	if i < 0 {
		t.Fatalf("no %s in %v", name, sites)
	}
	return sites[i].ID
}

// TestLiveCallsOfOneSite: a site's admins see their site's calls in
// progress, oldest first, each with its door station's name, and none of
// another site's (whose door stations and residents are not theirs to
// know).
func TestLiveCallsOfOneSite(t *testing.T) {
	ts := newNodes(t, harborView, Config{}, 1, RedisRouterOptions{})
	hall, dirk, olga := ts.connect(t, "hall-101"), ts.connect(t, "dirk-phone"), ts.connect(t, "olga-phone")
	front, garage, other := ts.connect(t, "front-door"), ts.connect(t, "garage-door"), ts.connect(t, "other-door")
	older, _ := front.call("101")
	hall.expect("ring")
	ts.clock.Advance(2 * time.Second)
	newer, _ := garage.call("102")
	dirk.expect("ring")
	elsewhere, _ := other.call("201")
	olga.expect("ring")

	for site, want := range map[string][]LiveCall{
		"Harbour View": {
			{CallID: CallID(older), DoorName: "front-door", Number: "101"},
			{CallID: CallID(newer), DoorName: "garage-door", Number: "102"},
		},
		"Other Street": {{CallID: CallID(elsewhere), DoorName: "other-door", Number: "201"}},
	} {
		live := ts.hub.LiveCallsHere(ts.siteNamed(t, site))
		if len(live) != len(want) {
			t.Fatalf("%s: live calls %+v, want %d", site, live, len(want))
		}
		for i, w := range want {
			if l := live[i]; l.CallID != w.CallID || l.DoorName != w.DoorName || l.Number != w.Number || l.State != "ringing" || l.Ringing != 1 {
				t.Errorf("%s: live call %d is %+v, want %s from %s to %s, ringing 1 device", site, i, l, w.CallID, w.DoorName, w.Number)
			}
		}
	}
}
