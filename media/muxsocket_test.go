package media

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/transport/v4/udp"
)

// TestMuxSocketIgnoresWriteDeadlines: the socket under Pion's UDP mux must
// keep writing after a write deadline in the past, which is what the mux
// sets when any peer connection on it closes (see muxsocket.go), and must
// keep the netip write Pion uses when the socket offers it.
func TestMuxSocketIgnoresWriteDeadlines(t *testing.T) {
	for _, setup := range udpSetups {
		t.Run(setup.name, func(t *testing.T) {
			e := newEngineWith(t, setup.config(t))
			if e.muxConn == nil {
				if e.mux != nil {
					t.Fatal("a mux without its socket")
				}
				return // a port per peer connection: nothing shared
			}
			sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				t.Fatal(err)
			}
			defer sink.Close()
			if err := e.muxConn.SetWriteDeadline(time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := e.muxConn.WriteTo([]byte("after the deadline"), sink.LocalAddr()); err != nil {
				t.Fatalf("a write after a past write deadline failed: %v", err)
			}
			if setup.name == "mux" {
				w, ok := e.muxConn.(ice.AddrPortReaderWriter)
				if !ok {
					t.Fatal("the mux socket lost the netip reads and writes Pion's mux uses")
				}
				if _, err := w.WriteToAddrPort([]byte("netip"), sink.LocalAddr().(*net.UDPAddr).AddrPort()); err != nil {
					t.Fatal(err)
				}
			}
			_ = sink.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 64)
			for range map[string]int{"mux": 2, "mux-batch": 1}[setup.name] {
				if _, _, err := sink.ReadFrom(buf); err != nil {
					t.Fatalf("nothing arrived: %v", err)
				}
			}
		})
	}
}

// TestMuxSocketKeepsReadDeadlines: whatever the socket's form, only write
// deadlines are ignored; a read (and SetDeadline, for reads) still times
// out, which the mux's reader relies on to notice a close.
func TestMuxSocketKeepsReadDeadlines(t *testing.T) {
	listen := func(t *testing.T) *net.UDPConn {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	forms := map[string]func(*testing.T) net.PacketConn{
		"udp": func(t *testing.T) net.PacketConn { return listen(t) },
		"batch": func(t *testing.T) net.PacketConn {
			b := udp.NewBatchConn(listen(t), 4, udpBatchInterval)
			t.Cleanup(func() { _ = b.Close() }) // stops its flusher
			return b
		},
		"other": func(t *testing.T) net.PacketConn { return struct{ net.PacketConn }{listen(t)} },
	}
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			buf := make([]byte, 64)
			for _, how := range []string{"SetReadDeadline", "SetDeadline"} {
				c := ignoreWriteDeadlines(form(t)) // a fresh socket: no deadline left over
				set := c.SetReadDeadline
				if how == "SetDeadline" {
					set = c.SetDeadline
				}
				if err := set(time.Now().Add(50 * time.Millisecond)); err != nil {
					t.Fatal(err)
				}
				stop := time.AfterFunc(5*time.Second, func() { _ = c.Close() }) // a deadline ignored: fail, not hang
				var ne net.Error
				_, _, err := c.ReadFrom(buf)
				stop.Stop()
				if !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatalf("a read past its %s returned %v, want a timeout", how, err)
				}
			}
		})
	}
}
