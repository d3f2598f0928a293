package signaling

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// TestIdleConnectionsHoldNoGoroutine: an idle connection's socket waits in
// the idle poller, with no goroutine of its own, also after it has answered
// heartbeat pings (its pongs are taken between messages, and count as
// signs of life); the connections stay up and answer at once.
func TestIdleConnectionsHoldNoGoroutine(t *testing.T) {
	ts := newTestServer(t, harborView, Config{Heartbeat: time.Second})
	names := []string{"anna-phone", "anna-tablet", "bram-phone", "hall-101", "dirk-phone", "olga-phone", "front-door", "garage-door"}
	type frame struct {
		data []byte
		err  error
	}
	inbox := make([]chan frame, len(names))
	clients := make([]*client, len(names))
	for i, name := range names {
		clients[i] = ts.connect(t, name)
		inbox[i] = make(chan frame, 16)
		// Read all the time, as an app does: gorilla answers each ping
		// while reading.
		go func(ws *websocket.Conn, in chan<- frame) {
			_ = ws.SetReadDeadline(time.Time{}) // no deadline: the heartbeat is what ends a connection here
			for {
				_, data, err := ws.ReadMessage()
				in <- frame{data, err}
				if err != nil {
					return
				}
			}
		}(clients[i].ws, inbox[i])
	}
	time.Sleep(2500 * time.Millisecond) // two heartbeats: two pings answered by each

	reading := func() int {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		return strings.Count(string(buf), "signaling.(*Conn).read(")
	}
	// A connection reads its pong each second, for a moment: the moment
	// when none does comes at once on a quiet machine. A reader kept after
	// each message (for a second, say) never lets it come, however long
	// the wait; the wait is long for a machine busy with other tests.
	n := reading()
	for deadline := time.Now().Add(readTimeout); n > 0 && time.Now().Before(deadline); n = reading() {
		time.Sleep(10 * time.Millisecond) // a pong being taken just now
	}
	if n > 0 {
		t.Fatalf("%d of %d idle connections hold a reading goroutine after their pongs", n, len(names))
	}
	for i, c := range clients {
		c.send(map[string]any{"type": "ping", "ref": i})
		for {
			select {
			case f := <-inbox[i]:
				if f.err != nil {
					t.Fatalf("%s: %v", names[i], f.err)
				}
				if !strings.Contains(string(f.data), `"pong"`) {
					continue // a directory push
				}
			case <-time.After(readTimeout):
				t.Fatalf("%s: no pong", names[i])
			}
			break
		}
	}
}

// TestIdleReadersAreReused: a reader goroutine that has read a readied
// connection until it parked waits for the next readied connection
// instead of ending, so a message is read on a goroutine whose stack has
// grown already; at most maxIdleReaders wait.
func TestIdleReadersAreReused(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	waiting := func() int {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		n := 0
		for g := range strings.SplitSeq(string(buf), "\n\n") {
			if strings.Contains(g, "[chan receive") && strings.Contains(g, "signaling.(*idlePoller).reader(") {
				n++
			}
		}
		return n
	}
	names := []string{"anna-phone", "anna-tablet", "bram-phone", "hall-101", "front-door"}
	for round := range 3 {
		for i, name := range names {
			c := ts.connect(t, name)
			waitParked(t, name) // so that the ping is the poller's to hand over
			c.send(map[string]any{"type": "ping", "ref": round*10 + i})
			if m := c.expect("pong"); m["ref"] != float64(round*10+i) {
				t.Fatalf("%s: got %v", name, m)
			}
			_ = c.ws.Close()
		}
	}
	deadline := time.Now().Add(readTimeout)
	n := waiting()
	for ; n == 0 && time.Now().Before(deadline); n = waiting() {
		time.Sleep(10 * time.Millisecond)
	}
	if n < 1 || n > maxIdleReaders {
		t.Fatalf("%d reader goroutines wait for a readied connection, want 1 to %d", n, maxIdleReaders)
	}
}

// waitParked waits until the named device's connection is parked with the
// idle poller.
func waitParked(t *testing.T, name string) {
	t.Helper()
	p := idle()
	deadline := time.Now().Add(readTimeout)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		parked := false
		for _, c := range p.conns {
			if c.device.Name == name && !c.isClosing() {
				parked = true
			}
		}
		p.mu.Unlock()
		if parked {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: the connection did not park", name)
}

// TestParkArmsWithoutAllocating: parking a connection arms its socket in
// the poller's epoll set, so that its next bytes are an event naming it,
// and allocates nothing (every connection parks after every message it
// reads). Under the race detector, which drops a share of what sync.Pool
// keeps, less than one allocation a park on average.
func TestParkArmsWithoutAllocating(t *testing.T) {
	peer, _, raw := tcpPair(t)
	p, err := newIdlePoller() // not running: the test reads its events
	if err != nil {
		t.Fatal(err)
	}
	defer p.file.Close()
	c := &Conn{raw: raw, done: make(chan struct{})}

	want := 0.0
	if raceEnabled {
		want = 1
	}
	if a := testing.AllocsPerRun(200, func() {
		if !p.park(c) {
			t.Fatal("not parked")
		}
	}); a > want {
		t.Errorf("parking allocates %v times, want at most %v", a, want)
	}
	if _, err := peer.Write([]byte{0x8a}); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 4)
	n, err := unix.EpollWait(p.epfd, events, 5000)
	if err != nil || n != 1 || uint32(events[0].Fd) != c.pollID || events[0].Events&unix.EPOLLIN == 0 {
		t.Fatalf("epoll_wait = %d, %v, %+v; want one readable event for poll ID %d", n, err, events[:max(n, 0)], c.pollID)
	}
}
