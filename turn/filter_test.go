package turn

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestPeerVerdict(t *testing.T) {
	allow, err := parseAllowPeers([]string{"203.0.113.10", "198.51.100.0/28", "127.0.0.2/32", "10.1.2.3:50000", "[2001:db8::5]:443"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ip     string
		ok     bool
		reason string
	}{
		// allow_peers, whatever class they fall in (ports are the relay socket's business)
		{"203.0.113.10", true, ""},
		{"198.51.100.7", true, ""},
		{"127.0.0.2", true, ""},
		{"10.1.2.3", true, ""},
		{"2001:db8::5", true, ""},
		{"::ffff:203.0.113.10", true, ""},
		// everything else
		{"203.0.113.11", false, "documentation"},
		{"198.51.100.16", false, "documentation"},
		{"8.8.8.8", false, "not-allowed"},
		{"2606:4700::1111", false, "not-allowed"},
		{"127.0.0.1", false, "loopback"},
		{"127.255.255.254", false, "loopback"},
		{"::1", false, "loopback"},
		{"::ffff:127.0.0.1", false, "loopback"},
		{"0.0.0.0", false, "unspecified"},
		{"0.1.2.3", false, "unspecified"},
		{"::", false, "unspecified"},
		{"10.0.0.1", false, "private"},
		{"172.16.5.4", false, "private"},
		{"172.31.255.255", false, "private"},
		{"192.168.1.1", false, "private"},
		{"fd00::1", false, "private"},
		{"169.254.169.254", false, "link-local"},
		{"::ffff:169.254.169.254", false, "link-local"},
		{"fe80::1", false, "link-local"},
		{"100.64.0.1", false, "cgnat"},
		{"100.127.255.255", false, "cgnat"},
		{"224.0.0.251", false, "multicast"},
		{"239.255.255.250", false, "multicast"},
		{"ff02::fb", false, "multicast"},
		{"255.255.255.255", false, "broadcast"},
		{"240.0.0.1", false, "reserved"},
		{"64:ff9b::7f00:1", false, "loopback"},      // NAT64 form of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", false, "link-local"}, // NAT64 form of 169.254.169.254
		{"64:ff9b::808:808", false, "not-allowed"},  // NAT64 form of 8.8.8.8
		{"2002:a00:1::1", false, "private"},         // 6to4 form of 10.0.0.1
		{"2002:a9fe:a9fe::1", false, "link-local"},  // 6to4 form of 169.254.169.254
		{"::7f00:1", false, "loopback"},             // IPv4-compatible form of 127.0.0.1
		{"2001:0:4136:e378::1", false, "teredo"},
	}
	for _, tc := range cases {
		t.Run(tc.ip, func(t *testing.T) {
			ok, reason := peerVerdict(allow, net.ParseIP(tc.ip))
			if ok != tc.ok || reason != tc.reason {
				t.Errorf("got (%v, %q), want (%v, %q)", ok, reason, tc.ok, tc.reason)
			}
		})
	}
	if ok, _ := peerVerdict(nil, net.ParseIP("203.0.113.10")); ok {
		t.Error("with no allow_peers, a public address was allowed")
	}
	if ok, reason := peerVerdict(allow, net.IP{1, 2, 3}); ok || reason != "malformed" {
		t.Errorf("a 3-byte IP: (%v, %q)", ok, reason)
	}
}

// TestNeverPeersEvenIfAllowed: a broad allow_peers entry still does not
// open link-local (cloud metadata), unspecified, broadcast or multicast.
func TestNeverPeersEvenIfAllowed(t *testing.T) {
	allow, err := parseAllowPeers([]string{"128.0.0.0/1", "0.0.0.0/1", "::/1", "fe00::/7"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ip := range []string{"169.254.169.254", "0.0.0.0", "255.255.255.255", "224.0.0.1", "fe80::1", "::", "64:ff9b::a9fe:a9fe"} {
		if ok, reason := peerVerdict(allow, net.ParseIP(ip)); ok {
			t.Errorf("%s allowed", ip)
		} else if reason == "not-allowed" {
			t.Errorf("%s refused without its class", ip)
		}
		if allow.permitsAddr(netip.AddrPortFrom(netip.MustParseAddr(ip), 80)) {
			t.Errorf("the relay socket would send to %s", ip)
		}
	}
	if ok, _ := peerVerdict(allow, net.ParseIP("8.8.8.8")); !ok {
		t.Error("the broad entry did not allow an ordinary address")
	}
}

func TestAllowPeerPorts(t *testing.T) {
	allow, err := parseAllowPeers([]string{"127.0.0.1:40000", "[::1]:40001", "127.0.0.2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:40000", true},
		{"127.0.0.1:40001", false},
		{"[::ffff:127.0.0.1]:40000", true},
		{"[::1]:40001", true},
		{"[::1]:40000", false},
		{"127.0.0.2:1", true},
		{"127.0.0.3:40000", false},
	} {
		if got := allow.permitsAddr(netip.MustParseAddrPort(tc.addr)); got != tc.ok {
			t.Errorf("%s: permitted %v, want %v", tc.addr, got, tc.ok)
		}
	}
	if ok, _ := peerVerdict(allow, net.ParseIP("127.0.0.1")); !ok {
		t.Error("an ip:port entry does not grant the permission for its IP")
	}
}

func TestParseAllowPeersErrors(t *testing.T) {
	for _, bad := range []string{"media.example", "0.0.0.0/0", "::/0", "169.254.169.254", "169.254.0.0/16",
		"fe80::1%eth0", "2001:db8::1%eth0", "[2001:db8::1%eth0]:3478", "224.0.0.1", "255.255.255.255", "10.0.0.1:0", "10.0.0.0/33", "::ffff:10.0.0.0/104", ""} {
		_, err := parseAllowPeers([]string{bad})
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if !strings.Contains(err.Error(), "allow_peers") {
			t.Errorf("%q: the error does not name the key: %v", bad, err)
		}
	}
}
