// Package turn is foyer's embedded TURN server (RFC 8656) on pion/turn:
// expiring REST-style credentials handed out in welcome.ice_servers, a peer
// filter that lets relays reach only this deployment's own media addresses,
// and a quota of live allocations per credential.
//
// Production: set relay_ip to the node's public address, allow_peers to the
// addresses (or CIDRs) where foyer's media is reachable, and open UDP 3478
// plus the relay port range. Tests run it on loopback, allowing one loopback
// address as the "media server" and refusing every other.
package turn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Config is the TURN server's configuration (YAML key `turn`).
type Config struct {
	// Enabled starts the server with `foyer serve`. Default true.
	Enabled bool `yaml:"enabled"`
	// Listen is the UDP address. Default ":3478".
	Listen string `yaml:"listen"`
	// Secret signs credentials. Empty: generated once and kept in data_dir
	// (see LoadOrCreateSecret). Every node of a cluster needs the same one.
	Secret string `yaml:"secret"`
	// Realm of the long-term credentials. Default "foyer".
	Realm string `yaml:"realm"`
	// RelayIP is the address relays bind to and announce: the node's
	// public address in production. Default 127.0.0.1 (a single-machine demo).
	RelayIP string `yaml:"relay_ip"`
	// RelayPortMin and RelayPortMax bound relay ports (a firewall opening);
	// zero for both: any port.
	RelayPortMin uint16 `yaml:"relay_port_min"`
	RelayPortMax uint16 `yaml:"relay_port_max"`
	// CredentialTTL is how long handed-out credentials allow new
	// allocations. An allocation made in time lives on past it (refreshes
	// are not refused), so a long call is never cut. Default 24 h.
	CredentialTTL time.Duration `yaml:"credential_ttl"`
	// AllocationsPerUser caps live allocations per credential. Default 10.
	AllocationsPerUser int `yaml:"allocations_per_user"`
	// AllowPeers are the only peers a relay may reach: this deployment's
	// media addresses, as IPs or CIDRs. Empty: relays reach nothing.
	AllowPeers []string `yaml:"allow_peers"`
	// PublicURL is the turn: URL handed to clients. Default derived from
	// relay_ip and the listen port.
	PublicURL string `yaml:"public_url"`
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{Enabled: true, Listen: ":3478", Realm: "foyer", RelayIP: "127.0.0.1",
		CredentialTTL: 24 * time.Hour, AllocationsPerUser: 10}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("turn: listen %q: %w", c.Listen, err)
	}
	if c.Realm == "" {
		return errors.New("turn: realm must not be empty")
	}
	if net.ParseIP(c.RelayIP) == nil {
		return fmt.Errorf("turn: relay_ip %q is not an IP address", c.RelayIP)
	}
	if (c.RelayPortMin == 0) != (c.RelayPortMax == 0) || c.RelayPortMin > c.RelayPortMax {
		return fmt.Errorf("turn: relay_port_min %d and relay_port_max %d must be set together, min <= max", c.RelayPortMin, c.RelayPortMax)
	}
	if c.CredentialTTL < time.Minute {
		return errors.New("turn: credential_ttl must be at least 1m")
	}
	if c.AllocationsPerUser < 1 {
		return errors.New("turn: allocations_per_user must be at least 1")
	}
	if _, err := parsePeers(c.AllowPeers); err != nil {
		return err
	}
	return nil
}

// parsePeers reads allow_peers: IPs or CIDRs.
func parsePeers(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("turn: allow_peers: %q is neither an IP nor a CIDR", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}
