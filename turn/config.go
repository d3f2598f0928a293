package turn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Limits of the configuration, each with why.
const (
	// minCredentialTTL: shorter, and a device's clock skew or a slow
	// reconnect makes fresh credentials useless.
	minCredentialTTL = time.Minute
	// maxCredentialTTL bounds how long a leaked credential opens relays.
	maxCredentialTTL = 30 * 24 * time.Hour
	// maxAllocationsPerUser: a call needs one or two; thousands is a leak.
	maxAllocationsPerUser = 1000
	// maxRealm is RFC 8489 §14.9's limit on REALM.
	maxRealm = 763
)

// Config is the TURN server's configuration (YAML key `turn`). Every zero
// value except Enabled's is replaced by DefaultConfig's before use, in
// cmd/, which decodes YAML over DefaultConfig().
type Config struct {
	// Enabled starts the server with `foyer serve`. Default true.
	Enabled bool `yaml:"enabled"`
	// Listen is the UDP address TURN clients reach. Default ":3478".
	Listen string `yaml:"listen"`
	// TCPRelay also accepts TURN over TCP on the same address, for clients
	// whose networks block UDP (RFC 8656 §3.1). Relays toward peers stay
	// UDP: TCP allocations (RFC 6062) are always refused. Default false.
	TCPRelay bool `yaml:"tcp_relay"`
	// Secret signs credentials. Empty: the caller keeps one in data_dir
	// (LoadOrCreateSecret). Every node of a cluster needs the same one.
	Secret string `yaml:"secret"`
	// Realm of the long-term credentials (RFC 8489 §9.2). Default "foyer".
	Realm string `yaml:"realm"`
	// RelayIP is the address relays announce to clients (XOR-RELAYED-
	// ADDRESS) and bind to when it is one of this machine's: in production
	// the node's public address (when it is a NAT's, as on most clouds,
	// relays bind every interface and announce it). Default 127.0.0.1, so
	// that `foyer serve` with no configuration works on one machine; New
	// warns when that default meets a non-loopback listen address.
	RelayIP string `yaml:"relay_ip"`
	// RelayPortMin and RelayPortMax bound relay ports (the range to open
	// in a firewall); zero for both: any free port.
	RelayPortMin uint16 `yaml:"relay_port_min"`
	RelayPortMax uint16 `yaml:"relay_port_max"`
	// CredentialTTL is how long handed-out credentials allow new
	// allocations. An allocation made in time lives on past it (its
	// refreshes, permissions and channel binds are not refused), so a long
	// call is never cut. Default 24 h; 1 m to 30 days.
	CredentialTTL time.Duration `yaml:"credential_ttl"`
	// AllocationsPerUser caps live allocations per device, whichever of
	// its credentials (one per welcome) made them. Default 10.
	AllocationsPerUser int `yaml:"allocations_per_user"`
	// AllowPeers are the only peers a relay may reach: this deployment's
	// own media addresses, as "ip", "cidr" or "ip:port" (an ip:port entry
	// lets the relay exchange packets with that port only). Unspecified,
	// broadcast, multicast and link-local addresses are refused even if
	// listed. Empty: relays reach nothing.
	AllowPeers []string `yaml:"allow_peers"`
	// PublicURL is the turn: URL handed to clients. Default
	// "turn:<relay_ip>:<listen port>?transport=udp".
	PublicURL string `yaml:"public_url"`
}

// DefaultConfig returns the configuration used when nothing is set.
func DefaultConfig() Config {
	return Config{
		Enabled:            true,
		Listen:             ":3478",
		Realm:              "foyer",
		RelayIP:            "127.0.0.1",
		CredentialTTL:      24 * time.Hour,
		AllocationsPerUser: 10,
	}
}

// Validate reports every setting that cannot work, each naming its key. A
// disabled server is not checked.
func (c Config) Validate() error {
	if !c.Enabled {
		return nil
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("turn."+format, args...)) }

	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen %q: want host:port or :port: %v", c.Listen, err)
	} else if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		bad("listen %q: port %q is not a number from 0 to 65535", c.Listen, port)
	} else if host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			bad("listen %q: %q is not an IP address", c.Listen, host)
		}
	}
	switch {
	case c.Realm == "":
		bad("realm must not be empty")
	case len(c.Realm) > maxRealm:
		bad("realm is longer than %d bytes", maxRealm)
	case strings.ContainsFunc(c.Realm, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '"' }):
		bad("realm %q has a control character or a quote", c.Realm)
	}
	if ip, err := netip.ParseAddr(c.RelayIP); err != nil {
		bad("relay_ip %q is not an IP address", c.RelayIP)
	} else if ip = ip.Unmap(); ip.IsUnspecified() || ip.IsMulticast() || ip.Zone() != "" {
		bad("relay_ip %s cannot be announced to clients: use the node's public address", c.RelayIP)
	}
	if (c.RelayPortMin == 0) != (c.RelayPortMax == 0) {
		bad("relay_port_min (%d) and relay_port_max (%d) must be set together", c.RelayPortMin, c.RelayPortMax)
	} else if c.RelayPortMin > c.RelayPortMax {
		bad("relay_port_min (%d) is above relay_port_max (%d)", c.RelayPortMin, c.RelayPortMax)
	}
	if c.CredentialTTL < minCredentialTTL || c.CredentialTTL > maxCredentialTTL {
		bad("credential_ttl %v is outside %v to %v", c.CredentialTTL, minCredentialTTL, maxCredentialTTL)
	}
	if c.AllocationsPerUser < 1 || c.AllocationsPerUser > maxAllocationsPerUser {
		bad("allocations_per_user %d is outside 1 to %d", c.AllocationsPerUser, maxAllocationsPerUser)
	}
	if _, err := parseAllowPeers(c.AllowPeers); err != nil {
		errs = append(errs, err)
	}
	if c.PublicURL != "" && !strings.HasPrefix(c.PublicURL, "turn:") && !strings.HasPrefix(c.PublicURL, "turns:") {
		bad("public_url %q must start with turn: or turns:", c.PublicURL)
	}
	return errors.Join(errs...)
}

// relayAddr is the parsed RelayIP (call after Validate).
func (c Config) relayAddr() netip.Addr {
	a, _ := netip.ParseAddr(c.RelayIP)
	return a.Unmap()
}

// listenIsLoopback reports whether Listen names a loopback address: then
// only this machine reaches the server, and a loopback relay_ip is right.
func (c Config) listenIsLoopback() bool {
	host, _, _ := net.SplitHostPort(c.Listen)
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}
