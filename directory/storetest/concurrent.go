package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
)

// testConcurrent races writers against readers: the limit must hold and
// the counters must add up whatever the interleaving.
func testConcurrent(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Busy")
	const writers = 10 // more than MaxUsersPerNumber, all on 102
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Go(func() {
			u := newUser(fmt.Sprintf("racer%d@example.com", i))
			errs <- s.Apply(ctx, directory.PutUser{User: u},
				directory.PutMembership{Membership: member(b.site, u, "102")},
				directory.PutDevice{Device: appDevice(u, "phone")})
		})
		wg.Go(func() {
			if _, err := s.Ringable(ctx, b.site.ID, "102"); err != nil {
				t.Errorf("Ringable: %v", err)
			}
			if _, err := s.DoorDirectory(ctx, b.site.ID); err != nil {
				t.Errorf("DoorDirectory: %v", err)
			}
		})
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case !isLimit(err):
			t.Errorf("Apply: %v", err)
		}
	}
	if ok != directory.MaxUsersPerNumber {
		t.Errorf("%d of %d racing users joined call ID 102, want %d", ok, writers, directory.MaxUsersPerNumber)
	}
	ring, err := s.Ringable(ctx, b.site.ID, "102")
	must(t, "Ringable", err)
	n, err := s.CountMembers(ctx, b.site.ID)
	must(t, "CountMembers", err)
	if len(ring) != directory.MaxUsersPerNumber || n != directory.MaxUsersPerNumber+1 {
		t.Errorf("after the race: 102 rings %d devices and the site has %d members", len(ring), n)
	}
}
