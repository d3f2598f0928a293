package media

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// Events is how a session talks back to signalling. Implementations only
// enqueue (signalling's Router.Deliver never blocks): they are called from
// Pion's goroutines and with a peer's negotiation lock held.
type Events interface {
	// SDP sends an offer or answer to a device (or the door station) in an
	// sdp message.
	SDP(to string, desc webrtc.SessionDescription)
	// Candidate sends one of our ICE candidates in a candidate message;
	// nil means end of candidates (an empty candidate on the wire).
	Candidate(to string, c *webrtc.ICECandidateInit)
}

// peer is one PeerConnection and its negotiation with one client. The
// server offers to a device once, at ring time, and otherwise only
// answers (the door station's offer, ICE restarts), so it starts no
// renegotiation that could collide with a client's.
type peer struct {
	// Immutable after construction.
	id  string
	pc  *webrtc.PeerConnection
	ev  Events
	log *slog.Logger

	closed atomic.Bool // set once; no more events after it

	negMu      sync.Mutex                // serialises SDP operations and the candidate queue
	queued     []webrtc.ICECandidateInit // guarded by negMu; before a remote description
	offerAgain bool                      // guarded by negMu; an offer asked for mid-negotiation

	// Our candidates must not reach the client before the description
	// they belong to, yet Pion gathers as soon as SetLocalDescription runs.
	candMu   sync.Mutex
	descSent bool                       // guarded by candMu
	held     []*webrtc.ICECandidateInit // guarded by candMu
}

// newPeer wraps pc and starts trickling its candidates to id.
func newPeer(id string, pc *webrtc.PeerConnection, ev Events, log *slog.Logger) *peer {
	p := &peer{id: id, pc: pc, ev: ev, log: log}
	pc.OnICECandidate(p.onCandidate)
	return p
}

// onCandidate runs on a Pion goroutine for each local candidate.
func (p *peer) onCandidate(c *webrtc.ICECandidate) {
	if p.closed.Load() {
		return
	}
	var init *webrtc.ICECandidateInit
	if c != nil {
		ci := c.ToJSON()
		init = &ci
	}
	p.candMu.Lock()
	defer p.candMu.Unlock()
	if !p.descSent {
		p.held = append(p.held, init)
		return
	}
	p.ev.Candidate(p.id, init)
}

// setLocal applies desc and sends it, then the candidates gathered meanwhile.
// Called with negMu held.
func (p *peer) setLocal(desc webrtc.SessionDescription) error {
	p.hold()
	if err := p.pc.SetLocalDescription(desc); err != nil {
		return fmt.Errorf("media: set local %s: %w", desc.Type, err)
	}
	p.candMu.Lock()
	defer p.candMu.Unlock()
	p.ev.SDP(p.id, desc)
	for _, c := range p.held {
		p.ev.Candidate(p.id, c)
	}
	p.held, p.descSent = nil, true
	return nil
}

// hold keeps our next candidates back until the next description is sent.
func (p *peer) hold() {
	p.candMu.Lock()
	p.descSent = false
	p.candMu.Unlock()
}

// offer sends a new offer, or, in the middle of a negotiation, remembers to
// send one when it completes.
func (p *peer) offer() error {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	return p.offerLocked()
}

func (p *peer) offerLocked() error {
	if p.pc.SignalingState() != webrtc.SignalingStateStable {
		p.offerAgain = true
		return nil
	}
	p.offerAgain = false
	o, err := p.pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("media: create offer: %w", err)
	}
	return p.setLocal(o)
}

// resendOffer sends our offer again, with the candidates gathered so far
// in it, if the client has not answered it. It is sent through whileOpen
// (Session.whileOpen), which sends nothing once the session is closing.
func (p *peer) resendOffer(whileOpen func(send func())) {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.closed.Load() || p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return
	}
	if desc := p.pc.LocalDescription(); desc != nil {
		whileOpen(func() { p.ev.SDP(p.id, *desc) })
	}
}

// answer applies the client's offer and answers it. prepare, if not nil,
// runs between the two, when the offer's transceivers exist.
func (p *peer) answer(o webrtc.SessionDescription, prepare func() error) error {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
		// Glare. A polite peer would roll its offer back, but Pion v4.2.20
		// refuses have-local-offer → rollback. The server offers only once,
		// at ring time, so this is a device offering before answering it.
		return fmt.Errorf("%w: answer the server's offer before offering", ErrUnexpectedSDP)
	}
	// An ICE restart in the offer makes Pion gather at once, with
	// credentials the client learns only from our answer.
	p.hold()
	if err := p.setRemoteLocked(o); err != nil {
		return err
	}
	if prepare != nil {
		if err := prepare(); err != nil {
			return err
		}
	}
	a, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return fmt.Errorf("media: create answer: %w", err)
	}
	if err := p.setLocal(a); err != nil {
		return err
	}
	if p.offerAgain {
		return p.offerLocked()
	}
	return nil
}

// accept applies the client's answer to our offer.
func (p *peer) accept(a webrtc.SessionDescription) error {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return fmt.Errorf("%w: an answer without an offer outstanding", ErrUnexpectedSDP)
	}
	if err := p.setRemoteLocked(a); err != nil {
		return err
	}
	if p.offerAgain {
		return p.offerLocked()
	}
	return nil
}

// setRemoteLocked applies a remote description, then the candidates that
// arrived before it.
func (p *peer) setRemoteLocked(desc webrtc.SessionDescription) error {
	if err := p.pc.SetRemoteDescription(desc); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	for _, c := range p.queued {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("queued candidate refused", "peer", p.id, "err", err)
		}
	}
	p.queued = nil
	return nil
}

// addCandidate adds a client's candidate, or queues it until the remote
// description it belongs to is applied.
func (p *peer) addCandidate(c webrtc.ICECandidateInit) error {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.pc.RemoteDescription() == nil {
		if len(p.queued) >= maxQueuedCandidates {
			return fmt.Errorf("%w: more than %d before the description", ErrBadCandidate, maxQueuedCandidates)
		}
		p.queued = append(p.queued, c)
		return nil
	}
	if err := p.pc.AddICECandidate(c); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}

// close ends the PeerConnection and waits for Pion's goroutines. It must
// not run on a Pion callback goroutine.
func (p *peer) close() {
	p.closed.Store(true)
	if err := p.pc.GracefulClose(); err != nil {
		p.log.Debug("close peer connection", "peer", p.id, "err", err)
	}
}
