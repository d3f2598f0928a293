package turn

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// addrClass is a named set of address ranges, used to say why a peer was
// refused (the reason label of foyer_turn_refused_total).
type addrClass struct {
	reason string
	nets   []netip.Prefix
}

// neverPeers are refused even when allow_peers covers them: no media server
// is reached at these, and relaying to them is how a TURN server is turned
// against its own network (169.254.169.254 is the cloud metadata service).
var neverPeers = []addrClass{
	{"unspecified", prefixes("0.0.0.0/8", "::/128")},
	{"broadcast", prefixes("255.255.255.255/32")},
	{"multicast", prefixes("224.0.0.0/4", "ff00::/8")},
	{"link-local", prefixes("169.254.0.0/16", "fe80::/10")},
}

// namedPeers are refused unless allow_peers names them; the class only
// names the reason. A deployment whose media servers sit on a private
// network (or, in tests, on loopback) lists those addresses.
var namedPeers = []addrClass{
	{"loopback", prefixes("127.0.0.0/8", "::1/128")},
	{"private", prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "64:ff9b:1::/48")},
	{"cgnat", prefixes("100.64.0.0/10")},
	{"teredo", prefixes("2001::/32")},
	{"documentation", prefixes("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")},
	{"reserved", prefixes("192.0.0.0/24", "198.18.0.0/15", "240.0.0.0/4", "100::/64")},
}

// Prefixes carrying an IPv4 address in their low or middle bits: a peer in
// them is judged by that IPv4 address too, so 64:ff9b::a9fe:a9fe is
// refused as 169.254.169.254 would be.
var (
	nat64    = netip.MustParsePrefix("64:ff9b::/96") // RFC 6052: the IPv4 address in the last 32 bits
	sixTo4   = netip.MustParsePrefix("2002::/16")    // RFC 3056: the IPv4 address in bits 16–47
	v4Compat = netip.MustParsePrefix("::/96")        // RFC 4291 §2.5.5.1 (deprecated): the last 32 bits
)

// prefixes parses the constant ranges above (a typo there stops every
// test at package initialisation, never a running node).
func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// allowRule is one allow_peers entry: a range of addresses and, for an
// "ip:port" entry, the one port a relay may exchange packets with.
type allowRule struct {
	prefix netip.Prefix
	port   uint16 // 0: any port
}

// allowList is the parsed allow_peers. Immutable after construction.
type allowList []allowRule

// parseAllowPeers reads allow_peers: "203.0.113.10", "198.51.100.0/28",
// "203.0.113.10:50000" or "[2001:db8::1]:50000".
func parseAllowPeers(list []string) (allowList, error) {
	out := make(allowList, 0, len(list))
	for _, s := range list {
		r, err := parseAllowRule(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("turn: allow_peers: %q: %w", s, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func parseAllowRule(s string) (allowRule, error) {
	var r allowRule
	if strings.Contains(s, "%") {
		// Checked on the text: netip.PrefixFrom drops an address's zone.
		return r, fmt.Errorf("zoned addresses are link-local, never a media server")
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		if ap.Port() == 0 {
			return r, fmt.Errorf("port 0 is not a port")
		}
		a := ap.Addr().Unmap()
		r = allowRule{prefix: netip.PrefixFrom(a, a.BitLen()), port: ap.Port()}
	} else if p, err := netip.ParsePrefix(s); err == nil {
		if p.Addr().Is4In6() {
			return r, fmt.Errorf("write IPv4 ranges as a.b.c.d/n")
		}
		r = allowRule{prefix: p.Masked()}
	} else if a, err := netip.ParseAddr(s); err == nil {
		a = a.Unmap()
		r = allowRule{prefix: netip.PrefixFrom(a, a.BitLen())}
	} else {
		return r, fmt.Errorf("neither an IP, a CIDR nor ip:port")
	}
	if r.prefix.Bits() == 0 {
		return r, fmt.Errorf("a /0 would let relays reach every address; list the media addresses")
	}
	for _, c := range neverPeers {
		for _, n := range c.nets {
			if n.Bits() <= r.prefix.Bits() && n.Contains(r.prefix.Addr()) {
				return r, fmt.Errorf("%s addresses are never reachable through the relay", c.reason)
			}
		}
	}
	return r, nil
}

// permitsIP reports whether some rule covers a, whatever its port: TURN
// permissions are per IP address (RFC 8656 §9), so this is the question
// CreatePermission and ChannelBind can ask.
func (l allowList) permitsIP(a netip.Addr) bool {
	for _, r := range l {
		if r.prefix.Contains(a) {
			return true
		}
	}
	return false
}

// permitsAddr reports whether a relay may exchange a packet with ap: the
// per-port check that the relay socket itself makes.
func (l allowList) permitsAddr(ap netip.AddrPort) bool {
	a := ap.Addr().Unmap()
	if _, never := neverReason(a); never {
		return false
	}
	for _, r := range l {
		if r.prefix.Contains(a) && (r.port == 0 || r.port == ap.Port()) {
			return true
		}
	}
	return false
}

// peerVerdict decides whether a relay may get a permission toward ip. Only
// addresses allow_peers names are permitted, never those of neverPeers. A
// refusal names its reason: the address's class, or "not-allowed".
func peerVerdict(allow allowList, ip net.IP) (ok bool, reason string) {
	a, valid := netip.AddrFromSlice(ip)
	if !valid {
		return false, "malformed"
	}
	a = a.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if reason, never := neverReason(a); never {
		return false, reason
	}
	if allow.permitsIP(a) {
		return true, ""
	}
	if v4, embeds := embeddedIPv4(a); embeds {
		a = v4 // 2002:a00:1::1 is refused as "private", like 10.0.0.1
	}
	if reason, named := classify(namedPeers, a); named {
		return false, reason
	}
	return false, "not-allowed"
}

// neverReason names the neverPeers class of a, or of the IPv4 address it
// embeds.
func neverReason(a netip.Addr) (string, bool) {
	if reason, never := classify(neverPeers, a); never {
		return reason, true
	}
	if v4, embeds := embeddedIPv4(a); embeds {
		return classify(neverPeers, v4)
	}
	return "", false
}

// classify returns the reason of the first class containing a.
func classify(classes []addrClass, a netip.Addr) (string, bool) {
	for _, c := range classes {
		for _, p := range c.nets {
			if p.Contains(a) {
				return c.reason, true
			}
		}
	}
	return "", false
}

// embeddedIPv4 returns the IPv4 address that a NAT64, 6to4 or
// IPv4-compatible IPv6 address carries.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	if !a.Is6() || a.Is4In6() {
		return netip.Addr{}, false
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixTo4.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	case v4Compat.Contains(a) && a != netip.IPv6Unspecified() && a != netip.IPv6Loopback():
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	}
	return netip.Addr{}, false
}
