package signaling

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strconv"
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
// channel that every node subscribes to, each ending with the number of
// the node's event (1, 2, 3, … from its start; a node's events go out in
// the order they are numbered, all through its lease pipelines):
//
//	"+ <node> <conn> <device> <n>"  a device attached (published with its lease)
//	"- <node> <conn> <device> <n>"  it detached (only that connection's entry goes)
//	"h <node> <n>"                  the node is alive (every LeaseRefresh)
//
// An entry is believed while its node is heard from (for LeaseTTL after its
// last event) or, when it was read from Redis, while the node's alive key
// lived, so a node that dies without a word stops being rung after
// LeaseTTL. An event can be lost (a pipeline that failed half-way, a node
// restarted): a gap in a node's numbers shows it, within LeaseRefresh at
// most (the heartbeat), and the view is rebuilt from the leases (SCAN);
// also when the subscription starts, and every presenceResync in any case.
// While the view is not in step (no subscription yet, or its own
// heartbeats stop coming back), Locate asks Redis.
const (
	// presenceChannel carries the presence events (SPUBLISH/SSUBSCRIBE).
	presenceChannel = "foyer:presence-events"
	// presenceResync rebuilds the view, sweeps and heals the leases even
	// when no event was seen to be lost.
	presenceResync = 5 * time.Minute
	// presenceScanCount is the SCAN batch of a resync.
	presenceScanCount = 1000
)

// location is where a remote device was last seen, and until when that is
// believed without news from its node.
type location struct {
	node, conn string
	expires    time.Time
	learned    time.Time
	hearsay    bool // learned from a device's message or from word that it moved, not from its node's events or lease: believed until expires only
}

// hearsayAt is a location learned at now other than from the device's own
// node (a message it sent through there, or word that it moved there):
// believed for LeaseTTL, unless that node's events say otherwise first.
func (r *RedisRouter) hearsayAt(node, conn string, now time.Time) location {
	return location{node: node, conn: conn, expires: now.Add(r.opts.LeaseTTL), learned: now, hearsay: true}
}

// validLocked reports whether loc is still believed at now; r.mu is held.
func (r *RedisRouter) validLocked(loc location, now time.Time) bool {
	return now.Before(loc.expires) || (!loc.hearsay && now.Before(r.nodeSeen[loc.node].Add(r.opts.LeaseTTL)))
}

// inStep reports whether the presence view may answer Locate alone.
func (r *RedisRouter) inStep() bool {
	r.probeMu.Lock()
	healthy := r.healthy // the node's own channel works (probes come back)
	r.probeMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	return healthy && r.synced && !r.selfSilentLocked()
}

// selfSilentLocked reports whether this node's own presence events have
// stopped coming back: none for three LeaseRefresh, in which it sends
// three heartbeats; r.mu is held.
func (r *RedisRouter) selfSilentLocked() bool {
	return time.Since(r.selfHeard) >= 3*r.opts.LeaseRefresh
}

// presenceEvent publishes one event of this node in the pipeline p, with
// its number. The numbers follow the order of the pipelines, as the lease
// pipelines (r.leases) are built one at a time and sent in that order.
func (r *RedisRouter) presenceEvent(ctx context.Context, p redis.Pipeliner, kind string, parts ...string) {
	b := make([]byte, 0, 64)
	b = append(append(append(b, kind...), ' '), r.node...)
	for _, part := range parts {
		b = append(append(b, ' '), part...)
	}
	b = strconv.AppendUint(append(b, ' '), r.seq.Add(1), 10)
	p.SPublish(ctx, presenceChannel, b)
}

// applyPresence folds one event into the view, and reports whether an
// event of its node may have been lost before it (its number is not the
// next, or it is the first heard from that node).
func (r *RedisRouter) applyPresence(payload string, now time.Time) (lost bool) {
	f := strings.Fields(payload)
	var n uint64
	var err error
	if len(f) >= 3 {
		n, err = strconv.ParseUint(f[len(f)-1], 10, 64)
	}
	if len(f) < 3 || err != nil {
		r.metrics.dropped.WithLabelValues("malformed").Inc()
		return false
	}
	node := f[1]
	r.mu.Lock()
	defer r.mu.Unlock()
	if node == r.node {
		r.selfHeard = now
		return false
	}
	r.nodeSeen[node] = now
	last, known := r.lastSeq[node]
	r.lastSeq[node] = n
	// With no number yet from this node (since subscribing), whatever it
	// sent before is unknown: an event lost between the rebuild and this
	// one would go unseen, so it counts as a gap too.
	lost = !known || n != last+1
	if len(f) != 5 {
		return lost // a heartbeat, or malformed
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
	return lost
}

// presenceLoop keeps the view: subscribe, rebuild from the leases, follow
// the events, rebuild when one was lost and every presenceResync, and start
// again when the subscription fails or its own heartbeats stop coming back.
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
	r.mu.Lock()
	clear(r.lastSeq) // events may have been missed while not subscribed: the resync covers them
	r.mu.Unlock()
	r.keepAlive() // heard back, it shows the subscription works
	if !r.resync(ctx, "subscribe") {
		return
	}
	r.mu.Lock()
	r.selfHeard = time.Now() // the resync just read Redis: the link is good
	r.mu.Unlock()
	resynced := time.Now()
	pending := false // an event was lost since the last resync
	resync := time.NewTicker(presenceResync)
	defer resync.Stop()
	check := time.NewTicker(r.opts.LeaseRefresh)
	defer check.Stop()
	for {
		cause := ""
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			if r.applyPresence(m.Payload, time.Now()) {
				pending = true
			}
		case <-resync.C:
			cause = "periodic"
		case <-check.C:
			// Only this subscription's own silence: not the node channel's
			// probes, which come back a probeInterval after the node starts
			// (until then the view is not in step, and Locate asks Redis).
			r.mu.Lock()
			silent := r.selfSilentLocked()
			r.mu.Unlock()
			if silent {
				r.metrics.resubscribes.Inc()
				r.log.Warn("presence events stopped arriving; resubscribing")
				return
			}
		}
		// A lost event is mended at once, but no more often than every
		// LeaseRefresh: a burst of losses costs one scan.
		if pending && time.Since(resynced) >= r.opts.LeaseRefresh {
			cause = "lost_event"
		}
		if cause != "" {
			if !r.resync(ctx, cause) {
				return
			}
			resynced, pending = time.Now(), false
		}
	}
}

// resync rebuilds the view from the leases in Redis (every master of a
// Cluster); cause says why, for the metrics. Entries learned from events
// during the scan are newer than what it read, and stay. It also deletes
// the leases nobody holds (sweep), and mends what the scan shows amiss
// with this node's own connections (mendLocal).
func (r *RedisRouter) resync(ctx context.Context, cause string) bool {
	r.metrics.resyncs.WithLabelValues(cause).Inc()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 10*redisOpTimeout)
	defer cancel()
	leases := make(map[directory.DeviceID]string)
	var err error
	if cc, ok := r.rdb.(*redis.ClusterClient); ok {
		var mu sync.Mutex
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			part, err := scanLeases(ctx, c)
			mu.Lock()
			maps.Copy(leases, part)
			mu.Unlock()
			return err
		})
	} else {
		leases, err = scanLeases(ctx, r.rdb)
	}
	var alive map[string]time.Duration
	if err == nil {
		alive, err = r.aliveFor(ctx, slices.Collect(maps.Values(leases)))
	}
	if err != nil {
		r.fail("presence resync", err)
		return false
	}
	found := make(map[directory.DeviceID]location, len(leases))
	for id, v := range leases {
		if loc := r.leaseAt(v, alive, start); loc.node != "" { // else of a dead node, or ours
			found[id] = loc
		}
	}
	r.sweep(ctx, leases, alive)
	r.mendLocal(leases)
	r.mu.Lock()
	defer r.mu.Unlock()
	for id := range r.where {
		if _, ok := found[id]; !ok {
			r.learnLocked(id, location{}, start) // its lease is gone
		}
	}
	for id, loc := range found {
		r.learnLocked(id, loc, start)
	}
	r.forgetNodesLocked(start)
	r.synced = true
	return true
}

// forgetNodeAfter is how long a node unheard from, and naming no device of
// the view, is remembered: node IDs are random by default, so every
// restart of every node would otherwise add to the maps for good.
const forgetNodeAfter = time.Hour

// forgetNodesLocked drops what the view keeps of nodes gone for
// forgetNodeAfter; r.mu is held. One that comes back counts as new (its
// first event is a gap, and rebuilds the view).
func (r *RedisRouter) forgetNodesLocked(now time.Time) {
	named := make(map[string]bool)
	for _, loc := range r.where {
		named[loc.node] = true
	}
	for node, seen := range r.nodeSeen {
		if now.Sub(seen) > forgetNodeAfter && !named[node] {
			delete(r.nodeSeen, node)
			delete(r.lastSeq, node)
		}
	}
}

// sweep deletes, each only while it still holds what the scan read, the
// leases that no connection holds: this node's that are not its current
// connection's (a delete lost to a Redis error, or leases from before this
// node restarted), and those of other nodes whose alive key has expired
// and that have not been heard from for LeaseTTL (dead).
func (r *RedisRouter) sweep(ctx context.Context, leases map[directory.DeviceID]string, alive map[string]time.Duration) {
	now := time.Now()
	r.mu.Lock()
	dead := make(map[string]bool)
	for _, v := range leases {
		node, _, _ := strings.Cut(v, " ")
		if _, ok := dead[node]; !ok && node != r.node {
			dead[node] = alive[node] <= 0 && now.Sub(r.nodeSeen[node]) > r.opts.LeaseTTL
		}
	}
	r.mu.Unlock()
	pipe := r.rdb.Pipeline()
	var dels []*redis.Cmd
	for id, v := range leases {
		node, conn, _ := strings.Cut(v, " ")
		if node == r.node {
			if c := r.Memory.Local(id); c != nil && c.id == conn {
				continue
			}
		} else if !dead[node] {
			continue
		}
		dels = append(dels, compareAndDelete.Eval(ctx, pipe, []string{presenceKey(id)}, v))
	}
	if len(dels) == 0 {
		return
	}
	if _, err := pipe.Exec(ctx); err != nil {
		r.fail("presence sweep", err)
		return
	}
	for _, d := range dels {
		if n, _ := d.Int(); n == 1 {
			r.metrics.swept.Inc()
		}
	}
}

// mendLocal compares this node's connections with the leases a resync's
// scan read. A connection with no lease has it written again (reassert
// sets only what is still missing, so one that attached during the scan
// costs nothing): a write lost to a Redis error, or a Redis that lost
// data without a failure this node saw. A connection whose lease names
// another node, once its own lease was written, may have been replaced
// there (closeMoved).
func (r *RedisRouter) mendLocal(leases map[directory.DeviceID]string) {
	missing := make(map[directory.DeviceID]bool)
	var moved []*Conn
	r.Memory.Each(func(c *Conn) {
		v, ok := leases[c.device.ID]
		if !ok {
			missing[c.device.ID] = true
		} else if _, _, other := r.otherLease(v); other && c.leased.Load() {
			moved = append(moved, c)
		}
	})
	if len(missing) > 0 {
		r.reassert(missing)
	}
	if len(moved) > 0 {
		r.closeMoved(moved)
	}
}

// scanLeases reads every lease on one Redis server.
func scanLeases(ctx context.Context, c redis.Cmdable) (map[directory.DeviceID]string, error) {
	found := make(map[directory.DeviceID]string)
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		pipe := c.Pipeline()
		gets := make([]*redis.StringCmd, len(keys))
		for i, k := range keys {
			gets[i] = pipe.Get(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		for i, k := range keys {
			if v := gets[i].Val(); v != "" { // else gone meanwhile
				found[directory.DeviceID(strings.TrimPrefix(k, presencePrefix))] = v
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
