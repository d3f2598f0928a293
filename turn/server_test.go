package turn

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/turn/v5"
)

// peerIP is the test's "media server": the only address relays may reach.
// 127.0.0.1 (the node itself) stays refused like every other address.
const peerIP = "127.0.0.2"

func newTestServer(t *testing.T, mod func(*Config)) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AllowPeers = []string{peerIP + "/32"}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, "test-secret", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// newClient is a pion/turn client on loopback with the given credentials.
func newClient(t *testing.T, s *Server, user, pass string) *turn.Client {
	t.Helper()
	conn, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := turn.NewClient(&turn.ClientConfig{TURNServerAddr: s.Addr().String(), Username: user, Password: pass,
		Realm: "foyer", Conn: conn, LoggerFactory: logging.NewDefaultLoggerFactory()})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); _ = conn.Close() })
	return c
}

// sink is a UDP listener that records what reaches it.
func sink(t *testing.T, ip string) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp4", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

func TestRelayToAllowedPeer(t *testing.T) {
	s := newTestServer(t, nil)
	user, pass := Credentials("test-secret", "d_phone", time.Hour, time.Now())
	relay, err := newClient(t, s, user, pass).Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	peer := sink(t, peerIP)
	want := []byte("rtp from the phone")
	if _, err := relay.WriteTo(want, peer.LocalAddr()); err != nil {
		t.Fatalf("relay to the allowed peer: %v", err)
	}
	_ = peer.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := peer.ReadFrom(buf)
	if err != nil || !bytes.Equal(buf[:n], want) {
		t.Fatalf("peer got %q from %v (%v)", buf[:n], from, err)
	}
	if from.String() != relay.LocalAddr().String() {
		t.Fatalf("the packet came from %v, not the relay %v", from, relay.LocalAddr())
	}
	if st := s.Stats(); st.Active != 1 || st.Total != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestRefusedPeers: permissions toward the node itself, private,
// link-local, CGNAT and mapped addresses are refused, and a listener on
// the node sees nothing.
func TestRefusedPeers(t *testing.T) {
	s := newTestServer(t, nil)
	user, pass := Credentials("test-secret", "d_phone", time.Hour, time.Now())
	c := newClient(t, s, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	own := sink(t, "127.0.0.1") // as if the node's HTTP or Redis port
	for _, addr := range []string{own.LocalAddr().String(), "10.0.0.1:5000", "169.254.169.254:80", "[::ffff:127.0.0.1]:6379", "100.64.0.1:5000", "192.168.1.1:5000"} {
		a, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CreatePermission(a); err == nil {
			t.Errorf("permission toward %s was granted", addr)
		}
		if _, err := relay.WriteTo([]byte("probe"), a); err == nil {
			t.Errorf("relaying toward %s was accepted", addr)
		}
	}
	_ = own.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _, err := own.ReadFrom(make([]byte, 100)); err == nil {
		t.Fatalf("the node's own port received %d bytes through the relay", n)
	}
	if r := s.Stats().Refused; r["loopback"] == 0 || r["private"] == 0 || r["link-local"] == 0 || r["cgnat"] == 0 {
		t.Fatalf("refusals %v", r)
	}
}

func TestExpiredCredentialRefusedAtAllocate(t *testing.T) {
	s := newTestServer(t, nil)
	user, pass := Credentials("test-secret", "d_phone", -time.Minute, time.Now())
	if _, err := newClient(t, s, user, pass).Allocate(); err == nil {
		t.Fatal("allocation with an expired credential succeeded")
	}
	user, _ = Credentials("test-secret", "d_phone", time.Hour, time.Now())
	if _, err := newClient(t, s, user, "wrong").Allocate(); err == nil {
		t.Fatal("allocation with a wrong password succeeded")
	}
	if s.Stats().Refused["expired"] == 0 {
		t.Fatalf("refusals %v", s.Stats().Refused)
	}
}

// TestLiveAllocationOutlivesCredential: after the credential expires, the
// allocation made in time still gets permissions and refreshes (closing it
// is a Refresh with lifetime 0, which the server must accept).
func TestLiveAllocationOutlivesCredential(t *testing.T) {
	s := newTestServer(t, nil)
	ttl := 2 * time.Second
	user, pass := Credentials("test-secret", "d_phone", ttl, time.Now())
	c := newClient(t, s, user, pass)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(ttl + 1200*time.Millisecond) // the credential must really be expired (whole seconds)
	peer := sink(t, peerIP)
	if err := c.CreatePermission(peer.LocalAddr()); err != nil {
		t.Fatalf("permission on a live allocation after the credential expired: %v", err)
	}
	_ = relay.Close() // Refresh, lifetime 0
	deadline := time.Now().Add(3 * time.Second)
	for s.Stats().Active != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the refresh after expiry was refused: the allocation is still live")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestAllocationQuota(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.AllocationsPerUser = 2 })
	user, pass := Credentials("test-secret", "d_phone", time.Hour, time.Now())
	for i := range 2 {
		if _, err := newClient(t, s, user, pass).Allocate(); err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	if _, err := newClient(t, s, user, pass).Allocate(); err == nil {
		t.Fatal("a third allocation for one credential succeeded")
	}
	other, otherPass := Credentials("test-secret", "d_tablet", time.Hour, time.Now())
	if _, err := newClient(t, s, other, otherPass).Allocate(); err != nil {
		t.Fatalf("another credential's allocation: %v", err)
	}
}
