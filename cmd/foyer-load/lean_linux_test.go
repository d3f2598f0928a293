package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"
)

// TestLeanClient holds devices with the lean client against a real server
// whose heartbeat is 1 s: they connect, answer pings (the server closes a
// connection silent for 2 intervals), come back with resume tokens after a
// drop, a bad token is refused with its close code on every attempt, and
// the server's drain is counted as lost connections.
func TestLeanClient(t *testing.T) {
	const devices = 14
	srv, clients := seededClients(t, devices, "FOYER_SIGNALING_HEARTBEAT=1s")
	fleet, err := newLeanFleet(clients, 4, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.stop)
	res := fleet.connectAll(false, time.Time{})
	if len(res.took) != devices || len(res.errors) != 0 {
		t.Fatalf("connected %d of %d, errors %v", len(res.took), devices, res.errors)
	}

	// Three heartbeat intervals: a device that did not answer pings would
	// be closed after two.
	time.Sleep(3500 * time.Millisecond)
	if lost := fleet.lostCounts(); len(lost) != 0 {
		t.Fatalf("connections lost while idle: %v", lost)
	}

	drop := time.Now()
	fleet.dropAll()
	res = fleet.connectAll(true, drop)
	if len(res.took) != devices || len(res.errors) != 0 {
		t.Fatalf("back with resume tokens: %d of %d, errors %v", len(res.took), devices, res.errors)
	}
	for _, d := range res.took {
		if time.Duration(d) > time.Since(drop) {
			t.Fatalf("a connection back %v after the drop, longer than the whole reconnect", time.Duration(d))
		}
	}
	if lost := fleet.lostCounts(); len(lost) != 0 {
		t.Fatalf("dropped connections counted as lost: %v", lost)
	}

	bad := []*client{{dev: device{Name: "nobody", Token: "fyr_not-a-token"}, src: net.IPv4(127, 0, 0, 2), url: srv.signal}}
	badFleet, err := newLeanFleet(bad, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(badFleet.stop)
	res = badFleet.connectAll(false, time.Time{})
	if len(res.took) != 0 || len(res.errors) != 1 {
		t.Fatalf("a bad token: connected %d, errors %v", len(res.took), res.errors)
	}
	for class, n := range res.errors {
		if class != "welcome: close 4001" || n != dialAttempts {
			t.Errorf("a bad token: %d × %q, want %d × \"welcome: close 4001\"", n, class, dialAttempts)
		}
	}

	// The server drains: it closes every idle connection with 4012.
	if err := srv.proc.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		lost := fleet.lostCounts()
		if lost["read: close 4012"] == devices {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the server's drain, lost %v; want %d × \"read: close 4012\"", lost, devices)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestServerFrame: whole frames, frames cut anywhere, the 16-bit length,
// and frames no server may send.
func TestServerFrame(t *testing.T) {
	long := make([]byte, 300)
	frames := [][]byte{
		{0x81, 3, 'a', 'b', 'c'},
		{0x89, 0},
		append([]byte{0x81, 126, 1, 44}, long...),
	}
	var stream []byte
	for _, f := range frames {
		stream = append(stream, f...)
	}
	for cut := range len(stream) {
		var got [][]byte
		buf := append([]byte{}, stream[:cut]...)
		rest := stream[cut:]
		for {
			op, payload, n, ok := serverFrame(buf)
			if !ok {
				if n < 0 {
					t.Fatalf("cut at %d: a good stream refused", cut)
				}
				if len(rest) == 0 {
					break
				}
				buf, rest = append(buf, rest...), nil
				continue
			}
			got = append(got, append([]byte{op}, payload...))
			buf = buf[n:]
		}
		if len(got) != 3 || got[0][0] != 1 || string(got[0][1:]) != "abc" || got[1][0] != 9 || len(got[1]) != 1 || len(got[2]) != 301 {
			t.Fatalf("cut at %d: frames %q", cut, got)
		}
	}
	for _, bad := range [][]byte{{0x81, 0x83, 1, 2, 3, 4, 'a', 'b', 'c'}, {0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}} {
		if _, _, n, ok := serverFrame(bad); ok || n >= 0 {
			t.Errorf("% x: accepted, want refused", bad)
		}
	}
}

// TestLeanRetryFailingAtOnce: an attempt that fails before it has a socket
// (here bind, from an address the host does not have) is retried after its
// backoff and counted on every attempt; a retry that fails the same way
// must not be lost, or connectAll never returns.
func TestLeanRetryFailingAtOnce(t *testing.T) {
	bad := []*client{{dev: device{Name: "nowhere", Token: "fyr_x"}, src: net.IPv4(192, 0, 2, 1), url: "ws://127.0.0.1:1/signal"}}
	fleet, err := newLeanFleet(bad, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.stop)
	got := make(chan connectResults, 1)
	go func() { got <- fleet.connectAll(false, time.Time{}) }()
	select {
	case res := <-got:
		if len(res.took) != 0 || len(res.errors) != 1 || res.errors["dial: no free local port"] != dialAttempts {
			t.Fatalf("connected %d, errors %v; want %d × \"dial: no free local port\"", len(res.took), res.errors, dialAttempts)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("connectAll did not return: a retry that failed at once was lost")
	}
}

// TestLeanLostAsLibrary: a server that dies (no close frame, its sockets
// closed by the kernel) ends the lean client's connections with the class
// the library client reports for the same end, so that reports of both
// clients can be compared.
func TestLeanLostAsLibrary(t *testing.T) {
	srv, clients := seededClients(t, idSize) // one ID: devices come 7 at a time
	lib := clients[0]
	if _, err := lib.connect(context.Background(), lib.dev.Token, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lib.drop)
	fleet, err := newLeanFleet(clients[1:2], 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.stop)
	if res := fleet.connectAll(false, time.Time{}); len(res.took) != 1 {
		t.Fatalf("lean: connected %d of 1, errors %v", len(res.took), res.errors)
	}

	if err := srv.proc.Process.Kill(); err != nil { // the server we started
		t.Fatal(err)
	}
	select {
	case <-lib.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the library client did not see the server die")
	}
	want := lib.lost
	deadline := time.Now().Add(10 * time.Second)
	for {
		lost := fleet.lostCounts()
		if len(lost) == 1 && lost[want] == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server died: lean lost %v, the library client %q", lost, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLeanCommandsAfterEvents: a reconnect's drop and connect can run in
// the same drain of the loop's commands, and the connect's new sockets
// take the numbers of the sockets the drop closed. An event that the same
// epoll_wait returned for an old socket after the wake-up must not reach
// the new socket that has its number. A stand-in server keeps the loop
// busy answering pings while the drop and the connect are queued and one
// old connection is reset.
func TestLeanCommandsAfterEvents(t *testing.T) {
	var mu sync.Mutex
	var conns []*websocket.Conn
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		if _, _, err := ws.ReadMessage(); err != nil { // hello
			ws.Close()
			return
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"welcome","resume_token":"r"}`))
		mu.Lock()
		conns = append(conns, ws)
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, ws := range conns {
			ws.Close()
		}
	})
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	clients := []*client{
		{dev: device{Name: "a", Token: "a"}, src: net.IPv4(127, 0, 0, 2), url: url},
		{dev: device{Name: "b", Token: "b"}, src: net.IPv4(127, 0, 0, 3), url: url},
	}
	fleet, err := newLeanFleet(clients, 2, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.stop)
	if res := fleet.connectAll(false, time.Time{}); len(res.took) != 2 {
		t.Fatalf("connected %d of 2, errors %v", len(res.took), res.errors)
	}
	var fds [2]int
	fleet.run(func() { fds[0], fds[1] = fleet.conns[0].fd, fleet.conns[1].fd })
	mu.Lock()
	serverConns := append([]*websocket.Conn{}, conns...)
	mu.Unlock()
	if len(serverConns) != 2 {
		t.Fatalf("the server holds %d connections, want 2", len(serverConns))
	}
	// Which server connection is the lean connection a: the one whose
	// remote address is a's source.
	srvA, srvB := serverConns[0], serverConns[1]
	if srvA.RemoteAddr().(*net.TCPAddr).IP.String() != "127.0.0.2" {
		srvA, srvB = srvB, srvA
	}

	// Keep the loop busy: pings to b faster than it answers them, with
	// room for many in b's socket, so that b's event does not end.
	if err := unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20); err != nil {
		t.Fatal(err)
	}
	stopPump := make(chan struct{})
	pumped := make(chan struct{})
	pings := make([]byte, 64<<10)
	for i := 0; i < len(pings); i += 2 {
		pings[i] = 0x89
	}
	go func() {
		defer close(pumped)
		for {
			select {
			case <-stopPump:
				return
			default:
			}
			if _, err := srvB.UnderlyingConn().Write(pings); err != nil {
				return
			}
		}
	}()
	time.Sleep(200 * time.Millisecond) // the loop is in b's event by now

	// The reconnect's drop, then its connect, queued behind the busy loop:
	// the connect waits on the full channel and is taken in the same drain,
	// as it is when the loop's thread loses its core after running the
	// drop and the worker's goroutine sends the connect meanwhile.
	res := make(chan connectResults, 1)
	go fleet.dropAll()
	waitFor(t, "the drop queued", func() bool { return len(fleet.cmds) == 1 && readable(fleet.wake) })
	go func() { res <- fleet.connectAll(false, time.Time{}) }()
	time.Sleep(100 * time.Millisecond) // the connect blocks sending on the full channel
	// a's socket is reset: its event is ready after the wake-up.
	_ = srvA.UnderlyingConn().(*net.TCPConn).SetLinger(0)
	_ = srvA.UnderlyingConn().Close()
	waitFor(t, "a reset", func() bool { return pollEvents(fds[0])&(unix.POLLERR|unix.POLLHUP) != 0 })
	// Fill every free descriptor number below the lean sockets' (the
	// server's socket for a was one), so that the connect's new sockets
	// take exactly the numbers the drop frees.
	var fill []int
	for {
		fd, err := unix.Dup(0)
		if err != nil {
			t.Fatal(err)
		}
		if fd > max(fds[0], fds[1]) {
			unix.Close(fd)
			break
		}
		fill = append(fill, fd)
	}
	defer func() {
		for _, fd := range fill {
			unix.Close(fd)
		}
	}()
	close(stopPump)
	<-pumped
	select {
	case r := <-res:
		if len(r.took) != 2 || len(r.errors) != 0 {
			t.Fatalf("reconnected %d of 2, errors %v: an old socket's event reached a new one", len(r.took), r.errors)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the reconnect did not end")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func pollEvents(fd int) int16 {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(p, 0); err != nil || n == 0 {
		return 0
	}
	return p[0].Revents
}

func readable(fd int) bool { return pollEvents(fd)&unix.POLLIN != 0 }

// TestLeanRefused: a node that does not listen is "dial: connection
// refused" on every attempt, as the library client names it.
func TestLeanRefused(t *testing.T) {
	url := "ws://127.0.0.1:" + strconv.Itoa(freePort(t)) + "/v1/signal"
	fleet, err := newLeanFleet([]*client{{dev: device{Name: "d", Token: "t"}, src: net.IPv4(127, 0, 0, 2), url: url}}, 1, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fleet.stop)
	res := fleet.connectAll(false, time.Time{})
	if len(res.took) != 0 || len(res.errors) != 1 || res.errors["dial: connection refused"] != dialAttempts {
		t.Fatalf("connected %d, errors %v; want %d × \"dial: connection refused\"", len(res.took), res.errors, dialAttempts)
	}
}

// seededClients seeds a fresh `foyer serve` (more environment: env) with
// n devices and returns it and a client for each device, by name, their
// sources spread over three loopback addresses.
func seededClients(t *testing.T, n int, env ...string) (*testServer, []*client) {
	t.Helper()
	bin := buildFoyer(t)
	data := filepath.Join(t.TempDir(), "data")
	tokensPath := filepath.Join(t.TempDir(), "tokens.json")
	runLoad(t, "--foyer", bin, "--data-dir", data, "--devices", strconv.Itoa(n), "--doors", "0",
		"--ids-per-site", "10", "--tokens-out", tokensPath, "--seed-only")
	srv := serveNodeEnv(t, bin, env, "--data-dir", data)
	raw, err := os.ReadFile(tokensPath)
	if err != nil {
		t.Fatal(err)
	}
	var tf struct{ Tokens map[string]string }
	if err := json.Unmarshal(raw, &tf); err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(tf.Tokens))
	for name := range tf.Tokens {
		names = append(names, name)
	}
	sort.Strings(names)
	clients := make([]*client, 0, len(names))
	for i, name := range names {
		clients = append(clients, &client{dev: device{Name: name, Token: tf.Tokens[name]},
			src: net.IPv4(127, 0, 0, byte(2+i%3)), url: srv.signal})
	}
	if len(clients) != n {
		t.Fatalf("%d devices seeded, want %d", len(clients), n)
	}
	return srv, clients
}
