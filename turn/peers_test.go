package turn

import (
	"bytes"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

// Relays against the peer filter, end to end with pion's client; every
// peer is on loopback or refused at CreatePermission.

// TestRefusedPeers: CreatePermission toward the node itself, private,
// link-local, CGNAT and mapped addresses is refused with 403, and a
// listener on the node's own address sees nothing.
func TestRefusedPeers(t *testing.T) {
	s := newTestServer(t, nil)
	user, pass := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	c := newClient(t, s, user, pass)
	relay := allocate(t, c)
	own := sink(t, "127.0.0.1") // as if the node's HTTP or Redis port
	for _, tc := range []struct{ addr, reason string }{
		{own.LocalAddr().String(), "loopback"},
		{"[::ffff:127.0.0.1]:6379", "loopback"},
		{"10.0.0.1:5000", "private"},
		{"192.168.1.1:5000", "private"},
		{"169.254.169.254:80", "link-local"},
		{"100.64.0.1:5000", "cgnat"},
		{"198.51.100.1:5000", "documentation"},
		{"172.16.5.4:5000", "private"},
		{"0.0.0.0:5000", "unspecified"},
		{"255.255.255.255:5000", "broadcast"},
		{"224.0.0.251:5353", "multicast"},
		{"[::1]:5000", "loopback"},
		{"[fe80::1]:5000", "link-local"},
		{"[fd00::1]:5000", "private"},
		{"[::ffff:10.0.0.1]:5000", "private"},
		{"[::ffff:169.254.169.254]:80", "link-local"},
		{"[64:ff9b::a9fe:a9fe]:80", "link-local"}, // NAT64 form of the cloud metadata address
		{"[2002:a00:1::1]:5000", "private"},       // 6to4 form of 10.0.0.1
		{"[ff02::1]:5000", "multicast"},
		{"127.0.0.1:6379", "loopback"}, // the node's Redis
		{"127.0.0.1:8080", "loopback"}, // the node's HTTP
	} {
		a, err := net.ResolveUDPAddr("udp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		before := s.Stats().Refused[tc.reason]
		err = c.CreatePermission(a)
		if err == nil {
			t.Fatalf("permission toward %s was granted", tc.addr) // stop before anything could be sent
		}
		if a.IP.To4() == nil {
			// An IPv4 relay refuses IPv6 peers before the filter is asked:
			// 443 Peer Address Family Mismatch (RFC 8656 §18). The filter's
			// verdict on these forms is checked in filter_test.go.
			if !strings.Contains(err.Error(), "443") {
				t.Errorf("permission toward %s: %v, want 443 (address family mismatch)", tc.addr, err)
			}
			continue
		}
		if !strings.Contains(err.Error(), "403") {
			t.Errorf("permission toward %s: %v, want 403 Forbidden", tc.addr, err)
		}
		if got := s.Stats().Refused[tc.reason]; got != before+1 {
			t.Errorf("%s: refusals for %q went from %d to %d", tc.addr, tc.reason, before, got)
		}
		if a.IP.IsLoopback() {
			// Writing asks for the permission again, and is refused again.
			if _, err := relay.WriteTo([]byte("probe"), a); err == nil {
				t.Errorf("relaying toward %s was accepted", tc.addr)
			}
		}
	}
	assertSilent(t, own)
	if st := s.Stats(); st.BytesToPeers != 0 {
		t.Fatalf("%d bytes left through relays", st.BytesToPeers)
	}
}

// TestPeerPortNotAllowed: with an "ip:port" entry, the permission is per
// IP (RFC 8656 §9) but the relay socket sends only to that port.
func TestPeerPortNotAllowed(t *testing.T) {
	allowed, other := sink(t, peerIP), sink(t, peerIP)
	s := newTestServer(t, func(c *Config) { c.AllowPeers = []string{allowed.LocalAddr().String()} })
	user, pass := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	relay := allocate(t, newClient(t, s, user, pass))
	if _, err := relay.WriteTo([]byte("to the other port"), other.LocalAddr()); err != nil {
		t.Fatalf("write: %v", err) // the permission (per IP) is granted; the socket drops the packet
	}
	eventually(t, "the refusal of the other port", func() bool { return s.Stats().Refused["peer-port"] == 1 })
	assertSilent(t, other)

	// The other port's packets do not reach the client either.
	if _, err := other.WriteTo([]byte("from the other port"), relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the drop", func() bool { return s.Stats().DroppedFromPeers == 1 })

	if _, err := relay.WriteTo([]byte("to the media port"), allowed.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got, _ := readOne(t, allowed); string(got) != "to the media port" {
		t.Fatalf("allowed port got %q", got)
	}
	_ = relay.SetReadDeadline(time.Now().Add(silenceWait))
	if n, from, err := relay.ReadFrom(make([]byte, 100)); err == nil {
		t.Fatalf("client got %d bytes from %v", n, from)
	}
}

// TestUnpermittedPacketNotCounted: a packet from an allowed peer to a
// relay that holds no permission for it is dropped by pion (RFC 8656
// §10.3); it must not count in foyer_turn_relayed_bytes_total{from_peer},
// which counts what reaches clients. Once the client has a permission, the
// peer's packet is relayed and counted, payload bytes only.
func TestUnpermittedPacketNotCounted(t *testing.T) {
	s := newTestServer(t, nil)
	user, pass := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	relay := allocate(t, newClient(t, s, user, pass)) // no permission yet
	peer := sink(t, peerIP)
	if _, err := peer.WriteTo([]byte("not relayed"), relay.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	_ = relay.SetReadDeadline(time.Now().Add(silenceWait))
	if n, _, err := relay.ReadFrom(make([]byte, 100)); err == nil {
		t.Fatalf("the client got %d bytes without a permission", n)
	}
	if st := s.Stats(); st.BytesFromPeers != 0 || st.DroppedFromPeers != 0 {
		t.Fatalf("%d bytes counted as relayed from a peer, %d packets as dropped by the peer filter; pion dropped the one packet for want of a permission",
			st.BytesFromPeers, st.DroppedFromPeers)
	}

	if _, err := relay.WriteTo([]byte("hello"), peer.LocalAddr()); err != nil { // creates the permission
		t.Fatal(err)
	}
	_, from := readOne(t, peer)
	reply := []byte("relayed")
	if _, err := peer.WriteTo(reply, from); err != nil {
		t.Fatal(err)
	}
	if got, _ := readOne(t, relay); string(got) != string(reply) {
		t.Fatalf("the client got %q", got)
	}
	eventually(t, "the relayed bytes counted", func() bool { return s.Stats().BytesFromPeers != 0 })
	if st := s.Stats(); st.BytesFromPeers != uint64(len(reply)) {
		t.Fatalf("%d bytes counted as relayed from the peer, want %d", st.BytesFromPeers, len(reply))
	}
}

// TestLoopbackSinkPortOnly is the narrowest allow_peers: one port on
// 127.0.0.1, the address the node itself listens on. The sink gets exactly
// the bytes relayed to it. Permissions are per IP (RFC 8656 §9; pion's
// PermissionHandler is given no port), so a permission toward another port
// of 127.0.0.1, plain or IPv4-mapped, is granted, but the relay socket
// refuses every packet to it: that port sees nothing. Other classes are
// refused at CreatePermission (403), before any packet could be sent.
func TestLoopbackSinkPortOnly(t *testing.T) {
	media, other := sink(t, "127.0.0.1"), sink(t, "127.0.0.1")
	s := newTestServer(t, func(c *Config) { c.AllowPeers = []string{media.LocalAddr().String()} })
	user, pass := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	c := newClient(t, s, user, pass)
	relay := allocate(t, c)

	want := []byte{0x80, 0x60, 0x00, 0x01, 'r', 't', 'p', 0x00, 0xff}
	if _, err := relay.WriteTo(want, media.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got, _ := readOne(t, media); !bytes.Equal(got, want) {
		t.Fatalf("sink got %x, want %x", got, want)
	}

	otherPort := other.LocalAddr().(*net.UDPAddr).Port
	for i, to := range []string{other.LocalAddr().String(), net.JoinHostPort("::ffff:127.0.0.1", strconv.Itoa(otherPort))} {
		a, err := net.ResolveUDPAddr("udp", to)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := relay.WriteTo([]byte("to another port"), a); err != nil {
			t.Fatalf("write toward %s: %v", to, err)
		}
		eventually(t, "the refusal toward "+to, func() bool { return s.Stats().Refused["peer-port"] == uint64(i+1) })
	}
	for _, tc := range []struct{ addr, reason string }{
		{"10.0.0.1:5000", "private"},
		{"169.254.169.254:80", "link-local"},
		{"100.64.0.1:5000", "cgnat"},
		{"127.0.0.2:5000", "loopback"}, // another loopback address: not the listed one
	} {
		a, err := net.ResolveUDPAddr("udp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CreatePermission(a); err == nil || !strings.Contains(err.Error(), "403") {
			t.Fatalf("permission toward %s: %v, want 403 Forbidden", tc.addr, err)
		}
		if got := s.Stats().Refused[tc.reason]; got == 0 {
			t.Errorf("%s: no refusal counted as %q", tc.addr, tc.reason)
		}
	}
	assertSilent(t, other)
	if st := s.Stats(); st.BytesToPeers != uint64(len(want)) {
		t.Fatalf("%d bytes relayed, want only the %d to the sink", st.BytesToPeers, len(want))
	}
}

// TestRefusedPeersOverTCP: with tcp_relay, a client that reaches the
// server over TCP meets the same peer filter: CreatePermission toward the
// node itself, private, link-local or CGNAT addresses is refused with 403
// and counted, and nothing reaches the node's own port. (pion grants every
// permission on a listener configured without a PermissionHandler.)
func TestRefusedPeersOverTCP(t *testing.T) {
	s := newTestServer(t, func(c *Config) { c.TCPRelay = true })
	conn, err := net.Dial("tcp", s.TCPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	user, pass := Credentials(testSecret, "d_phone", time.Hour, time.Now())
	c := startClient(t, turn.NewSTUNConn(conn), s.TCPAddr().String(), user, pass)
	relay := allocate(t, c)
	own := sink(t, "127.0.0.1") // as if the node's HTTP or Redis port
	for _, tc := range []struct{ addr, reason string }{
		{own.LocalAddr().String(), "loopback"},
		{"10.0.0.1:5000", "private"},
		{"169.254.169.254:80", "link-local"},
		{"100.64.0.1:5000", "cgnat"},
	} {
		a, err := net.ResolveUDPAddr("udp", tc.addr)
		if err != nil {
			t.Fatal(err)
		}
		before := s.Stats().Refused[tc.reason]
		if err := c.CreatePermission(a); err == nil {
			t.Fatalf("over TCP, permission toward %s was granted", tc.addr) // stop before anything could be sent
		} else if !strings.Contains(err.Error(), "403") {
			t.Errorf("over TCP, permission toward %s: %v, want 403 Forbidden", tc.addr, err)
		}
		if got := s.Stats().Refused[tc.reason]; got != before+1 {
			t.Errorf("%s: refusals for %q went from %d to %d", tc.addr, tc.reason, before, got)
		}
	}
	if _, err := relay.WriteTo([]byte("probe"), own.LocalAddr()); err == nil {
		t.Error("over TCP, relaying toward the node's own port was accepted")
	}
	assertSilent(t, own)
	// The allowed peer is reached: the refusals above are the filter's.
	peer := sink(t, peerIP)
	if _, err := relay.WriteTo([]byte("over tcp"), peer.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if got, _ := readOne(t, peer); string(got) != "over tcp" {
		t.Fatalf("peer got %q", got)
	}
	// The relay counts a packet's bytes just after writing it: wait for it.
	eventually(t, "the relayed bytes counted", func() bool { return s.Stats().BytesToPeers != 0 })
	if st := s.Stats(); st.BytesToPeers != uint64(len("over tcp")) {
		t.Fatalf("%d bytes relayed, want only the %d to the allowed peer", st.BytesToPeers, len("over tcp"))
	}
}
