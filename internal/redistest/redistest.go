// Package redistest starts throwaway redis-server processes on loopback
// ports for tests: a single instance, or a three-master Redis Cluster.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// startTimeout bounds how long a redis-server may take to answer PING.
const startTimeout = 10 * time.Second

// require skips (or, with FOYER_REQUIRE_TOOLS=1 as in `make test`, fails)
// when redis-server is not installed.
func require(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("FOYER_REQUIRE_TOOLS") == "1" {
			t.Fatal("redis-server is not installed (apt-get install redis-server); make test installs it")
		}
		t.Skip("redis-server is not installed; `make test` installs it (apt-get install redis-server)")
	}
	return bin
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Server is one running redis-server.
type Server struct {
	Addr string
	cmd  *exec.Cmd
}

// Start runs a redis-server on a free loopback port, without persistence,
// and stops it (by PID) when the test ends.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	bin := require(t)
	dir := t.TempDir()
	port := freePort(t)
	args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "no"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	s := &Server{Addr: fmt.Sprintf("127.0.0.1:%d", port), cmd: cmd}
	t.Cleanup(s.Stop)
	if err := waitPing(s.Addr); err != nil {
		t.Fatalf("redis-server on %s: %v", s.Addr, err)
	}
	return s
}

// Stop kills the server; the test may call it to simulate Redis going away.
func (s *Server) Stop() {
	if s.cmd.Process != nil && s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// Restart starts a new redis-server on the same address (empty, as after a
// crash without persistence).
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	_, port, _ := net.SplitHostPort(s.Addr)
	cmd := exec.Command(s.cmd.Path, append([]string{"--port", port}, s.cmd.Args[3:]...)...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("restarting redis-server: %v", err)
	}
	s.cmd = cmd
	if err := waitPing(s.Addr); err != nil {
		t.Fatalf("redis-server on %s after restart: %v", s.Addr, err)
	}
}

// StartCluster runs a three-master Redis Cluster on loopback and returns
// the addresses of its nodes.
func StartCluster(t testing.TB) []string {
	t.Helper()
	if _, err := exec.LookPath("redis-cli"); err != nil {
		require(t)
		t.Fatal("redis-cli is not installed (apt-get install redis-tools)")
	}
	var addrs []string
	for i := range 3 {
		conf := filepath.Join(t.TempDir(), fmt.Sprintf("nodes-%d.conf", i))
		s := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", conf, "--cluster-node-timeout", "2000")
		addrs = append(addrs, s.Addr)
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command("redis-cli", args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(startTimeout)
	for _, a := range addrs {
		for {
			host, port, _ := net.SplitHostPort(a)
			out, _ := exec.Command("redis-cli", "-h", host, "-p", port, "cluster", "info").Output()
			if strings.Contains(string(out), "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cluster did not become ok on %s: %s", a, out)
			}
			time.Sleep(50 * time.Millisecond) // polling an external process
		}
	}
	return addrs
}

// waitPing waits until addr answers PING with PONG.
func waitPing(addr string) error {
	deadline := time.Now().Add(startTimeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = conn.SetDeadline(time.Now().Add(time.Second))
			_, _ = conn.Write([]byte("PING\r\n"))
			line, _ := bufio.NewReader(conn).ReadString('\n')
			conn.Close()
			if strings.HasPrefix(line, "+PONG") {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %v", startTimeout)
		}
		time.Sleep(20 * time.Millisecond) // polling an external process
	}
}
