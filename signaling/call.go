package signaling

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/media"
)

// callState is where a call is in dialling → ringing → answered → ended.
// Dialling is the lookup in handleCall, before a Call exists.
type callState int

const (
	stateRinging callState = iota
	stateAnswered
	stateEnded
)

// leg is one rung device's part in a call.
type leg struct {
	device   directory.Device
	conn     string // the connection last rung (Router.Deliver's identity); the winner's: the one it last spoke through
	ringing  bool   // rung, and not yet cancelled, declined or disconnected
	declined bool
}

// Call is one call, owned by the node holding the door station. Every event
// (answer, decline, hangup, timer, connect, disconnect) runs under mu, so the
// call is serialised and exactly one device can win. Under mu the call only
// enqueues frames (Router.Deliver never blocks); it does no I/O.
type Call struct {
	// Immutable after construction.
	id      CallID
	hub     *Hub
	door    directory.Device
	site    directory.Site
	number  directory.Number
	created time.Time
	media   *media.Session // nil without media; its methods only enqueue and flip flags

	mu         sync.Mutex
	state      callState                   // guarded by mu
	legs       map[directory.DeviceID]*leg // guarded by mu; every device ever rung
	missed     []directory.Device          // guarded by mu; devices start found connected nowhere
	winner     directory.DeviceID          // guarded by mu
	answeredAt time.Time                   // guarded by mu
	timer      Timer                       // guarded by mu; ring timeout, then time limit
	doorOpened bool                        // guarded by mu
	doorConn   string                      // guarded by mu; the door station's connection it last spoke through
	superseded []string                    // guarded by mu; connections left behind (the parties' before their current ones, a device's rung before the one rung last), newest last
	doorAway   absence                     // guarded by mu; the door station's connection gone while the call is answered
	winnerAway absence                     // guarded by mu; the winner's connection gone

	over atomic.Bool // set once, as the call ends: read by register without mu
}

// ringFrame encodes the ring for this call with the ring time left.
func (c *Call) ringFrame(now time.Time) []byte {
	left := c.site.Settings.RingTimeout - now.Sub(c.created)
	return encode(Ring{
		Type:   TypeRing,
		CallID: c.id,
		From: Caller{
			DoorStationID: c.door.ID,
			Name:          c.door.Name,
			SiteID:        c.site.ID,
			SiteName:      c.site.Name,
		},
		To:         c.number,
		LifetimeMS: left.Milliseconds(),
		Preview:    c.site.Settings.Preview,
	})
}

// start rings every device and reports how many ring. With none, the call
// ends at once with unavailable. ref is the door station's call message
// ref; received, when it was read (for the first-ring metric).
func (c *Call) start(devices []directory.Device, ref json.RawMessage, received time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateRinging {
		// Ended between register and start (the drain deadline fails every
		// registered call, Hub.Drain): its parties were told, and its
		// removal from the ringing sets queued; an addition now would stay.
		return 0
	}
	// The ring timeout runs from before the first ring: a device (or the
	// door station, reading calling) must never see the call before its
	// timeout exists. It cannot fire before start returns (it takes mu).
	c.timer = c.hub.clock.AfterFunc(c.site.Settings.RingTimeout, c.ringTimeout)
	// Into Redis's ringing sets here, not as the call registered: their
	// sender then looks again for the devices start did not ring
	// (lookAgain), and asked before start had run it found none. It waits
	// for mu now. Out again with unringLocked, under mu too: never first.
	c.hub.router.Ringing(context.Background(), directory.Target{Site: c.site.ID, Number: c.number}, c.id, true)
	frame := c.ringFrame(c.created)
	legs := make([]leg, len(devices)) // one allocation for the lot
	first := true
	for i, d := range devices {
		if _, ok := c.legs[d.ID]; ok {
			continue // rung already, by ringLate racing with start
		}
		if conn, ok := c.hub.router.Deliver(d.ID, frame); ok {
			if first {
				c.hub.metrics.firstRingSeconds.Observe(time.Since(received).Seconds())
				first = false
			}
			legs[i] = leg{device: d, conn: conn, ringing: true}
			c.legs[d.ID] = &legs[i]
		} else {
			c.missed = append(c.missed, d)
		}
	}
	n := c.ringingLocked()
	if n == 0 {
		c.endLocked(EndUnavailable, ref)
		return 0
	}
	if _, ok := c.hub.router.Deliver(c.door.ID, encode(Calling{Type: TypeCalling, Ref: ref, CallID: c.id, Ringing: n})); !ok {
		// The door station is gone since it called: it connects to
		// another node, whose word that it left may never come (it
		// closed before that node knew of this call: Hub.handleCall).
		// Nobody is there to hear who answers.
		c.abortLocked(EndFailed, false)
		return n
	}
	for id := range c.legs {
		c.addMediaLocked(id)
	}
	return n
}

// unrung returns the devices start found connected nowhere and that have
// not been rung since, while the call rings.
func (c *Call) unrung() []directory.Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateRinging {
		return nil
	}
	var out []directory.Device
	for _, d := range c.missed {
		if c.legs[d.ID] == nil {
			out = append(out, d)
		}
	}
	return out
}

// ringLate rings a device of this call's ID that connected (as conn) while
// the call rings, or rings again one that reconnected. A connection that
// the call rang already is not rung twice: neither conn, nor the one the
// router would send the ring to (Router.Where), which is not conn when the
// word that the device connected there comes late (it moved on since).
func (c *Call) ringLate(d directory.Device, conn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d.ID == c.door.ID {
		return // the caller is never rung for its own call
	}
	if c.state != stateRinging || c.timer == nil {
		// Not started yet (registered, its rings not sent): start rings
		// every device connected by then, this one too. Rung now, it could
		// answer before the call has its timers.
		return
	}
	l := c.legs[d.ID]
	if l != nil && (l.declined || (l.ringing && l.conn == conn)) {
		return
	}
	if l != nil && l.ringing {
		if at, ok := c.hub.router.Where(d.ID); !ok || at == l.conn {
			return
		}
	}
	if got, ok := c.hub.router.Deliver(d.ID, c.ringFrame(c.hub.clock.Now())); ok {
		if l == nil {
			l = &leg{device: d}
			c.legs[d.ID] = l
		}
		// The connection rung before is one the device has left: a message
		// through it can still come (its node read it late), and must not
		// make it the device's current connection again, should it win
		// (heardLocked), or the new one's leave would pass for old news.
		l.ringing, l.conn = true, c.supersedeLocked(l.conn, got)
		c.addMediaLocked(d.ID)
	}
}

// addMediaLocked gives a rung device its peer connection: the server's
// offer follows the ring (or the door station's offer, if that is later).
func (c *Call) addMediaLocked(id directory.DeviceID) {
	if c.media == nil {
		return
	}
	if err := c.media.AddDevice(string(id)); err != nil {
		c.hub.log.Warn("adding a device to the call's media failed", "call_id", c.id, "device_id", id, "err", err)
	}
}

// removeMediaLocked closes a device's peer connection (declined, gone).
func (c *Call) removeMediaLocked(id directory.DeviceID) {
	if c.media != nil {
		c.media.RemoveDevice(string(id))
	}
}

// takenByOther reports whether another device has answered already: d's
// answer can only get call_taken, and needs no party looked up.
func (c *Call) takenByOther(d directory.Device) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state == stateAnswered && c.winner != d.ID
}

// answer lets d take the call and reports whether this answer won it.
// Exactly one device wins; the winner repeating answer gets answered again,
// everyone else call_taken.
func (c *Call) answer(d directory.Device, conn string, by Party, ref json.RawMessage) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.legs[d.ID]
	if l == nil {
		return false, errNoSuchCall
	}
	switch c.state {
	case stateEnded:
		return false, errCallEnded
	case stateRinging:
		if l.declined {
			return false, errDeclined
		}
	case stateAnswered:
		if c.winner != d.ID {
			return false, errCallTaken
		}
		c.heardLocked(l, conn)
		c.hub.router.Deliver(d.ID, encode(Answered{Type: TypeAnswered, Ref: ref, CallID: c.id, By: by}))
		if c.media != nil {
			// Its connection may have closed before our offer reached it.
			// Not under the call's lock: it waits for the peer's negotiation.
			// Should the call end meanwhile, the session's Close waits for
			// it, and it sends nothing once Close has begun.
			go c.media.Reoffer(string(d.ID))
		}
		return false, nil
	}
	c.state, c.winner, c.answeredAt = stateAnswered, d.ID, c.hub.clock.Now()
	c.heardLocked(l, conn)
	c.timer.Stop()
	c.timer = c.hub.clock.AfterFunc(c.site.Settings.CallTimeLimit, c.timeLimit)
	c.cancelLocked(CancelAnsweredElsewhere, d.ID)
	c.legs[d.ID].ringing = false
	if c.media != nil {
		// Talk starts now: audio both ways, the losers' connections close.
		if err := c.media.Connect(string(d.ID)); err != nil {
			c.hub.log.Warn("connecting the winner's media failed", "call_id", c.id, "device_id", d.ID, "err", err)
		}
	}
	c.hub.answered(c, d, c.hub.clock.Now().Sub(c.created)) // the registry before the parties hear of it
	c.hub.router.Deliver(d.ID, encode(Answered{Type: TypeAnswered, Ref: ref, CallID: c.id, By: by}))
	c.hub.router.Deliver(c.door.ID, encode(Answered{Type: TypeAnswered, CallID: c.id, By: by}))
	return true, nil
}

// decline stops ringing on d (scope device) or everywhere (scope everyone).
// After an answer, a decline is ignored: the call goes on.
func (c *Call) decline(d directory.Device, scope string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.legs[d.ID]
	if l == nil {
		return errNoSuchCall
	}
	switch c.state {
	case stateEnded:
		return errCallEnded
	case stateAnswered:
		return nil // the call goes on (protocol: a decline after an answer is ignored)
	}
	l.ringing, l.declined = false, true
	c.removeMediaLocked(d.ID)
	if scope == ScopeEveryone {
		c.cancelLocked(CancelDeclinedElsewhere, d.ID)
		c.endLocked(EndDeclined, nil)
		return nil
	}
	if c.allDeclinedLocked() {
		c.endLocked(EndDeclined, nil)
	}
	return nil
}

// hangup ends the call from the door station or the winner. From a device
// that is only ringing, it is a decline of that device.
func (c *Call) hangup(d directory.Device) error {
	c.mu.Lock()
	isDoor, isWinner, l := d.ID == c.door.ID, d.ID == c.winner, c.legs[d.ID]
	if !isDoor && !isWinner && l == nil {
		c.mu.Unlock()
		return errNoSuchCall
	}
	if c.state == stateEnded {
		c.mu.Unlock()
		return errCallEnded
	}
	if !isDoor && !isWinner {
		c.mu.Unlock()
		return c.decline(d, ScopeDevice)
	}
	defer c.mu.Unlock()
	if c.state == stateRinging {
		c.cancelLocked(CancelCallerHangup, "")
	}
	c.endLocked(EndHangup, nil)
	return nil
}

// left handles a party's connection (conn) closing for good.
func (c *Call) left(d directory.DeviceID, conn string, reason EndReason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch l := c.legs[d]; {
	case c.state == stateEnded:
	case slices.Contains(c.superseded, conn):
		// A connection the door station or winner has spoken through
		// another since is old news: its leave can come late, from
		// another node.
	case d == c.door.ID && c.state == stateRinging:
		c.abortLocked(reason, true)
	case d == c.door.ID:
		// This may be the connection it talks through: it has the rejoin
		// window to come back (heard).
		c.awayLocked(&c.doorAway, reason)
	case d == c.winner:
		c.awayLocked(&c.winnerAway, reason)
	case l != nil && l.conn == conn && c.state == stateRinging:
		// It may reconnect and be rung again; the ring timeout still runs.
		// A connection it had before the one rung last says nothing of
		// that one: its leave can come after the device was rung again
		// through a new connection, from another node.
		l.ringing = false
		c.removeMediaLocked(d)
	}
}

func (c *Call) ringTimeout() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateRinging {
		return
	}
	c.cancelLocked(CancelTimeout, "")
	c.endLocked(EndNoAnswer, nil)
}

func (c *Call) timeLimit() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateAnswered {
		return
	}
	c.endLocked(EndTimeLimit, nil)
}

// cancelLocked tells every ringing device but except to stop ringing.
func (c *Call) cancelLocked(reason CancelReason, except directory.DeviceID) {
	frame := encode(Cancel{Type: TypeCancel, CallID: c.id, Reason: reason})
	for id, l := range c.legs {
		if l.ringing && id != except {
			l.ringing = false
			c.hub.router.Deliver(id, frame)
		}
	}
}

// endLocked ends the call and tells the parties: the door station and, once
// answered, the winner.
func (c *Call) endLocked(reason EndReason, ref json.RawMessage) { c.finishLocked(reason, ref, true) }

// finishLocked ends the call, and tells the door station (tellDoor) and,
// once answered, the winner.
func (c *Call) finishLocked(reason EndReason, ref json.RawMessage, tellDoor bool) {
	c.state = stateEnded
	if c.timer != nil {
		c.timer.Stop()
	}
	c.doorAway.stop()
	c.winnerAway.stop()
	now := c.hub.clock.Now()
	var talk time.Duration
	if c.winner != "" {
		talk = now.Sub(c.answeredAt)
	}
	// Over before the parties hear of it: a door station that reads ended
	// and places its next call at once is not busy with this one (register).
	// The registry itself forgets the call after the frames are queued, so
	// that a drain, which closes connections without calls, never closes
	// one before its ended.
	c.over.Store(true)
	frame := encode(Ended{Type: TypeEnded, Ref: ref, CallID: c.id, Reason: reason, DurationMS: talk.Milliseconds()})
	if c.media != nil {
		c.media.Ending() // no re-offer after the ended
	}
	if tellDoor {
		c.hub.router.Deliver(c.door.ID, frame)
	}
	if c.winner != "" {
		c.hub.router.Deliver(c.winner, frame)
	}
	c.hub.closeMedia(c.media)
	c.hub.ended(c, reason, talk, now)
}

func (c *Call) ringingLocked() int {
	n := 0
	for _, l := range c.legs {
		if l.ringing {
			n++
		}
	}
	return n
}

// allDeclinedLocked reports whether every rung device declined.
func (c *Call) allDeclinedLocked() bool {
	for _, l := range c.legs {
		if !l.declined {
			return false
		}
	}
	return true
}

// partiesLocked returns the devices rung for the call (what the registry
// keeps of it once it has ended).
func (c *Call) partiesLocked() []directory.DeviceID {
	ids := make([]directory.DeviceID, 0, len(c.legs))
	for id := range c.legs {
		ids = append(ids, id)
	}
	return ids
}

// openDoor drives the door station's relay for the winner (who spoke
// through conn), or for a ringing device when the site allows opening
// before answering.
func (c *Call) openDoor(d directory.Device, conn string, relay int, ref json.RawMessage) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.legs[d.ID]
	if l == nil {
		return errNoSuchCall
	}
	switch c.state {
	case stateEnded:
		return errCallEnded
	case stateRinging:
		if !l.ringing {
			return protoErr(CodeForbidden, "this device is no longer ringing for this call")
		}
		if !c.site.Settings.OpenDoorWhileRinging {
			return protoErr(CodeForbidden, "this site lets only the device that answered open the door")
		}
	case stateAnswered:
		if c.winner != d.ID {
			return protoErr(CodeForbidden, "only the device that answered may open the door")
		}
		c.heardLocked(l, conn)
	}
	dur := c.site.Settings.DoorOpenDuration.Milliseconds()
	c.hub.router.Deliver(c.door.ID, encode(Unlock{Type: TypeUnlock, CallID: c.id, Relay: relay, DurationMS: dur}))
	c.hub.router.Deliver(d.ID, encode(DoorOpened{Type: TypeDoorOpened, Ref: ref, CallID: c.id, Relay: relay, DurationMS: dur}))
	c.hub.doorOpened(c, d, relay)
	return nil
}

// fail ends the call failed: the node's drain deadline has come
// (Hub.Drain).
func (c *Call) fail() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateEnded {
		c.abortLocked(EndFailed, true)
	}
}

// abortLocked ends the call without its door station's hangup: the rings
// still going stop as if the caller hung up (it can no longer be heard),
// and the call ends for reason, the door station told only if tellDoor.
func (c *Call) abortLocked(reason EndReason, tellDoor bool) {
	if c.state == stateRinging {
		c.cancelLocked(CancelCallerHangup, "")
	}
	c.finishLocked(reason, nil, tellDoor)
}
