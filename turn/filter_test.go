package turn

import (
	"net"
	"strings"
	"testing"
	"time"
)

func TestPeerVerdict(t *testing.T) {
	allow, err := parsePeers([]string{"203.0.113.10", "198.51.100.0/28", "127.0.0.2/32"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ip     string
		ok     bool
		reason string
	}{
		{"203.0.113.10", true, ""},
		{"198.51.100.7", true, ""},
		{"127.0.0.2", true, ""},
		{"::ffff:203.0.113.10", true, ""},
		{"203.0.113.11", false, "not allowed"},
		{"8.8.8.8", false, "not allowed"},
		{"127.0.0.1", false, "loopback"},
		{"::1", false, "loopback"},
		{"::ffff:127.0.0.1", false, "loopback"},
		{"0.0.0.0", false, "unspecified"},
		{"::", false, "unspecified"},
		{"10.0.0.1", false, "private"},
		{"172.16.5.4", false, "private"},
		{"192.168.1.1", false, "private"},
		{"fd00::1", false, "private"},
		{"169.254.169.254", false, "link-local"},
		{"fe80::1", false, "link-local"},
		{"100.64.0.1", false, "cgnat"},
		{"224.0.0.251", false, "multicast"},
		{"ff02::fb", false, "multicast"},
		{"255.255.255.255", false, "broadcast"},
		{"64:ff9b::7f00:1", false, "loopback"},      // NAT64 form of 127.0.0.1
		{"64:ff9b::a9fe:a9fe", false, "link-local"}, // NAT64 form of 169.254.169.254
		{"2002:a00:1::1", false, "private"},         // 6to4 form of 10.0.0.1
	}
	for _, tc := range cases {
		ok, reason := peerVerdict(allow, net.ParseIP(tc.ip))
		if ok != tc.ok || reason != tc.reason {
			t.Errorf("%s: got (%v, %q), want (%v, %q)", tc.ip, ok, reason, tc.ok, tc.reason)
		}
	}
	if ok, _ := peerVerdict(nil, net.ParseIP("203.0.113.10")); ok {
		t.Error("with no allow_peers, a public address was allowed")
	}
}

func TestCredentials(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	u, p := Credentials("s3cret", "d_phone", time.Hour, now)
	if u != "1800003600:d_phone" || p == "" {
		t.Fatalf("got %q %q", u, p)
	}
	if _, p2 := Credentials("other", "d_phone", time.Hour, now); p2 == p {
		t.Fatal("the password does not depend on the secret")
	}
	exp, dev, err := ParseUsername(u)
	if err != nil || dev != "d_phone" || !exp.Equal(now.Add(time.Hour)) {
		t.Fatalf("parsed %v %q %v", exp, dev, err)
	}
	for _, bad := range []string{"", "nocolon", ":d", "abc:d", "-5:d", "99999999999999999999:d", "1800000000:", strings.Repeat("9", 600) + ":d"} {
		if _, _, err := ParseUsername(bad); err == nil {
			t.Errorf("%q parsed without error", bad)
		}
	}
}

func FuzzParseUsername(f *testing.F) {
	for _, s := range []string{"1800003600:d_phone", "x", ":", "1:a:b", strings.Repeat("1", 100) + ":d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		exp, dev, err := ParseUsername(u)
		if err == nil && (dev == "" || exp.Unix() < 0 || !strings.HasSuffix(u, ":"+dev)) {
			t.Fatalf("%q accepted as %v %q", u, exp, dev)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"bad listen":    func(c *Config) { c.Listen = "3478" },
		"empty realm":   func(c *Config) { c.Realm = "" },
		"bad relay ip":  func(c *Config) { c.RelayIP = "relay" },
		"ports inverse": func(c *Config) { c.RelayPortMin, c.RelayPortMax = 50000, 40000 },
		"one port only": func(c *Config) { c.RelayPortMin = 40000 },
		"short ttl":     func(c *Config) { c.CredentialTTL = time.Second },
		"no quota":      func(c *Config) { c.AllocationsPerUser = 0 },
		"bad peer":      func(c *Config) { c.AllowPeers = []string{"media.example"} },
	} {
		c := good
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
