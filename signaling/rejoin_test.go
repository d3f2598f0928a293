package signaling

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
)

// ownedCall returns the live call with this ID and the node owning it.
func (ts *testServer) ownedCall(t *testing.T, callID string) (*Hub, *Call) {
	t.Helper()
	for _, h := range ts.hubs {
		if c := h.call(CallID(callID)); c != nil {
			return h, c
		}
	}
	t.Fatalf("no node owns call %s", callID)
	return nil, nil
}

// waitAway waits until the call counts a party (a: its door station's or
// winner's absence) as gone, its rejoin window running on the test clock:
// a closed socket's leave reaches the call on another goroutine (and,
// across nodes, through Redis).
func waitAway(t *testing.T, call *Call, a *absence) {
	t.Helper()
	for deadline := time.Now().Add(readTimeout); ; time.Sleep(5 * time.Millisecond) {
		call.mu.Lock()
		away := a.timer != nil
		call.mu.Unlock()
		if away {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the call never learned that its party's connection closed")
		}
	}
}

// waitHanded waits until the device's connection on h has been handed the
// call by the node whose connection it replaced (Hub.handOver): it takes
// part in the call, and has not spoken about it through this connection.
func waitHanded(t *testing.T, h *Hub, d directory.DeviceID, call CallID) {
	t.Helper()
	for deadline := time.Now().Add(readTimeout); ; time.Sleep(5 * time.Millisecond) {
		c := h.router.Local(d)
		c.mu.Lock()
		_, acted := c.remoteCalls[call]
		_, handed := c.handed[call]
		c.mu.Unlock()
		if acted && handed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the call was never handed over to the new connection")
		}
	}
}

// answered rings 101 and lets anna-phone answer it.
func answered(t *testing.T, ts *testServer) (door, anna *client, callID string) {
	t.Helper()
	door, devices, callID := ringAll(t, ts)
	anna = devices["anna-phone"]
	anna.send(map[string]any{"type": "answer", "call_id": callID})
	anna.expect("answered")
	door.expect("answered")
	return door, anna, callID
}

// dirkAnswers connects the door station to node doorNode and dirk-phone to
// node dirkNode, calls 102 and lets dirk-phone answer.
func dirkAnswers(t *testing.T, ts *testServer, doorNode, dirkNode int) (door, dirk *client, callID string) {
	t.Helper()
	door = ts.connectTo(t, doorNode, "front-door")
	dirk = ts.connectTo(t, dirkNode, "dirk-phone")
	callID, _ = door.call("102")
	dirk.expect("ring")
	dirk.send(map[string]any{"type": "answer", "call_id": callID})
	dirk.expect("answered")
	door.expect("answered")
	return door, dirk, callID
}

// goesOnPastWindow checks that the call outlives the rejoin window (other
// hears nothing of an end a minute later), and that party's hangup then
// ends it for both.
func goesOnPastWindow(t *testing.T, ts *testServer, party, other *client, callID string) {
	t.Helper()
	ts.clock.Advance(time.Minute)
	other.pingPong() // an ended queued before it would fail this
	party.send(map[string]any{"type": "hangup", "call_id": callID})
	party.expect("ended")
	if e := other.expect("ended"); e["reason"] != "hangup" || e["call_id"] != callID {
		t.Fatalf("%s: ended %v", other.name, e)
	}
}

// TestPartyGoneEndsAfterRejoinWindow: when the connection of the device
// that answered, or of the door station, closes and it does not come back,
// the other party gets ended failed once the rejoin window has passed, not
// before; the party coming back after that is told the call ended.
func TestPartyGoneEndsAfterRejoinWindow(t *testing.T) {
	for _, gone := range []string{"anna-phone", "front-door"} {
		t.Run(gone, func(t *testing.T) {
			ts := newTestServer(t, harborView, Config{RejoinWindow: 8 * time.Second})
			door, anna, callID := answered(t, ts)
			_, call := ts.ownedCall(t, callID)
			party, other, away := anna, door, &call.winnerAway
			if gone == "front-door" {
				party, other, away = door, anna, &call.doorAway
			}
			_ = party.ws.Close()
			waitAway(t, call, away)

			ts.clock.Advance(8*time.Second - time.Millisecond)
			other.pingPong() // an ended queued before it would fail this
			ts.clock.Advance(time.Millisecond)
			if e := other.expect("ended"); e["reason"] != "failed" || e["call_id"] != callID {
				t.Fatalf("ended %v", e)
			}
			back := ts.connect(t, gone)
			back.send(map[string]any{"type": "hangup", "call_id": callID})
			back.expectError("call_ended")
		})
	}
}

// TestRejoinWindowRunsFromFirstLeave: the winner's connection closes, and
// while its rejoin window runs, word comes (as from another node) that a
// newer connection of it, which never spoke about the call, closed too.
// The window still runs from the first leave: the call ends when it runs
// out, not a whole window after the second.
func TestRejoinWindowRunsFromFirstLeave(t *testing.T) {
	ts := newTestServer(t, harborView, Config{RejoinWindow: 8 * time.Second})
	door, anna, callID := answered(t, ts)
	owner, call := ts.ownedCall(t, callID)
	annaID := directory.DeviceID(anna.welcome["device_id"].(string))
	_ = anna.ws.Close()
	waitAway(t, call, &call.winnerAway)
	ts.clock.Advance(5 * time.Second)
	owner.RemoteLeft(CallID(callID), annaID, "a-newer-connection-gone-since", EndFailed)
	ts.clock.Advance(3 * time.Second)
	if e := door.expect("ended"); e["reason"] != "failed" || e["call_id"] != callID {
		t.Fatalf("ended %v", e)
	}
}

// TestSilentWinnerEndsTimeout: the device that answered stops answering
// heartbeats and is dropped (4013). It has the rejoin window like any
// party whose connection went; when it does not come back, the door
// station gets ended timeout, not failed.
func TestSilentWinnerEndsTimeout(t *testing.T) {
	cfg := unlimited()
	cfg.Heartbeat = time.Second
	ts := newTestServer(t, harborView, cfg)
	door, anna, callID := answered(t, ts)
	owner, call := ts.ownedCall(t, callID)
	anna.ws.SetPingHandler(func(string) error { return nil }) // answers no pings
	closed := make(chan error, 1)
	go func() {
		_ = anna.ws.SetReadDeadline(time.Now().Add(readTimeout))
		for {
			if _, _, err := anna.ws.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	// The door station speaks meanwhile (and answers pings as it reads), so
	// that only the winner goes silent.
	for done := false; !done; {
		door.pingPong()
		select {
		case err := <-closed:
			var ce *websocket.CloseError
			if !asCloseError(err, &ce) || ce.Code != int(CloseHeartbeat) {
				t.Fatalf("the silent winner's connection ended with %v, want close %d", err, CloseHeartbeat)
			}
			done = true
		case <-time.After(100 * time.Millisecond):
		}
	}
	waitAway(t, call, &call.winnerAway)
	ts.clock.Advance(owner.cfg.RejoinWindow)
	if e := door.expect("ended"); e["reason"] != "timeout" || e["call_id"] != callID {
		t.Fatalf("ended %v", e)
	}
}

// TestPartyRejoins: the device that answered, or the door station, loses
// its connection and comes back through a new one (on another node, when
// there are several) within the rejoin window: the winner answers again
// and gets answered again; the door station sends a candidate, as after
// an ICE restart. The call outlives the window, and the party's hangup
// from there ends it.
func TestPartyRejoins(t *testing.T) {
	for _, tc := range []struct {
		party  string
		rejoin func(t *testing.T, back *client, callID string)
	}{
		{"anna-phone", func(t *testing.T, back *client, callID string) {
			back.send(map[string]any{"type": "answer", "call_id": callID, "ref": "again"})
			if a := back.expect("answered"); a["ref"] != "again" || a["by"].(map[string]any)["device_id"] != back.welcome["device_id"] {
				t.Fatalf("answered again: %v", a)
			}
		}},
		{"front-door", func(t *testing.T, back *client, callID string) {
			back.send(map[string]any{"type": "candidate", "call_id": callID, "candidate": map[string]any{"candidate": ""}})
			back.expectError("service_unavailable") // no media in this test: the message reached the call all the same
		}},
	} {
		t.Run(tc.party, func(t *testing.T) {
			ts := newTestServer(t, harborView, Config{})
			door, anna, callID := answered(t, ts)
			owner, call := ts.ownedCall(t, callID)
			party, other, away := anna, door, &call.winnerAway
			if tc.party == "front-door" {
				party, other, away = door, anna, &call.doorAway
			}
			rejoinedBefore := testutil.ToFloat64(owner.metrics.rejoined)
			_ = party.ws.Close()
			waitAway(t, call, away)

			back := ts.connectTo(t, (ts.nodeOf(tc.party)+1)%len(ts.hubs), tc.party)
			tc.rejoin(t, back, callID)
			if got := testutil.ToFloat64(owner.metrics.rejoined); got != rejoinedBefore+1 {
				t.Fatalf("foyer_calls_rejoined_total went from %v to %v, want one more", rejoinedBefore, got)
			}
			goesOnPastWindow(t, ts, back, other, callID)
		})
	}
}

// TestWinnerRejoinsWithCandidate: the device that answered comes back
// through a new connection within the rejoin window and speaks about the
// call with a candidate (its ICE restart), not answer: it has rejoined all
// the same, and the call outlives the window.
func TestWinnerRejoinsWithCandidate(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, anna, callID := answered(t, ts)
	_, call := ts.ownedCall(t, callID)
	_ = anna.ws.Close()
	waitAway(t, call, &call.winnerAway)
	back := ts.connectTo(t, (ts.nodeOf("anna-phone")+1)%len(ts.hubs), "anna-phone")
	back.send(map[string]any{"type": "candidate", "call_id": callID, "candidate": map[string]any{"candidate": ""}})
	back.expectError("service_unavailable") // no media in this test: the message reached the call all the same
	goesOnPastWindow(t, ts, back, door, callID)
}

// TestLateLeftOfWinnersOldConnection: the device that answered moved to
// another node and spoke about the call from there; word that its old
// connection closed, arriving late from the old node, is old news. The
// call goes on past the rejoin window. (Here the late word is published
// by hand. Before, any leave of the winner ended the call at once.)
func TestLateLeftOfWinnersOldConnection(t *testing.T) {
	ts := newNodes(t, harborView, unlimited(), 2, RedisRouterOptions{})
	ts.waitInStep(t)
	door := ts.connectTo(t, 0, "front-door")
	old := ts.connectTo(t, 1, "anna-phone")
	annaID := directory.DeviceID(old.welcome["device_id"].(string))
	oldConn := ts.hubs[1].router.Local(annaID).id
	callID, _ := door.call("101")
	old.expect("ring")
	old.send(map[string]any{"type": "answer", "call_id": callID})
	old.expect("answered")
	door.expect("answered")

	anna := ts.connectTo(t, 0, "anna-phone")
	old.expectClose(int(CloseReplaced))
	anna.send(map[string]any{"type": "open_door", "call_id": callID})
	door.expect("unlock")
	anna.expect("door_opened")

	late := envelope{Kind: "left", Call: CallID(callID), Devices: []directory.DeviceID{annaID}, Conn: oldConn, Reason: EndFailed}
	ts.sendEnvelope(t, 1, 0, late)
	// A message through node 1 to node 0's call, on the same channel as
	// the late left, is handled after it: its reply means the left was.
	hall := ts.connectTo(t, 1, "hall-101")
	hall.send(map[string]any{"type": "answer", "call_id": callID})
	hall.expect("error")
	goesOnPastWindow(t, ts, door, anna, callID)
}

// TestLateLeftOfDoorsOldConnection: the door station moved to another
// node in the middle of a call and spoke about the call from there (a
// candidate, as after an ICE restart); word that its old connection
// closed, arriving after that, leaves the call running. (Before, any leave
// of the door station ended the call.)
func TestLateLeftOfDoorsOldConnection(t *testing.T) {
	ts := newNodes(t, harborView, unlimited(), 2, RedisRouterOptions{})
	ts.waitInStep(t)
	door, dirk, callID := dirkAnswers(t, ts, 0, 0)
	doorID := directory.DeviceID(door.welcome["device_id"].(string))
	oldConn := ts.hubs[0].router.Local(doorID).id

	moved := ts.connectTo(t, 1, "front-door")
	door.expectClose(int(CloseReplaced))
	moved.send(map[string]any{"type": "candidate", "call_id": callID, "candidate": map[string]any{"candidate": ""}})
	moved.expectError("service_unavailable") // no media in this test: the message reached the call all the same
	ts.hubs[0].RemoteLeft(CallID(callID), doorID, oldConn, EndFailed)
	ts.clock.Advance(time.Minute) // past the rejoin window: an ended queued now would come before the unlock

	dirk.send(map[string]any{"type": "open_door", "call_id": callID})
	moved.expect("unlock")
	dirk.expect("door_opened")
	moved.send(map[string]any{"type": "hangup", "call_id": callID})
	moved.expect("ended")
	if e := dirk.expect("ended"); e["reason"] != "hangup" {
		t.Fatalf("ended %v", e)
	}
}

// TestLateMessageOfWinnersOldConnection: a message from a connection the
// winner has left behind, late from another node, does not make that
// connection its current one again: the new connection's leave still
// counts, and one coming while the rejoin window runs does not call off
// the wait. (The late messages are handed to the call by hand.)
func TestLateMessageOfWinnersOldConnection(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, anna, callID := answered(t, ts)
	annaID := directory.DeviceID(anna.welcome["device_id"].(string))
	owner, call := ts.ownedCall(t, callID)
	oldConn := ts.hubs[ts.nodeOf("anna-phone")].router.Local(annaID).id

	back := ts.connect(t, "anna-phone")
	anna.expectClose(int(CloseReplaced))
	back.send(map[string]any{"type": "answer", "call_id": callID})
	back.expect("answered")
	call.heard(annaID, oldConn)

	_ = back.ws.Close()
	waitAway(t, call, &call.winnerAway)
	call.heard(annaID, oldConn) // late again, as the window runs: the winner is not back through it
	ts.clock.Advance(owner.cfg.RejoinWindow)
	if e := door.expect("ended"); e["reason"] != "failed" {
		t.Fatalf("ended %v", e)
	}
}

// TestMovedWinnerLeavesLater: the device that answered reconnects (its
// old connection is replaced) and never speaks about the call again. When
// its new connection closes, the call's owner hears of it all the same,
// and the call ends once the rejoin window has passed. The new connection
// takes over the old one's calls: on the same node at once, from another
// node by a handover, for the owner's own call (the winner was on the
// owner's node) or a third node's. (Before, the new connection knew
// nothing of the call, and the call ran on until its time limit.)
func TestMovedWinnerLeavesLater(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to int
	}{
		{"on the same other node", 1, 1},
		{"from the call's node", 0, 1},
		{"between two other nodes", 1, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := newNodes(t, harborView, unlimited(), 3, RedisRouterOptions{})
			ts.waitInStep(t)
			door, dirk, callID := dirkAnswers(t, ts, 0, tc.from)
			dirkID := directory.DeviceID(dirk.welcome["device_id"].(string))
			_, call := ts.ownedCall(t, callID)

			moved := ts.connectTo(t, tc.to, "dirk-phone")
			dirk.expectClose(int(CloseReplaced))
			waitHanded(t, ts.hubs[tc.to], dirkID, CallID(callID))
			_ = moved.ws.Close()
			waitAway(t, call, &call.winnerAway)
			ts.clock.Advance(ts.hubs[0].cfg.RejoinWindow)
			if e := door.expect("ended"); e["reason"] != "failed" {
				t.Fatalf("ended %v", e)
			}
		})
	}
}

// TestHandoverAfterNewConnectionWent: the winner's connection is replaced
// by one on another node that closes before the calls are handed over to
// it (node 1 hears of the replacement, as from attachLease, naming a
// connection node 2 no longer has). Node 2 then tells the call's owner
// that connection left, and the call waits out the rejoin window and ends,
// rather than running on with a winner gone.
func TestHandoverAfterNewConnectionWent(t *testing.T) {
	ts := newNodes(t, harborView, unlimited(), 3, RedisRouterOptions{})
	ts.waitInStep(t)
	door, dirk, callID := dirkAnswers(t, ts, 0, 1)
	dirkID := directory.DeviceID(dirk.welcome["device_id"].(string))
	_, call := ts.ownedCall(t, callID)

	r := ts.hubs[1].router.(*RedisRouter)
	r.replaced(dirkID, r.Local(dirkID).id, ts.hubs[2].cfg.NodeID, "a-connection-gone-since")
	dirk.expectClose(int(CloseReplaced))
	waitAway(t, call, &call.winnerAway)
	ts.clock.Advance(ts.hubs[0].cfg.RejoinWindow)
	if e := door.expect("ended"); e["reason"] != "failed" {
		t.Fatalf("ended %v", e)
	}
}

// TestWinnerOfTwoCallsLeaves: a device that answered two calls (two door
// stations rang its ID) and then goes away leaves both: each waits out the
// rejoin window and ends failed.
func TestWinnerOfTwoCallsLeaves(t *testing.T) {
	ts := newTestServer(t, harborView, unlimited())
	front := ts.connect(t, "front-door")
	garage := ts.connect(t, "garage-door")
	dirk := ts.connect(t, "dirk-phone")
	var calls []*Call
	for _, door := range []*client{front, garage} {
		callID, _ := door.call("102")
		dirk.expect("ring")
		dirk.send(map[string]any{"type": "answer", "call_id": callID})
		dirk.expect("answered")
		door.expect("answered")
		_, call := ts.ownedCall(t, callID)
		calls = append(calls, call)
	}
	_ = dirk.ws.Close()
	for _, call := range calls {
		waitAway(t, call, &call.winnerAway)
	}
	ts.clock.Advance(ts.hub.cfg.RejoinWindow)
	for _, door := range []*client{front, garage} {
		if e := door.expect("ended"); e["reason"] != "failed" {
			t.Fatalf("%s: ended %v", door.name, e)
		}
	}
}

// TestDoorCallsAgainAfterRestart: a door station that reconnects and places
// a call without having rejoined the one it had (it restarted and knows
// nothing of it) is not told it is busy: the old call ends (its devices
// stop ringing, caller_hangup) and the new one rings. One that rejoined
// its call is busy with it.
func TestDoorCallsAgainAfterRestart(t *testing.T) {
	ts := newTestServer(t, harborView, unlimited())
	door, devices, first := ringAll(t, ts)
	back := ts.connect(t, "front-door")
	door.expectClose(int(CloseReplaced))
	second, ringing := back.call("101")
	if ringing != len(ringers) || second == first {
		t.Fatalf("the second call %s rings %d devices", second, ringing)
	}
	for n, d := range devices {
		if c := d.expect("cancel"); c["call_id"] != first || c["reason"] != "caller_hangup" {
			t.Fatalf("%s: %v", n, c)
		}
		if r := d.expect("ring"); r["call_id"] != second {
			t.Fatalf("%s: %v", n, r)
		}
	}

	again := ts.connect(t, "front-door")
	back.expectClose(int(CloseReplaced))
	again.send(map[string]any{"type": "candidate", "call_id": second, "candidate": map[string]any{"candidate": ""}})
	again.expectError("service_unavailable") // rejoined: the message reached the call
	again.send(map[string]any{"type": "call", "to": "101"})
	again.expectError("busy")
}

// TestDoorCallsAgainFromAnotherNode: a door station restarts and
// reconnects to another node than the one owning its call, and places a
// call without having spoken about the old one. The old call ends (ringing:
// its devices get cancel caller_hangup; answered: the device that answered
// gets ended failed) before the new call rings them, as on one node: the
// door station's node hands the new call to the old call's node, which
// ends the one and rings the other, so the order holds also for a device
// on a third node.
func TestDoorCallsAgainFromAnotherNode(t *testing.T) {
	for _, answer := range []bool{false, true} {
		for _, dirkNode := range []int{0, 2} {
			name := fmt.Sprintf("%s/dirk-on-node%d", map[bool]string{false: "ringing", true: "answered"}[answer], dirkNode)
			t.Run(name, func(t *testing.T) {
				ts := newNodes(t, harborView, unlimited(), 3, RedisRouterOptions{})
				ts.waitInStep(t)
				door := ts.connectTo(t, 0, "front-door")
				dirk := ts.connectTo(t, dirkNode, "dirk-phone")
				first, _ := door.call("102")
				dirk.expect("ring")
				if answer {
					dirk.send(map[string]any{"type": "answer", "call_id": first})
					dirk.expect("answered")
					door.expect("answered")
				}
				back := ts.connectTo(t, 1, "front-door")
				door.expectClose(int(CloseReplaced))
				waitHanded(t, ts.hubs[1], directory.DeviceID(back.welcome["device_id"].(string)), CallID(first))

				second, _ := back.call("102")
				if ownerOf(CallID(second)) != "node0" {
					t.Fatalf("the new call %s is not the old call's node's", second)
				}
				if answer {
					if e := dirk.expect("ended"); e["call_id"] != first || e["reason"] != "failed" {
						t.Fatalf("dirk: %v", e)
					}
				} else if c := dirk.expect("cancel"); c["call_id"] != first || c["reason"] != "caller_hangup" {
					t.Fatalf("dirk: %v", c)
				}
				if r := dirk.expect("ring"); r["call_id"] != second {
					t.Fatalf("dirk: %v", r)
				}
			})
		}
	}
}

// TestDoorRejoinedOnAnotherNodeIsBusy: a door station whose connection
// moved to another node in the middle of an answered call, and rejoined
// the call from there, is busy with it when it calls again: that node
// hands the call to the one owning the old call, which knows it is still
// going. Once it has ended, its calls ring again, and its hangup from its
// node ends them.
func TestDoorRejoinedOnAnotherNodeIsBusy(t *testing.T) {
	ts, back, dirk, first, doorID := doorMovedInCall(t)
	back.send(map[string]any{"type": "candidate", "call_id": first, "candidate": map[string]any{"candidate": ""}})
	back.expectError("service_unavailable") // rejoined: the message reached the call

	back.send(map[string]any{"type": "call", "to": "102", "ref": "again"})
	if e := back.expectError("busy"); e["ref"] != "again" || e["call_id"] != nil {
		t.Fatalf("busy: %v", e)
	}
	dirk.send(map[string]any{"type": "hangup", "call_id": first})
	dirk.expect("ended")
	if e := back.expect("ended"); e["call_id"] != first {
		t.Fatalf("door: %v", e)
	}

	// Told that the old call ended, the door station's node places its
	// calls itself again.
	placedBy(t, back, dirk, "node1")
	// Had that word been lost, the old call's node, which knows it ended,
	// places the call.
	ts.hubs[1].router.Local(doorID).actedOn(CallID(first))
	placedBy(t, back, dirk, "node0")
	// Its connection goes while such a call rings: the call's node hears,
	// as for a connection of its own, and the call ends.
	third, _ := back.call("102")
	if r := dirk.expect("ring"); r["call_id"] != third || ownerOf(CallID(third)) != "node0" {
		t.Fatalf("dirk: %v", r)
	}
	_ = back.ws.Close()
	if c := dirk.expect("cancel"); c["call_id"] != third || c["reason"] != "caller_hangup" {
		t.Fatalf("dirk: %v", c)
	}
}

// doorMovedInCall sets up two nodes where dirk-phone (on node 0) answered
// front-door's call first (node 0's), and the door station then connected
// to node 1 as back, which was handed the call (doorID is the door's).
func doorMovedInCall(t *testing.T) (ts *testServer, back, dirk *client, first string, doorID directory.DeviceID) {
	t.Helper()
	ts = newNodes(t, harborView, unlimited(), 2, RedisRouterOptions{})
	ts.waitInStep(t)
	door, dirk, first := dirkAnswers(t, ts, 0, 0)
	back = ts.connectTo(t, 1, "front-door")
	door.expectClose(int(CloseReplaced))
	doorID = directory.DeviceID(back.welcome["device_id"].(string))
	waitHanded(t, ts.hubs[1], doorID, CallID(first))
	return ts, back, dirk, first, doorID
}

// placedBy has door call 102, checks that node owns the call and that
// dirk rings, and hangs up.
func placedBy(t *testing.T, door, dirk *client, node string) {
	t.Helper()
	id, _ := door.call("102")
	if ownerOf(CallID(id)) != node {
		t.Fatalf("the call %s is not %s's", id, node)
	}
	if r := dirk.expect("ring"); r["call_id"] != id {
		t.Fatalf("dirk: %v", r)
	}
	door.send(map[string]any{"type": "hangup", "call_id": id})
	door.expect("ended")
	if c := dirk.expect("cancel"); c["call_id"] != id || c["reason"] != "caller_hangup" {
		t.Fatalf("dirk: %v", c)
	}
}

// doorRejoinedOn sets up two nodes, dirk-phone on node 0 and front-door on
// node 1, whose connection there took part in a call of node's (as one
// that rejoined it).
func doorRejoinedOn(t *testing.T, node string) (door, dirk *client) {
	t.Helper()
	ts := newNodes(t, harborView, unlimited(), 2, RedisRouterOptions{})
	ts.waitInStep(t)
	dirk = ts.connectTo(t, 0, "dirk-phone")
	door = ts.connectTo(t, 1, "front-door")
	ts.hubs[1].router.Local(directory.DeviceID(door.welcome["device_id"].(string))).actedOn(newCallIDAt(node))
	return door, dirk
}

// TestDoorRejoinedOnGoneNodeCalls: should the node owning the call a door
// station rejoined be gone (nothing listens on its channel), its calls went
// with it, and the door station's next call is placed where it is.
func TestDoorRejoinedOnGoneNodeCalls(t *testing.T) {
	door, dirk := doorRejoinedOn(t, "gone")
	second, _ := door.call("102")
	if ownerOf(CallID(second)) != "node1" {
		t.Fatalf("the call %s is not the door station's node's", second)
	}
	if r := dirk.expect("ring"); r["call_id"] != second {
		t.Fatalf("dirk: %v", r)
	}
}

// TestDoorForgotOnAnotherNodeCallsHere: a door station that restarted and
// reconnected to another node than its call's, and placed a call there
// without speaking about the old one, never rejoined that call: the old
// call's node ends it and places the new one, and once that has ended the
// door station's calls are placed where it is.
func TestDoorForgotOnAnotherNodeCallsHere(t *testing.T) {
	_, back, dirk, first, _ := doorMovedInCall(t)
	back.send(map[string]any{"type": "call", "to": "102", "ref": "c1"})
	if e := dirk.expect("ended"); e["call_id"] != first || e["reason"] != "failed" {
		t.Fatalf("dirk: %v", e)
	}
	second := back.expect("calling")["call_id"].(string)
	if ownerOf(CallID(second)) != "node0" {
		t.Fatalf("the call %s is not node0's", second)
	}
	if r := dirk.expect("ring"); r["call_id"] != second {
		t.Fatalf("dirk: %v", r)
	}
	back.send(map[string]any{"type": "hangup", "call_id": second})
	back.expect("ended")
	dirk.expect("cancel")

	placedBy(t, back, dirk, "node1")
}

// TestDoorRejoinedBeforeHandoverIsBusy: a door station that rejoined its
// call through its connection on another node before the old node's
// handover came (it sends its ICE restart as soon as it is welcomed) has
// spoken about the call through that connection: the handover does not
// make it a call the door station forgot, and its next call is busy.
func TestDoorRejoinedBeforeHandoverIsBusy(t *testing.T) {
	ts, back, dirk, first, doorID := doorMovedInCall(t)
	back.send(map[string]any{"type": "candidate", "call_id": first, "candidate": map[string]any{"candidate": ""}})
	back.expectError("service_unavailable") // rejoined: the message reached the call
	// The handover, had it come only now.
	conn := ts.hubs[1].router.Local(doorID)
	ts.hubs[1].router.(*RedisRouter).handover(doorID, conn.id, []CallID{CallID(first)})

	back.send(map[string]any{"type": "call", "to": "102", "ref": "again"})
	if e := back.expectError("busy"); e["ref"] != "again" {
		t.Fatalf("busy: %v", e)
	}
	dirk.pingPong() // the call goes on: no ended, no ring before it
}

// TestDoorRejoinedCallsWithRedisDown: a door station that rejoined its
// call through another node calls again, and Redis fails its node's
// forward: the node owning the old call is not known to be gone (it may
// hold the call still, and get the forward yet, had Redis only stalled),
// so the call is not placed where the door station is; it gets
// service_unavailable, and retries.
func TestDoorRejoinedCallsWithRedisDown(t *testing.T) {
	ts, back, _, first, _ := doorMovedInCall(t)
	back.send(map[string]any{"type": "candidate", "call_id": first, "candidate": map[string]any{"candidate": ""}})
	back.expectError("service_unavailable") // rejoined: the message reached the call

	// Node 1's forwards fail (its queued rings and its presence view do not).
	ts.rdbs[1].AddHook(failForwards{})
	back.send(map[string]any{"type": "call", "to": "102", "ref": "again"})
	if e := back.expectError("service_unavailable"); e["ref"] != "again" || e["call_id"] != nil {
		t.Fatalf("error: %v", e)
	}
}

// failForwards is a Redis client hook that fails every SPUBLISH sent on
// its own, as Router.Forward sends them: Redis refusing them.
type failForwards struct{}

func (failForwards) DialHook(next redis.DialHook) redis.DialHook { return next }

func (failForwards) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() == "spublish" {
			err := errors.New("LOADING Redis is loading the dataset in memory")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (failForwards) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestDoorGoneBeforeForwardedCalling: a door station whose call its node
// forwarded (it rejoined a call of another node there) and whose
// connection closed before the new call's calling came back is gone as
// for a call of its own node: the calling finds no connection, the call's
// node is told, and its devices stop ringing at once (caller_hangup), not
// at the ring timeout.
func TestDoorGoneBeforeForwardedCalling(t *testing.T) {
	door, dirk := doorRejoinedOn(t, "node0")
	door.send(map[string]any{"type": "call", "to": "102"})
	_ = door.ws.Close() // read by node 1 once the forward went
	r := dirk.expect("ring")
	if ownerOf(CallID(r["call_id"].(string))) != "node0" {
		t.Fatalf("dirk: %v", r)
	}
	if c := dirk.expect("cancel"); c["call_id"] != r["call_id"] || c["reason"] != "caller_hangup" {
		t.Fatalf("dirk: %v", c)
	}
}

// TestDoorForgotOnAnotherNodeDialsWrongNumber: a door station that
// restarted onto another node than its call's and dials a number that does
// not exist gets not_found, and its forgotten call goes on, as on one node;
// its next call ends that one and rings.
func TestDoorForgotOnAnotherNodeDialsWrongNumber(t *testing.T) {
	ts, back, dirk, first, _ := doorMovedInCall(t)
	back.send(map[string]any{"type": "call", "to": "999999"})
	back.expectError("not_found")
	ts.ownedCall(t, first) // still going
	second, _ := back.call("102")
	if e := dirk.expect("ended"); e["call_id"] != first || e["reason"] != "failed" {
		t.Fatalf("dirk: %v", e)
	}
	if r := dirk.expect("ring"); r["call_id"] != second || ownerOf(CallID(second)) != "node0" {
		t.Fatalf("dirk: %v", r)
	}
}

// TestDoorForgotOnDrainingNodeCallsHere: a door station that restarted onto
// another node while its old call's node drains has its next call placed
// where it is: the draining node ends the call it forgot, takes no new one,
// and hands the call back.
func TestDoorForgotOnDrainingNodeCallsHere(t *testing.T) {
	ts, back, dirk, first, doorID := doorMovedInCall(t)
	bram := ts.connectTo(t, 1, "bram-phone") // rung for 101 by node 1
	drained := drain(ts.hubs[0])
	for draining := false; !draining; time.Sleep(time.Millisecond) {
		ts.hubs[0].mu.Lock()
		draining = ts.hubs[0].draining
		ts.hubs[0].mu.Unlock()
	}
	second, _ := back.call("101")
	if r := bram.expect("ring"); r["call_id"] != second || ownerOf(CallID(second)) != "node1" {
		t.Fatalf("bram: %v", r)
	}
	if e := dirk.expect("ended"); e["call_id"] != first || e["reason"] != "failed" {
		t.Fatalf("dirk: %v", e)
	}
	drained(t, "once the forgotten call ended")
	back.send(map[string]any{"type": "hangup", "call_id": second})
	back.expect("ended")
	bram.expect("cancel")
	// Settled: the connection records no call of node 0's any more, and
	// its next call is placed here.
	c := ts.hubs[1].router.Local(doorID)
	c.mu.Lock()
	recorded := len(c.remoteCalls)
	c.mu.Unlock()
	if recorded != 0 {
		t.Fatalf("the door station's connection still records %d calls of another node", recorded)
	}
	third, _ := back.call("101")
	if r := bram.expect("ring"); r["call_id"] != third || ownerOf(CallID(third)) != "node1" {
		t.Fatalf("bram: %v", r)
	}
}

// TestLateAnswerThroughLeftConnection: a ringing device moves to the
// call's node and is rung there; its answer, sent through the connection
// it left, reaches the call only then (the old node read it late). The
// answer wins, but the connection it came through is the one the device
// left: the new connection stays its current one, and its leave starts
// the rejoin window. (The late answer is published by hand. Before, the
// late answer made the old connection the winner's current one, the new
// connection's leave was taken for old news, and the call ran on, the
// door station talking to nobody, until its time limit.)
func TestLateAnswerThroughLeftConnection(t *testing.T) {
	ts, door, moved, oldConn, callID := dirkRingsAgainOn(t, 0)
	forwardAnswer(t, ts, oldConn, callID)
	door.expect("answered")
	moved.expect("answered")
	winnerLeavesAndCallEnds(t, ts, door, moved, callID)
}

// TestAnswerReadAsConnectionReplaced: a device connects again to the node
// it rings on, while its old connection there still reads the answer it
// sent (the frame was waiting in the socket): the new connection took the
// old one's calls of other nodes as it attached, before the answer was
// recorded, and the old one, replaced on its own node, hands nothing over
// when it ends. The call the answer won must still hear when the device's
// connection goes. (The old connection's reader is replayed by hand, in
// the order a race gives: the answer recorded and forwarded after the new
// connection attached, and its end after that. Before, the call never
// heard the device leave, and ran on until its time limit.)
func TestAnswerReadAsConnectionReplaced(t *testing.T) {
	ts, door, again, oldConn, callID := dirkRingsAgainOn(t, 1)
	oldConn.actedOn(CallID(callID)) // routeCallMessage, before it forwards
	forwardAnswer(t, ts, oldConn, callID)
	door.expect("answered")
	again.expect("answered")
	ts.hubs[1].handOver(oldConn) // served, as the old connection's reader ends
	winnerLeavesAndCallEnds(t, ts, door, again, callID)
}

// TestAnswerThroughUnrungConnection: a ringing device reconnects and
// answers through its new connection before the call has rung that one
// (as from another node, the answer ahead of the word that it connected
// there). The answer makes the new connection the winner's current one:
// word that the connection it was rung on closed is old news, and the call
// goes on past the rejoin window. (The answer and the leave are handed to
// the call by hand.)
func TestAnswerThroughUnrungConnection(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	owner, call := ts.ownedCall(t, callID)
	anna := devices["anna-phone"]
	annaID := directory.DeviceID(anna.welcome["device_id"].(string))
	rung := ts.hubs[ts.nodeOf("anna-phone")].router.Local(annaID)
	if won, err := call.answer(rung.device, "a-newer-connection", Party{DeviceID: annaID}, nil); !won || err != nil {
		t.Fatalf("the answer: won %v, %v", won, err)
	}
	door.expect("answered")
	anna.expect("answered")
	owner.RemoteLeft(CallID(callID), annaID, rung.id, EndFailed)
	ts.clock.Advance(time.Minute)
	door.pingPong() // an ended queued before it would fail this
}

// dirkRingsAgainOn sets up two nodes where front-door (node 0) calls 102,
// which rings dirk-phone on node 1 (oldConn); dirk-phone then connects to
// node again, is rung there as dirk, and the old connection is closed.
func dirkRingsAgainOn(t *testing.T, node int) (ts *testServer, door, dirk *client, oldConn *Conn, callID string) {
	t.Helper()
	ts = newNodes(t, harborView, unlimited(), 2, RedisRouterOptions{})
	ts.waitInStep(t)
	door = ts.connectTo(t, 0, "front-door")
	old := ts.connectTo(t, 1, "dirk-phone")
	oldConn = ts.hubs[1].router.Local(directory.DeviceID(old.welcome["device_id"].(string)))
	callID, _ = door.call("102")
	old.expect("ring")
	dirk = ts.connectTo(t, node, "dirk-phone")
	old.expectClose(int(CloseReplaced))
	if r := dirk.expect("ring"); r["call_id"] != callID {
		t.Fatalf("the new connection's ring: %v", r)
	}
	return ts, door, dirk, oldConn, callID
}

// forwardAnswer sends the call's node (0) an answer from conn, a
// connection on node 1, as node 1 forwards one.
func forwardAnswer(t *testing.T, ts *testServer, conn *Conn, callID string) {
	t.Helper()
	answer := envelope{Kind: "message", Call: CallID(callID), Sender: &conn.device, Conn: conn.id,
		Frame: encode(map[string]any{"type": "answer", "call_id": callID})}
	ts.sendEnvelope(t, 1, 0, answer)
}

// winnerLeavesAndCallEnds closes the winner's connection and checks that
// the call waits its rejoin window, then ends failed for the door station.
func winnerLeavesAndCallEnds(t *testing.T, ts *testServer, door, winner *client, callID string) {
	t.Helper()
	_, call := ts.ownedCall(t, callID)
	_ = winner.ws.Close()
	waitAway(t, call, &call.winnerAway)
	ts.clock.Advance(ts.hubs[0].cfg.RejoinWindow)
	if e := door.expect("ended"); e["reason"] != "failed" {
		t.Fatalf("ended %v", e)
	}
}
