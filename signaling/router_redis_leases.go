package signaling

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// presenceBatch is how many callers' lease writes go out in one pipeline.
const presenceBatch = 256

// leaseTimeout bounds one pipeline of lease writes; one may carry a whole
// refresh, every local device's lease.
const leaseTimeout = 2 * redisOpTimeout

// Every lease write of a node goes through r.leases: an attach's, a
// detach's and the refresh of them all. The writes of connections
// attaching or detaching at the same moment share a pipeline: when every
// device of a node reconnects at once, a round trip each made thousands
// wait for the Redis client's pool, and time out under load. And the
// pipelines go out one after another, in the order they were asked for, so
// a refresh that listed a connection before it detached cannot set its
// lease again after the detach deleted it. A failure is best effort: the
// leases are re-asserted once Redis answers again.

// writeLease writes one connection's attach or detach and returns once it
// is written: an attach sets the lease, a detach deletes it only while it
// is still the connection's (so that a newer connection's stays; EVAL, not
// EVALSHA: a pipeline cannot fall back on NOSCRIPT, and Redis caches the
// script by its hash); each publishes its presence event.
func (r *RedisRouter) writeLease(attach bool, c *Conn) {
	err := r.leases.Do(func(p redis.Pipeliner) {
		ctx := context.Background() // the pipeline's own bound applies (r.leases)
		if attach {
			r.setLease(ctx, p, c, true)
			return
		}
		compareAndDelete.Eval(ctx, p, []string{presenceKey(c.device.ID)}, r.leaseOf(c))
		presenceEvent(ctx, p, "-", r.node, c.id, string(c.device.ID))
	})
	if err != nil {
		r.fail("presence", err)
	}
}

// refresh re-asserts every local device's lease; with announce, it also
// publishes each as a presence event. The connections are listed when the
// pipeline is built, after every detach asked for before it.
func (r *RedisRouter) refresh(announce bool) {
	err := r.leases.Do(func(p redis.Pipeliner) {
		r.Memory.Each(func(c *Conn) { r.setLease(context.Background(), p, c, announce) })
	})
	if err != nil {
		r.fail("refresh", err)
	}
}

// setLease queues c's lease in p, and with announce its presence event.
func (r *RedisRouter) setLease(ctx context.Context, p redis.Pipeliner, c *Conn, announce bool) {
	p.Set(ctx, presenceKey(c.device.ID), r.leaseOf(c), r.opts.LeaseTTL)
	if announce {
		presenceEvent(ctx, p, "+", r.node, c.id, string(c.device.ID))
	}
}

// leaseOf is the value of c's lease: this node and the connection.
func (r *RedisRouter) leaseOf(c *Conn) string { return r.node + " " + c.id }
