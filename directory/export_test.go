package directory

import "context"

// RingableFromStore is Ringable without the read cache, for the benchmark
// that measures the bbolt read itself.
func (b *Bolt) RingableFromStore(ctx context.Context, site SiteID, number Number) ([]Device, error) {
	return b.ringable(ctx, site, number)
}

// KeptTokens is how many DeviceByToken answers the read cache holds.
func (b *Bolt) KeptTokens() int {
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	return len(b.cache.tokens.m)
}

// CallersKey is the Redis key of site's callers index, for the test that
// reads it while a door changes.
func (r *Redis) CallersKey(site SiteID) string { return r.keys.callers(site) }

// SiteDevicesKey is the Redis key of site's index of door stations and
// monitors, for the test that reads it while a device moves.
func (r *Redis) SiteDevicesKey(site SiteID) string { return r.keys.siteDevices(site) }

// KeptRings is how many Ringable answers the read cache holds.
func (b *Bolt) KeptRings() int {
	b.cache.mu.Lock()
	defer b.cache.mu.Unlock()
	return len(b.cache.rings.m)
}

// MaxCached is how many answers of each kind about call IDs and sites the
// read cache keeps.
const MaxCached = maxCached
