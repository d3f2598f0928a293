package directory

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// maxCached bounds each map of readCache. Past it, an entry chosen by map
// iteration order (effectively at random) makes room, so a node calling
// more distinct IDs than this keeps its memory flat and the common ones
// cached most of the time.
const maxCached = 1 << 14

// readCache keeps the answers of the reads every call makes (Ringable and
// Site when it rings, Members when it is answered) between writes, so a
// call to an ID called before opens no bbolt transaction. An answer is
// either the value or ErrNotFound (a door station with several sites asks
// each); other errors are not kept.
//
// Every committed Apply empties it, before Apply returns and before its
// subscribers hear of the change, so a read that starts after a write
// always sees it: a revoked member is never rung from the cache. A read
// that raced the write keeps its answer only if no write committed since
// the read began (gen), so it cannot put the state before the write back.
// This holds because the directory's buckets are written only by Apply.
type readCache struct {
	mu      sync.Mutex
	gen     uint64 // counts the writes that emptied the maps
	rings   map[siteNum]cached[[]Device]
	members map[siteNum]cached[[]Membership]
	sites   map[SiteID]cached[Site]
}

// siteNum keys the answers about one call ID.
type siteNum struct {
	site   SiteID
	number Number
}

// cached is one kept answer.
type cached[V any] struct {
	v   V
	err error
}

func newReadCache() *readCache {
	return &readCache{
		rings:   make(map[siteNum]cached[[]Device]),
		members: make(map[siteNum]cached[[]Membership]),
		sites:   make(map[SiteID]cached[Site]),
	}
}

// invalidate forgets every answer; Apply calls it after each commit.
func (c *readCache) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.rings)
	clear(c.members)
	clear(c.sites)
	c.mu.Unlock()
}

// through returns m's answer for k, or load's, which it keeps in m if no
// write committed while load ran; a done ctx gets its error, as a read of
// the store would. load must read in one transaction that begins after it
// is called.
func through[K comparable, V any](ctx context.Context, c *readCache, m map[K]cached[V], k K, load func() (V, error)) (V, error) {
	if err := ctx.Err(); err != nil {
		var zero V
		return zero, err
	}
	c.mu.Lock()
	e, ok := m[k]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return e.v, e.err
	}
	v, err := load()
	if err != nil && !errors.Is(err, ErrNotFound) {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(m) >= maxCached {
			for old := range m {
				delete(m, old)
				break
			}
		}
		m[k] = cached[V]{v, err}
	}
	c.mu.Unlock()
	return v, err
}

// throughSlice is through for a slice answer: the caller gets its own copy,
// so changing it cannot change what the next caller gets.
func throughSlice[K comparable, V any](ctx context.Context, c *readCache, m map[K]cached[[]V], k K, load func() ([]V, error)) ([]V, error) {
	v, err := through(ctx, c, m, k, load)
	return slices.Clone(v), err
}
