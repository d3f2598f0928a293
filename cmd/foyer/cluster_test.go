package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/internal/redistest"
)

// node is one `foyer serve` process of a test cluster.
type node struct {
	cmd  *exec.Cmd
	addr string
	logs *lockedBuffer // the node's stderr
}

// lockedBuffer keeps a running process's output, which a failing test may
// read while the process still writes it (exec copies it on a goroutine).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startNode runs `foyer serve` as a cluster node on redisURL.
func startNode(t *testing.T, bin, id, redisURL string) *node {
	t.Helper()
	n := &node{addr: freeAddr(t), logs: &lockedBuffer{}}
	n.cmd = exec.Command(bin, "serve", "--listen", n.addr)
	n.cmd.Dir = t.TempDir()
	n.cmd.Env = append(os.Environ(), "FOYER_REDIS_URL="+redisURL, "FOYER_REDIS_NODE_ID="+id,
		"FOYER_REDIS_LEASE_TTL=3s", "FOYER_MEDIA_LOOPBACK_ONLY=true", "FOYER_TURN_ENABLED=false",
		"FOYER_SIGNALING_CALL_RATE=100", "FOYER_SIGNALING_CALL_BURST=100", // the test retries calls in a loop
		"FOYER_SIGNALING_DOOR_OFFLINE_AFTER=1m")
	n.cmd.Stderr = n.logs
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.cmd.Process.Kill(); _ = n.cmd.Wait() })
	waitReady(t, "http://"+n.addr+"/readyz")
	return n
}

func (n *node) dial(t *testing.T, token string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+n.addr+"/v1/signal", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	if err := ws.WriteJSON(map[string]any{"type": "hello", "token": token, "version": 1}); err != nil {
		t.Fatal(err)
	}
	readType(t, ws, "welcome")
	return ws
}

func readyStatus(addr string) int {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestClusterOfTwoNodes: seed the shared Redis, run two nodes, ring across
// them; SIGKILL one and check its devices stop being rung once their leases
// expire, and that the other reports its door station offline; take Redis
// away and bring it back and check readiness follows.
func TestClusterOfTwoNodes(t *testing.T) {
	bin := foyerBin(t)
	srv := redistest.StartServer(t)
	url := "redis://" + srv.Addr + "/0"

	seed := exec.Command(bin, "seed", "/dev/stdin")
	seed.Stdin = bytes.NewBufferString(siteFile)
	seed.Dir = t.TempDir()
	seed.Env = append(os.Environ(), "FOYER_REDIS_URL="+url)
	out, err := seed.Output()
	if err != nil {
		t.Fatalf("seed on Redis: %v", err)
	}
	printed := struct{ Tokens map[string]string }{parseTokens(t, out)}

	a := startNode(t, bin, "node-a", url)
	b := startNode(t, bin, "node-b", url)
	door := a.dial(t, printed.Tokens["front-door"])
	phone := b.dial(t, printed.Tokens["anna-phone"])
	b.dial(t, printed.Tokens["garage-door"])

	if err := door.WriteJSON(map[string]any{"type": "call", "to": "101"}); err != nil {
		t.Fatal(err)
	}
	calling := readType(t, door, "calling")
	if calling["ringing"].(float64) != 1 {
		t.Fatalf("calling %v", calling)
	}
	ring := readType(t, phone, "ring")
	_ = phone.WriteJSON(map[string]any{"type": "answer", "call_id": ring["call_id"]})
	readType(t, phone, "answered")
	readType(t, door, "answered")
	_ = door.WriteJSON(map[string]any{"type": "hangup", "call_id": ring["call_id"]})
	readType(t, door, "ended")
	readType(t, phone, "ended")

	// SIGKILL node b: no goodbye to Redis; its lease (3 s) must run out.
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for {
		_ = door.WriteJSON(map[string]any{"type": "call", "to": "101"})
		m := readAny(t, door)
		if m["type"] == "ended" && m["reason"] == "unavailable" {
			break
		}
		if m["type"] != "calling" {
			t.Fatalf("unexpected %v", m)
		}
		_ = door.WriteJSON(map[string]any{"type": "hangup", "call_id": m["call_id"]})
		readType(t, door, "ended")
		if time.Since(killed) > 3*time.Second+2*time.Second {
			t.Fatalf("the killed node's device is still rung %v later (lease 3 s)", time.Since(killed))
		}
		time.Sleep(200 * time.Millisecond) // a visitor trying again
	}

	// The garage's door station went with node b, which told nobody: once
	// b's lease has run out, a sweep of node a finds it connected nowhere
	// (within a fifth of signaling.door_offline_after, 1 min: 12 s), and a
	// sweep reports it once it has been gone for that long since.
	for deadline := killed.Add(3*time.Second + 12*time.Second + time.Minute + 12*time.Second + 10*time.Second); !strings.Contains(a.logs.String(), `msg="door station offline"`); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("the door station of the killed node not reported offline by node a %v later; logs:\n%s", time.Since(killed), a.logs)
		}
	}
	if s := time.Since(killed); s < time.Minute {
		t.Fatalf("reported offline %v after its node died, before signaling.door_offline_after (1 min)", s)
	}

	// Redis away: not ready; back: ready again, calls work again.
	srv.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for readyStatus(a.addr) != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("/readyz still 200 with Redis down")
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.Restart(t)
	deadline = time.Now().Add(5 * time.Second)
	for readyStatus(a.addr) != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within 5 s of Redis coming back; logs:\n%s", a.logs)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A clean stop (SIGTERM: drained) deletes the node's alive key, so
	// that the others answer messages about its calls not_found at once,
	// instead of waiting for it to subscribe again.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()
	ctx := context.Background()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if n, _ := rdb.Exists(ctx, "foyer:alive:node-a").Result(); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("node a's alive key is not back after Redis restarted")
		}
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- a.cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("node a after SIGTERM: %v; logs:\n%s", err, a.logs)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("node a still running 15 s after SIGTERM; logs:\n%s", a.logs)
	}
	if n, err := rdb.Exists(ctx, "foyer:alive:node-a").Result(); err != nil || n != 0 {
		t.Fatalf("node a's alive key exists (%d, %v) after it stopped cleanly; want it deleted", n, err)
	}
}

func readAny(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("read: %v", err)
		}
		if m["type"] != "directory" {
			return m
		}
	}
}

// parseTokens reads the JSON `foyer seed` prints.
func parseTokens(t *testing.T, out []byte) map[string]string {
	t.Helper()
	var printed struct{ Tokens map[string]string }
	if err := json.Unmarshal(out, &printed); err != nil || len(printed.Tokens) == 0 {
		t.Fatalf("seed printed %q: %v", out, err)
	}
	return printed.Tokens
}

// TestClusterPortalSeesEveryNode: two `foyer serve` nodes on one Redis;
// the API of node a lists the call of a door station connected to node b
// (owned by node b) and says that door station and a monitor connected to
// node a are online.
func TestClusterPortalSeesEveryNode(t *testing.T) {
	bin := foyerBin(t)
	srv := redistest.StartServer(t)
	env := []string{"FOYER_REDIS_URL=redis://" + srv.Addr}
	createOwner(t, bin, t.TempDir(), env...)
	a, _ := startAdminNode(t, bin, t.TempDir(), append([]string{"env", "FOYER_REDIS_NODE_ID=node-a"}, env...)...)
	b, _ := startAdminNode(t, bin, t.TempDir(), append([]string{"env", "FOYER_REDIS_NODE_ID=node-b"}, env...)...)
	tok := a.login()
	s, out := a.call(tok, "POST", "/v1/sites", `{"name":"Two Nodes"}`)
	if s != http.StatusCreated {
		t.Fatalf("create site: %d %v", s, out)
	}
	site := "/v1/sites/" + out["id"].(string)
	if s, out := a.call(tok, "PUT", site+"/entries/7", `{"name":"Seven"}`); s != http.StatusOK {
		t.Fatalf("entry: %d %v", s, out)
	}
	device := func(body string) (id, token string) {
		s, out := a.call(tok, "POST", site+"/devices", body)
		if s != http.StatusCreated {
			t.Fatalf("device %s: %d %v", body, s, out)
		}
		s, got := a.call("", "POST", "/v1/provision", `{"code":"`+out["provisioning_code"].(string)+`"}`)
		if s != http.StatusOK {
			t.Fatalf("provision %s: %d %v", body, s, got)
		}
		return out["device"].(map[string]any)["id"].(string), got["token"].(string)
	}
	doorID, doorTok := device(`{"kind":"door_station","name":"Gate"}`)
	monID, monTok := device(`{"kind":"monitor","name":"Hall 7","number":"7"}`)
	mon := (&node{addr: strings.TrimPrefix(a.base, "http://")}).dial(t, monTok)
	door := (&node{addr: strings.TrimPrefix(b.base, "http://")}).dial(t, doorTok)

	online := func() map[string]any {
		s, out := a.call(tok, "GET", site+"/devices", "")
		if s != http.StatusOK {
			t.Fatalf("devices: %d %v", s, out)
		}
		on := make(map[string]any)
		for _, d := range out["devices"].([]any) {
			d := d.(map[string]any)
			on[d["id"].(string)] = d["online"]
		}
		return on
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		on := online()
		if on[doorID] == true && on[monID] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node a says online %v; want the door station (on node b) and the monitor (on node a)", on)
		}
	}

	if err := door.WriteJSON(map[string]any{"type": "call", "to": "7"}); err != nil {
		t.Fatal(err)
	}
	callID := readType(t, door, "calling")["call_id"]
	readType(t, mon, "ring")
	s, out = a.call(tok, "GET", site+"/calls", "")
	calls, _ := out["calls"].([]any)
	if s != http.StatusOK || len(calls) != 1 || out["unanswered_nodes"] != nil {
		t.Fatalf("node a's live calls: %d %v, want node b's call alone", s, out)
	}
	if c := calls[0].(map[string]any); c["call_id"] != callID || c["node"] != "node-b" || c["state"] != "ringing" || c["door_station_id"] != doorID {
		t.Fatalf("node a lists %v, want %v of node-b, ringing, from %s", c, callID, doorID)
	}
}
