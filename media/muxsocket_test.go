package media

import (
	"net"
	"testing"
	"time"

	"github.com/pion/ice/v4"
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
			// Reads still honour deadlines: the mux's reader relies on them
			// to notice a close.
			if err := e.muxConn.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
				t.Fatal(err)
			}
		})
	}
}
