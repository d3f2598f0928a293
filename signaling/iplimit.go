package signaling

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/internal/keylimit"
)

// ipIdle is how long an address's limiter is kept after its last upgrade;
// a full bucket is the same as none, so forgetting it then changes nothing.
const ipIdle = time.Minute

// ipLimiter bounds how fast one address may open signalling connections:
// a flood from one host is answered 429 before any upgrade or handshake
// work, and everyone else keeps connecting. IPv6 clients are keyed by
// their /64, which one host or home usually holds whole.
type ipLimiter struct {
	trusted []netip.Prefix
	*keylimit.Limiter[netip.Addr]
}

func newIPLimiter(perSecond float64, burst int, trusted []netip.Prefix) *ipLimiter {
	return &ipLimiter{trusted: trusted, Limiter: keylimit.New[netip.Addr](perSecond, burst, ipIdle)}
}

// allow reports whether r's client may open a connection now, and if not,
// how long until it may.
func (l *ipLimiter) allow(r *http.Request, now time.Time) (bool, time.Duration) {
	key := clientAddr(r, l.trusted)
	if key.Is6() {
		key = netip.PrefixFrom(key, 64).Masked().Addr()
	}
	return l.Allow(key, now)
}

// size is how many addresses are tracked (for tests).
func (l *ipLimiter) size() int { return l.Len() }

// clientAddr is the request's peer address, or, when the peer is a trusted
// proxy, the right-most X-Forwarded-For address that is not one.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	peer = peer.Unmap()
	if !inPrefixes(peer, trusted) {
		return peer
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return peer // a malformed header: count the proxy itself
		}
		if a = a.Unmap(); !inPrefixes(a, trusted) {
			return a
		}
	}
	return peer
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
