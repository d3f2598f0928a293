package loopback

import (
	"errors"
	"io"
	"sync"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Trickle sends a PeerConnection's ICE candidates through send as they are
// gathered, the empty one that ends them included. Between Hold and
// Release it keeps them: a party that applies its offer before sending it
// must not let a candidate overtake the offer.
type Trickle struct {
	send func(webrtc.ICECandidateInit)

	mu      sync.Mutex
	holding bool                      // guarded by mu
	held    []webrtc.ICECandidateInit // guarded by mu
}

// NewTrickle sends pc's candidates through send.
func NewTrickle(pc *webrtc.PeerConnection, send func(webrtc.ICECandidateInit)) *Trickle {
	t := &Trickle{send: send}
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		cand := webrtc.ICECandidateInit{}
		if ic != nil {
			cand = ic.ToJSON()
		}
		t.gathered(cand)
	})
	return t
}

// gathered sends cand, or keeps it while holding.
func (t *Trickle) gathered(cand webrtc.ICECandidateInit) {
	t.mu.Lock()
	if t.holding {
		t.held = append(t.held, cand)
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	t.send(cand)
}

// Hold keeps the candidates gathered from now on until Release.
func (t *Trickle) Hold() {
	t.mu.Lock()
	t.holding = true
	t.mu.Unlock()
}

// Release sends the held candidates, and the later ones at once. It keeps
// holding while it sends, so that a candidate gathered meanwhile (the empty
// one that ends them, say) cannot overtake the held ones.
func (t *Trickle) Release() {
	for {
		t.mu.Lock()
		held := t.held
		t.held = nil
		if len(held) == 0 {
			t.holding = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		for _, cand := range held {
			t.send(cand)
		}
	}
}

// Microphone adds a microphone track, in the first offered codec, on the
// audio transceiver that the remote offer applied to pc opened, making it
// send and receive; nil when the offer has no audio.
func Microphone(pc *webrtc.PeerConnection, streamID string) (*webrtc.TrackLocalStaticRTP, error) {
	for _, tr := range pc.GetTransceivers() {
		codecs := tr.Receiver().GetParameters().Codecs
		if tr.Kind() != webrtc.RTPCodecTypeAudio || len(codecs) == 0 {
			continue
		}
		mic, err := webrtc.NewTrackLocalStaticRTP(codecs[0].RTPCodecCapability, "mic", streamID)
		if err != nil {
			return nil, err
		}
		if _, err := pc.AddTrack(mic); err != nil { // takes the offered audio transceiver
			return nil, err
		}
		return mic, nil
	}
	return nil, nil
}

// ReadRTP hands each of track's packets to fn until the track ends, and
// reports whether it ended because the sender closed it (io.EOF: the
// server ended this party's media) rather than on another error.
func ReadRTP(track *webrtc.TrackRemote, fn func(*rtp.Packet)) (closed bool) {
	for {
		pkt, _, err := track.ReadRTP()
		if err != nil {
			return errors.Is(err, io.EOF)
		}
		fn(pkt)
	}
}
