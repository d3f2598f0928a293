package signaling

import (
	"context"
	"sync"
)

// presenceBatch is how many attaches and detaches go out in one pipeline.
const presenceBatch = 256

// leaseWrite is one connection's attach or detach: its lease written (or
// deleted if still its own) and its presence event published.
type leaseWrite struct {
	attach bool
	c      *Conn
	done   chan struct{} // closed once written (or failed)
}

// leaseWriter groups the lease writes of many connections into one
// pipelined round trip while one is in flight (group commit). When every
// device of a node reconnects at once, each attach and detach in a round
// trip of its own made thousands of round trips wait for the Redis
// client's pool, and time out under load; one at a time costs what it did.
type leaseWriter struct {
	mu      sync.Mutex
	running bool         // guarded by mu; the writer goroutine takes writes
	queue   []leaseWrite // guarded by mu
	kick    chan struct{}
}

// writeLease writes one attach or detach and returns once it is done: by
// the writer goroutine with others queued meanwhile, or here while the
// router does not run.
func (r *RedisRouter) writeLease(attach bool, c *Conn) {
	w := &r.leases
	lw := leaseWrite{attach: attach, c: c, done: make(chan struct{})}
	w.mu.Lock()
	if !w.running {
		w.mu.Unlock()
		r.execLeases([]leaseWrite{lw})
		return
	}
	w.queue = append(w.queue, lw)
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default: // the writer is awake already
	}
	<-lw.done
}

// leaseWriterLoop writes the queued lease writes, a batch per round trip,
// until ctx ends; then it writes what is left, and callers write their own.
func (r *RedisRouter) leaseWriterLoop(ctx context.Context) {
	w := &r.leases
	w.mu.Lock()
	w.running = true
	w.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			w.mu.Lock()
			w.running = false
			rest := w.queue
			w.queue = nil
			w.mu.Unlock()
			for len(rest) > 0 {
				n := min(len(rest), presenceBatch)
				r.execLeases(rest[:n])
				rest = rest[n:]
			}
			return
		case <-w.kick:
		}
		for {
			w.mu.Lock()
			n := min(len(w.queue), presenceBatch)
			batch := w.queue[:n:n]
			w.queue = w.queue[n:]
			if len(w.queue) == 0 {
				w.queue = nil // let the backing array go once drained
			}
			w.mu.Unlock()
			if n == 0 {
				break
			}
			r.execLeases(batch)
		}
	}
}

// execLeases writes batch in one pipeline. An attach sets the lease; a
// detach deletes it only while it is still the connection's (so that a
// newer connection's stays; EVAL, not EVALSHA: a pipeline cannot fall back
// on NOSCRIPT, and Redis caches the script by its hash). Each publishes its
// presence event. A failure is best effort: the leases are re-asserted
// once Redis answers again.
func (r *RedisRouter) execLeases(batch []leaseWrite) {
	ctx, cancel := context.WithTimeout(context.Background(), redisOpTimeout)
	defer cancel()
	pipe := r.rdb.Pipeline()
	for _, lw := range batch {
		key, value := presenceKey(lw.c.device.ID), r.node+" "+lw.c.id
		sign := "-"
		if lw.attach {
			sign = "+"
			pipe.Set(ctx, key, value, r.opts.LeaseTTL)
		} else {
			compareAndDelete.Eval(ctx, pipe, []string{key}, value)
		}
		presenceEvent(ctx, pipe, sign, r.node, lw.c.id, string(lw.c.device.ID))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		r.fail("presence", err)
	}
	for _, lw := range batch {
		close(lw.done)
	}
}
