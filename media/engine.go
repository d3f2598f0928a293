// Package media terminates the WebRTC media of calls: the door station sends
// its audio and video once to the node that owns the call, and a Session
// fans them out to the rung devices — video at once when the site allows a
// preview, audio only to the device that answers — and sends that device's
// microphone back to the door station. Ringing devices get their peer
// connection at ring time, so answering only switches forwarding on.
package media

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/transport/v4"
	"github.com/pion/transport/v4/stdnet"
	"github.com/pion/transport/v4/udp"
	"github.com/pion/webrtc/v4"

	"github.com/foyer-intercom/foyer/internal/pionlog"
)

// Engine holds what every call's media shares: one webrtc.API built from one
// SettingEngine (network policy), one MediaEngine (codecs) and one
// interceptor registry (NACK, RTCP reports, TWCC feedback). The registry
// holds factories: Pion builds a fresh interceptor chain for every
// PeerConnection from it, so sharing it across calls shares no state.
type Engine struct {
	// Immutable after construction.
	cfg Config
	log *slog.Logger
	api *webrtc.API
	mux ice.UDPMux // nil unless cfg.UDPMuxPort is set
	// muxConn is the socket under mux, as the mux sees it (see muxsocket.go).
	muxConn net.PacketConn

	mu       sync.Mutex
	closed   bool                  // guarded by mu
	sessions map[*Session]struct{} // guarded by mu; sessions not yet closed
	ended    SessionStats          // guarded by mu; the sum of closed sessions' stats
	started  uint64                // guarded by mu; sessions ever created
}

// udpBatchInterval bounds how long an outgoing packet waits for its batch to
// fill (UDPBatchWrite): far below what a jitter buffer absorbs.
const udpBatchInterval = time.Millisecond

// udpMuxBuffer is the socket buffer asked for the UDP mux port, each way.
const udpMuxBuffer = 4 << 20

// maxUDPBatchWrite is the largest batch: more gains nothing per system call.
const maxUDPBatchWrite = 64

// NewEngine validates cfg and builds the media engine. With a UDP mux port
// configured it opens that port now, so that a port already in use fails at
// start-up rather than at the first call.
func NewEngine(cfg Config, log *slog.Logger) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		return nil, errors.New("media: NewEngine needs a logger")
	}
	me := &webrtc.MediaEngine{}
	if err := registerCodecs(me); err != nil {
		return nil, err
	}
	reg, err := interceptors(me)
	if err != nil {
		return nil, fmt.Errorf("media: interceptors: %w", err)
	}
	e := &Engine{cfg: cfg, log: log, sessions: make(map[*Session]struct{})}
	logs := pionlog.Factory{Log: log}
	if cfg.UDPMuxPort != 0 {
		host := "" // every interface
		if cfg.LoopbackOnly {
			host = "127.0.0.1"
		}
		conn, err := net.ListenPacket("udp4", net.JoinHostPort(host, fmt.Sprint(cfg.UDPMuxPort)))
		if err != nil {
			return nil, fmt.Errorf("media: udp mux port: %w", err)
		}
		// One socket carries every call's packets: the kernel's default
		// buffers (about 200 KB) overflow in a burst, and a lost packet
		// is a NACK and a retransmission later. The kernel caps the size
		// at net.core.rmem_max and wmem_max (docs/operations.md).
		if uc, ok := conn.(*net.UDPConn); ok {
			if err := uc.SetReadBuffer(udpMuxBuffer); err != nil {
				log.Warn("media: the UDP mux port's receive buffer", "err", err)
			}
			if err := uc.SetWriteBuffer(udpMuxBuffer); err != nil {
				log.Warn("media: the UDP mux port's send buffer", "err", err)
			}
		}
		if cfg.UDPBatchWrite > 1 {
			conn = udp.NewBatchConn(conn, cfg.UDPBatchWrite, udpBatchInterval)
		}
		e.muxConn = ignoreWriteDeadlines(conn)
		params := ice.UDPMuxParams{Logger: logs.NewLogger("udpmux"), UDPConn: e.muxConn}
		if !cfg.LoopbackOnly && len(cfg.Interfaces) > 0 {
			// The socket listens on every interface, and the mux announces
			// the addresses its Net lists: only the allowed interfaces'.
			n, err := stdnet.NewNet()
			if err != nil {
				_ = e.muxConn.Close()
				return nil, fmt.Errorf("media: udp mux port: listing interfaces: %w", err)
			}
			params.Net = interfaceNet{Net: n, keep: cfg.interfaceFilter()}
		}
		e.mux = ice.NewUDPMuxDefault(params)
	}
	se := cfg.settingEngine(e.mux)
	se.LoggerFactory = logs
	e.api = webrtc.NewAPI(
		webrtc.WithSettingEngine(se),
		webrtc.WithMediaEngine(me),
		webrtc.WithInterceptorRegistry(reg),
	)
	return e, nil
}

// Close ends every session still open and releases the UDP mux port.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	open := make([]*Session, 0, len(e.sessions))
	for s := range e.sessions {
		open = append(open, s)
	}
	e.mu.Unlock()
	for _, s := range open {
		s.Close()
	}
	if e.mux != nil {
		return e.mux.Close()
	}
	return nil
}

// track registers a new session; it fails once the engine is closed.
func (e *Engine) track(s *Session) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.sessions[s] = struct{}{}
	e.started++
	return nil
}

// forget drops a closed session, keeping its counts in the engine's totals.
func (e *Engine) forget(s *Session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.sessions[s]; !ok {
		return
	}
	delete(e.sessions, s)
	e.ended.add(s.Stats())
}

// EngineStats are the engine's totals since it started.
type EngineStats struct {
	SessionStats        // summed over every session, open and closed; Devices: in open sessions
	Active       int    // sessions open now
	Started      uint64 // sessions ever created
}

// Stats sums every session's counts, open and closed: each counter only
// grows, as Prometheus counters must. Lock order: e.mu, then a session's mu.
func (e *Engine) Stats() EngineStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	total := e.ended
	total.Devices = 0
	for s := range e.sessions {
		total.add(s.Stats())
	}
	return EngineStats{SessionStats: total, Active: len(e.sessions), Started: e.started}
}

// newPeerConnection creates a PeerConnection with no ICE servers: the
// node is reachable on its own (public) addresses; clients use TURN.
func (e *Engine) newPeerConnection() (*webrtc.PeerConnection, error) {
	pc, err := e.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, fmt.Errorf("media: new peer connection: %w", err)
	}
	return pc, nil
}

// interceptors registers Pion's default interceptors except the stats one:
// NACK (generating and answering retransmission requests), RTCP sender and
// receiver reports, the simulcast header extensions and TWCC feedback. The
// session never calls GetStats, and the stats interceptor's per-packet
// bookkeeping (a clock read and a lock per packet per device) was a few per
// cent of the forwarding CPU (docs/benchmarks.md).
func interceptors(me *webrtc.MediaEngine) (*interceptor.Registry, error) {
	reg := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(me, reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(reg); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureSimulcastExtensionHeaders(me); err != nil {
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(me, reg); err != nil {
		return nil, err
	}
	return reg, nil
}

// interfaceNet is the host's network as the UDP mux sees it: only the
// interfaces keep admits. The mux's socket listens on every interface, and
// Pion (ice v4.4.2) announces every address of every interface its Net
// lists, ignoring the setting engine's interface filter; with this Net,
// media.interfaces holds on the mux port as it does with a port per call.
// The list is the host's at start-up, as Pion's own would be.
type interfaceNet struct {
	transport.Net
	keep func(name string) bool
}

// Interfaces implements transport.Net: the admitted interfaces.
func (n interfaceNet) Interfaces() ([]*transport.Interface, error) {
	all, err := n.Net.Interfaces()
	if err != nil {
		return nil, err
	}
	kept := make([]*transport.Interface, 0, len(all))
	for _, ifc := range all {
		if n.keep(ifc.Name) {
			kept = append(kept, ifc)
		}
	}
	return kept, nil
}
