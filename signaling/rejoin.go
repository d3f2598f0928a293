package signaling

import (
	"slices"

	"github.com/foyer-intercom/foyer/directory"
)

// A party's connection can close while the call goes on: the winner's
// phone moves from Wi-Fi to mobile data, a door station reconnects to
// another node. The call remembers the connection each party last spoke
// through, and the ones it left behind, so that word of an old one
// closing, which can come late from another node, changes nothing. A
// party whose current connection closes while the call is answered has
// the rejoin window (Config.RejoinWindow) to speak about the call again
// through a new one (Call.left starts it).

// absence is a party's connection gone while the call waits for it.
type absence struct {
	timer Timer // runs out the rejoin window, then ends the call; nil: not away
	n     int   // numbers the party's departures, so that a timer stopped too late knows it is stale
}

// stop calls the wait off; it reports whether the party was away.
func (a *absence) stop() bool {
	if a.timer == nil {
		return false
	}
	a.timer.Stop()
	a.timer = nil
	return true
}

// awayLocked starts a party's rejoin window (a), unless it runs already.
func (c *Call) awayLocked(a *absence, reason EndReason) {
	if a.timer != nil {
		return
	}
	a.n++
	n := a.n
	a.timer = c.hub.clock.AfterFunc(c.hub.cfg.RejoinWindow, func() { c.stayedAway(a, n, reason) })
}

// stayedAway ends the call when a party's n-th departure (a) outlasted the
// rejoin window.
func (c *Call) stayedAway(a *absence, n int, reason EndReason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateAnswered || a.timer == nil || a.n != n {
		return
	}
	a.timer = nil
	c.endLocked(reason, nil)
}

// backLocked calls off a party's wait (a) when conn, through which it
// spoke, is its current connection (current).
func (c *Call) backLocked(a *absence, current, conn string) {
	if current == conn && a.stop() {
		c.hub.metrics.rejoined.Inc()
	}
}

// heard reports whether d is the call's door station or was rung for it,
// and when d is the door station or the winner, notes that it spoke about
// the call through conn: its current connection, and the party back, if
// its connection had gone.
func (c *Call) heard(d directory.DeviceID, conn string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state == stateEnded:
	case d == c.door.ID:
		c.doorConn = c.supersedeLocked(c.doorConn, conn)
		c.backLocked(&c.doorAway, c.doorConn, conn)
	case d == c.winner:
		c.heardLocked(c.legs[d], conn)
	}
	return d == c.door.ID || c.legs[d] != nil
}

// maxSuperseded bounds the old connections a call remembers: a party
// reconnects a few times in a call at most.
const maxSuperseded = 8

// supersedeLocked returns conn, a party's current connection, remembering
// old, the one before, if it differs. A connection left behind never
// comes back: a message from one, late from another node, changes nothing.
func (c *Call) supersedeLocked(old, conn string) string {
	if slices.Contains(c.superseded, conn) {
		return old
	}
	if old != conn && old != "" {
		if len(c.superseded) == maxSuperseded {
			c.superseded = slices.Delete(c.superseded, 0, 1)
		}
		c.superseded = append(c.superseded, old)
	}
	return conn
}

// heardLocked makes conn the winner's (leg l's) current connection, and
// calls off the end of the call its leaving set.
func (c *Call) heardLocked(l *leg, conn string) {
	l.conn = c.supersedeLocked(l.conn, conn)
	c.backLocked(&c.winnerAway, l.conn, conn)
}

// forgottenBy ends the call, and reports whether it did, when its door
// station places another call through conn, a connection it has not
// spoken about this one through: it restarted, or reconnected without
// rejoining, and knows nothing of this one, so it is not told of its end
// either (an ended it cannot place would arrive just as it waits for its
// new call's calling). A door station that rejoined its call gets busy
// instead.
func (c *Call) forgottenBy(conn string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == stateEnded || c.doorConn == conn {
		return false
	}
	c.abortLocked(EndFailed, false)
	return true
}
