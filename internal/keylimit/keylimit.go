// Package keylimit bounds how fast each of many keys (a client address, a
// person) may do something: a token bucket per key, created at the key's
// first use and forgotten once it has been idle long enough to be full
// again, so that memory stays proportional to the keys seen lately.
package keylimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sweepEvery bounds how often idle keys are swept.
const sweepEvery = 10 * time.Second

// Limiter is a token bucket per key: rate per second, up to burst at once.
type Limiter[K comparable] struct {
	// Immutable after construction.
	rate  rate.Limit
	burst int
	idle  time.Duration

	mu        sync.Mutex
	entries   map[K]*entry // guarded by mu
	lastSweep time.Time    // guarded by mu
}

type entry struct {
	lim  *rate.Limiter
	seen time.Time
}

// New returns a limiter allowing each key perSecond, up to burst at once.
// A key unused for idle is forgotten; idle must be at least the time a
// bucket takes to fill (burst / perSecond), or forgetting would let a key
// in early.
func New[K comparable](perSecond float64, burst int, idle time.Duration) *Limiter[K] {
	return &Limiter[K]{rate: rate.Limit(perSecond), burst: burst, idle: idle, entries: make(map[K]*entry)}
}

// Allow reports whether key may go ahead at now (taking a token), and if
// not, how long until it may.
func (l *Limiter[K]) Allow(key K, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > sweepEvery {
		for k, e := range l.entries {
			if now.Sub(e.seen) > l.idle {
				delete(l.entries, k)
			}
		}
		l.lastSweep = now
	}
	e := l.entries[key]
	if e == nil {
		e = &entry{lim: rate.NewLimiter(l.rate, l.burst)}
		l.entries[key] = e
	}
	e.seen = now
	res := e.lim.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// Len is how many keys are tracked.
func (l *Limiter[K]) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}
