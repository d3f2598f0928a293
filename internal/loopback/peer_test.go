package loopback

import (
	"slices"
	"testing"

	"github.com/pion/webrtc/v4"
)

// TestTrickleKeepsOrder: candidates held until Release go out in the order
// gathered, and one gathered while Release is sending them (here: the
// empty end-of-candidates, arriving as the first is sent) comes after
// them, not between; after Release they go out at once.
func TestTrickleKeepsOrder(t *testing.T) {
	var sent []string
	var tr *Trickle
	tr = &Trickle{send: func(c webrtc.ICECandidateInit) {
		sent = append(sent, c.Candidate)
		if c.Candidate == "a" {
			tr.gathered(webrtc.ICECandidateInit{}) // gathering ends meanwhile
		}
	}}
	tr.Hold()
	tr.gathered(webrtc.ICECandidateInit{Candidate: "a"})
	tr.gathered(webrtc.ICECandidateInit{Candidate: "b"})
	if len(sent) != 0 {
		t.Fatalf("sent %q while holding", sent)
	}
	tr.Release()
	tr.gathered(webrtc.ICECandidateInit{Candidate: "c"})
	if want := []string{"a", "b", "", "c"}; !slices.Equal(sent, want) {
		t.Fatalf("sent %q, want %q", sent, want)
	}
}
