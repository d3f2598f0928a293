package signaling

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// presenceBatch is how many attaches and detaches go out in one pipeline.
const presenceBatch = 256

// writeLease writes one connection's attach or detach and returns once it
// is written: an attach sets the lease, a detach deletes it only while it
// is still the connection's (so that a newer connection's stays; EVAL, not
// EVALSHA: a pipeline cannot fall back on NOSCRIPT, and Redis caches the
// script by its hash); each publishes its presence event.
//
// The writes of connections attaching or detaching at the same moment
// share a pipeline (r.leases). When every device of a node reconnects at
// once, a round trip each made thousands wait for the Redis client's pool,
// and time out under load. A failure is best effort: the leases are
// re-asserted once Redis answers again.
func (r *RedisRouter) writeLease(attach bool, c *Conn) {
	key, value := presenceKey(c.device.ID), r.node+" "+c.id
	err := r.leases.Do(func(p redis.Pipeliner) {
		ctx := context.Background() // the pipeline's own bound applies (r.leases)
		sign := "-"
		if attach {
			sign = "+"
			p.Set(ctx, key, value, r.opts.LeaseTTL)
		} else {
			compareAndDelete.Eval(ctx, p, []string{key}, value)
		}
		presenceEvent(ctx, p, sign, r.node, c.id, string(c.device.ID))
	})
	if err != nil {
		r.fail("presence", err)
	}
}
