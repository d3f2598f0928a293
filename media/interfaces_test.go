package media

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/foyer-intercom/foyer/internal/testtool"
)

// extraIP is put on lo inside the test's network namespace: an address
// that is not a loopback one, so ICE gathers and announces it like a
// docker bridge's or a VPN's, and that no packet can leave the namespace
// from.
const extraIP = "10.99.0.1"

// addExtraIP puts extraIP on lo for the test. It needs root inside the
// loopback-only namespace of scripts/netns.sh (as make test runs), and
// skips anywhere else: the address must not appear on a real host.
func addExtraIP(t *testing.T) {
	t.Helper()
	if os.Getenv("IN_LOOPBACK_NETNS") != "1" || os.Geteuid() != 0 {
		t.Skipf("skipping: needs root inside the loopback network namespace to put %s on lo (run it through scripts/netns.sh, as make test does)", extraIP)
	}
	ip := testtool.Require(t, "ip", "iproute2")
	if out, err := exec.Command(ip, "addr", "add", extraIP+"/32", "dev", "lo").CombinedOutput(); err != nil {
		t.Fatalf("ip addr add %s dev lo: %v: %s", extraIP, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(ip, "addr", "del", extraIP+"/32", "dev", "lo").CombinedOutput(); err != nil {
			t.Errorf("ip addr del %s dev lo: %v: %s", extraIP, err, out)
		}
	})
}

// gatherOffer returns the SDP of an offer of a new peer connection of an
// engine on cfg, with every candidate gathered.
func gatherOffer(t *testing.T, cfg Config) string {
	t.Helper()
	e := newEngineWith(t, cfg)
	pc, err := e.newPeerConnection()
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-done
	return pc.LocalDescription().SDP
}

// TestInterfacesHonouredOnMuxPort: media.interfaces names the only
// interfaces whose addresses are announced, with a port per call and with
// udp_mux_port alike. With the mux, Pion lists every address of the host
// unless the mux is given a filtered view of the interfaces: an address of
// an excluded interface (here extraIP, on lo) was announced to every
// device.
func TestInterfacesHonouredOnMuxPort(t *testing.T) {
	addExtraIP(t)
	// lo admitted: the address is gathered (the check below can fail).
	if sdp := gatherOffer(t, Config{Interfaces: []string{"lo"}, UDPMuxPort: freeUDPPort(t)}); !strings.Contains(sdp, extraIP) {
		t.Fatalf("udp_mux_port, interfaces [lo]: %s not announced:\n%s", extraIP, sdp)
	}
	only := []string{"eth-none"} // no such interface: nothing may be gathered
	if sdp := gatherOffer(t, Config{Interfaces: only}); strings.Contains(sdp, extraIP) {
		t.Fatalf("port per call, interfaces %v: %s (on lo) announced:\n%s", only, extraIP, sdp)
	}
	if sdp := gatherOffer(t, Config{Interfaces: only, UDPMuxPort: freeUDPPort(t)}); strings.Contains(sdp, extraIP) {
		t.Fatalf("udp_mux_port, interfaces %v: %s (on lo) announced:\n%s", only, extraIP, sdp)
	}
}
