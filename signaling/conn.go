package signaling

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/foyer-intercom/foyer/directory"
)

const (
	// writeWait bounds one frame write; a peer that cannot take a frame in
	// this time is on a hopeless link and only delays its own writer.
	writeWait = 10 * time.Second
	// closeWait bounds writing the close frame when the server closes.
	closeWait = time.Second
	// maxMessageSize is the protocol's read limit: larger frames close with 1009.
	maxMessageSize = 64 << 10
)

// Conn is one device's WebSocket connection. Its reader (the HTTP handler's
// goroutine) decodes and dispatches; its writer (writeLoop) is the only code
// that writes to ws. Everything else enqueues with Send.
type Conn struct {
	// Immutable after construction.
	id      string // this connection, as distinct from others of the same device
	ws      *websocket.Conn
	hub     *Hub
	device  directory.Device
	token   directory.TokenHash // the token that authenticated this connection
	targets []directory.Target  // (site, number) pairs this device rings for
	sites   []directory.SiteID  // sites this device belongs to (welcome.site_ids)
	log     *slog.Logger
	send    chan []byte   // bounded outbound queue, drained by writeLoop
	done    chan struct{} // closed once, by close
	msgs    *rate.Limiter // messages this connection may send
	calls   *rate.Limiter // calls a door station may place

	mu          sync.Mutex
	remoteCalls map[CallID]struct{} // guarded by mu; calls owned by other nodes this device acted on

	closeOnce sync.Once
	// Written once in close before done is closed; read after <-done.
	closeCode CloseCode
	endReason EndReason
}

func newConn(h *Hub, ws *websocket.Conn, d directory.Device, tok directory.TokenHash, targets []directory.Target, sites []directory.SiteID) *Conn {
	return &Conn{
		id:      randomID(9),
		ws:      ws,
		hub:     h,
		device:  d,
		token:   tok,
		targets: targets,
		sites:   sites,
		log:     h.log.With("device_id", d.ID, "kind", d.Kind),
		send:    make(chan []byte, h.cfg.SendQueue),
		done:    make(chan struct{}),
		msgs:    rate.NewLimiter(rate.Limit(h.cfg.MessageRate), h.cfg.MessageBurst),
		calls:   rate.NewLimiter(rate.Limit(h.cfg.CallRate), h.cfg.CallBurst),
	}
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
	select {
	case c.send <- frame:
		return true
	default:
		c.hub.metrics.slowConsumers.Inc()
		c.log.Warn("closing slow consumer", "queued", len(c.send))
		c.close(CloseSlow, EndFailed)
		return false
	}
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

// close starts closing the connection: the writer sends a close frame with
// code (0: none, the peer already closed or the library sent one) and closes
// the socket. reason is what the device's calls end with. Safe from any goroutine.
func (c *Conn) close(code CloseCode, reason EndReason) {
	c.closeOnce.Do(func() {
		c.closeCode, c.endReason = code, reason
		close(c.done)
		// Unblock a write stuck on a peer that does not read.
		_ = c.ws.UnderlyingConn().SetWriteDeadline(time.Now().Add(closeWait))
	})
}

// writeLoop is the connection's only writer: queued frames, heartbeat pings,
// and finally the close frame.
func (c *Conn) writeLoop() {
	ping := time.NewTicker(c.hub.cfg.Heartbeat)
	defer func() {
		ping.Stop()
		_ = c.ws.Close() // unblocks the reader
	}()
	for {
		select {
		case <-c.done:
			c.flush()
			if c.closeCode != 0 {
				msg := websocket.FormatCloseMessage(int(c.closeCode), c.closeCode.String())
				_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
			}
			return
		case frame := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				c.close(0, EndFailed)
				return
			}
			c.hub.metrics.messagesOut.WithLabelValues(sentType(frame)).Inc()
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.close(0, EndFailed)
				return
			}
		}
	}
}

// flush writes what is still queued, so that a close never loses a message
// sent before it (an ended, a cancel). Bounded by closeWait in all.
func (c *Conn) flush() {
	_ = c.ws.SetWriteDeadline(time.Now().Add(closeWait))
	for {
		select {
		case frame := <-c.send:
			if c.ws.WriteMessage(websocket.TextMessage, frame) != nil {
				return
			}
		default:
			return
		}
	}
}

// readLoop reads frames until the connection fails, dispatching each. It
// runs on the HTTP handler's goroutine.
func (c *Conn) readLoop() {
	alive := 2 * c.hub.cfg.Heartbeat // a peer silent for two intervals is dropped
	_ = c.ws.SetReadDeadline(time.Now().Add(alive))
	c.ws.SetPongHandler(func(string) error { return c.ws.SetReadDeadline(time.Now().Add(alive)) })
	for {
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
