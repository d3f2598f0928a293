package signaling

import (
	"context"

	"github.com/foyer-intercom/foyer/directory"
)

// Router reaches devices wherever they are connected. Two implementations
// exist: Memory (one node) and Redis (many nodes sharing Redis, which wraps a
// Memory for the devices on its own node). The backend is chosen in cmd/.
type Router interface {
	// Attach makes c the live connection of its device and returns the
	// connection it replaces on this node, if any, for the caller to close.
	Attach(ctx context.Context, c *Conn) (replaced *Conn, err error)
	// Detach forgets c if it is still its device's live connection, and
	// reports whether it was.
	Detach(ctx context.Context, c *Conn) bool
	// Deliver enqueues frame for the device and reports whether the device
	// is connected. It never blocks: the call state machine calls it with
	// the call's lock held.
	Deliver(id directory.DeviceID, frame []byte) bool
	// Local returns the device's connection on this node, or nil.
	Local(id directory.DeviceID) *Conn
	// Each calls fn for every connection on this node, without holding a lock.
	Each(fn func(*Conn))
	// Len returns the number of connections on this node.
	Len() int
}
