package signaling

import (
	"context"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// TestDoorGoneReported: every door station connecting is reported online,
// and one whose connection closed is reported gone with the time it went;
// one replaced by a newer connection (connected again) is not, nor are a
// draining node's door stations (they move to the other nodes).
func TestDoorGoneReported(t *testing.T) {
	type report struct {
		id directory.DeviceID
		at time.Time
	}
	gone, online := make(chan report, 8), make(chan directory.DeviceID, 8)
	ts := newTestServer(t, harborView, Config{
		OnDoorGone:   func(d directory.Device, at time.Time) { gone <- report{d.ID, at} },
		OnDoorOnline: func(d directory.Device) { online <- d.ID }})
	isOnline := func(want directory.DeviceID) {
		t.Helper()
		select {
		case id := <-online:
			if id != want {
				t.Fatalf("reported online: %s, want %s", id, want)
			}
		case <-time.After(readTimeout):
			t.Fatal("a door station connected and was not reported online")
		}
	}
	noneGone := func(when string) {
		t.Helper()
		select {
		case r := <-gone:
			t.Fatalf("%s, reported gone %+v", when, r)
		case <-time.After(100 * time.Millisecond):
		}
	}

	door := ts.connect(t, "front-door")
	id := directory.DeviceID(door.welcome["device_id"].(string))
	isOnline(id)
	fresh := ts.connect(t, "front-door")
	door.expectClose(int(CloseReplaced))
	isOnline(id)
	noneGone("replaced by a newer connection")

	went := ts.clock.Now()
	_ = fresh.ws.Close()
	select {
	case r := <-gone:
		if r.id != id || !r.at.Equal(went) {
			t.Fatalf("reported gone %+v, want %s at %v", r, id, went)
		}
	case <-time.After(readTimeout):
		t.Fatal("a door station's connection closed and it was not reported gone")
	}

	// The monitor is not a door station: nothing about it either way.
	_ = ts.connect(t, "hall-101").ws.Close()
	door = ts.connect(t, "front-door")
	isOnline(id)
	noneGone("a monitor came and went")
	node := ts.nodeOf("front-door")
	ts.hubs[node].Drain(context.Background())
	door.expectClose(int(CloseGoingAway))
	noneGone("its node drained")
}
