package signaling

// A connection's writing: frames written from their senders' goroutines
// while nothing is queued (writeInline), else queued for a writer
// goroutine (drain) that writes them in order and, at a close, whatever
// was sent before it.

import (
	"time"

	"github.com/gorilla/websocket"
)

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
	// No writer and nothing held back means nothing queued, no ping due and
	// no close under way: the frame may go straight to the socket.
	if c.direct != nil && c.wakeLocked() {
		c.qmu.Unlock()
		c.writeInline(frame)
		return true
	}
	c.queue = append(c.queue, frame)
	start := c.wakeLocked()
	c.qmu.Unlock()
	if start {
		go c.drain()
	}
	return true
}

// writeInline is Send's fast path, taken when nothing else is queued and no
// writer runs: the sender becomes the writer and writes the frame straight
// to the socket without waiting (directWriter), which saves starting a writer
// goroutine for it. When the socket cannot take the whole frame now, or
// when more was queued meanwhile, a writer goroutine takes over and writes
// the rest first. A ring or a cancel to an idle device thus costs one
// system call on the caller's goroutine, like a plain broadcast.
func (c *Conn) writeInline(frame []byte) {
	hdr, n, err := c.direct.write(frame)
	// Counted as sent now: what the socket did not take goes out first, or
	// the connection closes.
	c.hub.metrics.sent(frame)
	c.wroteInline(hdr, frame, n, err)
}

// pingFrame is a heartbeat ping as a server sends it (RFC 6455 §5.5.2):
// final, opcode 0x9, unmasked, no payload.
var pingFrame = []byte{0x89, 0x00}

// pingInline writes a due heartbeat ping as writeInline writes a frame,
// from the heartbeat timer's goroutine: no writer goroutine, and none of
// the write deadline and timer the WebSocket library's WriteControl sets
// for each ping. An idle connection's heartbeat is most of what it costs.
func (c *Conn) pingInline() {
	n, err := c.direct.writeParts(pingFrame, nil)
	c.wroteInline(pingFrame, nil, n, err)
}

// wroteInline ends an inline write of head and body of which n bytes went
// out: the writing turn is given up, or handed to a writer goroutine when
// more was queued meanwhile or the socket did not take it all.
func (c *Conn) wroteInline(head, body []byte, n int, err error) {
	if err == nil && n == len(head)+len(body) {
		c.qmu.Lock()
		more := len(c.queue) > 0 || c.pingDue || c.closing
		if !more {
			c.writing = false
		}
		c.qmu.Unlock()
		if more {
			go c.drain()
		}
		return
	}
	// The rest (all of it after an error, which the writer's own write
	// then meets and closes on) goes out before anything else.
	whole := append(append(make([]byte, 0, len(head)+len(body)), head...), body...)
	if err != nil {
		n = 0
	}
	c.rest = whole[n:]
	go c.drain()
}

// frameHeader appends the header of an unmasked, final text frame of n
// bytes (RFC 6455 §5.2): what a server sends.
func frameHeader(dst []byte, n int) []byte {
	const finText = 0x81
	switch {
	case n < 126:
		return append(dst, finText, byte(n))
	case n < 1<<16:
		return append(dst, finText, 126, byte(n>>8), byte(n))
	default:
		return append(dst, finText, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
}

// flushRest writes what writeInline could not, before any other frame;
// only the writer calls it.
func (c *Conn) flushRest() error {
	if c.rest == nil {
		return nil
	}
	nc := c.ws.UnderlyingConn()
	_ = nc.SetWriteDeadline(time.Now().Add(writeWait))
	_, err := nc.Write(c.rest)
	c.rest = nil
	return err
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

// drain is the connection's writer while it has work: it writes queued
// frames in order and the heartbeat pings, and returns when nothing is
// left. Once the connection is closing it writes what is still queued
// (bounded by closeWait in all), then the close frame, and closes the
// socket, which also ends the reader; writing then stays true, so no writer
// starts again.
func (c *Conn) drain() {
	if err := c.flushRest(); err != nil {
		c.close(0, EndFailed)
		c.finish(nil)
		return
	}
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
		c.hub.metrics.sent(frame)
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
	writeClose(c.ws, c.closeCode)
	idle().unpark(c) // a parked connection's reader must see the close
	_ = c.ws.Close() // unblocks the reader
}
