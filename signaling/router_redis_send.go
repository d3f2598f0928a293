package signaling

// Sending: the publisher's batches, and what did not reach its node held
// back and sent again in order.

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Flush implements Router. The queue is drained and sent under sendMu, so
// whichever goroutine sends, commands leave in the order they were queued.
// What did not reach its node is held back for the publisher to send again
// (resend), and what is queued for that node meanwhile waits behind it, so
// a node receives its envelopes in order (a ring never after its cancel).
func (r *RedisRouter) Flush(ctx context.Context) {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	for {
		batch := r.batch[:0]
	fill:
		for len(batch) < publishBatch {
			select {
			case q := <-r.out:
				if h := r.held[q.node]; h != nil {
					r.holdLocked(q, "")
					continue
				}
				batch = append(batch, q)
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return
		}
		for _, l := range r.send(ctx, batch) {
			r.holdLocked(l.q, l.why)
		}
		r.batch = batch
	}
}

// holdLocked holds q back, behind what already waits for its node; why is
// the failure that stopped it, or "" for one that merely waits. Probes are
// not held: the next comes within probeInterval; nor answers to live
// queries: the asker waits for them liveWait at most. sendMu is held.
func (r *RedisRouter) holdLocked(q queued, why string) {
	if q.env.Kind == "probe" || q.env.Kind == "live_calls" {
		return
	}
	h := r.held[q.node]
	if h == nil {
		h = &heldBack{since: time.Now()}
		r.held[q.node] = h
		select {
		case r.kick <- struct{}{}: // the publisher starts the resend timer
		default:
		}
	}
	if why != "" {
		h.why = why
	}
	if len(h.q) >= publishQueue {
		r.metrics.dropped.WithLabelValues("queue_full").Inc()
		return
	}
	h.q = append(h.q, q)
	if len(h.q) == publishQueue {
		r.heldFull.Store(q.node, struct{}{})
	}
}

// holding reports whether anything waits to be sent again.
func (r *RedisRouter) holding() bool {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	return len(r.held) > 0
}

// resend sends again, in order, what waits for each node (up to
// publishBatch of each, all in one pipeline: one round trip whatever the
// number of nodes), and reports whether anything still waits. A node's
// envelopes that have waited LeaseTTL are dropped: by then the node is dead
// or has dropped its devices' calls, and the other nodes no longer believe
// in its devices.
func (r *RedisRouter) resend(ctx context.Context) bool {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	var batch []queued
	for node, h := range r.held {
		if time.Since(h.since) > r.opts.LeaseTTL {
			r.dropHeldLocked(node, h)
			continue
		}
		batch = append(batch, h.q[:min(len(h.q), publishBatch)]...)
	}
	if len(batch) == 0 {
		return len(r.held) > 0
	}
	lost := make(map[string][]queued)
	for _, l := range r.send(ctx, batch) {
		lost[l.q.node] = append(lost[l.q.node], l.q)
		r.held[l.q.node].why = l.why
	}
	for node, h := range r.held {
		// What was lost first, then what was not yet sent, in their order.
		rest := h.q[min(len(h.q), publishBatch):]
		h.q = append(lost[node], rest...)
		if len(h.q) < publishQueue {
			r.heldFull.Delete(node)
		}
		if len(h.q) == 0 {
			delete(r.held, node)
		}
	}
	return len(r.held) > 0
}

// dropHeldLocked drops and counts what waits for node; sendMu is held.
func (r *RedisRouter) dropHeldLocked(node string, h *heldBack) {
	r.metrics.dropped.WithLabelValues(h.why).Add(float64(len(h.q)))
	r.log.Warn("cross-node envelopes dropped: their node did not receive them", "to", node, "envelopes", len(h.q), "reason", h.why)
	delete(r.held, node)
	r.heldFull.Delete(node)
}

// lostQueued is a queued command that did not reach its node, and why:
// redis_error (Redis did not take it) or no_receiver (no node received it).
type lostQueued struct {
	q   queued
	why string
}

// send sends a batch of queued commands in one pipeline, and returns those
// that Redis did not take, and the envelopes no node received.
func (r *RedisRouter) send(ctx context.Context, batch []queued) []lostQueued {
	// Never the caller's deadline: Flush runs on a request's goroutine, and
	// a request that ran late would otherwise fail the whole queue, other
	// calls' rings and cancels with it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisOpTimeout)
	defer cancel()
	start := time.Now()
	pipe := r.rdb.Pipeline()
	// spans[k] is the entries batch[from:to] and the pipeline's commands
	// that carry them (the SPUBLISH of an envelope, or a ringing-set
	// change: SADD and EXPIRE, or SREM).
	type span struct {
		from, to int
		cmds     [2]redis.Cmder
		pub      *redis.IntCmd
	}
	spans := make([]span, 0, len(batch))
	for i := 0; i < len(batch); i++ {
		q := batch[i]
		s := span{from: i}
		switch {
		case q.node != "":
			// One ring (or cancel) to several devices on one node is queued
			// as consecutive deliveries of the same frame: send it once.
			for i+1 < len(batch) && sameDelivery(q, batch[i+1]) {
				i++
				q.env.Devices = append(q.env.Devices, batch[i].env.Devices...)
			}
			b, err := q.env.marshal()
			if err != nil {
				continue // envelopes hold only marshalable values
			}
			s.pub = pipe.SPublish(ctx, nodeChannel(q.node), b)
			s.cmds[0] = s.pub
		case q.add:
			s.cmds = [2]redis.Cmder{pipe.SAdd(ctx, q.ringKey, q.member), pipe.Expire(ctx, q.ringKey, ringingTTL)}
		default:
			s.cmds[0] = pipe.SRem(ctx, q.ringKey, q.member)
		}
		s.to = i + 1
		spans = append(spans, s)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		r.fail("publish", err)
	} else {
		r.metrics.rtt.Observe(time.Since(start).Seconds())
	}
	var lost []lostQueued
	var lostFor map[string]string // node → why, once an envelope for it was lost
	for _, s := range spans {
		why := ""
		for _, c := range s.cmds {
			if c != nil && c.Err() != nil {
				why = "redis_error"
			}
		}
		if why == "" && s.pub != nil && s.pub.Val() == 0 {
			why = "no_receiver"
		}
		if node := batch[s.from].node; node != "" {
			if why != "" && lostFor[node] == "" {
				if lostFor == nil {
					lostFor = make(map[string]string)
				}
				lostFor[node] = why
			} else if why == "" && lostFor[node] != "" {
				// It went, but after one for its node that did not: it goes
				// again behind that one, so the node's last word on each
				// call is in order (it may get it twice).
				why = lostFor[node]
			}
		}
		if why != "" {
			for _, q := range batch[s.from:s.to] {
				lost = append(lost, lostQueued{q, why})
			}
		}
	}
	return lost
}

// sameDelivery reports whether b delivers the very frame a does, to the same node.
func sameDelivery(a, b queued) bool {
	return a.env.Kind == "deliver" && b.env.Kind == "deliver" && a.node == b.node &&
		len(a.env.Frame) == len(b.env.Frame) && len(a.env.Frame) > 0 && &a.env.Frame[0] == &b.env.Frame[0]
}
