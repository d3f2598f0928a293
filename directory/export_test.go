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
