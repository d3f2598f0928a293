package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
)

const (
	// bufferSize is each connection's read and write buffer: protocol frames
	// are a few hundred bytes, and thousands of sockets share one process.
	bufferSize = 1024
	// writeWait bounds one frame write to the server.
	writeWait = 5 * time.Second
)

// inbound is every server message field the tool looks at.
type inbound struct {
	Type        string          `json:"type"`
	Ref         json.RawMessage `json:"ref"`
	CallID      string          `json:"call_id"`
	Ringing     int             `json:"ringing"`
	To          string          `json:"to"`
	Code        string          `json:"code"`
	Reason      string          `json:"reason"`
	ResumeToken string          `json:"resume_token"`
	// The media scenario's negotiation.
	Description *webrtc.SessionDescription `json:"description"`
	Candidate   *webrtc.ICECandidateInit   `json:"candidate"`
}

// refSeq returns the numeric ref the tool put on a message, or -1.
func (m *inbound) refSeq() int64 {
	n, err := strconv.ParseInt(string(m.Ref), 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// handler receives a client's messages on its read loop, with the time
// the frame was read.
type handler func(c *client, m *inbound, at time.Time)

// client is one simulated device's connection. Its read loop is the only
// reader; writes are serialised by wmu (the library allows one writer).
type client struct {
	// Immutable after construction.
	dev  device
	src  net.IP
	url  string // the node it connects to
	site int
	id   *idGroup // the ID it rings for (storm); nil for doors and other scenarios

	ws      *websocket.Conn
	wmu     sync.Mutex
	h       atomic.Pointer[handler] // nil: messages are read and dropped
	resume  atomic.Value            // string: resume_token of the last welcome
	dropped atomic.Bool             // the tool closed it on purpose
	done    chan struct{}           // closed when the read loop ends
	lost    string                  // set before done closes: why it ended
}

// dialError classifies why a connection attempt failed, for the report.
type dialError struct{ class string }

func (e *dialError) Error() string { return e.class }

// hello is the first message; it carries the device token or, reconnecting
// with --resume, the resume token of the last welcome.
type hello struct {
	Type        string `json:"type"`
	Version     int    `json:"version"`
	Token       string `json:"token,omitempty"`
	ResumeToken string `json:"resume_token,omitempty"`
}

// connect dials from the client's source address, says hello and waits for
// welcome. It returns how long that took. The socket has no TCP keep-alive:
// the protocol's heartbeat watches the connection, and the four socket
// options keep-alive takes were 4 % of the tool's CPU in a reconnect storm,
// on the cores the server uses too.
func (c *client) connect(ctx context.Context, token string, timeout time.Duration) (time.Duration, error) {
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: c.src}, Timeout: timeout, KeepAlive: -1}
	d := &websocket.Dialer{
		NetDialContext:   nd.DialContext,
		HandshakeTimeout: timeout,
		ReadBufferSize:   bufferSize,
		WriteBufferSize:  bufferSize,
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ws, resp, err := d.DialContext(ctx, c.url, nil)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return 0, &dialError{classifyNetError("dial", err)}
	}
	h := hello{Type: "hello", Version: 1, Token: token}
	if token == "" {
		h.ResumeToken, _ = c.resume.Load().(string)
	}
	_ = ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := ws.WriteJSON(h); err != nil {
		ws.Close()
		return 0, &dialError{classifyNetError("hello", err)}
	}
	_ = ws.SetReadDeadline(start.Add(timeout))
	for {
		_, frame, err := ws.ReadMessage()
		if err != nil {
			ws.Close()
			return 0, &dialError{classifyNetError("welcome", err)}
		}
		var m inbound
		if json.Unmarshal(frame, &m) != nil || m.Type != "welcome" {
			continue // nothing comes before welcome today; tolerate it anyway
		}
		c.resume.Store(m.ResumeToken)
		break
	}
	took := time.Since(start)
	_ = ws.SetReadDeadline(time.Time{})
	c.ws, c.done, c.lost = ws, make(chan struct{}), ""
	c.dropped.Store(false)
	go c.readLoop(ws, c.done)
	return took, nil
}

// readLoop reads until the connection ends. Pings are answered by the
// library's default handler while it reads.
func (c *client) readLoop(ws *websocket.Conn, done chan struct{}) {
	defer close(done)
	for {
		_, frame, err := ws.ReadMessage()
		at := time.Now()
		if err != nil {
			if !c.dropped.Load() {
				c.lost = classifyNetError("read", err)
			}
			return
		}
		h := c.h.Load()
		if h == nil {
			continue
		}
		var m inbound
		if json.Unmarshal(frame, &m) != nil {
			continue
		}
		(*h)(c, &m, at)
	}
}

// send writes one message.
func (c *client) send(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	return c.ws.WriteMessage(websocket.TextMessage, b)
}

// drop closes the socket at once, without a close frame, like a phone
// losing its network, and waits for the read loop to end.
func (c *client) drop() {
	if c.ws == nil {
		return
	}
	c.dropped.Store(true)
	_ = c.ws.NetConn().Close()
	<-c.done
}

// classifyNetError names a failure by where it happened and its kind: the
// close code the server sent, a timeout, a refusal, or the rest.
func classifyNetError(where string, err error) string {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return fmt.Sprintf("%s: close %d", where, ce.Code)
	case errors.Is(err, websocket.ErrBadHandshake):
		return where + ": bad handshake (HTTP status)"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return where + ": timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return where + ": connection refused"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return where + ": no free local port"
	case errors.Is(err, syscall.ECONNRESET):
		return where + ": connection reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return where + ": eof"
	case errors.Is(err, net.ErrClosed):
		return where + ": closed"
	default:
		return fmt.Sprintf("%s: other (%T)", where, err)
	}
}
