package media

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// Session is the media of one call, on the node that owns the call: one
// PeerConnection with the door station, one with each rung device.
//
// Concurrency: signalling calls the methods from any goroutine; Pion's
// callbacks run on Pion's goroutines. Control state sits under mu, and no
// Pion call that may wait (negotiation, closing) runs with mu held. The
// forwarding goroutines read only the subs snapshot and atomics, so RTP
// never waits for a lock that signalling holds.
type Session struct {
	// Immutable after construction.
	e       *Engine
	callID  string
	doorID  string
	preview bool
	ev      Events
	log     *slog.Logger
	kf      *keyframer

	counters counters

	doorNeg sync.Mutex // serialises the door station's offers

	// Set once, when the door station's offer is answered; read by the
	// forwarding goroutines.
	door          atomic.Pointer[peer]
	toDoor        atomic.Pointer[webrtc.TrackLocalStaticRTP] // the winner's microphone; nil if the door cannot receive audio
	doorVideoSSRC atomic.Uint32                              // for PLIs; 0 until the door's video arrives

	subs atomic.Pointer[[]*device] // written under mu: the devices RTP goes to

	mu      sync.Mutex
	closed  bool               // guarded by mu
	ending  bool               // guarded by mu; Ending was called: re-offers send nothing
	codecs  *doorCodecs        // guarded by mu; nil until the door station's offer
	devices map[string]*device // guarded by mu; rung and not removed
	winner  string             // guarded by mu
	wg      sync.WaitGroup     // our goroutines; Add only under mu while !closed
}

// doorCodecs is what the door station negotiated; devices get the same.
type doorCodecs struct {
	video, audio *webrtc.RTPCodecParameters // nil when the door station sends no such media
}

// NewSession starts the media of a call. doorID is the door station's
// device ID; preview lets ringing devices see the video before answering.
// On a closed Engine the session is born closed: its methods return ErrClosed.
func (e *Engine) NewSession(callID, doorID string, preview bool, ev Events) *Session {
	s := &Session{
		e:       e,
		callID:  callID,
		doorID:  doorID,
		preview: preview,
		ev:      ev,
		log:     e.log.With("call_id", callID),
		devices: make(map[string]*device),
	}
	s.kf = newKeyframer(s.sendPLI)
	s.subs.Store(&[]*device{})
	if err := e.track(s); err != nil {
		s.closed = true
	}
	return s
}

// HandleSDP takes a description from the door station (an offer, answered
// through Events.SDP) or from a device (an answer to our offer, or its own
// offer for an ICE restart, which we answer).
func (s *Session) HandleSDP(from string, desc webrtc.SessionDescription) error {
	if err := validateSDP(desc); err != nil {
		return err
	}
	if from == s.doorID {
		if desc.Type != webrtc.SDPTypeOffer {
			return fmt.Errorf("%w: the door station offers, the server answers", ErrUnexpectedSDP)
		}
		return s.handleDoorOffer(desc)
	}
	p, err := s.devicePeer(from)
	if err != nil {
		return err
	}
	if p == nil {
		return fmt.Errorf("%w: no offer was sent to this device yet", ErrUnexpectedSDP)
	}
	if desc.Type == webrtc.SDPTypeOffer {
		return p.answer(desc, nil)
	}
	return p.accept(desc)
}

// HandleCandidate adds a trickled candidate of the door station or of a
// device; an empty candidate string means end of candidates.
func (s *Session) HandleCandidate(from string, c webrtc.ICECandidateInit) error {
	if err := validateCandidate(c); err != nil {
		return err
	}
	var p *peer
	if from == s.doorID {
		if err := s.check(); err != nil {
			return err
		}
		if p = s.door.Load(); p == nil {
			return fmt.Errorf("%w: a candidate before the door station's offer", ErrUnexpectedSDP)
		}
	} else {
		var err error
		if p, err = s.devicePeer(from); err != nil {
			return err
		}
		if p == nil {
			return fmt.Errorf("%w: a candidate before our offer", ErrUnexpectedSDP)
		}
	}
	return p.addCandidate(c)
}

// check reports ErrClosed once the session is closed.
func (s *Session) check() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	return nil
}

// devicePeer returns a rung device's connection, nil while it waits for
// the door station's offer.
func (s *Session) devicePeer(id string) (*peer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	d := s.devices[id]
	if d == nil {
		return nil, ErrUnknownPeer
	}
	return d.peer, nil
}

// whileOpen runs send with mu held, unless the session is closed: what it
// sends cannot follow the start of Close. send must not wait (Events only
// enqueue). Lock order: a peer's negMu, then mu.
func (s *Session) whileOpen(send func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed && !s.ending {
		send()
	}
}

// Ending marks the session's call as over, without closing anything: once
// it returns, a re-offer sends nothing (one in progress has been sent).
// Signalling calls it before it tells the parties the call ended, then
// Close, on a goroutine of its own, does the rest.
func (s *Session) Ending() {
	s.mu.Lock()
	s.ending = true
	s.mu.Unlock()
}

// join counts the calling goroutine (one of Pion's, reading a track) among
// those Close waits for; it then calls s.wg.Done when it returns. It
// reports false, counting nothing, once the session is closed.
func (s *Session) join() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// goLocked starts fn on a goroutine that Close waits for; with mu held.
// It reports false, starting nothing, once the session is closed.
func (s *Session) goLocked(fn func()) bool {
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn()
	}()
	return true
}

// Close ends the call's media: every PeerConnection is closed and every
// goroutine of the session has returned when it does. It waits for Pion
// to close its connections (milliseconds): call it outside the call's lock.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	peers := make([]*peer, 0, len(s.devices)+1)
	for _, d := range s.devices {
		if d.peer != nil {
			peers = append(peers, d.peer)
		}
	}
	s.devices = map[string]*device{}
	s.subs.Store(&[]*device{})
	s.mu.Unlock()

	s.kf.close()
	s.doorNeg.Lock() // a door offer being answered installs the door first
	if p := s.door.Load(); p != nil {
		peers = append(peers, p)
	}
	s.doorNeg.Unlock()
	for _, p := range peers {
		p.close()
	}
	s.wg.Wait()
	s.e.forget(s)
}
