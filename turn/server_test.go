package turn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

func TestRelayToAllowedPeer(t *testing.T) {
	s := newTestServer(t, nil)
	user, pass := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	relay := allocate(t, newClient(t, s, user, pass))
	peer := sink(t, peerIP)
	want := []byte("rtp from the phone \x00\xff")
	if _, err := relay.WriteTo(want, peer.LocalAddr()); err != nil {
		t.Fatalf("relay to the allowed peer: %v", err)
	}
	got, from := readOne(t, peer)
	if !bytes.Equal(got, want) {
		t.Fatalf("peer got %q, want %q", got, want)
	}
	if from.String() != relay.LocalAddr().String() {
		t.Fatalf("the packet came from %v, not the relay %v", from, relay.LocalAddr())
	}

	reply := []byte("rtp from the media server")
	if _, err := peer.WriteTo(reply, from); err != nil {
		t.Fatal(err)
	}
	got, from = readOne(t, relay)
	if !bytes.Equal(got, reply) || from.String() != peer.LocalAddr().String() {
		t.Fatalf("client got %q from %v", got, from)
	}
	// The relay counts a packet's bytes just after writing it, so the
	// peer's reply can overtake the count: wait for it.
	deadline := time.Now().Add(ioWait)
	for {
		st := s.Stats()
		if st.Active == 1 && st.Total == 1 && st.BytesToPeers == uint64(len(want)) && st.BytesFromPeers == uint64(len(reply)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v", st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCredentialRefusedAtAllocate(t *testing.T) {
	s := newTestServer(t, nil)
	expired, pass := Credentials(testSecret, "d_phone", -time.Minute, time.Now())
	if _, err := newClient(t, s, expired, pass).Allocate(); err == nil {
		t.Fatal("allocation with an expired credential succeeded")
	}
	user, _ := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	if _, err := newClient(t, s, user, "wrong").Allocate(); err == nil {
		t.Fatal("allocation with a wrong password succeeded")
	}
	if _, err := newClient(t, s, "d_phone", restPassword(testSecret, "d_phone")).Allocate(); err == nil {
		t.Fatal("allocation with a username without expiry succeeded")
	}
	other, otherPass := Credentials("another-secret-0123", "d_phone", time.Hour, time.Now())
	if _, err := newClient(t, s, other, otherPass).Allocate(); err == nil {
		t.Fatal("allocation with another deployment's credential succeeded")
	}
	r := s.Stats().Refused
	if r["expired"] != 1 || r["bad-password"] != 2 || r["bad-username"] != 1 || s.Stats().Total != 0 {
		t.Fatalf("refusals %v, stats %+v", r, s.Stats())
	}
}

// TestLiveAllocationOutlivesCredential: once the credential has expired, a
// new allocation with it is refused, but the allocation made in time still
// refreshes, gets permissions and relays: a call is never cut.
func TestLiveAllocationOutlivesCredential(t *testing.T) {
	refusedCredentialLogged = true // TestMain checks its log line
	s := newTestServer(t, nil)
	user, pass := Credentials(testSecret, "d_phone", 2*time.Second, time.Now())
	expires, _, err := ParseUsername(user)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s, user, pass)
	relay := allocate(t, c)
	// Waiting for a real expiry is the point of this test.
	time.Sleep(time.Until(expires) + 100*time.Millisecond)

	if _, err := newClient(t, s, user, pass).Allocate(); err == nil {
		t.Fatal("a new allocation with the expired credential succeeded")
	}
	if code := refresh(t, c, user, pass, 10*time.Minute); code != 0 {
		t.Fatalf("refresh after expiry answered %d", code)
	}
	if code := refresh(t, c, user, "wrong", 10*time.Minute); code == 0 {
		t.Fatal("a refresh with a wrong password succeeded")
	}
	peer := sink(t, peerIP)
	if err := c.CreatePermission(peer.LocalAddr()); err != nil {
		t.Fatalf("permission after expiry: %v", err)
	}
	if _, err := relay.WriteTo([]byte("still talking"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got, _ := readOne(t, peer); string(got) != "still talking" {
		t.Fatalf("peer got %q", got)
	}
	if code := refresh(t, c, user, pass, 0); code != 0 { // deallocate
		t.Fatalf("deallocating refresh answered %d", code)
	}
	eventually(t, "the deallocation", func() bool { return s.Stats().Active == 0 })
}

func TestAllocationQuota(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.AllocationsPerUser = 2 })
	user, pass := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	var relays []net.PacketConn
	for range 2 {
		relays = append(relays, allocate(t, newClient(t, s, user, pass)))
	}
	_, err := newClient(t, s, user, pass).Allocate()
	if err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("a third allocation for one credential: %v, want 486 Allocation Quota Reached", err)
	}
	other, otherPass := Credentials(testSecret, "d_tablet", time.Hour, time.Now())
	allocate(t, newClient(t, s, other, otherPass)) // another credential has its own quota
	// Closing one frees its slot.
	if err := relays[0].Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the slot to free", func() bool { return s.Stats().Active == 2 })
	allocate(t, newClient(t, s, user, pass))
	if st := s.Stats(); st.Refused["quota"] != 1 || st.Active != 3 || st.Total != 4 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAllocationQuotaPerDevice: allocations_per_user bounds what one
// device holds, whatever credential it uses. Every welcome hands out a new
// username (the expiry moves with the clock, in whole seconds), so a quota
// kept per username gave a device that reconnects a fresh quota with each
// welcome.
func TestAllocationQuotaPerDevice(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.AllocationsPerUser = 2 })
	now := time.Now()
	first, firstPass := Credentials(testSecret, "d_phone", time.Hour, now)
	var relays []net.PacketConn
	for range 2 {
		relays = append(relays, allocate(t, newClient(t, s, first, firstPass)))
	}
	// The next welcome, a second later.
	second, secondPass := Credentials(testSecret, "d_phone", time.Hour, now.Add(time.Second))
	if second == first {
		t.Fatal("the two welcomes' usernames are the same")
	}
	_, err := newClient(t, s, second, secondPass).Allocate()
	if err == nil || !strings.Contains(err.Error(), "486") {
		t.Fatalf("a third allocation for one device, with its next credential: %v, want 486 Allocation Quota Reached", err)
	}
	// A slot freed under the first credential serves the second.
	if err := relays[0].Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the slot to free", func() bool { return s.Stats().Active == 1 })
	allocate(t, newClient(t, s, second, secondPass))
	if st := s.Stats(); st.Refused["quota"] != 1 || st.Active != 2 || st.Total != 3 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTCPAllocationRefused(t *testing.T) {
	s := newTestServer(t, nil)
	user, pass := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	if _, err := newClient(t, s, user, pass).AllocateTCP(); err == nil {
		t.Fatal("a TCP allocation (RFC 6062) succeeded")
	}
	if st := s.Stats(); st.Refused["tcp-allocation"] != 1 || st.Active != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestTURNOverTCPPortTaken: with tcp_relay and a port given by number that
// another socket holds for TCP, New fails saying so, and leaves the UDP
// port it had opened free again.
func TestTURNOverTCPPortTaken(t *testing.T) {
	held, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	cfg := DefaultConfig()
	cfg.Listen = held.Addr().String()
	cfg.TCPRelay = true
	if s, err := New(cfg, testSecret, quietLogger()); err == nil {
		_ = s.Close()
		t.Fatalf("New on %s, a port taken for TCP, succeeded", cfg.Listen)
	} else if !strings.Contains(err.Error(), "listen tcp") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("New: %v; want the TCP listen's failure", err)
	}
	pc, err := net.ListenPacket("udp4", cfg.Listen)
	if err != nil {
		t.Fatalf("the UDP port was left open: %v", err)
	}
	_ = pc.Close()
}

// TestTURNOverTCP: with tcp_relay, a client that reaches the server over
// TCP gets a UDP relay, and Close ends its connection.
func TestTURNOverTCP(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.TCPRelay = true })
	if s.TCPAddr() == nil || s.TCPAddr().(*net.TCPAddr).Port != s.Addr().(*net.UDPAddr).Port {
		t.Fatalf("tcp %v, udp %v", s.TCPAddr(), s.Addr())
	}
	tc, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	user, pass := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	c := startClient(t, turn.NewSTUNConn(tc), s.TCPAddr().String(), user, pass)
	relay := allocate(t, c)
	peer := sink(t, peerIP)
	if _, err := relay.WriteTo([]byte("over tcp"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	got, from := readOne(t, peer)
	if string(got) != "over tcp" {
		t.Fatalf("peer got %q", got)
	}
	// The peer's reply reaches the client over TCP, and counts.
	reply := []byte("back over tcp")
	if _, err := peer.WriteTo(reply, from); err != nil {
		t.Fatal(err)
	}
	if got, _ := readOne(t, relay); string(got) != string(reply) {
		t.Fatalf("client got %q", got)
	}
	eventually(t, "the reply counted", func() bool { return s.Stats().BytesFromPeers == uint64(len(reply)) })
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_ = tc.SetReadDeadline(time.Now().Add(ioWait))
	if _, err := tc.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("Close left the TCP connection open")
		}
	}
	eventually(t, "the relays to close", func() bool { return s.Stats().Active == 0 })
}

// TestLifetimeCapped: a client asking for a day-long allocation gets at
// most an hour (RFC 8656 §7.2), so an abandoned relay does not linger.
func TestLifetimeCapped(t *testing.T) {
	s := newTestServer(t, nil)
	user, pass := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	c := newClient(t, s, user, pass)
	allocate(t, c)
	if code := refresh(t, c, user, pass, 24*time.Hour); code != 0 {
		t.Fatalf("refresh: error %d", code)
	}
	if lastGranted <= 0 || lastGranted > time.Hour {
		t.Fatalf("a day asked for, %v granted; want at most an hour", lastGranted)
	}
}

// TestFailedAllocationFreesItsSlot: an allocation that fails for want of
// a relay port (the relay_port range exhausted, here its one port held by
// another socket) does not count in its device's quota, nor in Total
// (foyer_turn_allocations_total: allocations made). Counted in the quota,
// a device whose requests met a full range stayed refused with 486 once
// ports were free again, until the node restarted.
func TestFailedAllocationFreesItsSlot(t *testing.T) {
	held := sink(t, "127.0.0.1")
	port := uint16(held.LocalAddr().(*net.UDPAddr).Port)
	s := newTestServer(t, func(c *Config) {
		c.AllocationsPerUser = 2
		c.RelayPortMin, c.RelayPortMax = port, port
	})
	user, pass := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	for i := range 2 {
		if _, err := newClient(t, s, user, pass).Allocate(); err == nil {
			t.Fatalf("allocation %d succeeded with the relay range's one port taken", i+1)
		}
	}
	if st := s.Stats(); st.Active != 0 || st.Refused["quota"] != 0 {
		t.Fatalf("after two failed allocations: stats %+v", st)
	}
	if err := held.Close(); err != nil {
		t.Fatal(err)
	}
	relay := allocate(t, newClient(t, s, user, pass))
	if got := relay.LocalAddr().(*net.UDPAddr).Port; got != int(port) {
		t.Fatalf("relay on port %d, outside the range %d–%d", got, port, port)
	}
	if st := s.Stats(); st.Active != 1 || st.Total != 1 || st.Refused["quota"] != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAllocatorCountsExactly: the relay allocator holds a device to its
// quota by itself, whatever pion's quota handler answered. pion asks the
// handler, then makes the socket; requests read by different read loops
// (the UDP socket's, each TCP connection's) can all pass the handler before
// any of their sockets exists, and only the allocator's count, taken with
// the socket, stops the extra ones. A socket closed twice frees one slot.
func TestAllocatorCountsExactly(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.AllocationsPerUser = 2
	led := newLedger()
	r := newRelayAllocator(cfg, nil, led)
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	first, _ := Credentials(testSecret, "d_phone", time.Hour, now)
	second, _ := Credentials(testSecret, "d_phone", time.Hour, now.Add(time.Second)) // the next welcome's
	alloc := func(user string) (net.PacketConn, error) {
		t.Helper()
		pc, _, err := r.AllocatePacketConn(turn.AllocateListenerConfig{Network: "udp4", UserID: user, Realm: cfg.Realm})
		if err == nil {
			t.Cleanup(func() { _ = pc.Close() })
		}
		return pc, err
	}
	var relays []net.PacketConn
	for _, user := range []string{first, second} {
		pc, err := alloc(user)
		if err != nil {
			t.Fatal(err)
		}
		relays = append(relays, pc)
	}
	if _, err := alloc(first); !errors.Is(err, errQuota) {
		t.Fatalf("a third socket for a device with a quota of two: %v, want errQuota", err)
	}
	for range 2 {
		_ = relays[0].Close()
	}
	if _, err := alloc(second); err != nil {
		t.Fatalf("after one of two sockets closed: %v", err)
	}
	if _, err := alloc(second); !errors.Is(err, errQuota) {
		t.Fatalf("a third socket, after one was closed twice: %v, want errQuota", err)
	}
	if st := led.stats(); st.Active != 2 || st.Total != 3 || st.Refused["quota"] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestNewRefusesWhatCannotWork: New starts no server without a secret
// (HMAC-SHA1 under an empty key: anyone could make credentials), nor on a
// configuration Validate refuses, such as an allow_peers of every address.
func TestNewRefusesWhatCannotWork(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	everything := cfg
	everything.AllowPeers = []string{"0.0.0.0/0"}
	for _, tc := range []struct {
		name   string
		cfg    Config
		secret string
		want   string
	}{
		{"no secret", cfg, "", "no secret"},
		{"invalid config", everything, testSecret, "allow_peers"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := New(tc.cfg, tc.secret, quietLogger())
			if err == nil {
				_ = s.Close()
				t.Fatal("New started a server")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}
