package turn

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/internal/testtool"
)

// Timing of the coturn tests, each with why.
const (
	// uclientTimeout bounds one turnutils_uclient run (20 messages at
	// 5 ms intervals take well under a second).
	uclientTimeout = 30 * time.Second
	// peerProbeInterval: how often to probe the echo peer until it answers.
	peerProbeInterval = 50 * time.Millisecond
)

// requireTool returns the path of one of coturn's programs, or ends the
// test (testtool.Require).
func requireTool(t *testing.T, name string) string {
	t.Helper()
	return testtool.Require(t, name, "coturn")
}

// startEchoPeer runs coturn's turnutils_peer (a UDP echo server) on ip and
// returns its port once it answers.
func startEchoPeer(t *testing.T, ip string) int {
	t.Helper()
	bin := requireTool(t, "turnutils_peer")
	probe := sink(t, ip)
	port := probe.LocalAddr().(*net.UDPAddr).Port + 1 // the OS hands out ports upward; retried below if taken
	for try := 0; ; try++ {
		echo := exec.Command(bin, "-L", ip, "-p", strconv.Itoa(port))
		if err := echo.Start(); err != nil {
			t.Fatal(err)
		}
		if echoes(probe, &net.UDPAddr{IP: net.ParseIP(ip), Port: port}) {
			t.Cleanup(func() { _ = echo.Process.Kill(); _ = echo.Wait() })
			return port
		}
		_ = echo.Process.Kill()
		_ = echo.Wait()
		if try == 5 {
			t.Fatalf("turnutils_peer on %s does not answer", ip)
		}
		port = freePort(t, ip)
	}
}

// echoes probes addr until it sends the probe back or ioWait passes.
func echoes(probe net.PacketConn, addr net.Addr) bool {
	deadline := time.Now().Add(ioWait)
	buf := make([]byte, 64)
	for time.Now().Before(deadline) {
		if _, err := probe.WriteTo([]byte("ping"), addr); err != nil {
			return false
		}
		_ = probe.SetReadDeadline(time.Now().Add(peerProbeInterval))
		if n, _, err := probe.ReadFrom(buf); err == nil && string(buf[:n]) == "ping" {
			return true
		}
	}
	return false
}

// freePort returns a UDP port on ip that was free a moment ago.
func freePort(t *testing.T, ip string) int {
	t.Helper()
	pc := sink(t, ip)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	_ = pc.Close()
	return port
}

// restAuth has turnutils_uclient derive its credential from the shared
// secret itself (-W, TURN REST mode): coturn's idea of the REST convention
// checked against ours.
var restAuth = []string{"-W", testSecret, "-u", "d_uclient"}

// givenAuth passes the credential Credentials makes, as a client handed
// foyer's welcome would use it.
func givenAuth() []string {
	user, pass := Credentials(testSecret, "d_uclient", time.Hour, time.Now())
	return []string{"-u", user, "-w", pass}
}

// uclient runs coturn's turnutils_uclient against s with auth's
// credential options, relaying n messages to peer:port, and returns its
// output.
func uclient(t *testing.T, s *Server, auth []string, peer string, port, n int, extra ...string) string {
	t.Helper()
	bin := requireTool(t, "turnutils_uclient")
	ctx, cancel := context.WithTimeout(t.Context(), uclientTimeout)
	defer cancel()
	args := append([]string{"-c", "-n", strconv.Itoa(n), "-m", "1", "-l", "120", "-z", "5",
		"-e", peer, "-r", strconv.Itoa(port), "-p", strconv.Itoa(s.Addr().(*net.UDPAddr).Port)}, auth...)
	args = append(args, extra...)
	args = append(args, "127.0.0.1")
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput() // a refused run exits non-zero: the totals decide
	t.Logf("turnutils_uclient %v (exit: %v):\n%s", args, err, out)
	if ctx.Err() != nil {
		t.Fatalf("turnutils_uclient did not finish within %v", uclientTimeout)
	}
	return string(out)
}

// TestCoturnClient relays through foyer's TURN server with a client no one
// here wrote: coturn's turnutils_uclient, over UDP and over TCP, echoed by
// turnutils_peer on the allowed peer address. Toward a refused peer the
// server refuses the permission and nothing is relayed.
func TestCoturnClient(t *testing.T) {
	requireTool(t, "turnutils_uclient")
	s := newTestServer(t, func(c *Config) { c.TCPRelay = true })
	port := startEchoPeer(t, peerIP)

	for _, tc := range []struct {
		name  string
		auth  []string
		extra []string
	}{
		{"udp channels", restAuth, nil},
		{"udp send indications", restAuth, []string{"-s"}},
		{"tcp channels", restAuth, []string{"-t"}},
		{"udp channels with a handed-out credential", givenAuth(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats()
			out := uclient(t, s, tc.auth, peerIP, port, 20, tc.extra...)
			if sent, recv, lost := totals(out); sent != 20 || recv != 20 || lost != 0 {
				t.Fatalf("sent %d, received %d, lost %d; want 20, 20, 0", sent, recv, lost)
			}
			// The server saw it too: an allocation, and the 20 messages of
			// 120 bytes each way.
			after := s.Stats()
			if after.Total == before.Total || after.BytesToPeers-before.BytesToPeers < 20*120 ||
				after.BytesFromPeers-before.BytesFromPeers < 20*120 {
				t.Fatalf("stats before %+v, after %+v", before, after)
			}
		})
	}

	// Toward 10.0.0.1 uclient asks for a channel (pion/turn v5.1.0 refuses
	// a ChannelBind with 401, where RFC 8656 §11.2 says 403) or, with -s,
	// a permission (403). The server's counters show the refusal and that
	// not one byte was relayed.
	for _, tc := range []struct {
		name, refusal string // refusal: what uclient prints on the server's answer
		extra         []string
	}{
		{"refused peer channels", "channel bind: error 401", nil},
		{"refused peer send indications", "create permission error 403", []string{"-s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats()
			out := uclient(t, s, restAuth, "10.0.0.1", 5000, 5, tc.extra...)
			if !strings.Contains(out, tc.refusal) {
				t.Errorf("uclient did not report %q", tc.refusal)
			}
			if _, recv, _ := totals(out); recv > 0 {
				t.Fatalf("%d messages came back from a refused peer", recv)
			}
			after := s.Stats()
			if after.Refused["private"] == before.Refused["private"] {
				t.Fatal("the server did not refuse the permission toward 10.0.0.1")
			}
			if after.BytesToPeers != before.BytesToPeers {
				t.Fatalf("%d bytes were relayed toward a refused peer", after.BytesToPeers-before.BytesToPeers)
			}
		})
	}
}

var (
	sentRe = regexp.MustCompile(`tot_send_msgs=(\d+)`)
	recvRe = regexp.MustCompile(`tot_recv_msgs=(\d+)`)
	lostRe = regexp.MustCompile(`Total lost packets (\d+)`)
)

// totals reads uclient's closing statistics; -1 for a figure it did not
// print (it gave up before sending).
func totals(out string) (sent, recv, lost int) {
	get := func(re *regexp.Regexp) int {
		m := re.FindAllStringSubmatch(out, -1)
		if len(m) == 0 {
			return -1
		}
		n, err := strconv.Atoi(m[len(m)-1][1])
		if err != nil {
			return -1
		}
		return n
	}
	return get(sentRe), get(recvRe), get(lostRe)
}
