package turn

import (
	"net"
	"net/netip"
)

// Address classes a relay never reaches unless allow_peers names them: the
// node itself and its neighbours, and addresses that smuggle those in.
var deniedClasses = []struct {
	reason string
	nets   []netip.Prefix
}{
	{"unspecified", prefixes("0.0.0.0/8", "::/128")},
	{"loopback", prefixes("127.0.0.0/8", "::1/128")},
	{"private", prefixes("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")},
	{"link-local", prefixes("169.254.0.0/16", "fe80::/10")},
	{"cgnat", prefixes("100.64.0.0/10")},
	{"multicast", prefixes("224.0.0.0/4", "ff00::/8")},
	{"broadcast", prefixes("255.255.255.255/32")},
	{"reserved", prefixes("240.0.0.0/4", "192.0.0.0/24", "198.18.0.0/15")},
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s) // constants above
	}
	return out
}

// peerVerdict decides whether a relay may reach ip: only addresses in
// allow are permitted. For a refused address it also names why, for logs
// and metrics: its class, or "not allowed" for any other address.
func peerVerdict(allow []netip.Prefix, ip net.IP) (bool, string) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false, "malformed"
	}
	a = a.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	for _, p := range allow {
		if p.Contains(a) {
			return true, ""
		}
	}
	if v4, ok := embeddedIPv4(a); ok {
		a = v4 // NAT64 and 6to4 forms are judged by the IPv4 inside
	}
	for _, c := range deniedClasses {
		for _, p := range c.nets {
			if p.Contains(a) {
				return false, c.reason
			}
		}
	}
	return false, "not allowed"
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixTo4 = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address carried by a NAT64 (64:ff9b::/96)
// or 6to4 (2002::/16) address.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case a.Is6() && nat64.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case a.Is6() && sixTo4.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}
