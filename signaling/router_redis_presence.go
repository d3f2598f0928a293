package signaling

import (
	"context"
	"errors"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
)

// The presence view: every node keeps a map of where the other nodes'
// devices are connected, so that a call rings remote devices without first
// asking Redis (one round trip less on the ring path). The leases in Redis
// stay the truth; the view follows them through events on one sharded
// channel that every node subscribes to:
//
//	"+ <node> <conn> <device>"  a device attached (published with its lease)
//	"- <node> <conn> <device>"  it detached (only that connection's entry goes)
//	"h <node>"                  the node is alive (every lease refresh)
//
// An entry is believed while its node is heard from (for LeaseTTL after its
// last event) or until the lease it was read from expires, so a node that
// dies without a word stops being rung after LeaseTTL, as before. Pub/sub
// may lose messages, so the view is rebuilt from the leases (SCAN) when the
// subscription starts and every presenceResync; while it is not in step
// (no subscription yet, or its own heartbeats stop coming back), Locate
// asks Redis as it did before.
const (
	// presenceChannel carries the presence events (SPUBLISH/SSUBSCRIBE).
	presenceChannel = "foyer:presence-events"
	// presenceResync bounds how long a lost event can mislead the view.
	presenceResync = 30 * time.Second
	// presenceScanCount is the SCAN batch of a resync.
	presenceScanCount = 1000
)

// location is where a remote device was last seen, and until when that is
// believed without news from its node.
type location struct {
	node, conn string
	expires    time.Time
	learned    time.Time
}

// validLocked reports whether loc is still believed at now; r.mu is held.
func (r *RedisRouter) validLocked(loc location, now time.Time) bool {
	return now.Before(loc.expires) || now.Before(r.nodeSeen[loc.node].Add(r.opts.LeaseTTL))
}

// inStep reports whether the presence view may answer Locate alone.
func (r *RedisRouter) inStep() bool {
	r.probeMu.Lock()
	healthy := r.healthy // the node's own channel works (probes come back)
	r.probeMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return healthy && r.synced && time.Since(r.selfHeard) < 3*r.opts.LeaseRefresh
}

// presenceEvent publishes one event in the pipeline p.
func presenceEvent(ctx context.Context, p redis.Pipeliner, parts ...string) {
	p.SPublish(ctx, presenceChannel, strings.Join(parts, " "))
}

// applyPresence folds one event into the view.
func (r *RedisRouter) applyPresence(payload string, now time.Time) {
	f := strings.Fields(payload)
	if len(f) < 2 {
		r.metrics.dropped.WithLabelValues("malformed").Inc()
		return
	}
	node := f[1]
	r.mu.Lock()
	defer r.mu.Unlock()
	if node == r.node {
		r.selfHeard = now
		return
	}
	r.nodeSeen[node] = now
	if len(f) != 4 {
		return // a heartbeat, or malformed
	}
	id := directory.DeviceID(f[3])
	switch f[0] {
	case "+":
		r.where[id] = location{node: node, conn: f[2], expires: now.Add(r.opts.LeaseTTL), learned: now}
	case "-":
		if loc, ok := r.where[id]; ok && loc.node == node && loc.conn == f[2] {
			delete(r.where, id)
		}
	}
}

// presenceLoop keeps the view: subscribe, rebuild from the leases, follow
// the events, rebuild every presenceResync, and start again when the
// subscription fails or its own heartbeats stop coming back.
func (r *RedisRouter) presenceLoop(ctx context.Context) {
	for ctx.Err() == nil {
		r.followPresence(ctx)
		r.mu.Lock()
		r.synced = false
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(probeInterval):
		}
	}
}

func (r *RedisRouter) followPresence(ctx context.Context) {
	sub := r.rdb.SSubscribe(ctx, presenceChannel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription's confirmation
		r.fail("presence subscribe", err)
		return
	}
	msgs := sub.Channel(redis.WithChannelHealthCheckInterval(probeInterval))
	r.heartbeat(ctx)
	if !r.resync(ctx) {
		return
	}
	r.mu.Lock()
	r.selfHeard = time.Now() // the resync just read Redis: the link is good
	r.mu.Unlock()
	resync := time.NewTicker(presenceResync)
	defer resync.Stop()
	check := time.NewTicker(r.opts.LeaseRefresh)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			r.applyPresence(m.Payload, time.Now())
		case <-resync.C:
			if !r.resync(ctx) {
				return
			}
		case <-check.C:
			if !r.inStep() {
				r.metrics.resubscribes.Inc()
				r.log.Warn("presence events stopped arriving; resubscribing")
				return
			}
		}
	}
}

// heartbeat tells the other nodes this one is alive.
func (r *RedisRouter) heartbeat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	if err := r.rdb.SPublish(ctx, presenceChannel, "h "+r.node).Err(); err != nil {
		r.fail("heartbeat", err)
	}
}

// resync rebuilds the view from the leases in Redis (every master of a
// Cluster). Entries learned from events during the scan are newer than
// what it read, and stay.
func (r *RedisRouter) resync(ctx context.Context) bool {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 10*redisOpTimeout)
	defer cancel()
	found := make(map[directory.DeviceID]location)
	var err error
	if cc, ok := r.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			part, err := r.scanLeases(ctx, c, start)
			mu.Lock()
			maps.Copy(found, part)
			mu.Unlock()
			return err
		})
	} else {
		found, err = r.scanLeases(ctx, r.rdb, start)
	}
	if err != nil {
		r.fail("presence resync", err)
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, loc := range r.where {
		if _, ok := found[id]; !ok && loc.learned.Before(start) {
			delete(r.where, id) // its lease is gone
		}
	}
	for id, loc := range found {
		if old, ok := r.where[id]; !ok || old.learned.Before(start) {
			r.where[id] = loc
		}
	}
	r.synced = true
	return true
}

// scanLeases reads every lease of other nodes on one Redis server.
func (r *RedisRouter) scanLeases(ctx context.Context, c redis.Cmdable, start time.Time) (map[directory.DeviceID]location, error) {
	found := make(map[directory.DeviceID]location)
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		pipe := c.Pipeline()
		gets := make([]*redis.StringCmd, len(keys))
		ttls := make([]*redis.DurationCmd, len(keys))
		for i, k := range keys {
			gets[i], ttls[i] = pipe.Get(ctx, k), pipe.PTTL(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for i, k := range keys {
			if loc, ok := r.leaseAt(gets[i].Val(), ttls[i].Val(), start); ok { // else gone meanwhile, or ours
				found[directory.DeviceID(strings.TrimPrefix(k, presencePrefix))] = loc
			}
		}
		keys = keys[:0]
		return nil
	}
	iter := c.Scan(ctx, 0, presencePrefix+"*", presenceScanCount).Iterator()
	for iter.Next(ctx) {
		if keys = append(keys, iter.Val()); len(keys) == presenceScanCount {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	return found, flush()
}
