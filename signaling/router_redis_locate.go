package signaling

// Where a device of another node is: the presence view, else its lease and
// its node's alive key in Redis.

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
)

// Locate implements Router. While the presence view is in step, it knows
// where every device is and no round trip is needed; otherwise one
// pipelined round trip reads the leases of all ids, and a second the alive
// keys of the nodes they name. Redis is also asked when the view knows
// none of ids, rather than end the call at once as unavailable: a device
// that has just connected to another node may not be in the view yet.
// (When some are known, the call rings them, and the devices it missed are
// looked for again once the call is in the ringing sets: lookAgain.)
func (r *RedisRouter) Locate(ctx context.Context, ids []directory.DeviceID) error {
	if r.inStep() && r.knowsAny(ids) {
		return nil
	}
	start := time.Now()
	remote := make([]directory.DeviceID, 0, len(ids))
	for _, id := range ids {
		if r.Memory.Local(id) == nil {
			remote = append(remote, id)
		}
	}
	if len(remote) == 0 {
		return nil
	}
	locs, err := r.readLeases(ctx, remote)
	if err != nil {
		r.fail("locate", err)
		return err
	}
	r.metrics.rtt.Observe(time.Since(start).Seconds())
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, loc := range locs {
		r.learnLocked(remote[i], loc, start)
	}
	return nil
}

// learnLocked records where a read of Redis that began at start found id
// (loc; no node: connected nowhere else, or a stale lease of ours), unless
// the view has heard of id since the read began, from a presence event or
// a message: that is newer than what the read saw.
func (r *RedisRouter) learnLocked(id directory.DeviceID, loc location, start time.Time) {
	if old, ok := r.where[id]; ok && !old.learned.Before(start) {
		return
	}
	if loc.node == "" {
		delete(r.where, id)
	} else {
		r.where[id] = loc
	}
}

// readLeases reads from Redis where ids are connected on other nodes: their
// leases, then the alive keys of the nodes these name (two round trips).
// A location with no node: connected nowhere else.
func (r *RedisRouter) readLeases(ctx context.Context, ids []directory.DeviceID) ([]location, error) {
	start := time.Now()
	pipe := r.rdb.Pipeline()
	gets := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		gets[i] = pipe.Get(ctx, presenceKey(id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	values := make([]string, len(gets))
	for i, g := range gets {
		values[i] = g.Val()
	}
	alive, err := r.aliveFor(ctx, values)
	if err != nil {
		return nil, err
	}
	locs := make([]location, len(values))
	for i, v := range values {
		locs[i] = r.leaseAt(v, alive, start)
	}
	return locs, nil
}

// knowsAny reports whether one of ids is connected here or, as far as the
// view knows, on another node.
func (r *RedisRouter) knowsAny(ids []directory.DeviceID) bool {
	for _, id := range ids {
		if r.Memory.Local(id) != nil {
			return true
		}
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if loc, ok := r.where[id]; ok && r.validLocked(loc, now) {
			return true
		}
	}
	return false
}

// otherLease splits lease ("<node> <conn>", the value of a presence key)
// when it names another node's connection; ok is false for no lease and
// for one of this node's.
func (r *RedisRouter) otherLease(lease string) (node, conn string, ok bool) {
	node, conn, ok = strings.Cut(lease, " ")
	return node, conn, ok && node != r.node
}

// aliveFor reads, in one round trip, how long the alive key of each other
// node named by the leases still lives (absent: not alive).
func (r *RedisRouter) aliveFor(ctx context.Context, leases []string) (map[string]time.Duration, error) {
	ttls := make(map[string]*redis.DurationCmd)
	pipe := r.rdb.Pipeline()
	for _, v := range leases {
		if node, _, ok := r.otherLease(v); ok && ttls[node] == nil {
			ttls[node] = pipe.PTTL(ctx, aliveKey(node))
		}
	}
	alive := make(map[string]time.Duration, len(ttls))
	if len(ttls) == 0 {
		return alive, nil
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, err
	}
	for node, cmd := range ttls {
		if ttl := cmd.Val(); ttl > 0 {
			alive[node] = ttl
		}
	}
	return alive, nil
}

// leaseAt is where a lease read at time at says its device is, given how
// long each node's alive key still lived then: the device is believed
// there as long as that node's alive key lives, not a whole lease TTL from
// the read, so a dead node's last renewal is never stretched. No node: no
// lease, one of a node that is not alive, or one of this node's.
func (r *RedisRouter) leaseAt(lease string, alive map[string]time.Duration, at time.Time) location {
	node, conn, ok := r.otherLease(lease)
	if ttl := alive[node]; ok && ttl > 0 {
		return location{node: node, conn: conn, expires: at.Add(min(ttl, r.opts.LeaseTTL)), learned: at}
	}
	return location{}
}
