package directory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/directory/storetest"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// BenchmarkRedisRingable measures the call hot path on a single local
// redis-server in a full site (59,994 app users, six per call ID), beside
// the floor it cannot beat: a raw GET of a value of the same size, one
// round trip through the same client. DeviceByToken (authenticating a
// hello) rides along on the same site.
func BenchmarkRedisRingable(b *testing.B) {
	client := redisClient(b, redistest.Start(b))
	s := newRedisStore(b, client, uniquePrefix())
	ctx := context.Background()
	start := time.Now()
	f := storetest.FillSite(b, s, "Benchmark Towers", directory.MaxUsersPerSite)
	b.Logf("setup: %d users in %v", directory.MaxUsersPerSite, time.Since(start))
	ids := storetest.FillNumbers(directory.MaxUsersPerSite)
	numbers := make([]directory.Number, ids)
	for i := range numbers {
		numbers[i] = directory.Number(fmt.Sprint(i + 1))
	}

	b.Run("Ringable", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ds, err := s.Ringable(ctx, f.Site.ID, numbers[i%ids])
			if err != nil || len(ds) != directory.MaxUsersPerNumber {
				b.Fatalf("Ringable(%s) = %d devices, %v", numbers[i%ids], len(ds), err)
			}
			i += 7919 // stride across the site
		}
	})
	b.Run("DeviceByToken", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.DeviceByToken(ctx, f.Tokens[i%len(f.Tokens)]); err != nil {
				b.Fatalf("DeviceByToken: %v", err)
			}
			i += 7919
		}
	})
	b.Run("RawGET", func(b *testing.B) {
		// A value the size of one ring record: six app devices.
		const key = "bench-raw-get"
		if err := client.Set(ctx, key, make([]byte, 6*46), 0).Err(); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := client.Get(ctx, key).Bytes(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
