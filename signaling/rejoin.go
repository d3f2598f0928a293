package signaling

import (
	"slices"

	"github.com/foyer-intercom/foyer/directory"
)

// A party's connection can close while the call goes on: the winner's
// phone moves from Wi-Fi to mobile data, a door station reconnects to
// another node. The call remembers the connection each party last spoke
// through, and the ones it left behind, so that word of an old one
// closing, which can come late from another node, changes nothing. The
// winner whose current connection closes has the rejoin window
// (Config.RejoinWindow) to speak about the call again through a new one
// (Call.left starts it).

// heard notes that the door station or the winner, d, spoke about the
// call through conn: its current connection, and the winner back, if its
// connection had gone.
func (c *Call) heard(d directory.DeviceID, conn string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.state == stateEnded:
	case d == c.door.ID:
		c.doorConn = c.supersedeLocked(c.doorConn, conn)
	case d == c.winner:
		c.heardLocked(c.legs[d], conn)
	}
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
	if c.away != nil && l.conn == conn {
		c.away.Stop()
		c.away = nil
		c.hub.metrics.rejoined.Inc()
	}
}

// winnerGone ends the call when the winner's n-th departure outlasted the
// rejoin window.
func (c *Call) winnerGone(n int, reason EndReason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != stateAnswered || c.away == nil || c.departures != n {
		return
	}
	c.away = nil
	c.endLocked(reason, nil)
}
