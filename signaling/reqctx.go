package signaling

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// requestContext is the context of one message's handling: done at its
// deadline, or when the handling ends (stop). It is what
// context.WithTimeout(context.Background(), timeout) gives, except that its
// timer starts only when something asks for Done: most messages wait on
// nothing (on one node, a call reads the directory from memory and writes
// to sockets that never block it), and a timer set and stopped per message
// cost a call about 2 % of its CPU. Deadline and Err need no timer: a
// Redis client sets its socket deadlines from Deadline, and a read from
// memory checks Err.
type requestContext struct {
	deadline time.Time

	once  sync.Once
	made  atomic.Bool        // ctx is set
	ctx   context.Context    // set once: timed, or stopped if stop came first
	timer context.CancelFunc // ctx's, if timed
}

// newRequestContext is the context of a request that must be handled by
// deadline (the time it was received plus the request timeout: the caller
// has read the clock already).
func newRequestContext(deadline time.Time) *requestContext {
	return &requestContext{deadline: deadline}
}

// stoppedContext is the context of a request that ended before anything
// asked for its Done.
var stoppedContext = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// timed returns the context that Done and Err report, started on first use.
func (r *requestContext) timed() context.Context {
	r.once.Do(func() {
		r.ctx, r.timer = context.WithDeadline(context.Background(), r.deadline)
		r.made.Store(true)
	})
	return r.ctx
}

// stop ends the request: its context is done (canceled) from now on, and
// its timer, if one started, is stopped.
func (r *requestContext) stop() {
	r.once.Do(func() {
		r.ctx = stoppedContext
		r.made.Store(true)
	})
	if r.timer != nil {
		r.timer()
	}
}

// Deadline implements context.Context.
func (r *requestContext) Deadline() (time.Time, bool) { return r.deadline, true }

// Done implements context.Context.
func (r *requestContext) Done() <-chan struct{} { return r.timed().Done() }

// Err implements context.Context: nil before the deadline unless the
// request ended, without starting a timer.
func (r *requestContext) Err() error {
	if !r.made.Load() && time.Now().Before(r.deadline) {
		return nil
	}
	return r.timed().Err()
}

// Value implements context.Context: a request carries no values.
func (r *requestContext) Value(any) any { return nil }
