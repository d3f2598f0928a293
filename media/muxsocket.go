package media

import (
	"net"
	"net/netip"
	"time"

	"github.com/pion/transport/v4/udp"
)

// Pion's ICE UDP mux (ice v4.4.2) interrupts the writes in flight on its
// socket whenever a peer connection on it closes: it sets the shared
// socket's write deadline to now, so that a write blocked on the closing
// connection's behalf returns. Every other call's packet being written at
// that instant fails too, and Pion drops it without a word (ice logs it at
// info level). With calls starting and ending all the time, that was a
// steady loss on the mux port: 0.02–0.08 % of audio packets in the media
// load scenario (NACK hid it for video), and some of the DTLS alerts that
// tell a losing device its media is over. Pion fixed it upstream in
// v4.4.9, outside the pinned set.
//
// So the mux's socket ignores write deadlines. A UDP write then waits at
// most for room in the send buffer, which the kernel frees as it
// transmits; nothing else blocks it. Read deadlines are kept.

// ignoreWriteDeadlines returns conn with SetWriteDeadline a no-op, keeping
// the methods Pion looks for on the socket it is given (the netip and batch
// forms of reading and writing).
func ignoreWriteDeadlines(conn net.PacketConn) net.PacketConn {
	switch c := conn.(type) {
	case *net.UDPConn:
		return muxUDPConn{c}
	case *udp.BatchConn:
		return muxBatchConn{c}
	}
	return muxPacketConn{conn}
}

// muxUDPConn also offers the netip reads and writes under the names Pion
// looks for (it adapts a bare *net.UDPConn itself, but not a wrapper).
type muxUDPConn struct{ *net.UDPConn }

func (c muxUDPConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	return c.ReadFromUDPAddrPort(b)
}

func (c muxUDPConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	return c.WriteToUDPAddrPort(b, addr)
}

func (muxUDPConn) SetWriteDeadline(time.Time) error { return nil }
func (c muxUDPConn) SetDeadline(t time.Time) error  { return c.SetReadDeadline(t) }

type muxBatchConn struct{ *udp.BatchConn }

func (muxBatchConn) SetWriteDeadline(time.Time) error { return nil }
func (c muxBatchConn) SetDeadline(t time.Time) error  { return c.SetReadDeadline(t) }

type muxPacketConn struct{ net.PacketConn }

func (muxPacketConn) SetWriteDeadline(time.Time) error { return nil }
func (c muxPacketConn) SetDeadline(t time.Time) error  { return c.SetReadDeadline(t) }
