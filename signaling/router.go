package signaling

import (
	"context"

	"github.com/foyer-intercom/foyer/directory"
)

// Router reaches devices wherever they are connected, and carries what one
// node tells another. Two implementations exist: Memory (one node) and
// RedisRouter (many nodes sharing Redis; it wraps a Memory for the devices
// on its own node). The backend is chosen in cmd/.
//
// A call is owned by the node holding its door station; the owner decides
// everything about the call. Other nodes forward their devices' messages
// about it to the owner, and the owner's frames reach those devices through
// Deliver. Redis carries messages; it never decides who answered.
type Router interface {
	// Attach makes c the live connection of its device and returns the
	// connection it replaces on this node, if any, for the caller to close.
	Attach(ctx context.Context, c *Conn) (replaced *Conn, err error)
	// Detach forgets c if it is still its device's live connection, and
	// reports whether it was.
	Detach(ctx context.Context, c *Conn) bool
	// Deliver enqueues frame for the device and reports whether the device
	// is known to be connected, here or (after Locate) on another node, and
	// the identity of the connection it was sent to (so that a call rings a
	// connection once). It never blocks and does no I/O: the call state
	// machine calls it with the call's lock held.
	Deliver(id directory.DeviceID, frame []byte) (conn string, ok bool)
	// Where returns the connection Deliver would send the device's frames
	// to now, if any, without sending: a call that rings the device late
	// rings a connection once, wherever the word that it moved came from
	// (Call.ringLate). Like Deliver, no I/O.
	Where(id directory.DeviceID) (conn string, ok bool)
	// Locate looks up where ids are connected, so that Deliver reaches them.
	Locate(ctx context.Context, ids []directory.DeviceID) error
	// Forward sends a device's message (frame) about call to the node
	// owning it; call is the one the message was decoded for, by which
	// that node keeps each call's messages in order.
	Forward(ctx context.Context, node string, call CallID, from directory.Device, conn string, frame []byte) error
	// Left tells the node owning a call that a device taking part in it,
	// connected to this node as conn, has gone (reason: how its calls end).
	Left(ctx context.Context, node string, call CallID, d directory.DeviceID, conn string, reason EndReason)
	// Handover tells node that conn, d's connection there, replaced one
	// here that took part in calls: it records them as its own, so that
	// their owners hear when it goes, though it never spoke about them.
	Handover(ctx context.Context, node string, d directory.DeviceID, conn string, calls []CallID)
	// Forgotten tells the node owning call that its door station d places
	// another call through conn, a connection that has not spoken about
	// this one: it restarted, and the owner ends it (Call.forgottenBy).
	// Queued like Left, before the new call's rings.
	Forgotten(ctx context.Context, node string, call CallID, d directory.DeviceID, conn string)
	// Ringing announces (on) or withdraws (!on) a ringing call for a target,
	// so that its devices connecting to other nodes are rung too. Like
	// Deliver it never blocks: the work is queued.
	Ringing(ctx context.Context, t directory.Target, call CallID, on bool)
	// Announce tells the owners of calls ringing for targets, and of the
	// calls d's connection here took over from the one it replaced, that
	// d has connected to this node.
	Announce(ctx context.Context, d directory.Device, targets []directory.Target)
	// LiveElsewhere returns the calls of site in progress on the other
	// nodes, and the nodes that did not answer before ctx ended.
	LiveElsewhere(ctx context.Context, site directory.SiteID) (calls []LiveCall, unanswered []string)
	// Local returns the device's connection on this node, or nil.
	Local(id directory.DeviceID) *Conn
	// Each calls fn for every connection on this node, without holding a lock.
	Each(fn func(*Conn))
	// Len returns the number of connections on this node.
	Len() int
	// Run does the router's background work until ctx ends, handing what
	// other nodes send to this node to n.
	Run(ctx context.Context, n NodeHandler)
	// Ready reports whether the router can reach other nodes.
	Ready(ctx context.Context) error
	// Flush sends what Deliver, Left and Ringing queued for other nodes
	// now, on the caller's goroutine and in queue order, instead of
	// waiting for the background sender to wake: rings and cancels reach
	// other nodes one goroutine hop sooner. Never call it holding a lock.
	Flush(ctx context.Context)
}

// NodeHandler takes what other nodes send to this one. The Hub implements
// it. Its methods may run at the same time for different calls; what is
// sent about one call is handed over in the order it was sent.
type NodeHandler interface {
	// RemoteMessage runs a device's message about a call this node owns,
	// sent by node, where the device is connected as conn (a door
	// station's call: one placed here for it, Hub.handleCall).
	RemoteMessage(node string, from directory.Device, conn string, frame []byte)
	// RemoteLeft handles a device of a call this node owns, connected to
	// another node as conn, going away.
	RemoteLeft(call CallID, d directory.DeviceID, conn string, reason EndReason)
	// RemoteJoin rings a device that connected (as conn) to another node
	// while a call this node owns rings for one of its call IDs.
	RemoteJoin(call CallID, d directory.Device, conn string)
	// RemoteMoved rings d through conn, its connection on another node
	// that replaced one on a third, for this node's calls ringing targets:
	// they may have rung it through the old one, and not yet have been in
	// Redis's ringing sets when the new one's node looked (Hub.handOver).
	RemoteMoved(d directory.Device, targets []directory.Target, conn string)
	// RemoteForgotten ends a call this node owns whose door station d
	// places another call through conn, on another node, without having
	// spoken about this one through it (Router.Forgotten).
	RemoteForgotten(call CallID, d directory.DeviceID, conn string)
	// Unrung returns the devices of a call this node owns, while it rings,
	// that the call found connected nowhere and has not rung since.
	Unrung(call CallID) []directory.Device
	// LiveCallsHere returns the calls of site this node owns that have not
	// ended (another node's Router.LiveElsewhere asked).
	LiveCallsHere(site directory.SiteID) []LiveCall
}
