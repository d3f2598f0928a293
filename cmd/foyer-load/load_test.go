package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/internal/redistest"
)

// TestMain lets the test binary serve as its own worker process: the
// coordinator re-executes os.Executable(), which is this binary here.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == workerCommand && os.Getenv(workerIDEnv) != "" {
		os.Exit(runWorker(os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// testServer is a real `foyer serve` on a free loopback port.
type testServer struct {
	signal, metrics string
	tokens          string    // the tokens file foyer-load saved when seeding
	proc            *exec.Cmd // the `foyer serve` process
}

// startServer builds ../foyer, seeds it through foyer-load (devices, doors)
// and runs `foyer serve` until the test ends.
func startServer(t *testing.T, devices, doors int) *testServer {
	t.Helper()
	bin := buildFoyer(t)
	data := filepath.Join(t.TempDir(), "data")
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	runLoad(t, "--foyer", bin, "--data-dir", data, "--devices", strconv.Itoa(devices), "--doors", strconv.Itoa(doors),
		"--ids-per-site", "10", "--tokens-out", tokens, "--seed-only")
	srv := serveNode(t, bin, "--data-dir", data)
	srv.tokens = tokens
	return srv
}

// startCluster starts a real redis-server and n `foyer serve` nodes that
// share it, seeded through foyer-load (devices, doors), until the test
// ends.
func startCluster(t *testing.T, n, devices, doors int) []*testServer {
	t.Helper()
	bin := buildFoyer(t)
	config := filepath.Join(t.TempDir(), "foyer.yaml")
	yaml := "redis:\n  url: redis://" + redistest.Start(t) + "/0\n" // TURN is off (serveNode), so no shared secret
	if err := os.WriteFile(config, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(t.TempDir(), "tokens.json")
	runLoad(t, "--foyer", bin, "--config", config, "--devices", strconv.Itoa(devices), "--doors", strconv.Itoa(doors),
		"--ids-per-site", "10", "--tokens-out", tokens, "--seed-only")
	nodes := make([]*testServer, n)
	for i := range nodes {
		nodes[i] = serveNode(t, bin, "--config", config, "--data-dir", t.TempDir())
		nodes[i].tokens = tokens
	}
	return nodes
}

// buildFoyer builds ../foyer into the test's directory.
func buildFoyer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "foyer")
	if out, err := exec.Command("go", "build", "-o", bin, "../foyer").CombinedOutput(); err != nil {
		t.Fatalf("building foyer: %v\n%s", err, out)
	}
	return bin
}

// serveNode runs `foyer serve` with args on a free loopback port (TURN off,
// media on loopback) until the test ends, and returns once it is ready.
func serveNode(t *testing.T, bin string, args ...string) *testServer {
	t.Helper()
	return serveNodeEnv(t, bin, nil, args...)
}

// serveNodeEnv is serveNode with more environment for the server.
func serveNodeEnv(t *testing.T, bin string, env []string, args ...string) *testServer {
	t.Helper()
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	serve := exec.Command(bin, append([]string{"serve", "--listen", addr}, args...)...)
	serve.Env = append(append(os.Environ(), "FOYER_TURN_ENABLED=false", "FOYER_MEDIA_LOOPBACK_ONLY=true"), env...)
	var logs bytes.Buffer
	serve.Stderr = &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = serve.Process.Kill() // the server we started, by its PID
		_ = serve.Wait()
		if t.Failed() {
			t.Logf("server %s log:\n%s", addr, logs.String())
		}
	})
	waitReady(t, "http://"+addr+"/readyz")
	return &testServer{signal: "ws://" + addr + "/v1/signal", metrics: "http://" + addr + "/metrics", proc: serve}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond) // polling a server whose start we do not control
	}
	t.Fatalf("%s never became ready", url)
}

// runLoad runs foyer-load in this process (its workers are this test
// binary) and returns the report; nil for --seed-only.
func runLoad(t *testing.T, args ...string) *report {
	t.Helper()
	o, err := parseOptions(args, io.Discard)
	if err != nil {
		t.Fatalf("options %q: %v", args, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rep, err := runScenario(ctx, o, log)
	if err != nil {
		t.Fatalf("foyer-load %q: %v", args, err)
	}
	if rep != nil {
		var b bytes.Buffer
		rep.writeTable(&b)
		t.Logf("report:\n%s", b.String())
	}
	return rep
}

// testWriter sends the tool's log to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimSpace(p)))
	return len(p), nil
}

// checkClean fails on any connect error or lost connection.
func checkClean(t *testing.T, rep *report) {
	t.Helper()
	if rep.Connect.Connected != rep.Connect.Wanted || len(rep.Connect.Errors) != 0 {
		t.Errorf("connected %d of %d, errors %v", rep.Connect.Connected, rep.Connect.Wanted, rep.Connect.Errors)
	}
	if rep.Connect.Handshake.N != rep.Connect.Connected || rep.Connect.Handshake.P50 <= 0 {
		t.Errorf("handshake latency %+v", rep.Connect.Handshake)
	}
	if len(rep.Lost) != 0 {
		t.Errorf("connections lost: %v", rep.Lost)
	}
	if rep.Workers < 2 {
		t.Errorf("ran on %d worker(s); --per-worker 100 should need several", rep.Workers)
	}
}
