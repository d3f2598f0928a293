package directory

import "context"

// RingableFromStore is Ringable without the read cache, for the benchmark
// that measures the bbolt read itself.
func (b *Bolt) RingableFromStore(ctx context.Context, site SiteID, number Number) ([]Device, error) {
	return b.ringable(ctx, site, number)
}
