package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/foyer-intercom/foyer/directory"
)

func TestReplacedConnection(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	old := ts.connect(t, "anna-phone")
	fresh := ts.connect(t, "anna-phone")
	old.expectClose(int(CloseReplaced))
	fresh.pingPong()
}

func TestHeartbeatDropsSilentPeer(t *testing.T) {
	ts := newTestServer(t, harborView, Config{Heartbeat: time.Second})
	silent := ts.connect(t, "anna-phone")
	// A client that answers no pings: the server's pings are only answered
	// while the client reads, so stop reading and wait past two intervals.
	silent.ws.SetPingHandler(func(string) error { return nil })
	silent.expectClose(int(CloseHeartbeat)) // reading here runs the (muted) ping handler
	// Across nodes, the other nodes hear of the detach after the close.
	ts.waitForgotten(t, ts.nodeOf("anna-phone"), directory.DeviceID(silent.welcome["device_id"].(string)))
	// The dropped device is never rung afterwards.
	door := ts.connect(t, "front-door")
	ts.connect(t, "bram-phone")
	if _, n := door.call("101"); n != 1 {
		t.Fatalf("ringing %d, want only bram-phone", n)
	}
}

// TestSilentDoorStationEndsCallTimeout: a door station silent for two
// heartbeat intervals while its call rings is closed with 4013, and the
// call ends timeout, as the call log records it, not failed (a door
// station whose connection closed for any other reason). Its outcome is
// failed, as a broken connection's: the call broke; it was not a call the
// residents left unanswered (no_answer), which the answer-rate alert reads.
func TestSilentDoorStationEndsCallTimeout(t *testing.T) {
	records := make(chan CallRecord, 1)
	ts := newTestServer(t, harborView, Config{Heartbeat: time.Second, OnCallEnded: func(r CallRecord) { records <- r }})
	dirk := ts.connect(t, "dirk-phone")
	door := ts.connect(t, "front-door")
	callID, _ := door.call("102")
	door.ws.SetPingHandler(func(string) error { return nil })
	dirk.expect("ring")
	dirk.expect("cancel") // reading, dirk answers the pings
	door.expectClose(int(CloseHeartbeat))
	select {
	case r := <-records:
		if r.CallID != CallID(callID) || r.Reason != EndTimeout {
			t.Fatalf("call log %+v, want %s ended %s", r, callID, EndTimeout)
		}
	case <-time.After(readTimeout):
		t.Fatal("the call did not end after its door station was dropped")
	}
	m := ts.hubs[ts.nodeOf("front-door")].metrics
	waitMetric(t, "failed calls", counter(m.outcomes.WithLabelValues("failed")), 1)
	if n := testutil.ToFloat64(m.calls.WithLabelValues(string(EndTimeout))); n != 1 {
		t.Errorf("calls ended timeout: %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.outcomes.WithLabelValues("no_answer")); n != 0 {
		t.Errorf("calls no_answer: %v, want 0", n)
	}
}

// TestMessagesCountAsLife: any frame a client sends counts as life, not
// only the pong to a server ping: a client that answers no ping (a page
// that cannot see them) but sends a message at each one stays connected
// well past two heartbeat intervals.
func TestMessagesCountAsLife(t *testing.T) {
	ts := newTestServer(t, harborView, Config{Heartbeat: time.Second})
	c := ts.connect(t, "anna-phone")
	pings := 0
	c.ws.SetPingHandler(func(string) error {
		pings++
		return c.ws.WriteJSON(map[string]any{"type": "ping", "ref": pings})
	})
	// Reading runs the handler; each server ping brings one pong. The
	// third ping comes three intervals after the connect.
	for ref := 1; ref <= 3; ref++ {
		if m := c.expect("pong"); m["ref"] != float64(ref) {
			t.Fatalf("pong %v, want ref %d", m, ref)
		}
	}
}

// TestSlowConsumerIsClosed: a client that keeps asking and never reads the
// replies fills its socket, then its send queue, and is closed; the others
// are served on. Only a socket that takes no more makes a slow consumer: a
// burst of replies the socket can take is written as it comes. The close
// frame (4008) reaches the client only if its buffers have room for it;
// here they are full, so the connection may just end.
func TestSlowConsumerIsClosed(t *testing.T) {
	cfg := unlimited() // the message rate limit must not answer first
	cfg.SendQueue = 8
	ts := newNodesWith(t, harborView, cfg, 1, nodeOptions{sendBuffer: 8 << 10})
	slow := ts.connect(t, "anna-phone")
	other := ts.connect(t, "bram-phone")
	before := testutil.ToFloat64(ts.hub.metrics.slowConsumers)
	ping := []byte(`{"type":"ping","ref":"0123456789012345678901234567890123456789012345678901234567890123456789"}`)
	deadline := time.Now().Add(readTimeout)
	for time.Now().Before(deadline) {
		_ = slow.ws.SetWriteDeadline(time.Now().Add(time.Second))
		if err := slow.ws.WriteMessage(websocket.TextMessage, ping); err != nil {
			break // the server closed us
		}
	}
	for testutil.ToFloat64(ts.hub.metrics.slowConsumers) != before+1 {
		if time.Now().After(deadline.Add(readTimeout)) {
			t.Fatalf("slow consumers counted: %v, want %v", testutil.ToFloat64(ts.hub.metrics.slowConsumers), before+1)
		}
		time.Sleep(10 * time.Millisecond) // the server's close is on its own goroutine
	}
	// What the client reads is whole replies, then the end of the connection.
	_ = slow.ws.SetReadDeadline(time.Now().Add(readTimeout))
	for {
		_, data, err := slow.ws.ReadMessage()
		if err == nil {
			if !strings.Contains(string(data), `"pong"`) && !strings.Contains(string(data), `"directory"`) {
				t.Fatalf("unexpected %s", data)
			}
			continue
		}
		// A close frame, or the connection cut (EOF, reset); a frame
		// broken in the middle or a timeout fails.
		var ce *websocket.CloseError
		switch {
		case asCloseError(err, &ce):
			if ce.Code != int(CloseSlow) && ce.Code != websocket.CloseAbnormalClosure {
				t.Fatalf("closed with %d, want %d (or the connection cut)", ce.Code, CloseSlow)
			}
		case errors.Is(err, syscall.ECONNRESET):
		default:
			t.Fatalf("the connection ended with %v, want close %d or the connection cut", err, CloseSlow)
		}
		break
	}
	other.pingPong()
}

// TestSlowDoorStationEndsCallFailed: a door station closed as a slow
// consumer while its call rings ends the call failed, as the call log
// records it; timeout is only for a party that stopped answering
// heartbeats.
func TestSlowDoorStationEndsCallFailed(t *testing.T) {
	records := make(chan CallRecord, 1)
	cfg := unlimited() // the message rate limit must not answer first
	cfg.SendQueue = 8
	cfg.OnCallEnded = func(r CallRecord) { records <- r }
	ts := newNodesWith(t, harborView, cfg, 1, nodeOptions{sendBuffer: 8 << 10})
	ts.connect(t, "dirk-phone")
	door := ts.connect(t, "front-door")
	callID, _ := door.call("102")
	// Ask and never read, until the server closes the door station.
	ping := []byte(`{"type":"ping","ref":"0123456789012345678901234567890123456789012345678901234567890123456789"}`)
	deadline := time.Now().Add(readTimeout)
	for time.Now().Before(deadline) {
		_ = door.ws.SetWriteDeadline(time.Now().Add(time.Second))
		if err := door.ws.WriteMessage(websocket.TextMessage, ping); err != nil {
			break
		}
		if len(records) > 0 {
			break
		}
	}
	select {
	case r := <-records:
		if r.CallID != CallID(callID) || r.Reason != EndFailed {
			t.Fatalf("call log %+v, want %s ended %s", r, callID, EndFailed)
		}
	case <-time.After(readTimeout):
		t.Fatal("the call did not end after its door station was closed as a slow consumer")
	}
	if n := testutil.ToFloat64(ts.hub.metrics.slowConsumers); n != 1 {
		t.Fatalf("slow consumers counted: %v, want 1", n)
	}
}

// TestCloseWritesWhatWasQueued: replies queued behind a busy writer (the
// client did not read for a while) when the server closes the connection
// (here replaced, 4009) are written before the close frame: a close never
// loses a message sent before it, as the ended of a draining node.
func TestCloseWritesWhatWasQueued(t *testing.T) {
	cfg := unlimited()
	cfg.SendQueue = 1 << 16 // a backlog here, not a slow consumer
	ts := newNodesWith(t, harborView, cfg, 1, nodeOptions{sendBuffer: 8 << 10})
	m := ts.hub.metrics
	old := ts.connect(t, "anna-phone")
	// Ask without reading: the replies fill the sockets' buffers (some
	// hundred KB), and the rest waits in the queue.
	const n = 2000
	pad := strings.Repeat("r", 200)
	for i := range n {
		old.send(map[string]any{"type": "ping", "ref": fmt.Sprint(i, pad)})
	}
	waitMetric(t, "pings handled", counter(m.messagesIn.WithLabelValues(TypePing)), n)
	if testutil.ToFloat64(m.messagesOut.WithLabelValues(TypePong)) == n {
		t.Fatal("every pong was written before the close: the test made no backlog")
	}
	ts.connect(t, "anna-phone")
	for i := range n {
		if p := old.expect("pong"); p["ref"] != fmt.Sprint(i, pad) {
			t.Fatalf("pong %d: ref %.20v…", i, p["ref"])
		}
	}
	old.expectClose(int(CloseReplaced))
}

func TestDirectoryPush(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door := ts.connect(t, "front-door")
	first := door.expect("directory")
	if got := entries(first); len(got) != 2 || got["101"] != "Jansen" || got["102"] != "De Vries" {
		// 103 has only a pending user: not shown.
		t.Fatalf("directory %v", got)
	}
	// A change reaches the door station within a second.
	site, err := ts.store.SiteByName(context.Background(), "", "Harbour View")
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.store.Apply(context.Background(), directory.PutEntry{Entry: directory.Entry{Site: site.ID, Number: "102", Name: "De Vries-Smit"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second := door.expect("directory")
	if got := entries(second); got["102"] != "De Vries-Smit" {
		t.Fatalf("directory after change %v", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("directory change took %v to arrive, want under 1 s", d)
	}
}

// TestDirectoryPushOnlyToDoorStations: a change of a site's directory is
// pushed to its door stations, never to its apps and monitors, which have
// no use for it (and a site has thousands of them).
func TestDirectoryPushOnlyToDoorStations(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	phone := ts.connect(t, "anna-phone")
	monitor := ts.connect(t, "hall-101")
	door := ts.connect(t, "front-door")
	door.expect("directory")
	site, err := ts.store.SiteByName(context.Background(), "", "Harbour View")
	if err != nil {
		t.Fatal(err)
	}
	// Two changes, one after the other: the hub pushes a change to every
	// connection before it takes the next, so the second push reaching
	// the door station means the first went wherever it was going.
	for _, name := range []string{"De Vries-Smit", "De Vries"} {
		if err := ts.store.Apply(context.Background(), directory.PutEntry{Entry: directory.Entry{Site: site.ID, Number: "102", Name: name}}); err != nil {
			t.Fatal(err)
		}
		for entries(door.expect("directory"))["102"] != name {
		}
	}
	for _, c := range []*client{phone, monitor} {
		c.send(map[string]any{"type": "ping"})
		if m := c.next(); m["type"] != "pong" {
			t.Fatalf("%s: got %v before its pong; want no directory push to an app or monitor", c.name, m)
		}
	}
}

func entries(m map[string]any) map[string]string {
	out := map[string]string{}
	for _, e := range m["entries"].([]any) {
		e := e.(map[string]any)
		out[e["call_id"].(string)] = e["name"].(string)
	}
	return out
}

func TestRevokedDeviceIsClosed(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	c := ts.connect(t, "bram-phone")
	if err := ts.store.Apply(context.Background(), directory.DeleteDevice{ID: directory.DeviceID(c.welcome["device_id"].(string))}); err != nil {
		t.Fatal(err)
	}
	c.expectClose(int(CloseRevoked))
	ws := ts.dialRaw(t, nil)
	_ = ws.WriteJSON(map[string]any{"type": "hello", "token": ts.tokens["bram-phone"], "version": 1})
	expectClose(t, ws, int(CloseUnauthorized))
}

// TestRenamedDeviceReconnects: a device whose name changed is asked to
// reconnect (4011), so that its rings and answers carry the new name: a
// door station renamed "Front gate" rings as "Front gate" from then on.
func TestRenamedDeviceReconnects(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	dirk := ts.connect(t, "dirk-phone")
	door := ts.connect(t, "front-door")
	ctx := context.Background()
	d, err := ts.store.Device(ctx, directory.DeviceID(door.welcome["device_id"].(string)))
	if err != nil {
		t.Fatal(err)
	}
	d.Name = "Front gate"
	if err := ts.store.Apply(ctx, directory.PutDevice{Device: d}); err != nil {
		t.Fatal(err)
	}
	door.expectClose(int(CloseReconfigured))
	door = ts.connect(t, "front-door")
	door.call("102")
	if from := dirk.expect("ring")["from"].(map[string]any); from["name"] != "Front gate" {
		t.Fatalf("ring from %v, want the door station's new name", from)
	}
}

func TestDrainLetsActiveCallsFinish(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	devices["anna-phone"].send(map[string]any{"type": "answer", "call_id": callID})
	devices["anna-phone"].expect("answered")
	door.expect("answered")
	// Drain the node that owns the call (the door station's); the idle
	// device is one connected to that node.
	owner := ts.nodeOf("front-door")
	idle := idleOn(t, ts, owner)

	drained := drain(ts.hubs[owner])
	idle.expectClose(int(CloseGoingAway))
	// The door station is busy with its call, not told the node drains.
	door.send(map[string]any{"type": "call", "to": "101"})
	door.expectError("busy")
	// No new connections while draining.
	if _, resp, err := websocket.DefaultDialer.Dial(ts.urlOf(owner), nil); err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("dial while draining: %v", err)
	}
	// The active call goes on and can hang up.
	devices["anna-phone"].send(map[string]any{"type": "hangup", "call_id": callID})
	door.expect("ended")
	drained(t, "after the last call ended")
	door.expectClose(int(CloseGoingAway))
}

// drain starts draining node, as SIGTERM does, and returns a wait for the
// drain to finish, failing the test (the drain did not finish, when) if it
// does not within readTimeout.
func drain(node *Hub) func(t *testing.T, when string) {
	done := make(chan struct{})
	go func() {
		node.Drain(context.Background())
		close(done)
	}()
	return func(t *testing.T, when string) {
		t.Helper()
		select {
		case <-done:
		case <-time.After(readTimeout):
			t.Fatalf("the drain did not finish %s", when)
		}
	}
}

// idleOn connects a device that takes part in no call of harborView's
// (one not rung for 101) on node.
func idleOn(t *testing.T, ts *testServer, node int) *client {
	t.Helper()
	for _, n := range []string{"dirk-phone", "olga-phone", "other-door", "garage-door", "eve-phone"} {
		if ts.nodeOf(n) == node {
			return ts.connect(t, n)
		}
	}
	t.Fatal("no idle device on the node; change the names")
	return nil
}

// TestDrainWithoutCalls: a node with no call going closes its connections
// with 4012 and finishes draining at once, without waiting for a call to
// end or for its deadline (SIGTERM on an idle node exits at once).
func TestDrainWithoutCalls(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	idle := ts.connect(t, "anna-phone")
	node := ts.hubs[ts.nodeOf("anna-phone")]
	drained := drain(node)
	idle.expectClose(int(CloseGoingAway))
	drained(t, "on a node without calls")
}

// TestDrainKeepsRingingDevices: a drain lets a call that still rings go on
// as it lets an answered one: the devices ringing for it are busy, not
// closed with 4012, and one of them can still answer.
func TestDrainKeepsRingingDevices(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	owner := ts.nodeOf("front-door")
	busy := ts.hubs[owner].busy()
	for _, n := range ringers {
		if id := directory.DeviceID(devices[n].welcome["device_id"].(string)); !busy[id] {
			t.Errorf("%s rings for the call, but is not busy: a drain would close it", n)
		}
	}
	idle := idleOn(t, ts, owner)
	drained := drain(ts.hubs[owner])
	idle.expectClose(int(CloseGoingAway))
	anna := devices["anna-phone"]
	anna.send(map[string]any{"type": "answer", "call_id": callID})
	anna.expect("answered")
	door.expect("answered")
	anna.send(map[string]any{"type": "hangup", "call_id": callID})
	door.expect("ended")
	drained(t, "after the last call ended")
}

// TestDrainDeadlineEndsCalls: when the drain deadline comes, the calls
// still going end failed, each party told (ended failed, then 4012), the
// call log records them, and none is left waiting in a rejoin window for
// parties that cannot come back to this node.
func TestDrainDeadlineEndsCalls(t *testing.T) {
	var mu sync.Mutex
	var records []CallRecord
	ts := newTestServer(t, harborView, Config{OnCallEnded: func(r CallRecord) {
		mu.Lock()
		records = append(records, r)
		mu.Unlock()
	}})
	door, anna, callID := answered(t, ts)
	owner := ts.nodeOf("front-door")
	deadline, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	ts.hubs[owner].Drain(deadline)
	for _, p := range []*client{door, anna} {
		if e := p.expect("ended"); e["reason"] != "failed" || e["call_id"] != callID {
			t.Fatalf("%s: ended %v", p.name, e)
		}
		if ts.nodeOf(p.name) == owner {
			p.expectClose(int(CloseGoingAway))
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if n := ts.hubs[owner].ActiveCalls(); n != 0 || len(records) != 1 || records[0].Reason != EndFailed {
		t.Fatalf("after the drain: %d active calls, call log %+v", n, records)
	}
}

// TestDecodeInbound checks the decoder against every field it knows.
func TestDecodeInbound(t *testing.T) {
	m, err := DecodeInbound([]byte(`{"type":"open_door","call_id":"c1","relay":"3","ref":{"n":1},"to":101}`))
	if err != nil {
		t.Fatal(err)
	}
	if m.Relay != 3 || m.To != "101" || m.CallID != "c1" || string(m.Ref) != `{"n":1}` {
		t.Fatalf("decoded %+v", m)
	}
	if m, err := DecodeInbound([]byte(`{"type":"open_door","relay":16}`)); err != nil || m.Relay != 16 {
		t.Errorf("relay 16: %+v, %v", m, err)
	}
	for _, bad := range []string{``, `null`, `{}`, `{"type":"x","relay":0}`, `{"type":"x","relay":17}`, `{"type":"x","relay":"one"}`, `{"type":"x","to":{}}`} {
		if _, err := DecodeInbound([]byte(bad)); err == nil {
			t.Errorf("%s: decoded without error", bad)
		}
	}
	// A ref of 256 bytes as sent is taken; one of 257 is not.
	ref := `"` + strings.Repeat("r", maxRefBytes-2) + `"`
	if m, err := DecodeInbound([]byte(`{"type":"ping","ref":` + ref + `}`)); err != nil || string(m.Ref) != ref {
		t.Errorf("a ref of %d bytes: %s, %v", len(ref), m.Ref, err)
	}
	if _, err := DecodeInbound([]byte(`{"type":"ping","ref":"r` + ref[1:] + `}`)); err == nil {
		t.Errorf("a ref of %d bytes decoded without error", len(ref)+1)
	}
	// Replies keep a ref exactly as the client wrote it.
	var reply map[string]json.RawMessage
	if err := json.Unmarshal(encode(Pong{Type: TypePong, Ref: m.Ref}), &reply); err != nil || string(reply["ref"]) != `{"n":1}` {
		t.Fatalf("ref not echoed verbatim: %s (%v)", reply["ref"], err)
	}
}

// segmentConn holds what the client writes while hold is set and sends it
// in one write on release, so that several WebSocket frames reach the
// server in one TCP segment (and one read of its buffered reader).
type segmentConn struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	buf  []byte
}

func (s *segmentConn) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold {
		s.buf = append(s.buf, p...)
		return len(p), nil
	}
	return s.Conn.Write(p)
}

func (s *segmentConn) release(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hold = false
	if _, err := s.Conn.Write(s.buf); err != nil {
		t.Fatal(err)
	}
	s.buf = nil
}

// TestFramesInOneSegment: frames that arrive together, and so sit in the
// server's buffered reader after the first is read, are each answered at
// once — an idle reader waits on its socket only when that buffer is
// empty. The heartbeat is long, so a frame left waiting would show.
func TestFramesInOneSegment(t *testing.T) {
	ts := newTestServer(t, harborView, Config{Heartbeat: time.Minute})
	var seg *segmentConn
	dialer := websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		seg = &segmentConn{Conn: conn}
		return seg, err
	}}
	ws, _, err := dialer.Dial(ts.urlOf(0), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	c := &client{t: t, ws: ws, name: "anna-phone"}

	// hello and a ping together: the ping is buffered when the handshake
	// (on another goroutine) hands the connection to its reader.
	seg.mu.Lock()
	seg.hold = true
	seg.mu.Unlock()
	c.send(map[string]any{"type": "hello", "token": ts.tokens["anna-phone"], "version": 1})
	c.send(map[string]any{"type": "ping", "ref": 0})
	seg.release(t)
	c.expect("welcome")
	if m := c.expect("pong"); m["ref"] != 0.0 {
		t.Fatalf("pong %v, want ref 0", m)
	}

	// Three pings in one segment, on an idle connection.
	seg.mu.Lock()
	seg.hold = true
	seg.mu.Unlock()
	for ref := 1; ref <= 3; ref++ {
		c.send(map[string]any{"type": "ping", "ref": ref})
	}
	seg.release(t)
	for ref := 1; ref <= 3; ref++ {
		if m := c.expect("pong"); m["ref"] != float64(ref) {
			t.Fatalf("pong %v, want ref %d", m, ref)
		}
	}
}

// TestNextPing: pings fall on the grid and are never further apart than the
// heartbeat, nor closer than the heartbeat less one grid step.
func TestNextPing(t *testing.T) {
	base := time.Date(2026, 11, 22, 18, 0, 0, 0, time.UTC)
	for i := range 1000 {
		now := base.Add(time.Duration(i) * 7919 * time.Microsecond)
		d := nextPing(now, 20*time.Second)
		if d > 20*time.Second || d <= 20*time.Second-pingGrid {
			t.Fatalf("at %v: next ping in %v, want (%v, 20s]", now, d, 20*time.Second-pingGrid)
		}
		if at := now.Add(d); at.Truncate(pingGrid) != at {
			t.Fatalf("at %v: ping at %v is off the %v grid", now, at, pingGrid)
		}
	}
	if d := nextPing(base.Add(time.Millisecond), pingGrid/2); d != pingGrid/2 {
		t.Fatalf("a heartbeat under the grid: next ping in %v, want %v", d, pingGrid/2)
	}
}

// TestHandshakeFailureReasons: connections that end before welcome are
// counted by a named reason, also when the client just goes away (peer),
// which once counted under an empty label.
func TestHandshakeFailureReasons(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	failures := ts.hubs[0].metrics.handshakeFailures
	_ = ts.dialNode(t, 0, nil).Close() // gone before its hello
	bad := ts.dialNode(t, 0, nil)
	_ = bad.WriteJSON(map[string]any{"type": "hello", "token": "no such token", "version": 1})
	expectClose(t, bad, int(CloseUnauthorized))
	for deadline := time.Now().Add(readTimeout); testutil.ToFloat64(failures.WithLabelValues("peer")) != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("peer: %v handshake failures counted, want 1", testutil.ToFloat64(failures.WithLabelValues("peer")))
		}
	}
	if n := testutil.ToFloat64(failures.WithLabelValues(CloseUnauthorized.String())); n != 1 {
		t.Errorf("unauthorized: %v, want 1", n)
	}
	// A hello over 64 KiB: the library closes with 1009, and the failure
	// is counted as that, not as the client going away.
	big := ts.dialNode(t, 0, nil)
	_ = big.WriteMessage(websocket.TextMessage, []byte(`{"type":"hello","pad":"`+strings.Repeat("x", 65<<10)+`"}`))
	expectClose(t, big, websocket.CloseMessageTooBig)
	waitMetric(t, "handshake failures (message too big)", counter(failures.WithLabelValues(CloseTooBig.String())), 1)
	if n := testutil.ToFloat64(failures.WithLabelValues("peer")); n != 1 {
		t.Errorf("peer: %v, want 1", n)
	}
	if n := testutil.ToFloat64(failures.WithLabelValues("")); n != 0 {
		t.Errorf("%v handshake failures counted without a reason", n)
	}
}

// TestConnSize: every idle device holds one Conn, and the Go allocator
// rounds it up to a size class: at 512 bytes it takes 512, at 513 it takes
// 576. The monitoring issue bounds memory per idle connection; a field
// added past the class costs each of them 64 bytes (a creation time as a
// time.Time did, and is an int64 since). Move or shrink fields instead, or
// raise this bound knowingly (docs/benchmarks.md, "Memory per idle
// connection").
func TestConnSize(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 512 {
		t.Fatalf("Conn is %d bytes: over the 512-byte size class", n)
	}
}

// TestHelloDeadlineEndsWithWelcome: the hello timeout bounds the handshake
// only; a connection that reads its next message long after it (here at
// its first heartbeat ping) is served as any other.
func TestHelloDeadlineEndsWithWelcome(t *testing.T) {
	ts := newTestServer(t, harborView, Config{HelloTimeout: 200 * time.Millisecond, Heartbeat: time.Second})
	c := ts.connect(t, "anna-phone")
	// The first ping comes one heartbeat after the welcome, well past the
	// hello timeout; the client answers it and sends a ping of its own.
	c.ws.SetPingHandler(func(data string) error {
		if err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(readTimeout)); err != nil {
			return err
		}
		return c.ws.WriteJSON(map[string]any{"type": "ping", "ref": "late"})
	})
	if m := c.expect("pong"); m["ref"] != "late" {
		t.Fatalf("pong %v, want ref late", m)
	}
}

// TestFrameHeaderSizes: a frame written behind frameHeader (writeInline's
// frames) is read by a WebSocket client as one message of its length at
// each edge of the length's encoding (RFC 6455 §5.2: in the first byte up
// to 125, in 16 bits up to 65535, in 64 bits beyond), so that no ring or
// answer of an unlucky size breaks the device's connection.
func TestFrameHeaderSizes(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 127, 1<<16 - 1, 1 << 16, 1<<16 + 1}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for i, n := range sizes {
			frame := []byte(strings.Repeat(string(rune('a'+i)), n))
			if _, err := ws.UnderlyingConn().Write(append(frameHeader(nil, n), frame...)); err != nil {
				return
			}
		}
		_, _, _ = ws.ReadMessage() // until the client has read them and closes
	}))
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	for i, n := range sizes {
		_ = ws.SetReadDeadline(time.Now().Add(readTimeout))
		kind, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("a frame of %d bytes: %v", n, err)
		}
		if kind != websocket.TextMessage || string(data) != strings.Repeat(string(rune('a'+i)), n) {
			t.Fatalf("a frame of %d bytes read as %d bytes of kind %d", n, len(data), kind)
		}
	}
}

// TestCloseReasons: each close code and the reason its close frame says,
// as docs/protocol.md §6 lists them. The reason is also the label of
// foyer_signaling_disconnects_total and …_handshake_failures_total
// (docs/operations.md), which the alerts and the dashboard in configs/
// name; 1009's is only that label, the WebSocket library sending its close.
func TestCloseReasons(t *testing.T) {
	for code, want := range map[int]string{
		1009: "message too big",
		4001: "unauthorized",
		4002: "hello timeout",
		4003: "protocol error",
		4004: "unsupported version",
		4008: "slow consumer",
		4009: "replaced by a newer connection",
		4010: "revoked",
		4011: "reconfigured",
		4012: "going away",
		4013: "heartbeat timeout",
		4014: "internal error",
	} {
		if got := CloseCode(code).String(); got != want {
			t.Errorf("close %d says %q, want %q", code, got, want)
		}
	}
}
