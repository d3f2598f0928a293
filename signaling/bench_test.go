package signaling

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// idleDevices is how many idle connections the fan-out benchmark holds
// open beside the ringing ones (the call-core issue's figure). Override with
// FOYER_BENCH_IDLE.
const idleDevices = 10_000

// benchSite is sevenDevices plus n idle door stations on another site.
func benchSite(n int) (string, []string) {
	yaml, names := sevenDevices()
	var b strings.Builder
	b.WriteString(yaml)
	b.WriteString("  - name: Idle\n    door_stations:\n")
	for i := range n {
		fmt.Fprintf(&b, "      - idle-%d\n", i)
	}
	return b.String(), names
}

// BenchmarkRingFanout measures door station `call` → the last of 7 `ring`
// frames read by the devices, over real sockets, with idle devices connected
// from a second process. Reports p50/p99 latency and server RSS per idle
// connection.
func BenchmarkRingFanout(b *testing.B) {
	fanout(b, func(door *client, _ []*client, frames []chan pumped) { measureRings(b, door, frames) })
}

// BenchmarkCancelFanout is BenchmarkRingFanout's set-up timing the other
// side of a call: one device's answer → the last of the other six
// devices' cancel (answered_elsewhere) read. Between measurements (timer
// stopped) the door station calls, and hangs up after the answer.
func BenchmarkCancelFanout(b *testing.B) {
	fanout(b, func(door *client, devices []*client, frames []chan pumped) {
		rotate(b, []string{""}, func() time.Duration { return cancelOnce(b, door, "1", devices[0], frames) })
	})
}

// fanout connects the idle devices (from a child process), the door
// station and the 7 devices of ID 1 (each read by pump into its channel),
// runs measure, and reports what an idle connection holds.
func fanout(b *testing.B, measure func(door *client, devices []*client, frames []chan pumped)) {
	idle := idleDevices
	if s := os.Getenv("FOYER_BENCH_IDLE"); s != "" {
		idle, _ = strconv.Atoi(s)
	}
	yaml, names := benchSite(idle)
	ts := newTestServer(b, yaml, benchConfig())
	rssBefore, msBefore := rss(b), memStats()
	farm := startIdleFarm(b, ts, idle)
	rssAfter, msAfter := rss(b), memStats()
	if ts.hub.router.Len() < idle {
		b.Fatalf("only %d of %d idle devices connected", ts.hub.router.Len(), idle)
	}

	door := ts.connect(b, "door")
	devices := make([]*client, len(names))
	frames := make([]chan pumped, len(names))
	for i, n := range names {
		devices[i] = ts.connect(b, n)
		frames[i] = make(chan pumped, 16)
		go pump(devices[i], frames[i])
	}
	measure(door, devices, frames)
	b.ReportMetric(float64(rssAfter-rssBefore)/float64(idle), "rss-B/idle-conn")
	b.ReportMetric((float64(msAfter.HeapInuse)-float64(msBefore.HeapInuse))/float64(idle), "heap-B/idle-conn")
	b.ReportMetric((float64(msAfter.StackInuse)-float64(msBefore.StackInuse))/float64(idle), "stack-B/idle-conn")
	b.ReportMetric(float64(idle), "idle-conns")
	for _, d := range devices {
		_ = d.ws.Close()
	}
	farm()
}

// measureRings times b.N calls from door to call ID 1: from the call to the
// last ring read from frames (one channel per device). Between calls (timer
// stopped) the door hangs up and every device reads its cancel. It reports
// p50 and p99.
func measureRings(b *testing.B, door *client, frames []chan pumped) {
	b.Helper()
	rotate(b, []string{""}, func() time.Duration { return ringOnce(b, door, "1", frames) })
}

// ringOnce times one call from door to the call ID to: from the call to the
// last ring read from frames (one channel per device). Then, with the timer
// stopped, the door hangs up and every device reads its cancel. The call
// frame is encoded before the clock starts, as the raw broadcast's frame is
// (startRawBroadcast): both measure the server from a frame sent.
func ringOnce(b *testing.B, door *client, to string, frames []chan pumped) time.Duration {
	b.Helper()
	call := []byte(`{"type":"call","to":"` + to + `"}`)
	start := time.Now()
	if err := door.ws.WriteMessage(websocket.TextMessage, call); err != nil {
		b.Fatal(err)
	}
	for _, ch := range frames {
		if m, ok := <-ch; !ok || m.Type != "ring" {
			b.Fatalf("got %v", m)
		}
	}
	took := time.Since(start)
	b.StopTimer()
	m := door.expect("calling")
	door.send(map[string]any{"type": "hangup", "call_id": m["call_id"]})
	door.expect("ended")
	for _, ch := range frames {
		<-ch // cancel caller_hangup
	}
	b.StartTimer()
	return took
}

// pumped is what pump reads of a server message: decoding into it parses
// the whole frame, as a device does, but allocates only its strings. A map
// of every field (as client.next builds), in a new buffer per frame
// (ReadMessage), made the benchmarks' own clients allocate several times
// what the server does per call, and so collect garbage in the server's
// process as a server alone would not.
type pumped struct {
	Type   string `json:"type"`
	CallID string `json:"call_id"`
	Reason string `json:"reason"`
}

// pump forwards a client's messages to ch until its connection closes.
// It clears the read deadline the handshake's expect left behind, which
// would otherwise end a benchmark longer than readTimeout. Frames are read
// into one buffer, reused.
func pump(c *client, ch chan<- pumped) {
	_ = c.ws.SetReadDeadline(time.Time{})
	var buf bytes.Buffer
	for {
		_, r, err := c.ws.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			close(ch)
			return
		}
		var m pumped
		if json.Unmarshal(buf.Bytes(), &m) == nil && m.Type != "directory" {
			ch <- m
		}
	}
}

// rotate runs the measures b.N rounds, each round starting with the next
// one so that none always goes first, and reports each one's p50 and p99
// under its name (p50-ns and p99-ns for the name ""). It returns the
// latencies by measure, sorted.
func rotate(b *testing.B, names []string, measure ...func() time.Duration) [][]time.Duration {
	lat := make([][]time.Duration, len(measure))
	b.ResetTimer()
	for i := range b.N {
		for k := range measure {
			j := (i + k) % len(measure)
			lat[j] = append(lat[j], measure[j]())
		}
	}
	b.StopTimer()
	for j, name := range names {
		if name != "" {
			name += "-"
		}
		slices.Sort(lat[j])
		b.ReportMetric(quantile(lat[j], 0.50), name+"p50-ns")
		b.ReportMetric(quantile(lat[j], 0.99), name+"p99-ns")
	}
	return lat
}

// quantile is the p quantile of sorted latencies, in nanoseconds.
func quantile(sorted []time.Duration, p float64) float64 {
	return float64(sorted[int(p*float64(len(sorted)-1))].Nanoseconds())
}

// memStats reads the runtime's memory statistics (after rss's GC).
func memStats() runtime.MemStats {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// rss returns this process's resident set size after a GC.
func rss(b *testing.B) int64 {
	runtime.GC()
	debug.FreeOSMemory()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	b.Fatal("no VmRSS")
	return 0
}

// startIdleFarm connects n idle door stations from a child process (this
// test binary re-run as TestIdleFarm) and returns a func that stops it. The
// child holds the client sockets, so that this process stays under its
// open-file limit.
func startIdleFarm(b *testing.B, ts *testServer, n int) func() {
	b.Helper()
	tokens := make([]string, n)
	for i := range n {
		tokens[i] = ts.tokens[fmt.Sprintf("idle-%d", i)]
	}
	path := filepath.Join(b.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte(strings.Join(tokens, "\n")), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleFarm$", "-test.v=false")
	cmd.Env = append(os.Environ(), "FOYER_IDLE_FARM_URL="+ts.url(), "FOYER_IDLE_FARM_TOKENS="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "ready") {
			break
		}
	}
	return func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}
}

// TestIdleFarm is the child process of startIdleFarm; it does nothing in a
// normal test run.
func TestIdleFarm(t *testing.T) {
	url, path := os.Getenv("FOYER_IDLE_FARM_URL"), os.Getenv("FOYER_IDLE_FARM_TOKENS")
	if url == "" {
		t.Skip("only run as the idle-connection child process of BenchmarkRingFanout")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tokens := strings.Split(string(data), "\n")
	conns := make([]*websocket.Conn, 0, len(tokens))
	for _, tok := range tokens {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("dial %d: %v", len(conns), err)
		}
		if err := ws.WriteJSON(map[string]any{"type": "hello", "token": tok, "version": 1}); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := ws.ReadMessage(); err != nil || !strings.Contains(string(msg), "welcome") {
			t.Fatalf("hello %d: %s %v", len(conns), msg, err)
		}
		conns = append(conns, ws)
		go func() { // answer pings; discard directory pushes
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	fmt.Println("ready", len(conns))
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	for _, ws := range conns {
		_ = ws.Close()
	}
}

// BenchmarkRawBroadcast is the floor for ring fan-out: a bare gorilla
// server that writes each frame it reads from one socket to seven others.
// Its seven readers are BenchmarkRingFanout's (pump: read, decode the
// JSON, hand it over on a channel), so the two differ only in the server.
func BenchmarkRawBroadcast(b *testing.B) {
	rotate(b, []string{""}, startRawBroadcast(b))
}

// BenchmarkRingFanoutPaired is BenchmarkRingFanout and BenchmarkRawBroadcast
// in one process, a call and a broadcast in turn (rotate: which goes first
// alternating), so that both meet the machine in the same state: on a
// shared machine whose speed drifts within minutes, the ratio of their
// medians is the figure to trust. It reports both p50s and p99s and the
// ratio of the p50s.
func BenchmarkRingFanoutPaired(b *testing.B) {
	broadcast := startRawBroadcast(b)
	fanout(b, func(door *client, _ []*client, frames []chan pumped) {
		lat := rotate(b, []string{"ring", "raw"},
			func() time.Duration { return ringOnce(b, door, "1", frames) }, broadcast)
		b.ReportMetric(quantile(lat[0], 0.50)/quantile(lat[1], 0.50), "ring/raw-p50")
	})
}

// startRawBroadcast starts the raw broadcast server with its publisher and
// seven readers, and returns a func that broadcasts one ring-sized frame
// and returns how long until all seven readers had decoded it. All of it
// ends with the benchmark.
func startRawBroadcast(b *testing.B) func() time.Duration {
	b.Helper()
	var mu sync.Mutex
	var subs []*websocket.Conn
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		if r.URL.Query().Get("role") == "sub" {
			mu.Lock()
			subs = append(subs, ws)
			mu.Unlock()
			return
		}
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			mu.Lock()
			for _, s := range subs {
				_ = s.WriteMessage(websocket.TextMessage, msg)
			}
			mu.Unlock()
		}
	}))
	b.Cleanup(srv.Close)
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	pub, _, err := websocket.DefaultDialer.Dial(url+"?role=pub", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pub.Close() })
	done := make([]chan pumped, 7)
	for i := range done {
		r, _, err := websocket.DefaultDialer.Dial(url+"?role=sub", nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = r.Close() })
		done[i] = make(chan pumped, 16)
		go pump(&client{t: b, ws: r}, done[i])
	}
	for { // wait until the server holds all subscribers
		mu.Lock()
		n := len(subs)
		mu.Unlock()
		if n == 7 {
			break
		}
		runtime.Gosched()
	}
	msg := []byte(`{"type":"ring","call_id":"c_bench","from":{"door_station_id":"d","name":"door","site_id":"s","site_name":"Race"},"to":"1","lifetime_ms":30000,"preview":true}`)
	return func() time.Duration {
		start := time.Now()
		_ = pub.WriteMessage(websocket.TextMessage, msg)
		for _, ch := range done {
			if m := <-ch; m.Type != "ring" {
				b.Fatalf("got %v", m)
			}
		}
		return time.Since(start)
	}
}
