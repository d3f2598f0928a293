package signaling

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// sevenSite starts a site whose door station "door" calls the IDs sevenOn
// adds.
const sevenSite = "sites:\n  - name: Race\n    door_stations: [door]\n    ids:\n"

// sevenDevices has one ID ringing six app users' phones and a monitor.
func sevenDevices() (string, []string) {
	var b strings.Builder
	b.WriteString(sevenSite)
	names := sevenOn(&b, "1", "")
	return b.String(), names
}

// sevenOn adds ID id, ringing six app users' phones and a monitor, whose
// device and user names start with prefix, and returns the devices' names.
func sevenOn(b *strings.Builder, id, prefix string) []string {
	fmt.Fprintf(b, "      - id: %q\n        name: Seven\n        monitors: [%smonitor]\n        app_users:\n", id, prefix)
	names := []string{prefix + "monitor"}
	for i := range 6 {
		fmt.Fprintf(b, "          - email: %su%d@example.com\n            devices: [%sphone-%d]\n", prefix, i, prefix, i)
		names = append(names, fmt.Sprintf("%sphone-%d", prefix, i))
	}
	return names
}

// TestSimultaneousAnswers releases seven answers to the same call at the
// same instant, many times: exactly one answered, six cancels
// answered_elsewhere, six call_taken to the losers, none to the winner.
func TestSimultaneousAnswers(t *testing.T) {
	rounds := 1000
	if testing.Short() {
		rounds = 100
	}
	yaml, names := sevenDevices()
	ts := newTestServer(t, yaml, unlimited()) // a call per round, as fast as it goes
	if n := len(ts.hubs); n > 1 {
		spread := map[int]bool{}
		for _, name := range names {
			spread[ts.nodeOf(name)] = true
		}
		if len(spread) < min(n, 3) {
			t.Fatalf("the seven devices sit on %d of %d nodes; the test must spread them", len(spread), n)
		}
	}
	door := ts.connect(t, "door")
	devices := make([]*client, len(names))
	for i, n := range names {
		devices[i] = ts.connect(t, n)
	}
	for round := range rounds {
		callID, n := door.call("1")
		if n != 7 {
			t.Fatalf("round %d: ringing %d", round, n)
		}
		for _, d := range devices {
			d.expect("ring")
		}
		frame := []byte(fmt.Sprintf(`{"type":"answer","call_id":%q}`, callID))
		var ready, start sync.WaitGroup
		ready.Add(len(devices))
		start.Add(1)
		var done sync.WaitGroup
		for _, d := range devices {
			done.Add(1)
			go func() {
				defer done.Done()
				ready.Done()
				start.Wait() // the barrier: all seven write at once
				_ = d.ws.WriteMessage(1, frame)
			}()
		}
		ready.Wait()
		start.Done()
		done.Wait()

		winners, cancels, taken := 0, 0, 0
		var winner *client
		for _, d := range devices {
			// Each device sees either answered, or cancel then call_taken
			// (the cancel may come before or after its own answer is refused).
			got := map[string]int{}
			for got["answered"] == 0 && (got["cancel"] == 0 || got["call_taken"] == 0) {
				m := d.next()
				switch m["type"] {
				case "answered":
					got["answered"]++
				case "cancel":
					if m["reason"] != "answered_elsewhere" {
						t.Fatalf("round %d: %s cancel %v", round, d.name, m)
					}
					got["cancel"]++
				case "error":
					if m["code"] != "call_taken" {
						t.Fatalf("round %d: %s error %v", round, d.name, m)
					}
					got["call_taken"]++
				default:
					t.Fatalf("round %d: %s unexpected %v", round, d.name, m)
				}
			}
			if got["answered"] == 1 {
				winners++
				winner = d
				if got["call_taken"] != 0 || got["cancel"] != 0 {
					t.Fatalf("round %d: winner %s also got %v", round, d.name, got)
				}
			}
			cancels += got["cancel"]
			taken += got["call_taken"]
		}
		if winners != 1 || cancels != 6 || taken != 6 {
			t.Fatalf("round %d: %d winners, %d cancels, %d call_taken; want 1, 6, 6", round, winners, cancels, taken)
		}
		if by := door.expect("answered")["by"].(map[string]any); by["device_id"] != winner.welcome["device_id"] {
			t.Fatalf("round %d: door station told %v won, but %s did", round, by, winner.name)
		}
		door.send(map[string]any{"type": "hangup", "call_id": callID})
		door.expect("ended")
		winner.expect("ended")
	}
	// Nothing stray is left in any queue (a late call_taken to a winner
	// would show here, or as a failed expect in the next round).
	for _, d := range devices {
		d.pingPong()
	}
}
