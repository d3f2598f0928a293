package turn

import (
	"encoding/binary"
	"net"

	"github.com/pion/stun/v4"
)

// clientPacketConn is the server's UDP socket, the side towards clients,
// as pion sees it: it counts the peers' bytes pion passes on to clients.
// Counting there, rather than where a peer's packet reaches the relay,
// leaves out what pion drops for want of a permission (RFC 8656 §10.3).
type clientPacketConn struct {
	net.PacketConn
	led *ledger
}

// WriteTo implements net.PacketConn.
func (c clientPacketConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	n, err := c.PacketConn.WriteTo(p, addr)
	if err == nil {
		c.led.countToClient(p)
	}
	return n, err
}

// countToClient counts the relayed payload of one message the server
// wrote to a client, if it carries any.
func (l *ledger) countToClient(msg []byte) {
	if n := relayedPayload(msg); n > 0 {
		l.bytesFromPeers.Add(uint64(n))
	}
}

// relayedPayload returns the length of the peer's data in a message the
// server sends a client: a ChannelData message (RFC 8656 §12.4) or a Data
// indication's DATA attribute; 0 for anything else (STUN responses). pion
// writes one whole message per write, over UDP and TCP alike.
func relayedPayload(p []byte) int {
	if len(p) >= 4 && p[0]&0xc0 == 0x40 { // a channel number, 0x4000–0x7fff
		return min(int(binary.BigEndian.Uint16(p[2:4])), len(p)-4)
	}
	if !stun.IsMessage(p) {
		return 0
	}
	m := stun.Message{Raw: p}
	if m.Decode() != nil || m.Type != stun.NewType(stun.MethodData, stun.ClassIndication) {
		return 0
	}
	data, err := m.Get(stun.AttrData)
	if err != nil {
		return 0
	}
	return len(data)
}
