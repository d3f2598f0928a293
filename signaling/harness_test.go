package signaling

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// readTimeout bounds every wait for a frame in tests; it only fires when
// something is broken.
const readTimeout = 5 * time.Second

// harborView is the site most tests use: ID 101 rings a monitor and three
// app devices of two users; bob's second membership is pending, carol's
// licence is inactive, so their devices must never ring.
const harborView = `
sites:
  - name: Harbour View
    ring_timeout_s: 30
    door_stations: [front-door, garage-door]
    ids:
      - id: "101"
        name: Jansen
        monitors: [hall-101]
        app_users:
          - email: anna@example.com
            devices: [anna-phone, anna-tablet]
          - email: bram@example.com
            devices: [bram-phone]
          - email: pending@example.com
            status: pending
            devices: [pending-phone]
          - email: carol@example.com
            licence: inactive
            devices: [carol-phone]
      - id: "102"
        name: De Vries
        app_users:
          - email: dirk@example.com
            devices: [dirk-phone]
      - id: "103"
        name: Nobody Home
        app_users:
          - email: eve@example.com
            status: pending
            devices: [eve-phone]
  - name: Other Street
    door_stations: [other-door]
    ids:
      - id: "201"
        name: Elsewhere
        app_users:
          - email: olga@example.com
            devices: [olga-phone]
`

// testServer is one or more hubs on a real bbolt store behind real HTTP
// servers. With FOYER_TEST_NODES=N (N > 1) it is N nodes sharing a real
// redis-server through RedisRouter, devices spread over them by name; the
// same tests then check the protocol across nodes.
type testServer struct {
	hub    *Hub   // node 0
	hubs   []*Hub // every node
	https  []*httptest.Server
	redis  *redistest.Server       // nil with one node
	rdbs   []redis.UniversalClient // each node's own Redis client
	store  directory.Store         // node 0's; the others see its changes through Redis
	clock  *fakeClock
	tokens map[string]string
}

// testNodes is how many nodes each test server runs.
func testNodes(t testing.TB) int {
	s := os.Getenv("FOYER_TEST_NODES")
	if s == "" {
		return 1
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("FOYER_TEST_NODES=%q: want a positive number", s)
	}
	return n
}

// newTestServer provisions yaml into a fresh store and serves it on
// FOYER_TEST_NODES nodes (default 1).
func newTestServer(t testing.TB, yaml string, cfg Config) *testServer {
	t.Helper()
	return newNodes(t, yaml, cfg, testNodes(t), RedisRouterOptions{})
}

// nodeOptions say how a multi-node test server is built.
type nodeOptions struct {
	router RedisRouterOptions
	// sharedBolt puts every node on one in-process bbolt store instead of
	// the Redis store: for tests that restart Redis empty, which would
	// erase a directory kept in it.
	sharedBolt bool
	// cluster runs a three-master Redis Cluster instead of one redis-server.
	cluster bool
	// sendBuffer, when set, is the kernel send buffer of every accepted
	// connection: small, a client that stops reading is felt at once.
	sendBuffer int
	// likeServe gives the nodes what `foyer serve` gives its hub, for
	// benchmarks: a listener that sets no TCP keep-alive on accepted
	// connections, and JSON logs at info level to a file. (The wall clock
	// comes with the Config: benchConfig.)
	likeServe bool
}

// newNodes serves yaml on n nodes; with n > 1 they share a real Redis: the
// directory (one Redis store per node, as separate processes would have)
// and the router.
func newNodes(t testing.TB, yaml string, cfg Config, nodes int, opts RedisRouterOptions) *testServer {
	t.Helper()
	return newNodesWith(t, yaml, cfg, nodes, nodeOptions{router: opts})
}

func newNodesWith(t testing.TB, yaml string, cfg Config, nodes int, no nodeOptions) *testServer {
	t.Helper()
	ts := &testServer{clock: newFakeClock()}
	var newClient func() redis.UniversalClient
	switch {
	case nodes > 1 && no.cluster:
		addrs := redistest.StartCluster(t)
		newClient = func() redis.UniversalClient { return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs}) }
	case nodes > 1:
		ts.redis = redistest.StartServer(t)
		newClient = func() redis.UniversalClient { return redis.NewClient(&redis.Options{Addr: ts.redis.Addr}) }
	}
	stores := make([]directory.Store, nodes)
	if nodes == 1 || no.sharedBolt {
		bolt, err := directory.OpenBolt(filepath.Join(t.TempDir(), "foyer.db"))
		if err != nil {
			t.Fatal(err)
		}
		for i := range stores {
			stores[i] = bolt
		}
		t.Cleanup(func() { _ = bolt.Close() })
	}
	for i := range nodes {
		if nodes > 1 {
			rdb := newClient()
			ts.rdbs = append(ts.rdbs, rdb)
			t.Cleanup(func() { _ = rdb.Close() }) // after the store's and hub's cleanups (LIFO)
		}
		if stores[i] == nil {
			rs, err := directory.NewRedis(ts.rdbs[i])
			if err != nil {
				t.Fatal(err)
			}
			stores[i] = rs
			t.Cleanup(func() { _ = rs.Close() })
		}
	}
	ts.store = stores[0]
	file, err := directory.ParseProvision([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	if ts.tokens, err = directory.Provision(context.Background(), ts.store, file); err != nil {
		t.Fatal(err)
	}
	for name, tok := range ts.tokens {
		suiteLogs.secret(tok, "device token of "+name)
	}
	if cfg.Clock == nil {
		cfg.Clock = ts.clock
	}
	log := suiteLogs.logger()
	if no.likeServe {
		f, err := os.Create(filepath.Join(t.TempDir(), "serve.log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		log = slog.New(slog.NewJSONHandler(f, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var running sync.WaitGroup
	for i := range nodes {
		var router Router = NewMemory()
		nodeCfg := cfg
		if nodes > 1 {
			nodeCfg.NodeID = fmt.Sprintf("node%d", i)
			if router, err = NewRedisRouter(nodeCfg.NodeID, ts.rdbs[i], no.router, prometheus.NewRegistry(), log); err != nil {
				t.Fatal(err)
			}
		}
		hub, err := NewHub(nodeCfg, stores[i], router, nil, prometheus.NewRegistry(), log)
		if err != nil {
			t.Fatal(err)
		}
		running.Add(1)
		go func() { hub.Run(ctx); running.Done() }()
		ts.hubs = append(ts.hubs, hub)
		srv := httptest.NewUnstartedServer(hub)
		if no.sendBuffer > 0 {
			srv.Listener = sendBufferListener{srv.Listener, no.sendBuffer}
		}
		if no.likeServe {
			_ = srv.Listener.Close()
			srv.Listener = listenLikeServe(t)
		}
		srv.Start()
		ts.https = append(ts.https, srv)
	}
	ts.hub = ts.hubs[0]
	// As a load balancer would (/readyz), wait until every node is ready:
	// subscribed to its channel, so that what other nodes send reaches it.
	for i, hub := range ts.hubs {
		for start := time.Now(); hub.router.Ready(ctx) != nil; time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 10*time.Second {
				t.Fatalf("node %d never became ready: %v", i, hub.router.Ready(ctx))
			}
		}
	}
	t.Cleanup(func() {
		for i, hub := range ts.hubs {
			drain, cancelDrain := context.WithTimeout(context.Background(), 0)
			hub.Drain(drain)
			cancelDrain()
			ts.https[i].Close()
		}
		cancel()
		running.Wait()
	})
	return ts
}

// url is node 0's signalling URL.
func (ts *testServer) url() string { return ts.urlOf(0) }

func (ts *testServer) urlOf(node int) string {
	return "ws" + strings.TrimPrefix(ts.https[node].URL, "http") + "/v1/signal"
}

// nodeOf spreads devices over the nodes by name.
func (ts *testServer) nodeOf(name string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return int(h.Sum32() % uint32(len(ts.hubs)))
}

// client is a device's WebSocket connection in a test.
type client struct {
	t       testing.TB
	ws      *websocket.Conn
	name    string
	welcome map[string]any
}

// dialRaw opens a WebSocket to node 0 without saying hello.
func (ts *testServer) dialRaw(t testing.TB, header http.Header) *websocket.Conn {
	t.Helper()
	return ts.dialNode(t, 0, header)
}

func (ts *testServer) dialNode(t testing.TB, node int, header http.Header) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(ts.urlOf(node), header)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	return ws
}

// connect dials as the named device, to the node nodeOf picks, and
// completes the handshake.
func (ts *testServer) connect(t testing.TB, name string) *client {
	t.Helper()
	return ts.connectTo(t, ts.nodeOf(name), name)
}

// connectTo dials as the named device to the given node.
func (ts *testServer) connectTo(t testing.TB, node int, name string) *client {
	t.Helper()
	tok, ok := ts.tokens[name]
	if !ok {
		t.Fatalf("no device %q in the provisioning file", name)
	}
	c := &client{t: t, ws: ts.dialNode(t, node, nil), name: name}
	c.send(map[string]any{"type": "hello", "token": tok, "version": 1})
	c.welcome = c.expect("welcome")
	rt, _ := c.welcome["resume_token"].(string)
	suiteLogs.secret(rt, "resume token")
	ts.waitKnown(t, node, directory.DeviceID(c.welcome["device_id"].(string)))
	return c
}

// waitKnown waits until every other node whose presence view is in step
// knows that device id is on node. A call placed a moment after a device
// connected to another node may otherwise ring it only late (lookAgain),
// uncounted in its calling.ringing, which the tests check.
func (ts *testServer) waitKnown(t testing.TB, node int, id directory.DeviceID) {
	t.Helper()
	ts.waitPlaced(t, node, id, true)
}

// waitForgotten waits until no other node's presence view places device
// id on node: its connection there has closed, and the detach's event
// (which follows the close frame, on the server's own time) has arrived.
// A call placed before that may still ring the device there, counted in
// its calling.ringing.
func (ts *testServer) waitForgotten(t testing.TB, node int, id directory.DeviceID) {
	t.Helper()
	ts.waitPlaced(t, node, id, false)
}

// waitPlaced waits until the presence view of every other node places
// device id on node (there true) or not (false). Views out of step are
// not waited for when there is true: they ask Redis.
func (ts *testServer) waitPlaced(t testing.TB, node int, id directory.DeviceID, there bool) {
	t.Helper()
	if len(ts.hubs) < 2 {
		return
	}
	want := ts.hubs[node].router.(*RedisRouter).node
	for i, hub := range ts.hubs {
		r := hub.router.(*RedisRouter)
		for start := time.Now(); i != node && (!there || r.inStep()); time.Sleep(2 * time.Millisecond) {
			r.mu.Lock()
			loc, ok := r.where[id]
			r.mu.Unlock()
			if (ok && loc.node == want) == there {
				break
			}
			if time.Since(start) > readTimeout {
				t.Fatalf("node %d's presence view: is %s on node %d? still %v, want %v", i, id, node, !there, there)
			}
		}
	}
}

func (c *client) send(m map[string]any) {
	c.t.Helper()
	if err := c.ws.WriteJSON(m); err != nil {
		c.t.Fatalf("%s: write: %v", c.name, err)
	}
}

// next returns the next message, skipping directory pushes unless asked for.
func (c *client) next() map[string]any {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(readTimeout))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		c.t.Fatalf("%s: read: %v", c.name, err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatalf("%s: bad JSON from server: %s", c.name, data)
	}
	return m
}

// expect reads messages until one of type typ, failing on any other type
// (directory pushes excepted, which may come at any time).
func (c *client) expect(typ string) map[string]any {
	c.t.Helper()
	for {
		m := c.next()
		if m["type"] == typ {
			return m
		}
		if m["type"] == "directory" {
			continue
		}
		c.t.Fatalf("%s: want %q, got %v", c.name, typ, m)
	}
}

// pingPong sends a ping and wants its pong next: the node has handled
// everything c sent before (a connection's messages are handled in order),
// and sent c nothing else meanwhile, directory pushes aside.
func (c *client) pingPong() {
	c.t.Helper()
	c.send(map[string]any{"type": "ping"})
	c.expect("pong")
}

// expectError reads the next non-directory message and checks it is an error with code.
func (c *client) expectError(code string) map[string]any {
	c.t.Helper()
	m := c.expect("error")
	if m["code"] != code {
		c.t.Fatalf("%s: want error %q, got %v", c.name, code, m)
	}
	return m
}

// expectClose reads until the server closes, and checks the close code.
func (c *client) expectClose(code int) {
	c.t.Helper()
	expectClose(c.t, c.ws, code)
}

func expectClose(t testing.TB, ws *websocket.Conn, code int) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(readTimeout))
	for {
		_, data, err := ws.ReadMessage()
		if err == nil {
			if strings.Contains(string(data), `"directory"`) || strings.Contains(string(data), `"welcome"`) {
				continue
			}
			t.Fatalf("want close %d, got message %s", code, data)
		}
		var ce *websocket.CloseError
		if !asCloseError(err, &ce) || ce.Code != code {
			t.Fatalf("want close %d, got %v", code, err)
		}
		return
	}
}

func asCloseError(err error, ce **websocket.CloseError) bool {
	e, ok := err.(*websocket.CloseError)
	if ok {
		*ce = e
	}
	return ok
}

// quiet checks that no message (other than directory pushes) arrives within d.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(d))
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			// The deadline poisons a gorilla connection; only call quiet last.
			return
		}
		if !strings.Contains(string(data), `"directory"`) {
			c.t.Fatalf("%s: want silence, got %s", c.name, data)
		}
	}
}

// call places a call from a door station and returns the call ID and the number ringing.
func (c *client) call(to string) (string, int) {
	c.t.Helper()
	c.send(map[string]any{"type": "call", "to": to, "ref": "c1"})
	m := c.expect("calling")
	if m["ref"] != "c1" {
		c.t.Fatalf("calling without the call's ref: %v", m)
	}
	return m["call_id"].(string), int(m["ringing"].(float64))
}

// fakeClock is a Clock that moves only when the test advances it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	clock *fakeClock
	at    time.Time
	f     func()
	done  bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{clock: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	c := t.clock
	c.mu.Lock()
	defer c.mu.Unlock()
	was := !t.done
	t.done = true
	// Let go of it, and of what its function holds, as a runtime timer
	// does once stopped.
	c.timers = slices.DeleteFunc(c.timers, func(x *fakeTimer) bool { return x == t })
	return was
}

// Advance moves time forward by d and runs, in order, the timers that fall due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.done && !t.at.After(c.now) {
			t.done = true
			due = append(due, t)
		}
	}
	c.timers = slices.DeleteFunc(c.timers, func(t *fakeTimer) bool { return t.done })
	c.mu.Unlock()
	sort.Slice(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

// benchConfig is unlimited with the wall clock, which `foyer serve` runs
// on, for benchmarks: the test clock sets no runtime timer, so a benchmark
// on it would not pay for the timers a server sets and stops.
func benchConfig() Config {
	c := unlimited()
	c.Clock = realClock{}
	return c
}

// unlimited is a Config without message or call rate limits, for tests
// and benchmarks that place calls in a tight loop.
func unlimited() Config {
	return Config{MessageRate: 1e9, MessageBurst: 1 << 30, CallRate: 1e9, CallBurst: 1 << 30}
}

// listenLikeServe listens on a loopback port as `foyer serve` listens: no
// TCP keep-alive on accepted connections (cmd/foyer/serve.go).
func listenLikeServe(t testing.TB) net.Listener {
	t.Helper()
	ln, err := (&net.ListenConfig{KeepAlive: -1}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// sendBufferListener sets the kernel send buffer of accepted connections.
type sendBufferListener struct {
	net.Listener
	size int
}

func (l sendBufferListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(l.size)
	}
	return c, err
}
