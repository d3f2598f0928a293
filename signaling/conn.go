package signaling

import (
	"bufio"
	"bytes"
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
	if err == nil && n == len(hdr)+len(frame) {
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
	// The rest of the frame (all of it after an error, which the writer's
	// own write then meets and closes on) goes out before anything else.
	whole := append(append(make([]byte, 0, len(hdr)+len(frame)), hdr...), frame...)
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
	c.qmu.Unlock()
	if start {
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

// remoteCallLife bounds how long a call can last: its ring timeout, then
// its time limit, each at the most a site may set, and a minute for the
// nodes' clocks. A call acted on longer ago than that is over.
const remoteCallLife = directory.MaxRingTimeout + directory.MaxCallTimeLimit + time.Minute

// remoteCallsPrune is how many remote calls a connection records before
// each new one looks for calls that are over.
const remoteCallsPrune = 16

// actedOn records a call owned by another node that this device took part
// in, so that its owner hears when the connection goes. Calls that are over
// are forgotten: an indoor monitor may stay connected for months, and would
// otherwise keep every call it ever answered, and tell their owners of
// each when it goes.
func (c *Conn) actedOn(call CallID) {
	c.noteRemote(call, false)
}

// handedOver records a call owned by another node that the connection this
// one replaced took part in: the device takes part through this one now,
// though it has not spoken about it through this one (a door station that
// restarted knows nothing of it: Hub.handleCall).
func (c *Conn) handedOver(call CallID) {
	c.noteRemote(call, true)
}

// noteRemote records call; late reports that the connection had gone
// already: the calls it had recorded were taken before this one
// (takeRemoteCalls), and their owners told nothing of it.
func (c *Conn) noteRemote(call CallID, handed bool) (late bool) {
	now := c.hub.clock.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	_, recorded := c.remoteCalls[call]
	_, wasHanded := c.handed[call]
	switch {
	case handed && recorded && !wasHanded:
		// It spoke about the call through this connection before the
		// handover came (a door station rejoins as soon as it is
		// welcomed): it has not forgotten it (Hub.handleCall).
	case handed && c.handed == nil:
		c.handed = map[CallID]struct{}{call: {}}
	case handed:
		c.handed[call] = struct{}{}
	default:
		delete(c.handed, call)
	}
	if c.remoteCalls == nil {
		c.remoteCalls = make(map[CallID]time.Time)
	}
	if len(c.remoteCalls) >= remoteCallsPrune {
		for id, at := range c.remoteCalls {
			if now.Sub(at) > remoteCallLife {
				delete(c.remoteCalls, id)
			}
		}
	}
	c.remoteCalls[call] = now
	return c.callsTaken
}

// inheritRemoteCalls takes over the calls prev, the connection this one
// replaced on this node, acted on: the device takes part in them through
// this one now, and their owners hear when it goes, even if it never
// speaks about them.
func (c *Conn) inheritRemoteCalls(prev *Conn) {
	for _, id := range prev.takeRemoteCalls() {
		c.handedOver(id)
	}
}

// connAt names a connection on a node.
type connAt struct{ node, conn string }

// replacedBy records the connection on another node that replaced this one,
// before this one is closed: the hub hands its calls over to it (Hub.handOver).
func (c *Conn) replacedBy(node, conn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.movedTo = &connAt{node, conn}
}

// replacement returns what replacedBy recorded, if anything.
func (c *Conn) replacement() (connAt, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.movedTo == nil {
		return connAt{}, false
	}
	return *c.movedTo, true
}

// takeRemoteCalls returns and forgets the calls recorded by actedOn that
// may still go on, as the connection goes (Hub.served; or replaced on this
// node, inheritRemoteCalls): a call noted on it later is late
// (noteRemoteFrame).
func (c *Conn) takeRemoteCalls() []CallID { return c.remoteCallList(true) }

// remoteCallsNow returns the calls recorded by actedOn that may still go
// on, keeping them.
func (c *Conn) remoteCallsNow() []CallID { return c.remoteCallList(false) }

// remoteCallList returns the calls recorded by actedOn (or handed over, or
// rung: noteRemoteFrame) that may still go on (acted on within
// remoteCallLife, as noteRemote prunes), and forgets them all if take.
func (c *Conn) remoteCallList(take bool) []CallID {
	limit := c.hub.clock.Now().Add(-remoteCallLife)
	c.mu.Lock()
	defer c.mu.Unlock()
	var calls []CallID
	for id, at := range c.remoteCalls {
		if !at.Before(limit) {
			calls = append(calls, id)
		}
	}
	if take {
		c.remoteCalls, c.handed = nil, nil
		c.callsTaken = true
	}
	return calls
}

// callOwner returns the node, other than self, owning the call this door
// station's connection most likely still takes part in: of the calls of
// other nodes it rejoined through this connection, the one it spoke about
// last (it may still be going); failing those, of the calls handed over
// to this connection, the one handed last (it restarted and forgot it).
func (c *Conn) callOwner(self string) (node string, ok bool) {
	limit := c.hub.clock.Now().Add(-remoteCallLife)
	c.mu.Lock()
	defer c.mu.Unlock()
	var rejoinedAt, handedAt time.Time
	var rejoined, handed string
	for id, at := range c.remoteCalls {
		owner := ownerOf(id)
		if owner == "" || owner == self || !at.After(limit) {
			continue
		}
		if _, ok := c.handed[id]; !ok && at.After(rejoinedAt) {
			rejoined, rejoinedAt = owner, at
		} else if ok && at.After(handedAt) {
			handed, handedAt = owner, at
		}
	}
	if rejoined != "" {
		return rejoined, true
	}
	return handed, handed != ""
}

// Every calling, ring, cancel and ended frame starts so: their types
// encode first. (No other type starts with "ring" or "cancel".)
var (
	callingPrefix = []byte(`{"type":"calling"`)
	ringPrefix    = []byte(`{"type":"ring"`)
	cancelPrefix  = []byte(`{"type":"cancel"`)
	endedPrefix   = []byte(`{"type":"ended"`)
)

// remoteCallOf returns the call that frame, delivered here from another
// node, is about, when it changes the calls of that node a connection
// records (noteRemoteFrame); "" for every other frame.
func remoteCallOf(frame []byte) CallID {
	if bytes.HasPrefix(frame, callingPrefix) || bytes.HasPrefix(frame, ringPrefix) ||
		bytes.HasPrefix(frame, cancelPrefix) || bytes.HasPrefix(frame, endedPrefix) {
		return frameCall(frame)
	}
	return ""
}

// noteFirst reports whether a frame for which remoteCallOf holds must be
// noted before its device reads it: all but a ring. After a calling or an
// ended a door station places its next call (callOwner); after a cancel a
// device may close at once, and its leave must not tell the owner of a
// call that rings it no more. A ring is noted once every device has it,
// off the ring's path.
func noteFirst(frame []byte) bool {
	return !bytes.HasPrefix(frame, ringPrefix)
}

// noteRemoteFrame keeps the calls of other nodes this connection records
// in step with what their owners tell it (frame, about id: remoteCallOf),
// before it is told when noteFirst holds. A calling is the owner's answer
// to a call this node forwarded (Hub.handleCall): the new call is
// recorded, so that its owner hears when the connection goes, and the
// calls of that node handed over to this connection are settled (placing
// it, the owner ended the one its door station forgot, as register does).
// A ring is recorded too: the device takes part in the call, though it
// may never speak about it, and the owner stops counting it as ringing
// (and drops its media peer) when it goes (Call.left). A cancel (the
// device rings no more) and an ended forget the call, so that a door
// station that rejoined it places its calls here again (callOwner).
//
// A ring is noted after it is sent (the router's receive), and the device
// may read it and close the connection before: noted once the connection
// has gone, the call is passed on as the connection's leave would have
// (Hub.passOnLate).
func (c *Conn) noteRemoteFrame(id CallID, frame []byte) {
	var late bool
	switch {
	case bytes.HasPrefix(frame, callingPrefix):
		node := ownerOf(id)
		c.takeHanded(func(owner string) bool { return owner == node })
		late = c.noteRemote(id, false)
	case bytes.HasPrefix(frame, ringPrefix):
		late = c.noteRemote(id, false)
	default:
		c.mu.Lock()
		delete(c.remoteCalls, id)
		delete(c.handed, id)
		c.mu.Unlock()
	}
	if late {
		c.hub.passOnLate(c)
	}
}

// settled forgets the calls of node this connection recorded: that node,
// draining, handed its door station's call back to be placed here, having
// no call of the door station's going (Hub.remoteCall).
func (c *Conn) settled(node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range c.remoteCalls {
		if ownerOf(id) == node {
			delete(c.remoteCalls, id)
			delete(c.handed, id)
		}
	}
}

// The start of an outbound frame whose call ID encodes right after its
// type, as a ring's and a cancel's do: {"type":"ring","call_id":"…".
var (
	typeField   = []byte(`{"type":"`)
	callIDField = []byte(`","call_id":"`)
)

// frameCall returns the call an outbound frame is about, or "". A frame
// whose call ID follows its type (a ring, a cancel: every cross-node ring
// and cancel passes here) is read without decoding the rest; others (a
// calling or an ended with a ref, which a client chose, before the call
// ID) are decoded.
func frameCall(frame []byte) CallID {
	if rest, ok := bytes.CutPrefix(frame, typeField); ok {
		if i := bytes.IndexByte(rest, '"'); i >= 0 {
			if id, ok := bytes.CutPrefix(rest[i:], callIDField); ok {
				if j := bytes.IndexByte(id, '"'); j >= 0 && bytes.IndexByte(id[:j], '\\') < 0 {
					return CallID(id[:j])
				}
			}
		}
	}
	var m struct {
		CallID CallID `json:"call_id"`
	}
	if json.Unmarshal(frame, &m) != nil {
		return ""
	}
	return m.CallID
}

// takeHanded returns and forgets the calls handed over to this connection
// that it has not spoken about, of the owners for which of holds: its door
// station places another call, and their owners end them (Hub.handleCall,
// noteRemoteFrame).
func (c *Conn) takeHanded(of func(owner string) bool) []CallID {
	c.mu.Lock()
	defer c.mu.Unlock()
	var calls []CallID
	for id := range c.handed {
		if of(ownerOf(id)) {
			calls = append(calls, id)
			delete(c.handed, id)
			delete(c.remoteCalls, id)
		}
	}
	return calls
}

// anyOwner is takeHanded's filter for every call.
func anyOwner(string) bool { return true }

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
