package signaling

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
)

// presenceBatch is how many callers' lease writes go out in one pipeline.
const presenceBatch = 256

// leaseTimeout bounds one pipeline of lease writes; one may carry every
// local device's lease (reassert).
const leaseTimeout = 2 * redisOpTimeout

// A device's lease ("<node> <conn>") has no TTL of its own: it is believed
// while its node's alive key lives, and the node renews that one key every
// LeaseRefresh instead of every device's lease (with 10,000 devices a node,
// those renewals were a sixth of an idle node's CPU). A node that dies
// without a word loses all its devices at once when its alive key expires;
// the next resync of any node deletes their leases (sweep).
//
// Every lease write of a node goes through r.leases: an attach's, a
// detach's, the alive key's and the reassertion of them all. The writes of
// connections attaching or detaching at the same moment share a pipeline:
// when every device of a node reconnects at once, a round trip each made
// thousands wait for the Redis client's pool, and time out under load. And
// the pipelines go out one after another, in the order they were asked
// for, so a reassertion that listed a connection before it detached cannot
// set its lease again after the detach deleted it. A failure is best
// effort: the leases are reasserted once Redis answers again.

// attachLease writes c's lease and presence event, and returns once they
// are written. The lease it replaced, if another node's, is a connection
// of the same device that the device has left (a phone that moved from
// Wi-Fi to mobile data leaves its old socket open until that node's
// heartbeat gives up): that node is told to close it, as one node closes
// the older of two connections of a device. The order of the SETs in Redis
// decides which is older, so of two nodes each holding a connection of the
// device exactly one closes its own.
func (r *RedisRouter) attachLease(c *Conn) {
	var prev *redis.StatusCmd
	err := r.leases.Do(func(p redis.Pipeliner) {
		ctx := context.Background() // the pipeline's own bound applies (r.leases)
		if !r.aliveWritten.Load() {
			// A node's first devices may attach before its first renewal:
			// their leases must not look like a dead node's.
			r.setAlive(ctx, p)
		}
		prev = p.SetArgs(ctx, presenceKey(c.device.ID), r.leaseOf(c), redis.SetArgs{Get: true})
		r.presenceEvent(ctx, p, "+", c.id, string(c.device.ID))
	})
	if err != nil {
		r.fail("presence", err)
		return
	}
	r.aliveWritten.Store(true)
	c.leased.Store(true)
	if node, conn, ok := r.otherLease(prev.Val()); ok {
		r.publish(node, envelope{Kind: "replaced", Devices: []directory.DeviceID{c.device.ID}, Conn: conn, By: c.id})
	}
}

// detachLease deletes c's lease only while it is still the connection's
// (so that a newer connection's stays; EVAL, not EVALSHA: a pipeline
// cannot fall back on NOSCRIPT, and Redis caches the script by its hash)
// and publishes its presence event.
func (r *RedisRouter) detachLease(c *Conn) {
	err := r.leases.Do(func(p redis.Pipeliner) {
		ctx := context.Background()
		compareAndDelete.Eval(ctx, p, []string{presenceKey(c.device.ID)}, r.leaseOf(c))
		r.presenceEvent(ctx, p, "-", c.id, string(c.device.ID))
	})
	if err != nil {
		r.fail("presence", err)
	}
}

// keepAlive renews this node's alive key, which keeps every lease of its
// devices believed, and tells the other nodes it is alive.
func (r *RedisRouter) keepAlive() {
	err := r.leases.Do(func(p redis.Pipeliner) {
		ctx := context.Background()
		r.setAlive(ctx, p)
		r.presenceEvent(ctx, p, "h")
	})
	if err != nil {
		r.fail("alive", err)
		return
	}
	r.aliveWritten.Store(true)
}

// setAlive queues the renewal of this node's alive key in p.
func (r *RedisRouter) setAlive(ctx context.Context, p redis.Pipeliner) {
	p.Set(ctx, aliveKey(r.node), "1", r.opts.LeaseTTL)
}

// reassertSoon reasserts every lease on a goroutine of its own, one such
// at a time; asked while one runs, it leaves the leases doubtful, so that
// the next probe asks again.
func (r *RedisRouter) reassertSoon() {
	if !r.reasserting.CompareAndSwap(false, true) {
		r.leasesDoubtful.Store(true)
		return
	}
	go func() {
		defer r.reasserting.Store(false)
		r.reassert(nil)
	}()
}

// reassert writes again the local devices' leases that Redis does not
// hold (after a failure Redis may have come back empty, or a write may have
// been lost), all of them or, with only, those devices', and the alive key;
// and announces the leases that are this node's. A lease that names another
// node meanwhile is left: that device connected there later. The
// connections are listed when the pipeline is built, after every detach
// asked for before it.
func (r *RedisRouter) reassert(only map[directory.DeviceID]bool) {
	var conns []*Conn
	var prevs []*redis.StatusCmd
	err := r.leases.Do(func(p redis.Pipeliner) {
		ctx := context.Background()
		r.setAlive(ctx, p)
		r.Memory.Each(func(c *Conn) {
			if only == nil || only[c.device.ID] {
				conns = append(conns, c)
				prevs = append(prevs, p.SetArgs(ctx, presenceKey(c.device.ID), r.leaseOf(c), redis.SetArgs{Mode: "NX", Get: true}))
			}
		})
	})
	if err != nil {
		r.fail("reassert", err)
		return
	}
	err = r.leases.Do(func(p redis.Pipeliner) {
		ctx := context.Background()
		for i, c := range conns {
			v, err := prevs[i].Result()
			ours := errors.Is(err, redis.Nil) || v == r.leaseOf(c)
			if ours && r.Memory.Local(c.device.ID) == c { // not detached since
				c.leased.Store(true)
				r.presenceEvent(ctx, p, "+", c.id, string(c.device.ID))
			}
		}
	})
	if err != nil {
		r.fail("reassert", err)
	}
}

// leaseOf is the value of c's lease: this node and the connection.
func (r *RedisRouter) leaseOf(c *Conn) string { return r.node + " " + c.id }

// replaced closes a local connection that the device has replaced by one
// on another node (by, on node: attachLease), unless it is already gone or
// was itself replaced here. It is unregistered first, as one node replaces
// a connection: its device's calls do not end with it but go to by
// (Hub.handOver), and its lease, now the other node's, stays.
func (r *RedisRouter) replaced(id directory.DeviceID, conn, node, by string) {
	c := r.Memory.Local(id)
	if c == nil || c.id != conn {
		return
	}
	// Where it went is known before the detach: its own close may be under
	// way, and if that finds it detached (by us), it hands the calls over
	// only to a replacement it knows (Hub.served), and rings it there.
	c.replacedBy(node, by)
	r.movedTo(c, node, by)
	if r.Memory.Detach(context.Background(), c) {
		c.close(CloseReplaced, EndFailed)
	}
	r.tellMoved(c, node, by)
}

// tellMoved tells the other nodes (but the one it went to) that c's device
// left this node for conn on node, so that their calls that rang it here
// ring it there (Hub.RemoteMoved): like this node's own calls
// (Hub.handOver), they may not have been in Redis's ringing sets when its
// new node looked. This node cannot tell which nodes' calls rang it: they
// rang it by device, not by connection. A device that rings for no call
// ID (a door station) needs no word.
func (r *RedisRouter) tellMoved(c *Conn, node, conn string) {
	if len(c.targets) == 0 {
		return
	}
	for _, n := range r.nodesHeard(time.Now(), node) {
		r.publish(n, envelope{Kind: "moved", Sender: &c.device, To: node, Conn: conn, Prev: c.id, Targets: c.targets})
	}
}

// movedTo places a device that left this node in the view, at conn on
// node, where it connected since: this node's calls that rang it here
// ring it there (Hub.handOver), and the view may not have that node's
// event yet (it comes on another subscription), or may hold a location
// from before the device connected here (a connection replaced sends no
// detach event). As hearsay (hearsayAt). What the view learned after c
// connected here is newer than c, and stays: the word to close c can come
// late (held back and sent again), after the device connected elsewhere
// once more, and placed where it was, calls would ring a connection gone
// (and send their cancels there) while its live one rang on.
func (r *RedisRouter) movedTo(c *Conn, node, conn string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if loc, ok := r.where[c.device.ID]; ok && r.validLocked(loc, now) && !loc.learned.Before(time.Unix(0, c.created)) {
		return
	}
	r.where[c.device.ID] = r.hearsayAt(node, conn, now)
}

// movedFrom places a device that left prev, its connection on node from,
// for conn on node to (a moved envelope: tellMoved) in the view, where the
// view has it at prev, or nowhere: the calls of this node that rang it
// there are to ring it where it went (Hub.RemoteMoved). Any other place
// the view has is other news (to's own event, most often, or the device's
// next connection, on from again or elsewhere, when the envelope came
// late) and stays. As hearsay (hearsayAt).
func (r *RedisRouter) movedFrom(id directory.DeviceID, from, prev, to, conn string) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if loc, ok := r.where[id]; ok && r.validLocked(loc, now) && (loc.node != from || loc.conn != prev) {
		return
	}
	r.where[id] = r.hearsayAt(to, conn, now)
}

// handover records calls as taken part in by conn, the device's local
// connection that replaced one on another node (Router.Handover). This
// node's own calls know their parties already.
//
// The handover can come after conn has gone. Its leave told the other
// nodes' calls nothing then, so they are told now; or, when a newer
// connection of the device replaced it here, that one takes them (it
// would have taken them from conn, as a replacement on one node does).
func (r *RedisRouter) handover(id directory.DeviceID, conn string, calls []CallID) {
	c := r.Memory.Local(id)
	for _, call := range calls {
		switch owner := ownerOf(call); {
		case owner == r.node:
		case c != nil:
			c.handedOver(call)
		default:
			r.Left(context.Background(), owner, call, id, conn, EndFailed)
		}
	}
}

// closeMoved closes the connections moved: their device's lease, as a
// resync's scan read it, named another node. The device connected there
// later, and the word to close them (attachLease) was lost. Each lease is
// read again through the lease pipelines, after the connection's own lease
// write (only connections whose lease was written are listed, mendLocal):
// another node's lease then was set after this node's, so the local
// connection is the older one. A connection still attaching is never
// taken for moved.
func (r *RedisRouter) closeMoved(moved []*Conn) {
	gets := make([]*redis.StringCmd, len(moved))
	err := r.leases.Do(func(p redis.Pipeliner) {
		for i, c := range moved {
			gets[i] = p.Get(context.Background(), presenceKey(c.device.ID))
		}
	})
	if err != nil {
		r.fail("presence resync", err)
		return
	}
	for i, c := range moved {
		if node, by, ok := r.otherLease(gets[i].Val()); ok {
			r.replaced(c.device.ID, c.id, node, by)
		}
	}
}
