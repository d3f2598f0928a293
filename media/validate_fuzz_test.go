package media

import (
	"errors"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// FuzzValidateSDP: the checks that run before Pion sees a client's
// description or candidate never panic, refuse with their own errors, and
// never pass anything over the size limits.
func FuzzValidateSDP(f *testing.F) {
	f.Add("offer", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:96 VP8/90000\r\n",
		"candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host")
	f.Add("answer", "v=0\r\n", "candidate:")
	f.Add("rollback", "", "")
	f.Add("offer", strings.Repeat("m=audio 9 RTP/AVP 0\r\n", 40), "candidate:x 1 tcp 1 ::1 1 typ relay raddr x rport y")
	f.Fuzz(func(t *testing.T, typ, body, cand string) {
		err := validateSDP(webrtc.SessionDescription{Type: webrtc.NewSDPType(typ), SDP: body})
		if err != nil && !errors.Is(err, ErrBadSDP) {
			t.Fatalf("validateSDP: %v, want ErrBadSDP", err)
		}
		if err == nil && len(body) > maxSDPSize {
			t.Fatalf("an SDP of %d bytes passed", len(body))
		}
		err = validateCandidate(webrtc.ICECandidateInit{Candidate: cand})
		if err != nil && !errors.Is(err, ErrBadCandidate) {
			t.Fatalf("validateCandidate: %v, want ErrBadCandidate", err)
		}
		if err == nil && len(cand) > maxCandidateSize {
			t.Fatalf("a candidate of %d bytes passed", len(cand))
		}
	})
}
