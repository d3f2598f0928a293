package directory

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// maxCached bounds each map of readCache about call IDs and sites; past
// it, an entry chosen by map iteration order (effectively at random) makes
// room, so a node calling more distinct IDs than this keeps its memory flat
// and the common ones cached most of the time. maxCachedDevices bounds the
// maps a connecting device reads (its token, its user's call IDs): a node
// holds up to tens of thousands of devices, and all of them reconnect at
// once after a network break.
const (
	maxCached        = 1 << 14
	maxCachedDevices = 1 << 16
)

// readCache keeps the answers of the reads every call makes (Ringable and
// Site when it rings, Members when it is answered) and every connection
// makes (DeviceByToken and Targets in its hello) between writes, so a call
// to an ID called before, or a device connecting again, opens no bbolt
// transaction. An answer is either the value or ErrNotFound (a door station
// with several sites asks each); other errors are not kept, and neither is
// an unknown token, so that hellos with made-up tokens cannot push the
// devices' own out.
//
// Every committed Apply empties it, before Apply returns and before its
// subscribers hear of the change, so a read that starts after a write
// always sees it: a revoked member is never rung from the cache, nor a
// replaced token accepted. A read that raced the write keeps its answer
// only if no write committed since the read began (gen), so it cannot put
// the state before the write back. This holds because the directory's
// buckets are written only by Apply.
type readCache struct {
	mu      sync.Mutex
	gen     uint64 // counts the writes that emptied the maps
	rings   kept[siteNum, []Device]
	members kept[siteNum, []Membership]
	sites   kept[SiteID, Site]
	tokens  kept[TokenHash, Device]
	targets kept[UserID, []Target] // an app device's, which are its user's
}

// siteNum keys the answers about one call ID.
type siteNum struct {
	site   SiteID
	number Number
}

// kept is one kind of answer: its map, guarded by readCache.mu, and its
// bounds.
type kept[K comparable, V any] struct {
	m        map[K]cached[V]
	max      int
	notFound bool // "not found" answers are kept too
}

func newKept[K comparable, V any](max int, notFound bool) kept[K, V] {
	return kept[K, V]{m: make(map[K]cached[V]), max: max, notFound: notFound}
}

// cached is one kept answer.
type cached[V any] struct {
	v   V
	err error
}

func newReadCache() *readCache {
	return &readCache{
		rings:   newKept[siteNum, []Device](maxCached, true),
		members: newKept[siteNum, []Membership](maxCached, true),
		sites:   newKept[SiteID, Site](maxCached, true),
		tokens:  newKept[TokenHash, Device](maxCachedDevices, false),
		targets: newKept[UserID, []Target](maxCachedDevices, true),
	}
}

// invalidate forgets every answer; Apply calls it after each commit.
func (c *readCache) invalidate() {
	c.mu.Lock()
	c.gen++
	clear(c.rings.m)
	clear(c.members.m)
	clear(c.sites.m)
	clear(c.tokens.m)
	clear(c.targets.m)
	c.mu.Unlock()
}

// through returns kind's answer for k, or load's, which it keeps if no
// write committed while load ran; a done ctx gets its error, as a read of
// the store would. load must read in one transaction that begins after it
// is called.
func through[K comparable, V any](ctx context.Context, c *readCache, kind *kept[K, V], k K, load func() (V, error)) (V, error) {
	if err := ctx.Err(); err != nil {
		var zero V
		return zero, err
	}
	c.mu.Lock()
	e, ok := kind.m[k]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return e.v, e.err
	}
	v, err := load()
	if err != nil && (!errors.Is(err, ErrNotFound) || !kind.notFound) {
		return v, err
	}
	c.mu.Lock()
	if c.gen == gen {
		if len(kind.m) >= kind.max {
			for old := range kind.m {
				delete(kind.m, old)
				break
			}
		}
		kind.m[k] = cached[V]{v, err}
	}
	c.mu.Unlock()
	return v, err
}

// throughSlice is through for a slice answer: the caller gets its own copy,
// so changing it cannot change what the next caller gets.
func throughSlice[K comparable, V any](ctx context.Context, c *readCache, kind *kept[K, []V], k K, load func() ([]V, error)) ([]V, error) {
	v, err := through(ctx, c, kind, k, load)
	return slices.Clone(v), err
}
