package turn

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	off := Config{} // disabled: nothing is checked
	if err := off.Validate(); err != nil {
		t.Fatalf("a disabled server's config was checked: %v", err)
	}
	prod := good
	prod.RelayIP, prod.RelayPortMin, prod.RelayPortMax = "203.0.113.7", 49160, 49999
	prod.AllowPeers = []string{"203.0.113.7", "10.20.0.0/16", "198.51.100.4:3478"}
	prod.PublicURL = "turn:turn.example.com:3478"
	if err := prod.Validate(); err != nil {
		t.Fatalf("a production config: %v", err)
	}
	cases := []struct {
		name string
		mod  func(*Config)
		want string // a fragment of the message, naming the key
	}{
		{"no port", func(c *Config) { c.Listen = "3478" }, "turn.listen"},
		{"port out of range", func(c *Config) { c.Listen = ":70000" }, "turn.listen"},
		{"host name", func(c *Config) { c.Listen = "turn.example:3478" }, "turn.listen"},
		{"empty realm", func(c *Config) { c.Realm = "" }, "turn.realm"},
		{"quote in realm", func(c *Config) { c.Realm = `a"b` }, "turn.realm"},
		{"long realm", func(c *Config) { c.Realm = strings.Repeat("r", 800) }, "turn.realm"},
		{"bad relay ip", func(c *Config) { c.RelayIP = "relay" }, "turn.relay_ip"},
		{"unspecified relay ip", func(c *Config) { c.RelayIP = "0.0.0.0" }, "turn.relay_ip"},
		{"ports inverse", func(c *Config) { c.RelayPortMin, c.RelayPortMax = 50000, 40000 }, "relay_port_min (50000) is above"},
		{"one port only", func(c *Config) { c.RelayPortMin = 40000 }, "set together"},
		{"zero ttl", func(c *Config) { c.CredentialTTL = 0 }, "turn.credential_ttl"},
		{"short ttl", func(c *Config) { c.CredentialTTL = time.Second }, "turn.credential_ttl"},
		{"long ttl", func(c *Config) { c.CredentialTTL = 365 * 24 * time.Hour }, "turn.credential_ttl"},
		{"no quota", func(c *Config) { c.AllocationsPerUser = 0 }, "turn.allocations_per_user"},
		{"bad peer", func(c *Config) { c.AllowPeers = []string{"media.example"} }, "allow_peers"},
		{"bad cidr", func(c *Config) { c.AllowPeers = []string{"10.0.0.0/40"} }, "allow_peers"},
		{"everything", func(c *Config) { c.AllowPeers = []string{"0.0.0.0/0"} }, "allow_peers"},
		{"metadata", func(c *Config) { c.AllowPeers = []string{"169.254.169.254"} }, "link-local"},
		{"bad url", func(c *Config) { c.PublicURL = "http://x" }, "turn.public_url"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	// Every problem is reported at once.
	c := good
	c.Realm, c.RelayIP = "", "x"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "realm") || !strings.Contains(err.Error(), "relay_ip") {
		t.Fatalf("got %v", err)
	}
}
