// Package redistest starts throwaway Redis servers for tests: a single
// instance, or a three-master Redis Cluster, on loopback ports, killed when
// the test ends. Tests of Redis code run against these real servers.
//
// When redis-server (or, for a cluster, redis-cli) is not installed the test
// is skipped, unless FOYER_REQUIRE_TOOLS=1 (as `make test` sets it), which
// makes it fail instead: CI must not pass by skipping.
package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/internal/testtool"
)

// Timings of the servers' start.
const (
	// startWait bounds how long a server may take to answer PING: it
	// starts in milliseconds, but CI machines stall.
	startWait = 10 * time.Second
	// clusterWait bounds how long a new cluster may take to agree that
	// every slot is served (cluster_state:ok on every node).
	clusterWait = 30 * time.Second
	// pollEvery is how often the helpers retry while waiting.
	pollEvery = 20 * time.Millisecond
	// dialTimeout bounds one probe of a server.
	dialTimeout = time.Second
)

// clusterSize is the number of masters of StartCluster: the fewest Redis
// Cluster accepts.
const clusterSize = 3

// requireTool returns the path of a Redis program, or ends the test
// (testtool.Require).
func requireTool(t testing.TB, name string) string {
	t.Helper()
	return testtool.Require(t, name, "redis-server redis-tools")
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Start runs a throwaway redis-server on a free loopback port, without
// persistence, and returns its address once it answers PING. The server is
// killed at the end of the test.
func Start(t testing.TB) (addr string) {
	t.Helper()
	bin := requireTool(t, "redis-server")
	return startServer(t, bin, t.TempDir())
}

// StartCluster runs a Redis Cluster of three masters (no replicas) on
// loopback and returns their addresses once every node reports the cluster
// ok. The servers are killed at the end of the test.
func StartCluster(t testing.TB) []string {
	t.Helper()
	bin := requireTool(t, "redis-server")
	cli := requireTool(t, "redis-cli")
	addrs := make([]string, clusterSize)
	for i := range addrs {
		dir := filepath.Join(t.TempDir(), strconv.Itoa(i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		addrs[i] = startServer(t, bin, dir,
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-port", strconv.Itoa(freePort(t)),
			"--cluster-node-timeout", "5000")
	}
	args := append([]string{"--cluster", "create"}, addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	deadline := time.Now().Add(clusterWait)
	for _, a := range addrs {
		for {
			info, err := command(a, "CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("redistest: cluster node %s not ok after %v: %v\n%s", a, clusterWait, err, info)
			}
			time.Sleep(pollEvery)
		}
	}
	return addrs
}

// startAttempts is how often startServer tries fresh ports when another
// process took the chosen one between freePort and redis-server's bind.
const startAttempts = 3

// startServer starts redis-server with args in dir and waits for PING.
func startServer(t testing.TB, bin, dir string, args ...string) string {
	t.Helper()
	var err error
	for range startAttempts {
		var addr string
		if addr, err = tryServer(t, bin, dir, args...); err == nil {
			return addr
		}
	}
	t.Fatalf("redistest: %v", err)
	return ""
}

// tryServer starts one redis-server on a free port; the process is killed
// by PID at cleanup, or at once if it does not come up.
func tryServer(t testing.TB, bin, dir string, args ...string) (string, error) {
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logPath := filepath.Join(dir, "redis-"+strconv.Itoa(port)+".log")
	args = append([]string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", logPath,
	}, args...)
	cmd := exec.Command(bin, args...)
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("starting redis-server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(startWait)
	for {
		reply, err := command(addr, "PING")
		if err == nil && reply == "PONG" {
			t.Cleanup(stop)
			return addr, nil
		}
		select {
		case werr := <-exited:
			log, _ := os.ReadFile(logPath)
			return "", fmt.Errorf("redis-server on %s exited: %v\n%s", addr, werr, log)
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return "", fmt.Errorf("redis-server on %s does not answer PING after %v: %v", addr, startWait, err)
		}
		time.Sleep(pollEvery)
	}
}

// command sends one command to addr and returns its simple-string or
// bulk-string reply: just enough RESP to probe a server.
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(dialTimeout))
	req := fmt.Sprintf("*%d\r\n", len(args))
	for _, a := range args {
		req += fmt.Sprintf("$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, req); err != nil {
		return "", err
	}
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "+"):
		return line[1:], nil
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("redistest: unexpected reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("redistest: reply %q", line)
}

// Server is a redis-server that a test can stop and start again on the
// same address, to take Redis away from the code under test and bring it
// back (empty, as after a crash without persistence).
type Server struct {
	Addr string

	bin, dir string
	port     int
	cmd      *exec.Cmd
	exited   chan error
}

// StartServer runs a redis-server like Start, as a Server the test controls.
// It is killed at the end of the test.
func StartServer(t testing.TB) *Server {
	t.Helper()
	s := &Server{bin: requireTool(t, "redis-server"), dir: t.TempDir(), port: freePort(t)}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.start(t)
	t.Cleanup(s.Stop)
	return s
}

func (s *Server) start(t testing.TB) {
	t.Helper()
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("redistest: starting redis-server: %v", err)
	}
	s.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan<- error) { exited <- cmd.Wait() }(s.cmd, s.exited)
	deadline := time.Now().Add(startWait)
	for {
		if reply, err := command(s.Addr, "PING"); err == nil && reply == "PONG" {
			return
		}
		if time.Now().After(deadline) {
			s.Stop()
			t.Fatalf("redistest: redis-server on %s does not answer PING after %v", s.Addr, startWait)
		}
		time.Sleep(pollEvery)
	}
}

// Stop kills the server (by PID) and waits for it to exit.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same address after Stop (or
// kills the running one first): empty, unless its data was saved (SAVE)
// before, which it loads, as a Redis with persistence restarts.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	s.start(t)
}

// Pause stops the server's process (SIGSTOP) for d and then lets it go on
// (SIGCONT): a Redis that holds every request for d and then answers them
// all, as a busy or stalled one does. It returns at once; the server is
// let go on even if the test ends first.
func (s *Server) Pause(t testing.TB, d time.Duration) {
	t.Helper()
	p := s.cmd.Process
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("redistest: pausing redis-server: %v", err)
	}
	resume := time.AfterFunc(d, func() { _ = p.Signal(syscall.SIGCONT) })
	t.Cleanup(func() {
		if resume.Stop() {
			_ = p.Signal(syscall.SIGCONT)
		}
	})
}
