package signaling

import (
	"bufio"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/foyer-intercom/foyer/directory"
)

const (
	// writeWait bounds one batch of queued frames; a peer that cannot take them in
	// this time is on a hopeless link and only delays its own writer.
	writeWait = 10 * time.Second
	// closeWait bounds writing the close frame when the server closes.
	closeWait = time.Second
	// maxMessageSize is the protocol's read limit: larger frames close with 1009.
	maxMessageSize = 64 << 10
)

// Conn is one device's WebSocket connection. Its reader (read) decodes and
// dispatches while the socket has bytes, then parks the connection with the
// idle poller. Everything else sends with Send, which writes a frame at once
// when nothing is queued (writeInline) and otherwise queues it; a writer
// goroutine (drain) exists only while there is something queued — frames,
// a heartbeat ping or the close (a reader whose socket failed writes the
// close itself when nothing else waits: closeFailed). One writer at a time,
// either way (the writing flag). An idle connection holds no goroutine: its
// socket waits in the idle poller and its heartbeat in a timer.
type Conn struct {
	// Immutable after construction.
	id      string // this connection, as distinct from others of the same device
	ws      *websocket.Conn
	hub     *Hub
	device  directory.Device
	token   directory.TokenHash // the token that authenticated this connection
	targets []directory.Target  // (site, number) pairs this device rings for
	sites   []directory.SiteID  // sites this device belongs to (welcome.site_ids)
	done    chan struct{}       // closed once, by close
	msgs    *rate.Limiter       // messages this connection may send
	calls   *rate.Limiter       // calls a door station may place; nil for other devices
	resume  directory.TokenHash // this connection's resume token (resumeTokens)
	// created is when the connection was made, in Unix nanoseconds: what a
	// presence view learned before it is older news (RedisRouter.movedTo).
	// Not a time.Time: 24 bytes would take Conn past 512 into the next
	// allocation size class, 64 bytes more per connection.
	created int64

	qmu     sync.Mutex
	queue   [][]byte // guarded by qmu; frames waiting for the writer, at most cfg.SendQueue
	held    bool     // guarded by qmu; writing has not started (the welcome waits for Attach)
	writing bool     // guarded by qmu; a drain goroutine runs (and, once closing, always)
	pingDue bool     // guarded by qmu; a heartbeat ping is to be sent
	closing bool     // guarded by qmu; close was called: the writer ends with the close frame
	// rest is the unwritten end of a frame writeInline began; the writer
	// that runs next writes it before anything else. Owned by the writer
	// role (writing), handed over with the go statement that starts drain.
	rest   []byte
	ping   *time.Timer // set by startWriting, before any writer runs; stopped by close
	pingAt time.Time   // guarded by qmu; when the next heartbeat ping is due

	// The reader's own: the WebSocket's buffered reader and the socket
	// (nil if the upgrade did not go through ownReader).
	br  *bufio.Reader
	raw syscall.RawConn

	direct *directWriter // nil: every frame goes through the queue

	heardAt atomic.Int64 // Unix nanoseconds of the last frame read, pongs included
	pollID  uint32       // guarded by the idle poller's mu; 0: never parked

	mu          sync.Mutex
	callsTaken  bool                 // guarded by mu; gone: its recorded calls were taken (takeRemoteCalls); here it costs no room
	remoteCalls map[CallID]time.Time // guarded by mu; calls owned by other nodes this device acted on, and when
	handed      map[CallID]struct{}  // guarded by mu; those of them handed over from a connection this one replaced, not spoken about through this one since
	movedTo     *connAt              // guarded by mu; the connection on another node that replaced this one

	leased atomic.Bool // the RedisRouter wrote this connection's presence lease

	closeOnce sync.Once
	// Written once in close before done is closed; read after <-done.
	closeCode CloseCode
	endReason EndReason
}

func newConn(h *Hub, ws *websocket.Conn, d directory.Device, tok directory.TokenHash, targets []directory.Target, sites []directory.SiteID) *Conn {
	c := &Conn{
		id:      randomID(9),
		ws:      ws,
		hub:     h,
		device:  d,
		token:   tok,
		targets: targets,
		sites:   sites,
		done:    make(chan struct{}),
		msgs:    rate.NewLimiter(rate.Limit(h.cfg.MessageRate), h.cfg.MessageBurst),
		held:    true,
		created: time.Now().UnixNano(),
	}
	c.heard()
	if d.Kind == directory.KindDoorStation {
		c.calls = rate.NewLimiter(rate.Limit(h.cfg.CallRate), h.cfg.CallBurst)
	}
	return c
}

// logger is the hub's logger with this connection's device. It is built
// when used: connections log rarely, and an idle one then holds none.
func (c *Conn) logger() *slog.Logger {
	return c.hub.log.With("device_id", c.device.ID, "kind", c.device.Kind)
}

// Device returns the device this connection authenticated as.
func (c *Conn) Device() directory.Device { return c.device }

// startWriting lets the writer run (what was queued, the welcome first, goes
// out now) and starts the heartbeat pings. serve calls it once the
// connection is registered, so that a device is ringable by the time it
// reads its welcome.
func (c *Conn) startWriting() {
	c.qmu.Lock()
	c.held = false
	if !c.closing {
		now := time.Now()
		c.pingAt = now.Add(nextPing(now, c.hub.cfg.Heartbeat))
		c.ping = time.AfterFunc(c.pingAt.Sub(now), c.pingTick)
	}
	start := (len(c.queue) > 0 || c.closing) && c.wakeLocked()
	c.qmu.Unlock()
	if start {
		go c.drain()
	}
}

// pingTick runs on a goroutine of its own, started by the heartbeat timer.
// A peer silent for two heartbeat intervals is dropped (4013); otherwise,
// when a ping is due, it asks for one and, when no writer runs, is the
// writer. The timer runs again at the next ping or when the peer will have
// been silent too long, whichever comes first; for a peer that answers its
// pings that is always the next ping.
func (c *Conn) pingTick() {
	now := time.Now()
	silentUntil := time.Unix(0, c.heardAt.Load()).Add(2 * c.hub.cfg.Heartbeat)
	if !now.Before(silentUntil) {
		c.close(CloseHeartbeat, EndTimeout)
		return
	}
	c.qmu.Lock()
	if c.closing {
		c.qmu.Unlock()
		return
	}
	if !now.Before(c.pingAt) {
		c.pingDue = true
		c.pingAt = now.Add(nextPing(now, c.hub.cfg.Heartbeat))
	}
	c.ping.Reset(min(c.pingAt.Sub(now), silentUntil.Sub(now)))
	start := c.pingDue && c.wakeLocked()
	inline := start && c.direct != nil
	if inline {
		c.pingDue = false // written here, now
	}
	c.qmu.Unlock()
	switch {
	case inline:
		c.pingInline()
	case start:
		c.drain()
	}
}

// heard notes that the peer just sent something: it is alive.
func (c *Conn) heard() { c.heardAt.Store(time.Now().UnixNano()) }

// isClosing reports whether close was called.
func (c *Conn) isClosing() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// pingGrid aligns heartbeat pings: every connection's pings fall on
// multiples of it, so the pings (and the pongs) of the connections due in
// the same window go out together, and the scheduler wakes once for the lot
// rather than once per connection. Short enough that a burst (about
// connections × pingGrid / heartbeat pings) is brief.
const pingGrid = 50 * time.Millisecond

// nextPing is how long until a ping due one heartbeat after now, moved
// back to the grid: pings are never further apart than the heartbeat.
func nextPing(now time.Time, heartbeat time.Duration) time.Duration {
	if heartbeat <= pingGrid {
		return heartbeat
	}
	return now.Add(heartbeat).Truncate(pingGrid).Sub(now)
}

// reply sends v, an outbound message struct, to this connection.
func (c *Conn) reply(v any) { c.Send(encode(v)) }

// replyError sends an error reply about the message with ref.
func (c *Conn) replyError(ref json.RawMessage, call CallID, pe *ProtoError) {
	c.reply(ErrorReply{Type: TypeError, Ref: ref, Code: pe.Code, Message: pe.Message, CallID: call})
}

// close starts closing the connection: the writer sends what is queued,
// then a close frame with code (none for 0, the peer already closed, nor
// for CloseTooBig, which the library sent: writeClose), and closes the socket. reason is what the device's
// calls end with. Safe from any goroutine.
func (c *Conn) close(code CloseCode, reason EndReason) {
	if start, _ := c.beginClose(code, reason); start {
		go c.drain()
	}
}

// closeFailed is close(code, EndFailed) for the reader whose socket failed
// (code 0, or CloseTooBig, which the library sent: writeClose),
// which is about to end: when no frame waits to be written, it closes the
// socket itself instead of starting a writer goroutine to do it. A site's
// devices all dropping at once (its network going down, a reconnect storm)
// then starts no goroutine per connection. With frames waiting, a writer
// writes them as close does, so that the reader does not wait on a peer
// that may not read.
func (c *Conn) closeFailed(code CloseCode) {
	switch start, idle := c.beginClose(code, EndFailed); {
	case start && idle:
		c.drain()
	case start:
		go c.drain()
	}
}

// beginClose marks the connection closing, the first time only. start says
// that the caller must run the writer (none runs), idle that it will find
// nothing to write but the close.
func (c *Conn) beginClose(code CloseCode, reason EndReason) (start, idle bool) {
	c.closeOnce.Do(func() {
		c.closeCode, c.endReason = code, reason
		close(c.done)
		// Unblock a write stuck on a peer that does not read.
		_ = c.ws.UnderlyingConn().SetWriteDeadline(time.Now().Add(closeWait))
		c.qmu.Lock()
		c.closing = true
		if c.ping != nil {
			c.ping.Stop()
		}
		c.held = false // a connection closed before it was registered still says why
		start = c.wakeLocked()
		// rest belongs to the writer; with start, there is none.
		idle = start && len(c.queue) == 0 && !c.pingDue && c.rest == nil
		c.qmu.Unlock()
	})
	return start, idle
}

// read is the connection's reader. It reads and dispatches frames while
// the socket has them, then parks the connection with the idle poller and
// returns; the poller runs read again, on one of its reader goroutines,
// once bytes arrive (without a poller it waits on the socket instead, in a
// shallow frame). When reading fails it closes the connection and ends
// serving it.
// serve runs it first; ready says the socket is known to have bytes (or to
// have closed), as when the poller runs it.
func (c *Conn) read(ready bool) {
	for {
		if c.br != nil {
			if !ready && c.br.Buffered() == 0 {
				if idle().park(c) {
					return
				}
				if c.raw != nil {
					waitReadable(c.raw)
				}
			}
			ready = false
			if c.takePong() {
				continue
			}
		}
		kind, frame, err := c.ws.ReadMessage()
		if err != nil {
			// The peer closed, the socket broke, or a frame was too large
			// (the library has sent 1009). A silent peer is closed by the
			// heartbeat timer (pingTick), not here.
			c.closeFailed(readFailure(err))
			c.hub.served(c)
			return
		}
		c.heard()
		if kind != websocket.TextMessage {
			c.replyError(nil, "", protoErr(CodeBadRequest, "binary frames are not part of the protocol; send JSON text frames"))
			continue
		}
		c.hub.dispatch(c, frame)
	}
}

// takePong consumes the pong frame at the head of the read buffer, if one
// is there, and reports whether it did. Left to the WebSocket library, a
// pong (the answer to every heartbeat ping) would be read inside its wait
// for the next message, and an idle connection would keep a goroutine
// there; taken here, between messages, the connection parks again. Only
// the exact form a client sends is taken (RFC 6455: FIN, opcode 0xA, no
// RSV bits, masked, at most 125 bytes of payload); anything else is the
// library's to read and judge.
func (c *Conn) takePong() bool {
	head, err := c.br.Peek(2)
	if err != nil || head[0] != 0x8A || head[1]&0x80 == 0 || head[1]&0x7f > 125 {
		return false // an error is the library's to report
	}
	n := 2 + 4 + int(head[1]&0x7f) // header, masking key, payload
	if _, err := c.br.Peek(n); err != nil {
		return false
	}
	_, _ = c.br.Discard(n)
	c.heard()
	return true
}

// readBufferSize is the WebSocket reader's buffer: protocol messages are a
// few hundred bytes; larger ones (SDP) are read through it in pieces.
const readBufferSize = 512

// ownReader is the ResponseWriter the upgrader hijacks: it gives the
// WebSocket a buffered reader of readBufferSize that the Conn can ask
// whether it holds unread bytes (readLoop).
type ownReader struct {
	http.ResponseWriter
	br *bufio.Reader
}

// Hijack implements http.Hijacker.
func (o *ownReader) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := o.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("signaling: the connection cannot be taken over for a WebSocket")
	}
	conn, brw, err := h.Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return conn, brw, err // the upgrader refuses data sent before the handshake completed
	}
	o.br = bufio.NewReaderSize(conn, readBufferSize)
	return conn, bufio.NewReadWriter(o.br, brw.Writer), nil
}
