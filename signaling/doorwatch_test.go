package signaling

import (
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// TestDoorOfflineReported: every door station connecting is reported
// online; one whose connection closed is reported offline once, with the
// time it went, when it has been connected to no node for DoorOffline; one
// back within that time (on its node or, in a cluster, on another) is not.
func TestDoorOfflineReported(t *testing.T) {
	const after = time.Minute
	type report struct {
		id    directory.DeviceID
		since time.Time
	}
	offline, online := make(chan report, 8), make(chan directory.DeviceID, 8)
	ts := newTestServer(t, harborView, Config{DoorOffline: after,
		OnDoorOffline: func(d directory.Device, since time.Time) { offline <- report{d.ID, since} },
		OnDoorOnline:  func(d directory.Device) { online <- d.ID }})
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
	// closed closes door and waits until a node watches it.
	closed := func(door *client) {
		t.Helper()
		_ = door.ws.Close()
		for deadline := time.Now().Add(readTimeout); ; time.Sleep(5 * time.Millisecond) {
			n := 0
			for _, h := range ts.hubs {
				h.mu.Lock()
				n += len(h.doorWatches)
				h.mu.Unlock()
			}
			if n == 1 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d watches of the closed door station, want 1", n)
			}
		}
	}

	door := ts.connect(t, "front-door")
	id := directory.DeviceID(door.welcome["device_id"].(string))
	isOnline(id)
	closed(door)
	door = ts.connectTo(t, (ts.nodeOf("front-door")+1)%len(ts.hubs), "front-door")
	isOnline(id)
	ts.clock.Advance(after) // the watch's timer runs now
	select {
	case r := <-offline:
		t.Fatalf("back within the delay, reported offline %+v", r)
	default:
	}

	closed(door)
	went := ts.clock.Now()
	ts.clock.Advance(after - time.Second)
	if len(offline) != 0 {
		t.Fatal("reported offline before the delay")
	}
	ts.clock.Advance(time.Second)
	select {
	case r := <-offline:
		if r.id != id || !r.since.Equal(went) {
			t.Fatalf("reported offline %+v, want %s since %v", r, id, went)
		}
	default:
		t.Fatalf("a door station gone for %v was not reported offline", after)
	}
	ts.clock.Advance(after)
	if len(offline) != 0 {
		t.Fatal("reported offline a second time")
	}
}
