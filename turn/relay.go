package turn

import (
	"errors"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/turn/v5"
)

// Errors the relay allocator returns to pion, which answers the client
// with 508 Insufficient Capacity (quota) or drops the packet (peer).
var (
	errQuota         = errors.New("turn: allocation quota reached")
	errTCPAllocation = errors.New("turn: TCP allocations (RFC 6062) are not offered")
	errPeerPort      = errors.New("turn: the relay may not exchange packets with this peer address")
)

// relayAllocator makes relay sockets for pion: it enforces the quota of
// live allocations per device exactly (a socket is counted from its
// creation to its close, whichever listener the request came on), refuses
// TCP allocations, and wraps each socket in a per-packet peer check.
type relayAllocator struct {
	// Immutable after construction.
	inner turn.RelayAddressGenerator
	allow allowList
	quota int
	led   *ledger
}

var _ turn.RelayAddressGenerator = (*relayAllocator)(nil)

// newRelayAllocator binds relays to relay_ip when it is an address of this
// machine, else to every interface (relay_ip is then a NAT's, announced
// only), within the port range if one is set.
func newRelayAllocator(cfg Config, allow allowList, led *ledger) *relayAllocator {
	ip := cfg.relayAddr()
	bind := "0.0.0.0"
	if ip.Is6() {
		bind = "::"
	}
	if isLocalAddr(ip) {
		bind = ip.String()
	}
	var inner turn.RelayAddressGenerator = &turn.RelayAddressGeneratorStatic{RelayAddress: net.IP(ip.AsSlice()), Address: bind}
	if cfg.RelayPortMin != 0 {
		inner = &turn.RelayAddressGeneratorPortRange{RelayAddress: net.IP(ip.AsSlice()), Address: bind,
			MinPort: cfg.RelayPortMin, MaxPort: cfg.RelayPortMax}
	}
	return &relayAllocator{inner: inner, allow: allow, quota: cfg.AllocationsPerUser, led: led}
}

// isLocalAddr reports whether a is loopback or assigned to an interface.
func isLocalAddr(a netip.Addr) bool {
	if a.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, ia := range addrs {
		if n, ok := ia.(*net.IPNet); ok {
			if b, ok := netip.AddrFromSlice(n.IP); ok && b.Unmap() == a {
				return true
			}
		}
	}
	return false
}

// Validate implements turn.RelayAddressGenerator.
func (r *relayAllocator) Validate() error { return r.inner.Validate() }

// AllocatePacketConn implements turn.RelayAddressGenerator: one relay
// socket for the allocation of conf.UserID, within its device's quota.
func (r *relayAllocator) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if conf.UserID == "" {
		// pion probing for a free even port (EVEN-PORT): closed at once.
		return r.inner.AllocatePacketConn(conf)
	}
	device := quotaKey(conf.UserID)
	if !r.led.reserve(device, r.quota) {
		return nil, nil, errQuota
	}
	pc, addr, err := r.inner.AllocatePacketConn(conf)
	if err != nil {
		r.led.unreserve(device)
		return nil, nil, err
	}
	return &relayConn{PacketConn: pc, allow: r.allow, led: r.led, device: device}, addr, nil
}

// quotaKey is what the quota counts by: the device of a REST username.
// Every welcome hands the device a new username (its expiry moves with the
// clock), so a quota per username would be renewed by reconnecting. The
// auth handler has parsed the username already; one that does not parse
// (none reaches here) counts on its own.
func quotaKey(username string) string {
	if _, device, err := ParseUsername(username); err == nil {
		return device
	}
	return username
}

// AllocateListener implements turn.RelayAddressGenerator: refused, foyer's
// media is UDP.
func (r *relayAllocator) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	r.led.refuse("tcp-allocation")
	return nil, nil, errTCPAllocation
}

// AllocateConn implements turn.RelayAddressGenerator: refused, as above.
func (r *relayAllocator) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	r.led.refuse("tcp-allocation")
	return nil, errTCPAllocation
}

// relayConn is one allocation's relay socket. It lets through only packets
// to and from allowed ip:port peers (permissions are per IP; this is where
// an "ip:port" allow_peers entry is enforced), counts the bytes relayed to
// peers, and releases the allocation's quota slot when pion closes it. The
// bytes from peers are counted as pion passes them on to the client
// (clientPacketConn): a packet read here may still be dropped by pion, for
// want of a permission.
type relayConn struct {
	net.PacketConn
	// Immutable after construction.
	allow  allowList
	led    *ledger
	device string // whose quota the allocation counts in

	closeOnce sync.Once
}

// WriteTo sends a client's packet to a peer, if the peer is allowed.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if !c.permits(addr) {
		c.led.refuse("peer-port")
		return 0, errPeerPort
	}
	n, err := c.PacketConn.WriteTo(p, addr)
	c.led.bytesToPeers.Add(uint64(n))
	return n, err
}

// ReadFrom returns the next packet from an allowed peer; others are
// dropped here, before pion looks for a permission.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil {
			return n, addr, err
		}
		if c.permits(addr) {
			return n, addr, nil
		}
		c.led.droppedFromPeers.Add(1)
	}
}

// Close closes the socket and frees the allocation's quota slot.
func (c *relayConn) Close() error {
	c.closeOnce.Do(func() { c.led.release(c.device) })
	return c.PacketConn.Close()
}

func (c *relayConn) permits(addr net.Addr) bool {
	ua, ok := addr.(*net.UDPAddr)
	return ok && c.allow.permitsAddr(ua.AddrPort())
}
