package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// testConcurrentHellos has every device of a site say hello at once, as
// after a network break: each reads the device its token names and what
// its user rings for (the Redis store shares pipelines between them), and
// each must get its own answers; an unknown token among them is not found.
func testConcurrentHellos(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	const users = 600
	f := FillSite(t, s, "Hello", users)
	var wg sync.WaitGroup
	for i, tok := range f.Tokens {
		wg.Go(func() {
			d, err := s.DeviceByToken(ctx, tok)
			if err != nil {
				t.Errorf("user %d: DeviceByToken: %v", i, err)
				return
			}
			if want := fmt.Sprintf("user%d@%s.example", i, f.Site.ID); d.Kind != directory.KindApp || d.Name != "phone" || !ownedBy(ctx, s, d, want) {
				t.Errorf("user %d's token names %+v, not user %d's phone", i, d, i)
				return
			}
			targets, err := s.Targets(ctx, d)
			want := directory.Number(fmt.Sprint(i/directory.MaxUsersPerNumber + 1))
			if err != nil || len(targets) != 1 || targets[0].Site != f.Site.ID || targets[0].Number != want {
				t.Errorf("user %d rings for %v (%v), want %s of %s", i, targets, err, want, f.Site.ID)
			}
		})
		if i%100 == 0 {
			wg.Go(func() {
				if _, err := s.DeviceByToken(ctx, directory.HashToken(fmt.Sprintf("unknown-%d", i))); !errors.Is(err, directory.ErrNotFound) {
					t.Errorf("an unknown token: %v, want ErrNotFound", err)
				}
			})
		}
	}
	wg.Wait()
}

// ownedBy reports whether app device d belongs to the user with email.
func ownedBy(ctx context.Context, s directory.Store, d directory.Device, email string) bool {
	u, err := s.User(ctx, d.User)
	return err == nil && u.Email == strings.ToLower(email)
}
