package main

// A simulated device's or door station's WebRTC peer in a media call: what
// it received of each synthetic stream, and the RTP it publishes.

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/foyer-intercom/foyer/internal/loopback"
)

// Stream kinds, the third byte of every synthetic payload.
const (
	streamVideo = 'v' // door → devices
	streamAudio = 'a' // door → the winner
	streamMic   = 'm' // the winner → door
)

// recvStream is what one peer received of one stream.
type recvStream struct {
	first   time.Time // the first packet's arrival
	n       int64     // packets received
	lo, hi  uint32    // lowest and highest sequence seen
	started bool
}

// count is the stream as an RTP receiver reports it (RFC 3550 §6.4.1):
// expected = highest − lowest sequence + 1.
func (s recvStream) count() streamCount {
	if !s.started {
		return streamCount{}
	}
	return streamCount{Expected: int64(s.hi-s.lo) + 1, Received: s.n}
}

// mediaPeer is one call party's PeerConnection.
type mediaPeer struct {
	c       *client                // immutable
	pc      *webrtc.PeerConnection // immutable
	trickle *loopback.Trickle      // immutable
	stop    chan struct{}          // immutable; closed when the peer is closed: its publishers end

	mu      sync.Mutex
	mic     *webrtc.TrackLocalStaticRTP // guarded by mu; a device's, set on the offer
	streams map[byte]*recvStream        // guarded by mu
	ended   bool                        // guarded by mu; a remote track ended (the server closed it)
}

// newMediaPeer creates a party's PeerConnection, its candidates sent for
// callID as they come.
func newMediaPeer(api *webrtc.API, c *client, callID string) (*mediaPeer, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	p := &mediaPeer{c: c, pc: pc, stop: make(chan struct{}), streams: map[byte]*recvStream{}}
	p.trickle = loopback.NewTrickle(pc, func(cand webrtc.ICECandidateInit) {
		_ = c.send(map[string]any{"type": "candidate", "call_id": callID, "candidate": cand})
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { p.record(tr) })
	return p, nil
}

// record counts a remote track's packets by stream.
func (p *mediaPeer) record(tr *webrtc.TrackRemote) {
	closed := loopback.ReadRTP(tr, func(pkt *rtp.Packet) {
		at := time.Now()
		if len(pkt.Payload) < payloadHeader {
			return
		}
		kind, seq := pkt.Payload[2], binary.BigEndian.Uint32(pkt.Payload[3:7])
		p.mu.Lock()
		s := p.streams[kind]
		if s == nil {
			s = &recvStream{}
			p.streams[kind] = s
		}
		if !s.started {
			s.first, s.lo, s.hi, s.started = at, seq, seq, true
		}
		s.n++
		s.lo, s.hi = min(s.lo, seq), max(s.hi, seq)
		p.mu.Unlock()
	})
	if closed { // one track's end is enough: the server closed the connection
		p.mu.Lock()
		p.ended = true
		p.mu.Unlock()
	}
}

// stream returns a copy of what the peer received of kind.
func (p *mediaPeer) stream(kind byte) recvStream {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s := p.streams[kind]; s != nil {
		return *s
	}
	return recvStream{}
}

func (p *mediaPeer) isEnded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.ended
}

// close ends the publishers and the PeerConnection.
func (p *mediaPeer) close() {
	close(p.stop)
	_ = p.pc.Close()
}

// publish writes synthetic RTP at pps until stop: a VP8 payload descriptor
// and header (a key frame once a second, so that the server's keyframe
// logic sees real framing), the stream kind, its sequence, padding.
func publish(track *webrtc.TrackLocalStaticRTP, kind byte, size, pps int, clockRate uint32, sent *atomic.Int64, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second / time.Duration(pps))
	defer tick.Stop()
	payload := make([]byte, max(size, payloadHeader))
	for seq := uint32(0); ; seq++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		payload[0] = 0x10 // VP8 payload descriptor: start of a partition
		payload[1] = 0x01 // VP8 payload header: an inter frame
		if seq%uint32(pps) == 0 {
			payload[1] = 0x00 // a key frame
		}
		payload[2] = kind
		binary.BigEndian.PutUint32(payload[3:7], seq)
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: uint16(seq),
			Timestamp: seq * (clockRate / uint32(pps))}, Payload: payload}
		if err := track.WriteRTP(pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return
		}
		sent.Add(1)
	}
}
