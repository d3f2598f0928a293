package media

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// noICE is well-formed SDP that Pion refuses: no ICE credentials.
const noICE = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"

func TestSessionRefusesBadInput(t *testing.T) {
	e := newTestEngine(t)
	w := newWire()
	s := e.NewSession("call-1", "door", true, w)
	t.Cleanup(s.Close)
	if err := s.AddDevice("dev1"); err != nil {
		t.Fatal(err)
	}
	mid := "0"
	long := strings.Repeat("x", maxMidSize+1)
	sdpTests := []struct {
		name string
		from string
		desc webrtc.SessionDescription
		want error
	}{
		{"pranswer", "door", webrtc.SessionDescription{Type: webrtc.SDPTypePranswer, SDP: noICE}, ErrBadSDP},
		{"rollback", "door", webrtc.SessionDescription{Type: webrtc.SDPTypeRollback}, ErrBadSDP},
		{"no type", "door", webrtc.SessionDescription{SDP: noICE}, ErrBadSDP},
		{"empty", "door", webrtc.SessionDescription{Type: webrtc.SDPTypeOffer}, ErrBadSDP},
		{"garbage", "door", webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "hello\r\nworld"}, ErrBadSDP},
		{"oversized", "door", webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: noICE + strings.Repeat("a=x-pad:0123456789\r\n", 4000)}, ErrBadSDP},
		{"no media", "door", webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"}, ErrBadSDP},
		{"refused by Pion", "door", webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: noICE}, ErrBadSDP},
		{"answer from door", "door", webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: noICE}, ErrUnexpectedSDP},
		{"device before offer", "dev1", webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: noICE}, ErrUnexpectedSDP},
		{"stranger", "mallory", webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: noICE}, ErrUnknownPeer},
	}
	for _, tt := range sdpTests {
		t.Run("sdp/"+tt.name, func(t *testing.T) {
			if err := s.HandleSDP(tt.from, tt.desc); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	// Checked before Pion sees it (which would refuse noICE for its own
	// reason): the server answers as the DTLS server.
	passive := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: noICE + "a=setup:passive\r\n"}
	if err := s.HandleSDP("door", passive); !errors.Is(err, ErrBadSDP) || !strings.Contains(err.Error(), "actpass") {
		t.Fatalf("an offer with a=setup:passive: got %v, want ErrBadSDP naming actpass", err)
	}
	candTests := []struct {
		name string
		from string
		c    webrtc.ICECandidateInit
		want error
	}{
		{"oversized", "door", webrtc.ICECandidateInit{Candidate: "candidate:" + strings.Repeat("1", maxCandidateSize)}, ErrBadCandidate},
		{"no prefix", "door", webrtc.ICECandidateInit{Candidate: "1 1 udp 1 127.0.0.1 5000 typ host"}, ErrBadCandidate},
		{"garbage", "door", webrtc.ICECandidateInit{Candidate: "candidate:x y z"}, ErrBadCandidate},
		{"long mid", "door", webrtc.ICECandidateInit{Candidate: "", SDPMid: &long}, ErrBadCandidate},
		{"before offer", "door", webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host", SDPMid: &mid}, ErrUnexpectedSDP},
		{"stranger", "mallory", webrtc.ICECandidateInit{}, ErrUnknownPeer},
	}
	for _, tt := range candTests {
		t.Run("candidate/"+tt.name, func(t *testing.T) {
			if err := s.HandleCandidate(tt.from, tt.c); !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
	for _, id := range []string{"", "door"} {
		if err := s.AddDevice(id); !errors.Is(err, ErrUnknownPeer) {
			t.Fatalf("AddDevice(%q): %v", id, err)
		}
	}
	if err := s.Connect("mallory"); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("Connect(stranger): %v", err)
	}

	// After all that, a real call works on the same session.
	door := newDoor(t, s, w, opusCodec)
	dev := newClient(t, clientAPI(t), "dev1", s, w)
	door.offer()
	waitUntil(t, "video after bad input", func() bool { return len(dev.received(webrtc.RTPCodecTypeVideo)) >= 10 })
	checkRun(t, "dev1", dev.received(webrtc.RTPCodecTypeVideo), 'V', videoSize, 10)
}

func TestValidateSDPSize(t *testing.T) {
	ok := noICE + strings.Repeat("a=x-pad:0123456789\r\n", (maxSDPSize-len(noICE))/20)
	if err := validateSDP(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: ok}); err != nil {
		t.Fatalf("%d bytes refused: %v", len(ok), err)
	}
	big := ok + strings.Repeat("a=x-pad:0123456789\r\n", 2)
	if err := validateSDP(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: big}); !errors.Is(err, ErrBadSDP) {
		t.Fatalf("%d bytes: %v", len(big), err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero", Config{}, true},
		{"range", Config{UDPPortMin: 40000, UDPPortMax: 40100}, true},
		{"half range", Config{UDPPortMin: 40000}, false},
		{"inverted", Config{UDPPortMin: 40100, UDPPortMax: 40000}, false},
		{"mux", Config{UDPMuxPort: 3479}, true},
		{"mux out of range", Config{UDPMuxPort: 70000}, false},
		{"batch", Config{UDPMuxPort: 3479, UDPBatchWrite: 16}, true},
		{"batch without mux", Config{UDPBatchWrite: 16}, false},
		{"batch too big", Config{UDPMuxPort: 3479, UDPBatchWrite: 65}, false},
		{"negative batch", Config{UDPMuxPort: 3479, UDPBatchWrite: -1}, false},
		{"public ip", Config{PublicIPs: []string{"203.0.113.7"}}, true},
		{"bad public ip", Config{PublicIPs: []string{"example.com"}}, false},
		{"remote nets", Config{RemoteNetworks: []string{"10.0.0.0/8"}}, true},
		{"bad remote net", Config{RemoteNetworks: []string{"10.0.0.0"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestSessionBounds: a call's media takes at most maxDevices devices, and
// holds at most maxQueuedCandidates of a device's candidates before its
// answer; past either bound the sender gets a clear error, and the call's
// media goes on. Once a device has won, no device joins (that no other
// takes the call over is previewThenConnect's).
func TestSessionBounds(t *testing.T) {
	t.Run("devices", func(t *testing.T) {
		s := newTestEngine(t).NewSession("call-1", "door", true, newWire())
		t.Cleanup(s.Close)
		for i := range maxDevices {
			if err := s.AddDevice(fmt.Sprintf("dev%d", i)); err != nil {
				t.Fatalf("device %d of %d: %v", i+1, maxDevices, err)
			}
		}
		if err := s.AddDevice("one-more"); !errors.Is(err, ErrTooManyPeers) {
			t.Fatalf("device %d: got %v, want ErrTooManyPeers", maxDevices+1, err)
		}
		if err := s.AddDevice("dev0"); err != nil {
			t.Fatalf("a device rung again replaces itself: %v", err)
		}
		s.RemoveDevice("dev1")
		if err := s.AddDevice("one-more"); err != nil {
			t.Fatalf("after a device left: %v", err)
		}
	})

	t.Run("queued candidates", func(t *testing.T) {
		c := startCall(t, true, opusCodec, 1)
		// silent is rung but never answers: no client reads its offer.
		if err := c.s.AddDevice("silent"); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the offer to silent", func() bool {
			p, err := c.s.devicePeer("silent")
			return err == nil && p != nil && p.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer
		})
		mid := "0"
		cand := webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host", SDPMid: &mid}
		for i := range maxQueuedCandidates {
			if err := c.s.HandleCandidate("silent", cand); err != nil {
				t.Fatalf("candidate %d of %d: %v", i+1, maxQueuedCandidates, err)
			}
		}
		if err := c.s.HandleCandidate("silent", cand); !errors.Is(err, ErrBadCandidate) {
			t.Fatalf("candidate %d before the answer: got %v, want ErrBadCandidate", maxQueuedCandidates+1, err)
		}
		d := c.devices[0]
		before := len(d.received(webrtc.RTPCodecTypeVideo))
		waitUntil(t, "dev1 video", func() bool { return len(d.received(webrtc.RTPCodecTypeVideo)) >= before+20 })
	})

	t.Run("taken", func(t *testing.T) {
		// One device: a loser dropped while its negotiation is still
		// under way would have its late candidates refused.
		c, win, _ := viewingDevice(t)
		if err := c.s.Connect(win.id); err != nil {
			t.Fatal(err)
		}
		if err := c.s.AddDevice("late"); !errors.Is(err, ErrCallTaken) {
			t.Fatalf("a device added after the answer: got %v, want ErrCallTaken", err)
		}
		waitUntil(t, "winner audio", func() bool { return len(win.received(webrtc.RTPCodecTypeAudio)) >= 20 })
		if n := c.s.Stats().Devices; n != 1 {
			t.Fatalf("%d devices in the answered call's media, want the winner alone", n)
		}
	})
}

// TestValidateBounds: a description with more media sections than a call
// could use, a candidate longer than any real one and an over-long
// usernameFragment are refused before Pion sees them, each just past its
// limit and well-formed otherwise (Pion would take them all).
func TestValidateBounds(t *testing.T) {
	head := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	section := "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:0 PCMU/8000\r\n"
	if err := validateSDP(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: head + strings.Repeat(section, maxMediaSections)}); err != nil {
		t.Fatalf("%d media sections refused: %v", maxMediaSections, err)
	}
	if err := validateSDP(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: head + strings.Repeat(section, maxMediaSections+1)}); !errors.Is(err, ErrBadSDP) {
		t.Fatalf("%d media sections: got %v, want ErrBadSDP", maxMediaSections+1, err)
	}

	host := "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host"
	// A candidate's extensions are free-form: padded with one, it parses.
	padded := func(size int) string { return host + " x-pad " + strings.Repeat("p", size-len(host)-len(" x-pad ")) }
	for _, tc := range []struct {
		name string
		c    webrtc.ICECandidateInit
		ok   bool
	}{
		{"longest candidate", webrtc.ICECandidateInit{Candidate: padded(maxCandidateSize)}, true},
		{"candidate one byte over", webrtc.ICECandidateInit{Candidate: padded(maxCandidateSize + 1)}, false},
		{"longest ufrag", webrtc.ICECandidateInit{Candidate: host, UsernameFragment: ptr(strings.Repeat("u", maxUfragSize))}, true},
		{"ufrag one byte over", webrtc.ICECandidateInit{Candidate: host, UsernameFragment: ptr(strings.Repeat("u", maxUfragSize+1))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := validateCandidate(tc.c)
			if tc.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrBadCandidate) {
				t.Fatalf("got %v, want ErrBadCandidate", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
