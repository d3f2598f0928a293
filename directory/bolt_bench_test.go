package directory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/directory/storetest"
)

// benchSite fills a store with a full site (59,994 app users, six per call
// ID, one app device each) once per benchmark.
func benchSite(b *testing.B) (*directory.Bolt, storetest.Filled) {
	b.Helper()
	s := openBolt(b)
	start := time.Now()
	f := storetest.FillSite(b, s, "Benchmark Towers", directory.MaxUsersPerSite)
	b.Logf("setup: %d users in %v", directory.MaxUsersPerSite, time.Since(start))
	return s, f
}

// BenchmarkRingable measures the call hot path in a full site: the six app
// devices of one call ID among 59,994, read from bbolt (store) and, for a
// call ID called before with no write since, from the read cache (cached).
func BenchmarkRingable(b *testing.B) {
	s, f := benchSite(b)
	ctx := context.Background()
	ids := storetest.FillNumbers(directory.MaxUsersPerSite)
	numbers := make([]directory.Number, ids)
	for i := range numbers {
		numbers[i] = directory.Number(fmt.Sprint(i + 1))
	}
	for _, bc := range []struct {
		name string
		read func(context.Context, directory.SiteID, directory.Number) ([]directory.Device, error)
	}{{"store", s.RingableFromStore}, {"cached", s.Ringable}} {
		b.Run(bc.name, func(b *testing.B) {
			for _, n := range numbers { // every ID called once: cached measures hits only
				if _, err := bc.read(ctx, f.Site.ID, n); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ds, err := bc.read(ctx, f.Site.ID, numbers[i%ids])
				if err != nil || len(ds) != directory.MaxUsersPerNumber {
					b.Fatalf("Ringable(%s) = %d devices, %v", numbers[i%ids], len(ds), err)
				}
				i += 7919 // stride across the site, not along one page
			}
		})
	}
}

// BenchmarkDeviceByToken measures authenticating a hello among 59,994 devices.
func BenchmarkDeviceByToken(b *testing.B) {
	s, f := benchSite(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := s.DeviceByToken(ctx, f.Tokens[i%len(f.Tokens)]); err != nil {
			b.Fatalf("DeviceByToken: %v", err)
		}
		i += 7919
	}
}

// BenchmarkCallingDoors measures the scan behind CallingDoors: 10,000 door
// stations over 1,000 sites, ten of which call the site read.
func BenchmarkCallingDoors(b *testing.B) {
	s := openBolt(b)
	ctx := context.Background()
	called := directory.Site{ID: "s_called", Name: "Called", Settings: directory.DefaultSettings()}
	ops := []directory.Op{directory.PutSite{Site: called}}
	for i := range 1000 {
		site := directory.Site{ID: directory.SiteID(fmt.Sprintf("s_%d", i)), Name: fmt.Sprintf("Site %d", i), Settings: directory.DefaultSettings()}
		ops = append(ops, directory.PutSite{Site: site})
		for j := range 10 {
			d := directory.Device{ID: directory.DeviceID(fmt.Sprintf("d_%d_%d", i, j)), Kind: directory.KindDoorStation, Name: fmt.Sprintf("door %d", j), Site: site.ID}
			if j == 0 && i%100 == 0 {
				d.CallSites = []directory.SiteID{called.ID}
			}
			ops = append(ops, directory.PutDevice{Device: d})
		}
	}
	if err := s.Apply(ctx, ops...); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if ds, err := s.CallingDoors(ctx, called.ID); err != nil || len(ds) != 10 {
			b.Fatalf("CallingDoors = %d doors, %v", len(ds), err)
		}
	}
}
