package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// callReads are the reads a call makes (what it rings, the site's
// settings, the members' display names), taken together so a test can
// compare them before and after a write.
type callReads struct {
	ring     map[directory.DeviceID]string // device → name
	ringErr  error
	members  map[directory.UserID]directory.Membership
	settings directory.Settings
}

func readCall(t *testing.T, s directory.Store, site directory.SiteID, n directory.Number) callReads {
	t.Helper()
	ctx := context.Background()
	var r callReads
	ring, err := s.Ringable(ctx, site, n)
	r.ringErr = err
	r.ring = make(map[directory.DeviceID]string, len(ring))
	for _, d := range ring {
		r.ring[d.ID] = d.Name
	}
	ms, err := s.Members(ctx, site, n)
	if err != nil && r.ringErr == nil {
		t.Fatalf("Members(%s) = %v while Ringable found it", n, err)
	}
	r.members = make(map[directory.UserID]directory.Membership, len(ms))
	for _, m := range ms {
		r.members[m.User] = m
	}
	st, err := s.Site(ctx, site)
	must(t, "Site", err)
	r.settings = st.Settings
	return r
}

// testReadsFollowWrites holds a store to reading its own writes: every read
// a call makes, done once before a write (so a store that keeps answers
// has kept them), must show the write as soon as Apply returns. A revoked
// member must never be rung.
func testReadsFollowWrites(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Fresh")
	anna := member(b.site, b.anna, "101")
	settings := b.site.Settings
	for _, step := range []struct {
		name  string
		ops   func() []directory.Op
		check func(t *testing.T, after101, after555 callReads)
	}{
		{"a new call ID", func() []directory.Op {
			return []directory.Op{directory.PutEntry{Entry: directory.Entry{Site: b.site.ID, Number: "555", Name: "New"}}}
		}, func(t *testing.T, _, after555 callReads) {
			if after555.ringErr != nil {
				t.Errorf("Ringable(555) after it was created = %v", after555.ringErr)
			}
		}},
		{"licence withdrawn", func() []directory.Op {
			anna.Licence = directory.LicenceInactive
			return []directory.Op{directory.PutMembership{Membership: anna}}
		}, func(t *testing.T, after, _ callReads) {
			if _, rung := after.ring[b.phone.ID]; rung || after.members[b.anna.ID].Licence != directory.LicenceInactive {
				t.Errorf("after the licence was withdrawn: rings %v, membership %+v", after.ring, after.members[b.anna.ID])
			}
		}},
		{"licence back, display name changed", func() []directory.Op {
			anna.Licence, anna.DisplayName = directory.LicenceActive, "Anna J."
			return []directory.Op{directory.PutMembership{Membership: anna}}
		}, func(t *testing.T, after, _ callReads) {
			if _, rung := after.ring[b.phone.ID]; !rung || after.members[b.anna.ID].DisplayName != "Anna J." {
				t.Errorf("after the licence came back: rings %v, membership %+v", after.ring, after.members[b.anna.ID])
			}
		}},
		{"device renamed", func() []directory.Op {
			d := b.phone
			d.Name = "anna-new-phone"
			return []directory.Op{directory.PutDevice{Device: d}}
		}, func(t *testing.T, after, _ callReads) {
			if after.ring[b.phone.ID] != "anna-new-phone" {
				t.Errorf("after the rename Ringable names the phone %q", after.ring[b.phone.ID])
			}
		}},
		{"site settings", func() []directory.Op {
			site := b.site
			settings.RingTimeout, settings.Preview = 17*time.Second, !settings.Preview
			site.Settings = settings
			return []directory.Op{directory.PutSite{Site: site}}
		}, func(t *testing.T, after, _ callReads) {
			if after.settings != settings {
				t.Errorf("Site settings after the change = %+v, want %+v", after.settings, settings)
			}
		}},
		{"monitor removed", func() []directory.Op {
			return []directory.Op{directory.DeleteDevice{ID: b.monitor.ID}}
		}, func(t *testing.T, after, _ callReads) {
			if _, rung := after.ring[b.monitor.ID]; rung {
				t.Errorf("a deleted monitor is still rung: %v", after.ring)
			}
		}},
		{"member removed", func() []directory.Op {
			return []directory.Op{directory.DeleteMembership{Site: b.site.ID, User: b.anna.ID}}
		}, func(t *testing.T, after, _ callReads) {
			if len(after.ring) != 0 || len(after.members) != 0 {
				t.Errorf("after the last member left: rings %v, members %v", after.ring, after.members)
			}
		}},
		{"call ID deleted", func() []directory.Op {
			return []directory.Op{directory.DeleteEntry{Site: b.site.ID, Number: "555"}}
		}, func(t *testing.T, _, after555 callReads) {
			wantErr(t, "Ringable(555) after it was deleted", after555.ringErr, directory.ErrNotFound)
		}},
	} {
		readCall(t, s, b.site.ID, "101")
		readCall(t, s, b.site.ID, "555")
		apply(t, s, step.ops()...)
		t.Run(step.name, func(t *testing.T) {
			step.check(t, readCall(t, s, b.site.ID, "101"), readCall(t, s, b.site.ID, "555"))
		})
	}

	// What a caller gets is its own: changing it changes no later answer.
	readCall(t, s, b.site.ID, "102")
	apply(t, s, directory.PutMembership{Membership: member(b.site, b.anna, "102")})
	ring, err := s.Ringable(ctx, b.site.ID, "102")
	must(t, "Ringable", err)
	if len(ring) != 1 {
		t.Fatalf("Ringable(102) = %+v, want the phone", ring)
	}
	ring[0].ID, ring[0].Name = "d_forged", "forged"
	ms, err := s.Members(ctx, b.site.ID, "102")
	must(t, "Members", err)
	ms[0].DisplayName = "forged"
	if again := readCall(t, s, b.site.ID, "102"); again.ring[b.phone.ID] != "anna-new-phone" || again.members[b.anna.ID].DisplayName != "Resident 102" {
		t.Errorf("a caller's change to its answer reached the next caller: %+v", again)
	}
}

// testHelloReadsFollowWrites holds a store to the same for the reads a
// connecting device makes (DeviceByToken, Targets): done once before each
// write, they must show it as soon as Apply returns. A replaced token, or
// a deleted device's, must never authenticate again.
func testHelloReadsFollowWrites(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Hello")
	door := doorStation(b.site, "gate")
	door.CallSites = []directory.SiteID{b.site.ID}
	_, phoneHash := directory.NewToken()
	_, doorHash := directory.NewToken()
	apply(t, s, directory.PutDevice{Device: door},
		directory.SetDeviceToken{ID: b.phone.ID, Token: phoneHash},
		directory.SetDeviceToken{ID: door.ID, Token: doorHash})
	_, unknown := directory.NewToken()
	type hello struct {
		phone      directory.Device
		phoneErr   error
		targets    []directory.Target
		unknownErr error
	}
	read := func(t *testing.T) hello {
		t.Helper()
		var h hello
		h.phone, h.phoneErr = s.DeviceByToken(ctx, phoneHash)
		if h.phoneErr == nil {
			var err error
			h.targets, err = s.Targets(ctx, h.phone)
			must(t, "Targets", err)
		}
		_, h.unknownErr = s.DeviceByToken(ctx, unknown)
		return h
	}
	for _, step := range []struct {
		name  string
		ops   func() []directory.Op
		check func(t *testing.T, after hello)
	}{
		{"device renamed", func() []directory.Op {
			d := b.phone
			d.Name = "anna-renamed"
			return []directory.Op{directory.PutDevice{Device: d}}
		}, func(t *testing.T, after hello) {
			if after.phoneErr != nil || after.phone.Name != "anna-renamed" {
				t.Errorf("after the rename the token finds %+v, %v", after.phone, after.phoneErr)
			}
		}},
		{"unknown token given to the device", func() []directory.Op {
			return []directory.Op{directory.SetDeviceToken{ID: b.phone.ID, Token: unknown}}
		}, func(t *testing.T, after hello) {
			wantErr(t, "the replaced token", after.phoneErr, directory.ErrNotFound)
			if after.unknownErr != nil {
				t.Errorf("the token, once asked for when unknown, is refused after it was set: %v", after.unknownErr)
			}
		}},
		{"token back", func() []directory.Op {
			return []directory.Op{directory.SetDeviceToken{ID: b.phone.ID, Token: phoneHash}}
		}, func(t *testing.T, after hello) {
			if after.phoneErr != nil || len(after.targets) != 1 || after.targets[0] != (directory.Target{Site: b.site.ID, Number: "101"}) {
				t.Errorf("after the token came back: %+v, %v, targets %v", after.phone, after.phoneErr, after.targets)
			}
			wantErr(t, "the token replaced again", after.unknownErr, directory.ErrNotFound)
		}},
		{"licence withdrawn", func() []directory.Op {
			m := member(b.site, b.anna, "101")
			m.Licence = directory.LicenceInactive
			return []directory.Op{directory.PutMembership{Membership: m}}
		}, func(t *testing.T, after hello) {
			if len(after.targets) != 0 {
				t.Errorf("after the licence was withdrawn the phone rings for %v", after.targets)
			}
		}},
		{"moved to another call ID", func() []directory.Op {
			return []directory.Op{directory.PutMembership{Membership: member(b.site, b.anna, "102")}}
		}, func(t *testing.T, after hello) {
			if len(after.targets) != 1 || after.targets[0] != (directory.Target{Site: b.site.ID, Number: "102"}) {
				t.Errorf("after the move to 102 the phone rings for %v", after.targets)
			}
		}},
		{"device deleted", func() []directory.Op {
			return []directory.Op{directory.DeleteDevice{ID: b.phone.ID}}
		}, func(t *testing.T, after hello) {
			wantErr(t, "a deleted device's token", after.phoneErr, directory.ErrNotFound)
		}},
	} {
		read(t)
		apply(t, s, step.ops()...)
		t.Run(step.name, func(t *testing.T) { step.check(t, read(t)) })
	}

	// What a caller gets is its own: changing it changes no later answer.
	got, err := s.DeviceByToken(ctx, doorHash)
	must(t, "DeviceByToken", err)
	got.CallSites[0] = "s_forged"
	again, err := s.DeviceByToken(ctx, doorHash)
	must(t, "DeviceByToken", err)
	if again.CallSites[0] != b.site.ID {
		t.Errorf("a caller's change to its device reached the next caller: %+v", again)
	}
}

// testReadsFollowConcurrentWrites races readers of a call ID against a
// writer that withdraws and restores a member's licence: once an Apply has
// returned, no read may show the state before it, however the readers'
// reads interleave with the writes.
func testReadsFollowConcurrentWrites(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Racing")
	anna := member(b.site, b.anna, "101")
	var stop atomic.Bool
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := s.Ringable(ctx, b.site.ID, "101"); err != nil {
					t.Errorf("Ringable: %v", err)
					return
				}
				if _, err := s.Members(ctx, b.site.ID, "101"); err != nil {
					t.Errorf("Members: %v", err)
					return
				}
			}
		})
	}
	defer wg.Wait()
	defer stop.Store(true)
	for i := range 300 {
		revoked := i%2 == 0
		anna.Licence, anna.DisplayName = directory.LicenceActive, fmt.Sprint("Anna ", i)
		if revoked {
			anna.Licence = directory.LicenceInactive
		}
		apply(t, s, directory.PutMembership{Membership: anna})
		got := readCall(t, s, b.site.ID, "101")
		if _, rung := got.ring[b.phone.ID]; rung == revoked || got.members[b.anna.ID].DisplayName != anna.DisplayName {
			t.Fatalf("write %d (licence %s, name %q) returned, then the store read: rings %v, membership %+v",
				i, anna.Licence, anna.DisplayName, got.ring, got.members[b.anna.ID])
		}
	}
}
