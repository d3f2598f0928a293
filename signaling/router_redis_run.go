package signaling

import (
	"bytes"
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
)

// Run implements Router: the publisher, the subscription to this node's
// channel (replaced when its probe stops coming back), the presence view,
// and the renewal of the node's alive key. Once ctx ends and that work
// has stopped, it deletes the alive key: the node is gone, and other nodes
// answer messages about its calls at once (Forward) instead of waiting for
// it to subscribe again.
func (r *RedisRouter) Run(ctx context.Context, n NodeHandler) {
	done := make(chan struct{}, 4)
	go func() { r.publisher(ctx); done <- struct{}{} }()
	go func() { r.ringingSets(ctx, n); done <- struct{}{} }()
	go func() { r.refresher(ctx); done <- struct{}{} }()
	go func() { r.presenceLoop(ctx); done <- struct{}{} }()
	for ctx.Err() == nil {
		r.subscribe(ctx, n)
	}
	for range 4 {
		<-done
	}
	r.calls.wait()
	gone, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisOpTimeout)
	defer cancel()
	if err := r.rdb.Del(gone, aliveKey(r.node)).Err(); err != nil {
		r.fail("alive", err)
	}
}

// subscribe receives this node's envelopes until ctx ends or the
// subscription stops delivering its own probes.
func (r *RedisRouter) subscribe(ctx context.Context, n NodeHandler) {
	sub := r.rdb.SSubscribe(ctx, nodeChannel(r.node))
	// What other nodes publish before Redis has confirmed the subscription
	// reaches nobody: the node is not ready (Ready) until it has.
	if _, err := sub.Receive(ctx); err != nil {
		_ = sub.Close()
		r.fail("subscribe", err)
		select { // Redis is away: try again in a moment, not in a tight loop
		case <-ctx.Done():
		case <-time.After(probeInterval):
		}
		return
	}
	r.subscribed.Store(true)
	msgs := sub.Channel(redis.WithChannelHealthCheckInterval(probeInterval))
	defer func() {
		r.subscribed.Store(false)
		_ = sub.Close()
		for range msgs { // go-redis closes msgs once its reader sees the close
		}
	}()
	r.probeMu.Lock()
	r.lastProbe = time.Now()
	r.probeMu.Unlock()
	probe := time.NewTicker(probeInterval)
	defer probe.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			r.receive(m.Payload, n)
		case <-probe.C:
			r.probeMu.Lock()
			silent := time.Since(r.lastProbe)
			r.probeMu.Unlock()
			if silent > probeTimeout {
				r.probeMu.Lock()
				r.healthy = false
				r.probeMu.Unlock()
				r.metrics.resubscribes.Inc()
				r.log.Warn("pub/sub subscription delivers nothing; replacing it", "silent", silent)
				return
			}
			r.publish(r.node, envelope{Kind: "probe", Sent: time.Now().UnixNano()})
		}
	}
}

// receive handles one envelope from another node (or a probe from this one).
func (r *RedisRouter) receive(payload string, n NodeHandler) {
	env, err := unmarshalEnvelope(payload)
	if err != nil {
		r.metrics.dropped.WithLabelValues("malformed").Inc()
		return
	}
	switch env.Kind {
	case "probe":
		r.probeMu.Lock()
		r.lastProbe = time.Now()
		recovered := !r.healthy
		r.healthy = true
		r.probeMu.Unlock()
		if r.leasesDoubtful.Swap(false) || recovered {
			// Redis (or our subscription) is back after a failure: reassert
			// the leases now, and tell the other nodes' presence views (Redis
			// may have come back empty). Should this fail too, the next probe
			// tries again. Not on this goroutine: it waits behind the lease
			// pipelines, and meanwhile nothing would be received, and the
			// subscription, silent, replaced.
			r.reassertSoon()
		}
		r.metrics.rtt.Observe(time.Since(time.Unix(0, env.Sent)).Seconds())
	case "deliver":
		// A calling, cancel or ended is noted before the device reads it; a
		// ring once every device has it, off the ring's path (noteFirst), on
		// the connection that took it, which may have gone since (Local
		// would not find it).
		call := remoteCallOf(env.Frame) // once for all the envelope's devices
		first := call != "" && noteFirst(env.Frame)
		var took [8]*Conn
		rung := took[:0]
		for _, id := range env.Devices {
			c := r.Memory.Local(id)
			if first && c != nil {
				c.noteRemoteFrame(call, env.Frame)
			}
			switch {
			case c == nil || !c.Send(env.Frame):
				r.metrics.dropped.WithLabelValues("not_here").Inc()
				if call != "" {
					r.callingLost(id, call, env.Frame)
				}
			case call != "" && !first:
				rung = append(rung, c)
			}
		}
		for _, c := range rung {
			c.noteRemoteFrame(call, env.Frame)
		}
	case "live":
		r.answerLive(env, n)
	case "live_calls":
		r.takeLiveAnswer(env)
	case "replaced":
		if len(env.Devices) == 1 {
			r.replaced(env.Devices[0], env.Conn, env.From, env.By)
		}
	case "handover":
		if len(env.Devices) == 1 {
			r.handover(env.Devices[0], env.Conn, env.Calls)
		}
	case "moved":
		if env.Sender == nil || env.To == "" {
			r.metrics.dropped.WithLabelValues("malformed").Inc()
			return
		}
		if env.To == r.node {
			return // its attach here rang it (Hub.ringLate); not sent here
		}
		r.movedFrom(env.Sender.ID, env.From, env.Prev, env.To, env.Conn)
		n.RemoteMoved(*env.Sender, env.Targets, env.Conn)
	case "left":
		if len(env.Devices) == 1 {
			r.calls.run(env.Call, func() { n.RemoteLeft(env.Call, env.Devices[0], env.Conn, env.Reason) })
		}
	case "forgotten":
		if len(env.Devices) == 1 {
			r.calls.run(env.Call, func() { n.RemoteForgotten(env.Call, env.Devices[0], env.Conn) })
		}
	case "message", "join":
		if env.Sender == nil {
			r.metrics.dropped.WithLabelValues("malformed").Inc()
			return
		}
		now := time.Now()
		r.mu.Lock()
		loc, known := r.where[env.Sender.ID]
		if !known {
			// Only where the presence view knows nothing: the events are
			// the truth, and this envelope may be late (the device moved,
			// or left, since it was sent). Believed for LeaseTTL only.
			r.where[env.Sender.ID] = r.hearsayAt(env.From, env.Conn, now)
		}
		// A join the view contradicts is late word, or the view is behind:
		// the event of the connection it names comes on another
		// subscription, and a device that connected again to the node it
		// rang on sends no other word (no moved). The call rings the
		// connection the view names, and only once (Call.ringLate).
		doubt := known && (!r.validLocked(loc, now) || loc.node != env.From || loc.conn != env.Conn)
		r.nodeSeen[env.From] = now
		r.mu.Unlock()
		// In order with what else was sent about the call (a device's left
		// after its answer), but not behind other calls' work.
		switch {
		case env.Kind == "message":
			r.calls.run(env.Call, func() { n.RemoteMessage(env.From, *env.Sender, env.Conn, env.Frame) })
		case doubt:
			r.calls.run(env.Call, func() { r.joinChecked(env, n) }) // a round trip
		default:
			r.calls.run(env.Call, func() { n.RemoteJoin(env.Call, *env.Sender, env.Conn) })
		}
	default:
		// A kind this node does not know: a node of a newer foyer sent it,
		// during an upgrade (operations.md, "Upgrading a cluster"). Skipped
		// and counted apart from malformed envelopes, so that the mix shows.
		r.metrics.dropped.WithLabelValues("unknown_kind").Inc()
		now := time.Now().UnixNano()
		if last := r.unknownWarned.Load(); now-last >= int64(unknownWarnEvery) && r.unknownWarned.CompareAndSwap(last, now) {
			r.log.Warn("an envelope of a kind this node does not know was skipped: does another node run a newer foyer?",
				"kind", env.Kind, "from", env.From)
		}
	}
}

// joinChecked hands a join (env) the presence view contradicted to n once
// the view has learned where the device's lease, the truth, says it is,
// unless an event taught it something newer meanwhile (learnLocked): a
// late join changes nothing, and one ahead of the view's event rings the
// connection it names.
func (r *RedisRouter) joinChecked(env envelope, n NodeHandler) {
	ctx, cancel := context.WithTimeout(context.Background(), redisOpTimeout)
	defer cancel()
	start := time.Now()
	id := env.Sender.ID
	if locs, err := r.readLeases(ctx, []directory.DeviceID{id}); err != nil {
		r.fail("locate", err) // the view as it stands, then
	} else {
		r.mu.Lock()
		r.learnLocked(id, locs[0], start)
		r.mu.Unlock()
	}
	n.RemoteJoin(env.Call, *env.Sender, env.Conn)
}

// callingLost tells the node owning a call whose calling (frame) found no
// connection of its door station d here that the door station has gone.
// Its connection closed, or moved on, after this node forwarded its call
// (Hub.handleCall); that connection's leave told the owner only of the
// calls it had recorded (Conn.noteRemoteFrame), and the call would ring
// to its timeout for a door station that cannot hear who answers.
func (r *RedisRouter) callingLost(d directory.DeviceID, id CallID, frame []byte) {
	if !bytes.HasPrefix(frame, callingPrefix) {
		return
	}
	if owner := ownerOf(id); owner != "" && owner != r.node {
		r.Left(context.Background(), owner, id, d, "", EndFailed)
	}
}

// unknownWarnEvery bounds how often receive logs envelopes of unknown kinds.
const unknownWarnEvery = time.Minute

// publisher sends queued commands in pipelined batches, in queue order,
// whenever enqueue wakes it (and Flush has not already sent them), and
// sends again what did not reach its node (resend), first after
// resendFirst, then waiting twice as long after each failed attempt.
func (r *RedisRouter) publisher(ctx context.Context) {
	wait := resendFirst
	var again <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			r.sendMu.Lock()
			for node, h := range r.held {
				r.dropHeldLocked(node, h)
			}
			r.sendMu.Unlock()
			return
		case <-r.kick:
			r.Flush(ctx)
		case <-again:
			again = nil
			if r.resend(ctx) {
				wait = min(2*wait, resendMax)
			} else {
				wait = resendFirst
			}
		}
		if again == nil && r.holding() {
			again = time.After(wait)
		}
	}
}

// ringingSets sends the ringing-set changes in queue order, in batches,
// and then looks again for the devices the calls just added did not ring.
func (r *RedisRouter) ringingSets(ctx context.Context, n NodeHandler) {
	batch := make([]queued, 0, publishBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			return
		case q := <-r.ringQ:
			batch = append(batch, q)
		}
	fill:
		for len(batch) < publishBatch {
			select {
			case q := <-r.ringQ:
				batch = append(batch, q)
			default:
				break fill
			}
		}
		if lost := r.send(ctx, batch); len(lost) == 0 {
			r.lookAgain(ctx, n, batch)
		} else {
			// A lost addition: the late-joiner look (lookAgain, Announce)
			// misses that call; a lost removal expires with its set.
			r.metrics.dropped.WithLabelValues("redis_error").Add(float64(len(lost)))
		}
	}
}

// lookAgain rings the devices that calls just added to the ringing sets
// (batch) found connected nowhere, but whose lease is in Redis now. A
// device connecting to a node writes its lease, then reads the ringing sets
// of its call IDs (Announce); a call writes its ringing set, then reads the
// leases of the devices it did not ring (here): whichever reads second sees
// the other's write, so a device that connects to another node as a call
// starts is rung, even when this node's view had not yet heard of it.
func (r *RedisRouter) lookAgain(ctx context.Context, n NodeHandler, batch []queued) {
	type miss struct {
		call CallID
		d    directory.Device
	}
	var misses []miss
	for _, q := range batch {
		if q.add {
			for _, d := range n.Unrung(CallID(q.member)) {
				misses = append(misses, miss{CallID(q.member), d})
			}
		}
	}
	if len(misses) == 0 {
		return
	}
	ids := make([]directory.DeviceID, len(misses))
	for i, m := range misses {
		ids[i] = m.d.ID
	}
	ctx, cancel := context.WithTimeout(ctx, redisOpTimeout)
	defer cancel()
	locs, err := r.readLeases(ctx, ids)
	if err != nil {
		r.fail("look again", err)
		return
	}
	for i, m := range misses {
		loc := locs[i]
		if loc.node == "" {
			continue // connected nowhere (or here: then the hub rang it as it attached)
		}
		r.mu.Lock()
		r.learnLocked(m.d.ID, loc, loc.learned)
		r.mu.Unlock()
		n.RemoteJoin(m.call, m.d, loc.conn)
	}
}

// refresher renews the node's alive key, at once and every LeaseRefresh.
func (r *RedisRouter) refresher(ctx context.Context) {
	t := time.NewTicker(r.opts.LeaseRefresh)
	defer t.Stop()
	for {
		r.keepAlive()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
