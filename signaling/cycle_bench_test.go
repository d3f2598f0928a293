//go:build unix

package signaling

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// cycleGroups is how many door stations call at the same time in
// BenchmarkCycleCPU, each to its own ID of seven devices.
const cycleGroups = 8

// BenchmarkCycleCPU measures the server's CPU time per full call cycle
// (call, 7 rings, calling, answer, answered to both ends, 6 cancels,
// hangup, ended to both ends: 3 frames in, 18 out), with cycleGroups
// cycles under way at once. The server runs in a child process (this test
// binary re-run as TestCycleServer) and reports its own CPU time, so the
// clients' work is not counted. Two servers in the same run:
//
//   - foyer: the hub on its bbolt store, with the listener and info-level
//     JSON logs (to a file) of `foyer serve`;
//   - relay: the floor, a bare gorilla server that reads the same 3 frames
//     and writes the same 18 (the same bytes, encoded once in advance),
//     deciding nothing, on the same listener.
//
// It reports server-µs/cycle and cycles per server CPU-second.
func BenchmarkCycleCPU(b *testing.B) { serverCPU(b, cycleWork, cycleUnit) }

// cpuUnit is what a CPU benchmark counts: its name (cycle, reconnect) and
// how many of them one unit of its serverWork is.
type cpuUnit struct {
	name string
	per  int
}

var (
	cycleUnit     = cpuUnit{"cycle", 1}
	reconnectUnit = cpuUnit{"reconnect", len(cycleDevicesAll())}
)

// serverCPU runs b.N units of work on each server in turn, a sub-benchmark
// each, and reports the server's CPU per unit, units per server
// CPU-second and units per second of wall time.
func serverCPU(b *testing.B, ready func(*testing.B, *cycleServer) serverWork, u cpuUnit) {
	for _, kind := range []string{"foyer", "relay"} {
		b.Run(kind, func(b *testing.B) {
			srv := startCycleServer(b, kind)
			run := ready(b, srv)
			before := srv.cpu(b)
			b.ResetTimer()
			start := time.Now()
			if err := run(b.N); err != nil {
				b.Fatal(err)
			}
			wall := time.Since(start)
			b.StopTimer()
			cpu := srv.cpu(b) - before
			n := float64(b.N * u.per)
			b.ReportMetric(float64(cpu.Microseconds())/n, "server-µs/"+u.name)
			b.ReportMetric(n/cpu.Seconds(), u.name+"s/server-CPU-s")
			b.ReportMetric(n/wall.Seconds(), u.name+"s/s")
		})
	}
}

// BenchmarkCycleCPUPaired runs BenchmarkCycleCPU's two servers side by side
// and alternates between them (pairedCPU), so that both meet the machine in
// the same state: on a shared machine whose speed drifts by tens of percent
// within minutes, their ratio is the figure to trust. It reports each
// server's CPU per cycle, foyer's cycles per server CPU-second, and foyer's
// CPU per cycle over the relay's.
func BenchmarkCycleCPUPaired(b *testing.B) { pairedCPU(b, cycleWork, cycleUnit) }

// serverWork does n units of a CPU benchmark's work on its server.
type serverWork func(n int) error

// pairedCPU starts the foyer and relay servers, readies work on each, and
// runs b.N units on both, alternating: pairedRounds rounds of
// b.N/pairedRounds units each, the first server to go alternating too. It
// reports each server's CPU per unit over its own rounds, foyer's units per
// server CPU-second, and foyer's CPU over the relay's.
func pairedCPU(b *testing.B, ready func(*testing.B, *cycleServer) serverWork, u cpuUnit) {
	const pairedRounds = 10
	kinds := []string{"foyer", "relay"}
	servers := make([]*cycleServer, len(kinds))
	work := make([]serverWork, len(kinds))
	for i, kind := range kinds {
		servers[i] = startCycleServer(b, kind)
		work[i] = ready(b, servers[i])
	}
	cpu := make([]time.Duration, len(kinds))
	b.ResetTimer()
	done := 0
	for r := range pairedRounds {
		n := (b.N - done) / (pairedRounds - r)
		done += n
		for k := range kinds {
			i := (k + r) % len(kinds)
			before := servers[i].cpu(b)
			if err := work[i](n); err != nil {
				b.Fatalf("%s: %v", kinds[i], err)
			}
			cpu[i] += servers[i].cpu(b) - before
		}
	}
	b.StopTimer()
	n := float64(b.N * u.per)
	b.ReportMetric(float64(cpu[0].Microseconds())/n, "foyer-µs/"+u.name)
	b.ReportMetric(float64(cpu[1].Microseconds())/n, "relay-µs/"+u.name)
	b.ReportMetric(n/cpu[0].Seconds(), "foyer-"+u.name+"s/server-CPU-s")
	b.ReportMetric(float64(cpu[0])/float64(cpu[1]), "foyer/relay")
}

// cycleWork connects cycleGroups groups to srv; a unit is one full cycle,
// each group running one at a time, all groups at once.
func cycleWork(b *testing.B, srv *cycleServer) serverWork {
	groups := srv.groups(b)
	return func(n int) error {
		var next atomic.Int64
		errs := make(chan error, len(groups))
		for _, g := range groups {
			go func() {
				for next.Add(1) <= int64(n) {
					if err := g.cycle(); err != nil {
						errs <- err
						return
					}
				}
				errs <- nil
			}()
		}
		return firstError(errs, len(groups))
	}
}

// firstError waits for n results on errs and returns the first error.
func firstError(errs <-chan error, n int) error {
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// BenchmarkReconnectCPU measures the server's CPU time per reconnect, on
// BenchmarkCycleCPU's two servers in the same run: the 64 devices of its
// sites drop their connections at once and connect again (dial, WebSocket
// upgrade, hello, welcome), b.N rounds. The relay's reconnect is the
// upgrade and one frame each way, the floor for any Go WebSocket server;
// foyer's adds the token's look-up, registering the connection and
// forgetting the dropped one. It reports server-µs/reconnect and
// reconnects per server CPU-second.
func BenchmarkReconnectCPU(b *testing.B) { serverCPU(b, reconnectWork, reconnectUnit) }

// BenchmarkReconnectCPUPaired is BenchmarkReconnectCPU's two servers side
// by side, alternating (pairedCPU).
func BenchmarkReconnectCPUPaired(b *testing.B) { pairedCPU(b, reconnectWork, reconnectUnit) }

// cycleDevicesAll names every device of the cycle sites, door stations
// included.
func cycleDevicesAll() []string {
	var names []string
	for g := range cycleGroups {
		names = append(names, fmt.Sprintf("g%d-door", g))
		names = append(names, cycleDevices(g)...)
	}
	return names
}

// reconnectWork connects every device of the cycle sites to srv; a unit is
// one round: all of them drop their connections at once and connect again.
// They close when the benchmark ends.
func reconnectWork(b *testing.B, srv *cycleServer) serverWork {
	names := cycleDevicesAll()
	conns := make([]*websocket.Conn, len(names))
	connectAll := func() error {
		errs := make(chan error, len(names))
		for i := range names {
			go func() {
				var err error
				conns[i], err = srv.hello(names[i])
				errs <- err
			}()
		}
		return firstError(errs, len(names))
	}
	if err := connectAll(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		for _, ws := range conns {
			if ws != nil {
				_ = ws.Close()
			}
		}
	})
	return func(n int) error {
		for range n {
			for _, ws := range conns {
				_ = ws.Close()
			}
			if err := connectAll(); err != nil {
				return err
			}
		}
		return nil
	}
}

// cycleServer is the child process serving BenchmarkCycleCPU.
type cycleServer struct {
	url    string
	tokens map[string]string
	in     *bufio.Writer
	out    *bufio.Scanner
}

// startCycleServer starts the child process serving kind and returns once
// it is ready; the child ends when the benchmark does.
func startCycleServer(b *testing.B, kind string) *cycleServer {
	b.Helper()
	path := filepath.Join(b.TempDir(), "tokens.json")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCycleServer$", "-test.v=false")
	cmd.Env = append(os.Environ(), "FOYER_CYCLE_SERVER="+kind, "FOYER_CYCLE_TOKENS="+path)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	})
	s := &cycleServer{in: bufio.NewWriter(stdin), out: bufio.NewScanner(stdout)}
	for s.out.Scan() {
		if url, ok := strings.CutPrefix(s.out.Text(), "ready "); ok {
			s.url = url
			break
		}
	}
	data, err := os.ReadFile(path)
	if err != nil || s.url == "" {
		b.Fatalf("the %s server did not start: %v", kind, err)
	}
	if err := json.Unmarshal(data, &s.tokens); err != nil {
		b.Fatal(err)
	}
	return s
}

// cpu asks the child for the CPU time it has used (user + system).
func (s *cycleServer) cpu(b *testing.B) time.Duration {
	b.Helper()
	_, _ = s.in.WriteString("cpu\n")
	_ = s.in.Flush()
	if !s.out.Scan() {
		b.Fatal("the server process ended")
	}
	ns, err := strconv.ParseInt(strings.TrimPrefix(s.out.Text(), "cpu "), 10, 64)
	if err != nil {
		b.Fatalf("the server process said %q", s.out.Text())
	}
	return time.Duration(ns)
}

// cycleGroup is one door station and the seven devices of its ID, each
// device read into its own channel.
type cycleGroup struct {
	door    *websocket.Conn
	doorIn  chan pumped
	devices []*websocket.Conn
	frames  []chan pumped
}

// hello connects as the named device and waits for its welcome.
func (s *cycleServer) hello(name string) (*websocket.Conn, error) {
	ws, _, err := websocket.DefaultDialer.Dial(s.url, nil)
	if err != nil {
		return nil, err
	}
	if err := ws.WriteJSON(map[string]any{"type": "hello", "token": s.tokens[name], "version": 1}); err != nil {
		return ws, err
	}
	_ = ws.SetReadDeadline(time.Now().Add(readTimeout))
	var m struct{ Type string }
	if err := ws.ReadJSON(&m); err != nil || m.Type != "welcome" {
		return ws, fmt.Errorf("%s: want welcome, got %q (%v)", name, m.Type, err)
	}
	return ws, nil
}

// groups connects cycleGroups groups; they close when the benchmark ends.
func (s *cycleServer) groups(b *testing.B) []*cycleGroup {
	b.Helper()
	groups := make([]*cycleGroup, cycleGroups)
	for g := range groups {
		groups[g] = s.group(b, g)
	}
	b.Cleanup(func() {
		for _, g := range groups {
			g.close()
		}
	})
	return groups
}

func (s *cycleServer) group(b *testing.B, g int) *cycleGroup {
	b.Helper()
	dial := func(name string) (*websocket.Conn, chan pumped) {
		ws, err := s.hello(name)
		if err != nil {
			b.Fatal(err)
		}
		ch := make(chan pumped, 16)
		go pump(&client{t: b, ws: ws, name: name}, ch)
		return ws, ch
	}
	grp := &cycleGroup{}
	grp.door, grp.doorIn = dial(fmt.Sprintf("g%d-door", g))
	for _, n := range cycleDevices(g) {
		ws, ch := dial(n)
		grp.devices = append(grp.devices, ws)
		grp.frames = append(grp.frames, ch)
	}
	return grp
}

// cycle runs one call: the door calls, all seven ring, the first device
// answers, the other six are cancelled, the door hangs up. Every frame
// must be the one the protocol says, in order, on both servers.
func (g *cycleGroup) cycle() error {
	expect := func(ch chan pumped, typ string) (pumped, error) {
		select {
		case m, ok := <-ch:
			if !ok || m.Type != typ {
				return m, fmt.Errorf("want %s, got %v", typ, m)
			}
			return m, nil
		case <-time.After(readTimeout):
			return pumped{}, fmt.Errorf("no %s within %v", typ, readTimeout)
		}
	}
	if err := g.door.WriteJSON(map[string]any{"type": "call", "to": "1"}); err != nil {
		return err
	}
	for _, ch := range g.frames {
		if _, err := expect(ch, "ring"); err != nil {
			return err
		}
	}
	calling, err := expect(g.doorIn, "calling")
	if err != nil {
		return err
	}
	id := calling.CallID
	if err := g.devices[0].WriteJSON(map[string]any{"type": "answer", "call_id": id}); err != nil {
		return err
	}
	for i, ch := range g.frames {
		want := "cancel"
		if i == 0 {
			want = "answered"
		}
		if _, err := expect(ch, want); err != nil {
			return err
		}
	}
	if _, err := expect(g.doorIn, "answered"); err != nil {
		return err
	}
	if err := g.door.WriteJSON(map[string]any{"type": "hangup", "call_id": id}); err != nil {
		return err
	}
	if _, err := expect(g.doorIn, "ended"); err != nil {
		return err
	}
	_, err = expect(g.frames[0], "ended")
	return err
}

func (g *cycleGroup) close() {
	_ = g.door.Close()
	for _, d := range g.devices {
		_ = d.Close()
	}
}

// cycleDevices names group g's seven devices (its ID "1" on its own site).
func cycleDevices(g int) []string {
	_, names := cycleSite(g)
	return names
}

// cycleSite is group g's site: door station g<g>-door, ID "1" ringing
// seven devices named g<g>-….
func cycleSite(g int) (string, []string) {
	var b strings.Builder
	fmt.Fprintf(&b, "  - name: Cycle %d\n    door_stations: [g%d-door]\n    ids:\n", g, g)
	names := sevenOn(&b, "1", fmt.Sprintf("g%d-", g))
	return b.String(), names
}

// TestCycleServer is the child process of BenchmarkCycleCPU and
// BenchmarkReconnectCPU; it does
// nothing in a normal test run. It serves until its stdin closes, and
// answers each "cpu" line with its CPU time so far in nanoseconds. With
// FOYER_CYCLE_CPUPROFILE=path it writes a CPU profile of its run to
// path.foyer or path.relay, and with FOYER_CYCLE_MEMPROFILE=path the
// allocations of its run, as it ends, likewise.
func TestCycleServer(t *testing.T) {
	kind, path := os.Getenv("FOYER_CYCLE_SERVER"), os.Getenv("FOYER_CYCLE_TOKENS")
	if kind == "" {
		t.Skip("only run as the server process of BenchmarkCycleCPU and BenchmarkReconnectCPU")
	}
	var url string
	var tokens map[string]string
	switch kind {
	case "foyer":
		var b strings.Builder
		b.WriteString("sites:\n")
		for g := range cycleGroups {
			site, _ := cycleSite(g)
			b.WriteString(site)
		}
		ts := newNodesWith(t, b.String(), benchConfig(), 1, nodeOptions{likeServe: true})
		url, tokens = ts.url(), ts.tokens
	case "relay":
		url, tokens = startRelay(t)
	default:
		t.Fatalf("FOYER_CYCLE_SERVER=%q: want foyer or relay", kind)
	}
	data, _ := json.Marshal(tokens)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("FOYER_CYCLE_CPUPROFILE"); out != "" {
		f, err := os.Create(out + "." + kind)
		if err != nil {
			t.Fatal(err)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if out := os.Getenv("FOYER_CYCLE_MEMPROFILE"); out != "" {
		defer func() {
			f, err := os.Create(out + "." + kind)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				t.Error(err)
			}
		}()
	}
	fmt.Println("ready", url)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		fmt.Println("cpu", time.Duration(ru.Utime.Nano()+ru.Stime.Nano()).Nanoseconds())
	}
}

// startRelay serves BenchmarkCycleCPU's floor: a bare gorilla server,
// one goroutine per connection, whose "token" is the device's name. Per
// group it relays by who sends, not by what: the door's first frame
// (call) → ring to the seven devices and calling to the door; a device's
// frame (answer) → answered to it and the door, cancel to the other six;
// the door's second frame (hangup) → ended to the door and the device
// that answered. The frames are foyer's own, encoded once.
func startRelay(t *testing.T) (string, map[string]string) {
	id := CallID("c_0123456789abcdef0123")
	ring := encode(Ring{Type: TypeRing, CallID: id, From: Caller{DoorStationID: "ds_0123456789abcdef", Name: "g0-door", SiteID: "s_0123456789abcdef", SiteName: "Cycle 0"}, To: "1", LifetimeMS: 30000})
	calling := encode(Calling{Type: TypeCalling, CallID: id, Ringing: 7})
	answered := encode(Answered{Type: TypeAnswered, CallID: id, By: Party{DeviceID: "dv_0123456789abcdef", Kind: "app", Name: "u0@example.com"}})
	cancel := encode(Cancel{Type: TypeCancel, CallID: id, Reason: CancelAnsweredElsewhere})
	ended := encode(Ended{Type: TypeEnded, CallID: id, Reason: EndHangup, DurationMS: 1})
	welcome := []byte(`{"type":"welcome","device_id":"dv_0123456789abcdef","resume_token":"r"}`)

	type group struct {
		mu      sync.Mutex
		door    *websocket.Conn
		devices [7]*websocket.Conn
		calling bool
		winner  *websocket.Conn
	}
	groups := make([]*group, cycleGroups)
	tokens := map[string]string{}
	slot := map[string][2]int{} // name → group, device index (-1: the door)
	for g := range groups {
		groups[g] = &group{}
		tokens[fmt.Sprintf("g%d-door", g)] = fmt.Sprintf("g%d-door", g)
		slot[fmt.Sprintf("g%d-door", g)] = [2]int{g, -1}
		for i, n := range cycleDevices(g) {
			tokens[n], slot[n] = n, [2]int{g, i}
		}
	}
	write := func(ws *websocket.Conn, frame []byte) { _ = ws.WriteMessage(websocket.TextMessage, frame) }
	up := websocket.Upgrader{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		var hello struct{ Token string }
		if ws.ReadJSON(&hello) != nil {
			return
		}
		at, ok := slot[hello.Token]
		if !ok {
			return
		}
		g := groups[at[0]]
		g.mu.Lock()
		if at[1] < 0 {
			g.door = ws
		} else {
			g.devices[at[1]] = ws
		}
		write(ws, welcome)
		g.mu.Unlock()
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
			g.mu.Lock()
			switch {
			case at[1] >= 0: // answer
				g.winner = ws
				write(ws, answered)
				write(g.door, answered)
				for _, d := range g.devices {
					if d != ws {
						write(d, cancel)
					}
				}
			case !g.calling: // call
				g.calling = true
				for _, d := range g.devices {
					write(d, ring)
				}
				write(ws, calling)
			default: // hangup
				g.calling = false
				write(ws, ended)
				write(g.winner, ended)
			}
			g.mu.Unlock()
		}
	}))
	_ = srv.Listener.Close()
	srv.Listener = listenLikeServe(t)
	srv.Start()
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), tokens
}
