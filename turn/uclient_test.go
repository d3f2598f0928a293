package turn

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// requireTool returns a binary's path; without it the test is skipped, or
// fails under FOYER_REQUIRE_TOOLS=1 (as in make test).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("FOYER_REQUIRE_TOOLS") == "1" {
			t.Fatalf("%s is not installed (apt-get install coturn); make test installs it", name)
		}
		t.Skipf("%s is not installed; `make test` installs it (apt-get install coturn)", name)
	}
	return p
}

// freeUDPPort returns a UDP port on ip that was free a moment ago.
func freeUDPPort(t *testing.T, ip string) int {
	t.Helper()
	pc, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// uclient runs coturn's turnutils_uclient against s, relaying n messages
// to peer:port, and returns its output.
func uclient(t *testing.T, s *Server, peer string, port, n int) (string, error) {
	t.Helper()
	bin := requireTool(t, "turnutils_uclient")
	user, pass := Credentials("test-secret", "d_uclient", time.Hour, time.Now())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	turnPort := s.Addr().(*net.UDPAddr).Port
	cmd := exec.CommandContext(ctx, bin, "-c", "-n", strconv.Itoa(n), "-m", "1", "-l", "120", "-z", "5",
		"-e", peer, "-r", strconv.Itoa(port), "-p", strconv.Itoa(turnPort), "-u", user, "-w", pass, "127.0.0.1")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestCoturnClient relays through foyer's TURN server with a client no one
// here wrote: coturn's turnutils_uclient, echoed by turnutils_peer on the
// allowed peer address; toward a refused peer it gets nothing through.
func TestCoturnClient(t *testing.T) {
	peerBin := requireTool(t, "turnutils_peer")
	s := newTestServer(t, nil)
	port := freeUDPPort(t, peerIP)
	echo := exec.Command(peerBin, "-L", peerIP, "-p", strconv.Itoa(port))
	if err := echo.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = echo.Process.Kill(); _ = echo.Wait() })
	time.Sleep(200 * time.Millisecond) // let the echo peer bind; it prints nothing to wait on

	out, err := uclient(t, s, peerIP, port, 20)
	t.Logf("uclient toward the allowed peer:\n%s", out)
	if err != nil {
		t.Fatalf("turnutils_uclient: %v", err)
	}
	sent, recv, lost := totals(t, out)
	if sent != 20 || recv != 20 || lost != 0 {
		t.Fatalf("sent %d, received %d, lost %d; want 20, 20, 0", sent, recv, lost)
	}

	before := s.Stats().Refused["private"]
	out, _ = uclient(t, s, "10.0.0.1", 5000, 5)
	t.Logf("uclient toward 10.0.0.1:\n%s", out)
	if _, recv, _ := totals(t, out); recv > 0 { // -1: it gave up before sending
		t.Fatalf("%d packets came back from a refused peer", recv)
	}
	if s.Stats().Refused["private"] == before {
		t.Fatal("the server did not refuse the permission toward 10.0.0.1")
	}
}

var (
	sentRe = regexp.MustCompile(`tot_send_msgs=(\d+)`)
	recvRe = regexp.MustCompile(`tot_recv_msgs=(\d+)`)
	lostRe = regexp.MustCompile(`Total lost packets (\d+)`)
)

// totals reads uclient's closing statistics.
func totals(t *testing.T, out string) (sent, recv, lost int) {
	t.Helper()
	get := func(re *regexp.Regexp) int {
		m := re.FindAllStringSubmatch(out, -1)
		if len(m) == 0 {
			return -1
		}
		n, _ := strconv.Atoi(m[len(m)-1][1])
		return n
	}
	return get(sentRe), get(recvRe), get(lostRe)
}
