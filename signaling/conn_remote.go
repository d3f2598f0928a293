package signaling

// The calls of other nodes a connection took part in, recorded on it so
// that their owners hear when it goes (docs/decisions.md, "Many nodes").

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

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
