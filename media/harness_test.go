package media

import (
	"encoding/binary"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/foyer-intercom/foyer/internal/loopback"
)

// Test timing: loopback ICE and DTLS take tens of milliseconds.
const (
	// waitFor bounds every wait of a test for media to arrive.
	waitFor = 10 * time.Second
	// pollEvery is how often waits re-check their condition.
	pollEvery = 5 * time.Millisecond
)

// loopbackSettings is the network policy of every test peer: loopback only,
// like the server's LoopbackOnly, so that no packet leaves the machine.
func loopbackSettings() webrtc.SettingEngine { return loopback.SettingEngine() }

// clientAPI builds a client's API that supports exactly the codecs given
// (a G.711-only door station registers only PCMU), or Pion's defaults.
func clientAPI(tb testing.TB, codecs ...webrtc.RTPCodecParameters) *webrtc.API {
	tb.Helper()
	me := &webrtc.MediaEngine{}
	if len(codecs) == 0 {
		if err := me.RegisterDefaultCodecs(); err != nil {
			tb.Fatal(err)
		}
	}
	for _, c := range codecs {
		kind := webrtc.RTPCodecTypeAudio
		if strings.HasPrefix(c.MimeType, "video/") {
			kind = webrtc.RTPCodecTypeVideo
		}
		if err := me.RegisterCodec(c, kind); err != nil {
			tb.Fatal(err)
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(me, reg); err != nil {
		tb.Fatal(err)
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(loopbackSettings()), webrtc.WithMediaEngine(me), webrtc.WithInterceptorRegistry(reg))
}

var (
	vp8Codec  = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000, RTCPFeedback: videoFeedback}, PayloadType: 96}
	opusCodec = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111}
	pcmuCodec = webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0}
)

// newTestEngine starts a loopback-only Engine closed at the end of the test.
func newTestEngine(tb testing.TB) *Engine {
	tb.Helper()
	return newEngineWith(tb, Config{LoopbackOnly: true})
}

// newEngineWith starts an Engine on cfg, closed at the end of the test.
func newEngineWith(tb testing.TB, cfg Config) *Engine {
	tb.Helper()
	e, err := NewEngine(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// udpSetups are the ways the engine can use UDP, each loopback-only: a port
// per peer connection (the default), every peer connection on one mux port,
// and the mux port with writes batched into sendmmsg(2).
var udpSetups = []struct {
	name   string
	config func(testing.TB) Config
}{
	{"ports", func(testing.TB) Config { return Config{LoopbackOnly: true} }},
	{"mux", func(tb testing.TB) Config { return Config{LoopbackOnly: true, UDPMuxPort: freeUDPPort(tb)} }},
	{"mux-batch", func(tb testing.TB) Config {
		return Config{LoopbackOnly: true, UDPMuxPort: freeUDPPort(tb), UDPBatchWrite: 16}
	}},
}

// freeUDPPort finds a loopback UDP port nobody listens on.
func freeUDPPort(tb testing.TB) int {
	tb.Helper()
	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// wire is the test's signalling: it implements Events by handing each
// message to the client it is for, in order, like a WebSocket would.
type wire struct {
	mu      sync.Mutex
	clients map[string]*client
}

var _ Events = (*wire)(nil)

func newWire() *wire { return &wire{clients: make(map[string]*client)} }

func (w *wire) add(c *client) {
	w.mu.Lock()
	w.clients[c.id] = c
	w.mu.Unlock()
}

func (w *wire) to(id string) *client {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clients[id]
}

// SDP enqueues a description for a client.
func (w *wire) SDP(to string, desc webrtc.SessionDescription) {
	if c := w.to(to); c != nil {
		c.inbox.push(desc)
	}
}

// Candidate enqueues a candidate for a client.
func (w *wire) Candidate(to string, ci *webrtc.ICECandidateInit) {
	if c := w.to(to); c != nil {
		if ci == nil {
			ci = &webrtc.ICECandidateInit{}
		}
		c.inbox.push(*ci)
	}
}

// queue is an unbounded FIFO drained by one goroutine: signalling's
// queues are bounded, but a test must never lose a message.
type queue struct {
	mu     sync.Mutex
	items  []any
	ready  chan struct{}
	closed bool
}

func newQueue() *queue { return &queue{ready: make(chan struct{}, 1)} }

func (q *queue) push(v any) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, v)
	}
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// drain calls fn for each item until the queue is closed.
func (q *queue) drain(fn func(any)) {
	for range q.ready {
		q.mu.Lock()
		items, closed := q.items, q.closed
		q.items = nil
		q.mu.Unlock()
		for _, it := range items {
			fn(it)
		}
		if closed {
			return
		}
	}
}

// payload is the content of test packet i of a stream: a marker byte, the
// index, and filler. Video payloads start with a VP8 payload descriptor of
// an interframe (S=1, PID=0, then P=1), so that they are never taken for a
// keyframe.
func payload(kind byte, i uint32, size int) []byte {
	p := make([]byte, max(size, 8))
	if kind == 'V' {
		p[0], p[1] = 0x10, 0x01
	}
	p[2] = kind
	binary.BigEndian.PutUint32(p[3:], i)
	for j := 7; j < len(p); j++ {
		p[j] = byte(i) ^ byte(j)
	}
	return p
}

// waitUntil polls cond until it holds or the test times out.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(pollEvery)
	}
}
