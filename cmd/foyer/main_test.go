package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// building is shared by the tests that run the real binary.
var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// foyerBin builds cmd/foyer once per test run.
func foyerBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "foyer-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "foyer")
		out, err := exec.Command("go", "build", "-race", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = &buildError{out: string(out), err: err}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

const siteFile = `sites:
  - name: Harbour View
    ring_timeout_s: 30
    door_stations: [front-door, garage-door]
    ids:
      - id: "101"
        name: Jansen
        monitors: [hall-101]
        app_users:
          - email: anna@example.com
            status: active
            licence: active
            devices: [anna-phone, anna-tablet]
          - email: bram@example.com
            devices: [bram-phone]
`

// TestSeedThenServe does what the outside protocol check does: seed a
// file in an empty directory, run `foyer serve` with no flags, and place a
// call on port 8080. Then it checks that seed refuses while the server
// holds the store, and that SIGTERM drains and exits 0.
func TestSeedThenServe(t *testing.T) {
	bin := foyerBin(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "site.yaml"), []byte(siteFile), 0o600); err != nil {
		t.Fatal(err)
	}
	seed := exec.Command(bin, "seed", "site.yaml")
	seed.Dir = dir
	out, err := seed.Output()
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	var printed struct{ Tokens map[string]string }
	if err := json.Unmarshal(out, &printed); err != nil {
		t.Fatalf("seed printed %q: %v", out, err)
	}
	for _, n := range []string{"front-door", "garage-door", "hall-101", "anna-phone", "anna-tablet", "bram-phone"} {
		if printed.Tokens[n] == "" {
			t.Fatalf("no token for %s in %s", n, out)
		}
	}

	serve := exec.Command(bin, "serve")
	serve.Dir = dir
	var logs bytes.Buffer
	serve.Stderr = &logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		_ = serve.Process.Kill()
	})
	waitReady(t, "http://127.0.0.1:8080/readyz")

	again := exec.Command(bin, "seed", "site.yaml")
	again.Dir = dir
	start := time.Now()
	msg, err := again.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "in use by another process") {
		t.Fatalf("seed while serving: %v %s", err, msg)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatalf("seed took %v to refuse; it must say so at once", time.Since(start))
	}

	dial := func(name string) *websocket.Conn {
		ws, _, err := websocket.DefaultDialer.Dial("ws://127.0.0.1:8080/v1/signal", nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.WriteJSON(map[string]any{"type": "hello", "token": printed.Tokens[name], "version": 1}); err != nil {
			t.Fatal(err)
		}
		w := readType(t, ws, "welcome")
		// The embedded TURN server is on by default: REST credentials.
		ice := w["ice_servers"].([]any)
		if len(ice) != 1 || !strings.HasSuffix(ice[0].(map[string]any)["username"].(string), ":"+w["device_id"].(string)) {
			t.Fatalf("welcome.ice_servers %v", ice)
		}
		return ws
	}
	phone := dial("anna-phone")
	door := dial("front-door")
	readType(t, door, "directory")
	if err := door.WriteJSON(map[string]any{"type": "call", "to": "101"}); err != nil {
		t.Fatal(err)
	}
	calling := readType(t, door, "calling")
	ring := readType(t, phone, "ring")
	if ring["call_id"] != calling["call_id"] || calling["ringing"].(float64) != 1 {
		t.Fatalf("calling %v, ring %v", calling, ring)
	}
	_ = phone.WriteJSON(map[string]any{"type": "answer", "call_id": ring["call_id"]})
	readType(t, door, "answered")

	// SIGTERM with a call up: idle connections go, the call may finish.
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	_ = phone.WriteJSON(map[string]any{"type": "hangup", "call_id": ring["call_id"]})
	readType(t, door, "ended")
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM; logs:\n%s", err, logs.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not exit after SIGTERM; logs:\n%s", logs.String())
	}
	for _, secret := range printed.Tokens {
		if strings.Contains(logs.String(), secret) {
			t.Fatal("a device token appeared in the logs")
		}
	}
}

func TestSeedRefusesBadFile(t *testing.T) {
	bin := foyerBin(t)
	dir := t.TempDir()
	bad := strings.Replace(siteFile, `id: "101"`, `id: "10x1"`, 1)
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "seed", "bad.yaml")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "FOYER_DATA_DR=typo") // warned about, as serve does
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err == nil {
		t.Fatal("seed accepted a bad file")
	}
	if !strings.Contains(stderr.String(), "bad.yaml") || !strings.Contains(stderr.String(), "line 6") || stdout.Len() != 0 {
		t.Fatalf("want the file and the line in the error and nothing on stdout; stderr %q stdout %q", stderr.String(), stdout.String())
	}
	if !strings.Contains(stderr.String(), "FOYER_DATA_DR names no configuration key") {
		t.Fatalf("no warning about an unknown FOYER_ variable; stderr %q", stderr.String())
	}
}

// TestUsageListsEveryCommand: foyer --help names each command run accepts.
func TestUsageListsEveryCommand(t *testing.T) {
	var out bytes.Buffer
	if code := run([]string{"--help"}, &out, io.Discard); code != 0 {
		t.Fatalf("--help exited %d", code)
	}
	for _, cmd := range []string{"foyer serve", "foyer seed", "foyer admin create-owner", "foyer config", "foyer version"} {
		if !strings.Contains(out.String(), cmd) {
			t.Errorf("usage does not name %q:\n%s", cmd, out.String())
		}
	}
}

func TestServeDemoPrintsTokens(t *testing.T) {
	bin := foyerBin(t)
	cmd := exec.Command(bin, "serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	found := map[string]bool{}
	for sc.Scan() && len(found) < 3 {
		for _, n := range []string{"front-door", "hall-101", "demo-phone"} {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == n && strings.HasPrefix(f[1], "fyr_") {
				found[n] = true
			}
		}
	}
	if len(found) != 3 {
		t.Fatalf("demo tokens printed: %v", found)
	}
}

// TestServeLogsAdvisories: serve logs a configuration advice as a warning
// as it starts, and starts all the same.
func TestServeLogsAdvisories(t *testing.T) {
	bin := foyerBin(t)
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "FOYER_TURN_ENABLED=false", "FOYER_PUBLIC_URL=https://intercom.example.com")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	advised := false
	for sc.Scan() {
		line := sc.Text()
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "secure_cookies") {
			advised = true
		}
		if strings.Contains(line, "foyer is serving") {
			break
		}
	}
	if !advised {
		t.Fatal("serve started with public_url https and secure_cookies false without a warning")
	}
}

// TestTURNSecretRequiredWithRedis: nodes that share Redis must share the
// TURN secret, or the credentials one node's welcome carries fail on
// another's TURN server behind the same turn.public_url; so such a node
// never generates a secret of its own.
func TestTURNSecretRequiredWithRedis(t *testing.T) {
	cases := []struct {
		name  string
		redis func(*RedisConfig)
	}{
		{"url", func(r *RedisConfig) { r.URL = "redis://127.0.0.1:1" }},
		{"cluster", func(r *RedisConfig) { r.ClusterAddrs = []string{"127.0.0.1:1", "127.0.0.1:2"} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustDefault(t)
			tc.redis(&cfg.Redis)
			cfg.DataDir, cfg.TURN.Listen = t.TempDir(), "127.0.0.1:0"
			_, closeTURN, err := startTURN(cfg, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err == nil {
				closeTURN()
				t.Fatal("TURN started with a secret of its own on a node that shares Redis")
			}
			if !strings.Contains(err.Error(), "turn.secret must be set") {
				t.Fatalf("want an error naming turn.secret, got %v", err)
			}
			if files, _ := os.ReadDir(cfg.DataDir); len(files) != 0 {
				t.Fatalf("data_dir holds %v; no secret may be generated", files)
			}
		})
	}
}

// TestSeedArguments: seed applies exactly one file; given two, it must not
// apply the first and skip the second without a word.
func TestSeedArguments(t *testing.T) {
	dir := t.TempDir()
	site := filepath.Join(dir, "site.yaml")
	if err := os.WriteFile(site, []byte(siteFile), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		files []string
	}{
		{"no file", nil},
		{"two files", []string{site, site}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"seed", "--data-dir", filepath.Join(dir, "data")}, tc.files...)
			if code := run(args, &stdout, &stderr); code == 0 || stdout.Len() != 0 {
				t.Fatalf("seed %v exited %d and printed %q", tc.files, code, stdout.String())
			}
			if !strings.Contains(stderr.String(), "usage: foyer seed") {
				t.Fatalf("want the usage on stderr, got %q", stderr.String())
			}
		})
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond) // polling a server we do not control the start of
	}
	t.Fatalf("%s never became ready", url)
}

func readType(t *testing.T, ws *websocket.Conn, typ string) map[string]any {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		if m["type"] == typ {
			return m
		}
		if m["type"] != "directory" {
			t.Fatalf("want %s, got %v", typ, m)
		}
	}
}
