package media

import (
	"bytes"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

const (
	// packetEvery paces the test streams: 50 packets/s, like 20 ms audio.
	packetEvery = 10 * time.Millisecond
	// videoSize and audioSize are the test payload sizes.
	videoSize, audioSize = 900, 160
	// markExtID is the header extension every test stream carries, with
	// senderMark in it: its IDs mean nothing on the receiver's connection,
	// so the session must not forward it.
	markExtID = 14
)

var senderMark = []byte("sent")

// client is a real Pion peer playing a door station or a device, talking
// to the session through a wire. Its descriptions and candidates go out in
// order through one outbox, as they would over a WebSocket.
type client struct {
	tb     testing.TB
	id     string
	pc     *webrtc.PeerConnection
	s      *Session
	inbox  *queue // from the session
	outbox *queue // to the session
	wg     sync.WaitGroup
	stop   chan struct{}
	negMu  sync.Mutex // held while a description is sent and applied

	mu     sync.Mutex
	got    map[webrtc.RTPCodecType][][]byte // guarded by mu; payloads received in order
	ended  bool                             // guarded by mu; a remote track ended
	marked int                              // guarded by mu; packets received with senderMark
	plis   int                              // guarded by mu; PLIs received (door)
	mic    *webrtc.TrackLocalStaticRTP      // guarded by mu; a device's microphone

	countOnly atomic.Bool   // count packets, keep nothing (benchmarks)
	encoder   atomic.Bool   // a door station answering a PLI with a keyframe (whose payload is not payload()'s: no checkRun)
	keyframe  atomic.Bool   // a PLI asked for a keyframe the encoder has not sent
	packets   atomic.Uint64 // packets received, all tracks

	// send, when set, carries our messages instead of calling s (the
	// peers of a benchmark run in another process).
	send func(v any)
}

func newClient(tb testing.TB, api *webrtc.API, id string, s *Session, w *wire) *client {
	tb.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		tb.Fatal(err)
	}
	c := &client{tb: tb, id: id, pc: pc, s: s, inbox: newQueue(), outbox: newQueue(),
		stop: make(chan struct{}), got: make(map[webrtc.RTPCodecType][][]byte)}
	pc.OnICECandidate(func(ic *webrtc.ICECandidate) {
		if ic == nil {
			c.outbox.push(webrtc.ICECandidateInit{})
			return
		}
		c.outbox.push(ic.ToJSON())
	})
	pc.OnTrack(c.record)
	w.add(c)
	c.goLoop(func() { c.inbox.drain(c.fromSession) })
	c.goLoop(func() { c.outbox.drain(c.toSession) })
	tb.Cleanup(c.close)
	return c
}

func (c *client) goLoop(fn func()) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// close ends the client and waits for its goroutines.
func (c *client) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	_ = c.pc.GracefulClose()
	c.inbox.close()
	c.outbox.close()
	c.wg.Wait()
}

// toSession sends one of our messages to the session.
func (c *client) toSession(v any) {
	if c.send != nil {
		c.send(v)
		return
	}
	var err error
	switch m := v.(type) {
	case webrtc.SessionDescription:
		err = c.s.HandleSDP(c.id, m)
	case webrtc.ICECandidateInit:
		err = c.s.HandleCandidate(c.id, m)
	}
	if err != nil {
		c.tb.Errorf("%s → session: %v", c.id, err)
	}
}

// fromSession applies a message from the session: an offer is answered
// (a device adds its microphone in the offered codec first), an answer or
// a candidate applied.
func (c *client) fromSession(v any) {
	c.negMu.Lock()
	defer c.negMu.Unlock()
	switch m := v.(type) {
	case webrtc.ICECandidateInit:
		if err := c.pc.AddICECandidate(m); err != nil {
			c.tb.Errorf("%s: add candidate: %v", c.id, err)
		}
	case webrtc.SessionDescription:
		if m.Type == webrtc.SDPTypeOffer && c.pc.SignalingState() == webrtc.SignalingStateHaveLocalOffer {
			return // glare: the client is the impolite peer and keeps its own offer
		}
		if err := c.pc.SetRemoteDescription(m); err != nil {
			c.tb.Errorf("%s: set remote: %v", c.id, err)
			return
		}
		if m.Type != webrtc.SDPTypeOffer {
			return
		}
		c.addMic()
		a, err := c.pc.CreateAnswer(nil)
		if err != nil {
			c.tb.Errorf("%s: answer: %v", c.id, err)
			return
		}
		c.outbox.push(a) // before gathering starts: candidates follow it
		if err := c.pc.SetLocalDescription(a); err != nil {
			c.tb.Errorf("%s: set local: %v", c.id, err)
		}
	}
}

// addMic gives a device a microphone track in the audio codec offered.
func (c *client) addMic() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mic != nil {
		return
	}
	for _, t := range c.pc.GetTransceivers() {
		codecs := t.Receiver().GetParameters().Codecs
		if t.Kind() != webrtc.RTPCodecTypeAudio || len(codecs) == 0 {
			continue
		}
		mic, err := webrtc.NewTrackLocalStaticRTP(codecs[0].RTPCodecCapability, "mic", c.id)
		if err == nil {
			_, err = c.pc.AddTrack(mic)
		}
		if err != nil {
			c.tb.Errorf("%s: microphone: %v", c.id, err)
			return
		}
		c.mic = mic
		return
	}
}

// offer starts negotiation from the client (the door station's way).
func (c *client) offer() {
	c.negMu.Lock()
	defer c.negMu.Unlock()
	c.offerLocked(nil)
}

// offerLocked sends an offer with negMu held.
func (c *client) offerLocked(opts *webrtc.OfferOptions) {
	o, err := c.pc.CreateOffer(opts)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.outbox.push(o)
	if err := c.pc.SetLocalDescription(o); err != nil {
		c.tb.Fatal(err)
	}
}

// record keeps the payloads of a remote track until it ends.
func (c *client) record(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			c.mu.Lock()
			c.ended = true
			c.mu.Unlock()
			return
		}
		c.packets.Add(1)
		if c.countOnly.Load() {
			continue
		}
		c.mu.Lock()
		c.got[t.Kind()] = append(c.got[t.Kind()], bytes.Clone(p.Payload))
		for _, id := range p.GetExtensionIDs() {
			if bytes.Equal(p.GetExtension(id), senderMark) {
				c.marked++
			}
		}
		c.mu.Unlock()
	}
}

// received returns a copy of the payloads of kind received so far.
func (c *client) received(kind webrtc.RTPCodecType) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.got[kind]...)
}

// countRTCP counts the PLIs arriving on a sender until it closes.
func (c *client) countRTCP(s *webrtc.RTPSender) {
	c.goLoop(func() {
		for {
			pkts, _, err := s.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					c.mu.Lock()
					c.plis++
					c.mu.Unlock()
					c.keyframe.Store(c.encoder.Load())
				}
			}
		}
	})
}

func (c *client) pliCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.plis
}

// markedCount is the number of packets received with a sender's header
// extension in them.
func (c *client) markedCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.marked
}

func (c *client) hasEnded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ended
}

// publish writes numbered payloads on track every packetEvery until the
// client closes; track is read under mu when it is the microphone, which
// appears with the first offer.
func (c *client) publish(kind byte, size int, track func() *webrtc.TrackLocalStaticRTP) {
	c.goLoop(func() {
		tick := time.NewTicker(packetEvery)
		defer tick.Stop()
		var i uint32
		ssrc := binary.BigEndian.Uint32([]byte{kind, 0, 0, 1})
		for {
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
			t := track()
			if t == nil {
				continue
			}
			p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: i * 960, SSRC: ssrc}, Payload: payload(kind, i, size)}
			if kind == 'V' && c.keyframe.Swap(false) {
				p.Payload[1] = 0x00 // P=0: the frame is a keyframe
			}
			if err := p.Header.SetExtension(markExtID, senderMark); err != nil {
				c.tb.Errorf("%s: header extension: %v", c.id, err)
				return
			}
			if err := t.WriteRTP(p); err == nil {
				i++
			}
		}
	})
}

func (c *client) micTrack() *webrtc.TrackLocalStaticRTP {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mic
}

// checkRun verifies that got is a contiguous, in-order run of the packets
// of kind that were sent — a prefix may be missing (sent before the
// receiver joined), nothing else — and has at least atLeast packets.
func checkRun(tb testing.TB, who string, got [][]byte, kind byte, size, atLeast int) {
	tb.Helper()
	if len(got) < atLeast {
		tb.Fatalf("%s: %d %c packets, want at least %d", who, len(got), kind, atLeast)
	}
	if len(got[0]) < 7 {
		tb.Fatalf("%s: short payload %x", who, got[0])
	}
	first := binary.BigEndian.Uint32(got[0][3:])
	for k, p := range got {
		if want := payload(kind, first+uint32(k), size); !bytes.Equal(p, want) {
			tb.Fatalf("%s: %c packet %d of the run starting at %d differs: got %x…, want %x…", who, kind, k, first, p[:min(len(p), 8)], want[:8])
		}
	}
}
