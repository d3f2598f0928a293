package signaling

import (
	"bufio"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
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

// Conn is one device's WebSocket connection. Its reader (readLoop, on the
// connection's own goroutine) decodes and dispatches. Everything else
// enqueues with Send; a writer goroutine (drain) exists only while there is
// something to write — queued frames, a heartbeat ping or the close — and
// is the only code that writes to ws. An idle connection holds one
// goroutine, its reader, and no writer.
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

	qmu     sync.Mutex
	queue   [][]byte    // guarded by qmu; frames waiting for the writer, at most cfg.SendQueue
	held    bool        // guarded by qmu; writing has not started (the welcome waits for Attach)
	writing bool        // guarded by qmu; a drain goroutine runs (and, once closing, always)
	pingDue bool        // guarded by qmu; a heartbeat ping is to be sent
	closing bool        // guarded by qmu; close was called: the writer ends with the close frame
	ping    *time.Timer // set by startWriting, before any writer runs; stopped by close

	// The reader's own: the WebSocket's buffered reader (nil if the
	// upgrade did not go through ownReader).
	br *bufio.Reader

	mu          sync.Mutex
	remoteCalls map[CallID]struct{} // guarded by mu; calls owned by other nodes this device acted on

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
	}
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

// Send enqueues a frame without blocking and reports whether it did. When
// the queue is full the client is too slow: it is closed with CloseSlow
// rather than losing a message. A closing connection takes nothing.
func (c *Conn) Send(frame []byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	c.qmu.Lock()
	if len(c.queue) >= c.hub.cfg.SendQueue {
		queued := len(c.queue)
		c.qmu.Unlock()
		c.hub.metrics.slowConsumers.Inc()
		c.logger().Warn("closing slow consumer", "queued", queued)
		c.close(CloseSlow, EndFailed)
		return false
	}
	c.queue = append(c.queue, frame)
	start := c.wakeLocked()
	c.qmu.Unlock()
	if start {
		go c.drain()
	}
	return true
}

// wakeLocked reports whether the caller must start a writer: writing is
// allowed and none runs.
func (c *Conn) wakeLocked() bool {
	if c.held || c.writing {
		return false
	}
	c.writing = true
	return true
}

// startWriting lets the writer run (what was queued, the welcome first, goes
// out now) and starts the heartbeat pings. serve calls it once the
// connection is registered, so that a device is ringable by the time it
// reads its welcome.
func (c *Conn) startWriting() {
	c.qmu.Lock()
	c.held = false
	if !c.closing {
		c.ping = time.AfterFunc(nextPing(time.Now(), c.hub.cfg.Heartbeat), c.pingTick)
	}
	start := (len(c.queue) > 0 || c.closing) && c.wakeLocked()
	c.qmu.Unlock()
	if start {
		go c.drain()
	}
}

// pingTick runs on a goroutine of its own, started by the ping timer: it
// asks for a ping and, when no writer runs, is the writer.
func (c *Conn) pingTick() {
	c.qmu.Lock()
	if c.closing {
		c.qmu.Unlock()
		return
	}
	c.pingDue = true
	c.ping.Reset(nextPing(time.Now(), c.hub.cfg.Heartbeat))
	start := c.wakeLocked()
	c.qmu.Unlock()
	if start {
		c.drain()
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

// actedOn records a call owned by another node that this device took part
// in, so that its owner hears when the connection goes.
func (c *Conn) actedOn(call CallID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.remoteCalls == nil {
		c.remoteCalls = make(map[CallID]struct{})
	}
	c.remoteCalls[call] = struct{}{}
}

// takeRemoteCalls returns and forgets the calls recorded by actedOn.
func (c *Conn) takeRemoteCalls() []CallID {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := make([]CallID, 0, len(c.remoteCalls))
	for id := range c.remoteCalls {
		calls = append(calls, id)
	}
	c.remoteCalls = nil
	return calls
}

// reply sends v, an outbound message struct, to this connection.
func (c *Conn) reply(v any) { c.Send(encode(v)) }

// replyError sends an error reply about the message with ref.
func (c *Conn) replyError(ref json.RawMessage, call CallID, pe *ProtoError) {
	c.reply(ErrorReply{Type: TypeError, Ref: ref, Code: pe.Code, Message: pe.Message, CallID: call})
}

// close starts closing the connection: the writer sends what is queued,
// then a close frame with code (0: none, the peer already closed or the
// library sent one), and closes the socket. reason is what the device's
// calls end with. Safe from any goroutine.
func (c *Conn) close(code CloseCode, reason EndReason) {
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
		start := c.wakeLocked()
		c.qmu.Unlock()
		if start {
			go c.drain()
		}
	})
}

// drain is the connection's writer while it has work: it writes queued
// frames in order and the heartbeat pings, and returns when nothing is
// left. Once the connection is closing it writes what is still queued
// (bounded by closeWait in all), then the close frame, and closes the
// socket, which also ends the reader; writing then stays true, so no writer
// starts again.
func (c *Conn) drain() {
	for {
		c.qmu.Lock()
		batch, ping, closing := c.queue, c.pingDue, c.closing
		c.queue, c.pingDue = nil, false
		if len(batch) == 0 && !ping && !closing {
			c.writing = false
			c.qmu.Unlock()
			return
		}
		c.qmu.Unlock()
		if closing {
			c.finish(batch)
			return
		}
		_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
		err := c.write(batch)
		if err == nil && ping {
			err = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait))
		}
		if err != nil {
			c.close(0, EndFailed)
			c.finish(nil)
			return
		}
	}
}

// write writes frames in order, counting each, and stops at the first
// failure. Only the writer calls it.
func (c *Conn) write(frames [][]byte) error {
	for _, frame := range frames {
		if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			return err
		}
		c.hub.metrics.messagesOut.WithLabelValues(sentType(frame)).Inc()
	}
	return nil
}

// finish writes batch and whatever else was queued before the close, so
// that a close never loses a message sent before it (an ended, a cancel),
// then the close frame, and closes the socket. All of it is bounded by
// closeWait. The writer that runs it is the last.
func (c *Conn) finish(batch [][]byte) {
	_ = c.ws.SetWriteDeadline(time.Now().Add(closeWait))
	for len(batch) > 0 && c.write(batch) == nil {
		c.qmu.Lock()
		batch, c.queue = c.queue, nil
		c.qmu.Unlock()
	}
	if c.closeCode != 0 {
		msg := websocket.FormatCloseMessage(int(c.closeCode), c.closeCode.String())
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
	}
	_ = c.ws.Close() // unblocks the reader
}

// readLoop reads frames until the connection fails, dispatching each. It
// runs on the connection's own goroutine (serve).
func (c *Conn) readLoop() {
	alive := 2 * c.hub.cfg.Heartbeat // a peer silent for two intervals is dropped
	_ = c.ws.SetReadDeadline(time.Now().Add(alive))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(alive)) })
	var raw syscall.RawConn
	if sc, ok := c.ws.UnderlyingConn().(syscall.Conn); ok && c.br != nil {
		raw, _ = sc.SyscallConn()
	}
	for {
		if raw != nil && c.br.Buffered() == 0 {
			// Idle: park in a shallow frame until the socket has bytes, so
			// that the stack of an idle connection stays small (4 KiB
			// instead of the 8 KiB the WebSocket library's read path needs).
			waitReadable(raw)
		}
		kind, frame, err := c.ws.ReadMessage()
		if err != nil {
			c.close(classifyReadError(err))
			return
		}
		_ = c.ws.SetReadDeadline(time.Now().Add(alive))
		if kind != websocket.TextMessage {
			c.replyError(nil, "", protoErr(CodeBadRequest, "binary frames are not part of the protocol; send JSON text frames"))
			continue
		}
		c.hub.dispatch(c, frame)
	}
}

// classifyReadError maps why reading failed to the close frame to send and
// the reason the device's calls end with.
func classifyReadError(err error) (CloseCode, EndReason) {
	var ne net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		return 0, EndFailed // the library already sent 1009
	case errors.As(err, &ne) && ne.Timeout():
		return CloseHeartbeat, EndTimeout
	default:
		return 0, EndFailed // the peer closed or the socket broke
	}
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
