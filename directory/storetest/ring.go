package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
)

func testRingable(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Ringable")
	tablet := appDevice(b.anna, "anna-tablet")
	pending, inactive, stranger := newUser("pending@example.com"), newUser("inactive@example.com"), newUser("stranger@example.com")
	pm, im := member(b.site, pending, "101"), member(b.site, inactive, "101")
	pm.Status, im.Licence = directory.StatusPending, directory.LicenceInactive
	pendingPhone, inactivePhone, strangerPhone := appDevice(pending, "p"), appDevice(inactive, "i"), appDevice(stranger, "s")
	apply(t, s, directory.PutDevice{Device: tablet},
		directory.PutUser{User: pending}, directory.PutUser{User: inactive}, directory.PutUser{User: stranger},
		directory.PutMembership{Membership: pm}, directory.PutMembership{Membership: im},
		directory.PutMembership{Membership: member(b.site, stranger, "102")},
		directory.PutDevice{Device: pendingPhone}, directory.PutDevice{Device: inactivePhone}, directory.PutDevice{Device: strangerPhone})

	got, err := s.Ringable(ctx, b.site.ID, "101")
	must(t, "Ringable", err)
	want := map[directory.DeviceID]directory.Device{b.phone.ID: b.phone, tablet.ID: tablet, b.monitor.ID: b.monitor}
	if len(got) != len(want) {
		t.Errorf("Ringable(101) = %+v, want %d devices", got, len(want))
	}
	for _, d := range got {
		if !reflect.DeepEqual(d, want[d.ID]) {
			t.Errorf("Ringable(101) returned %+v, want %+v", d, want[d.ID])
		}
	}

	// Activating the pending user makes them ringable.
	pm.Status = directory.StatusActive
	apply(t, s, directory.PutMembership{Membership: pm})
	got, err = s.Ringable(ctx, b.site.ID, "101")
	must(t, "Ringable", err)
	if !deviceIDs(got)[pendingPhone.ID] || deviceIDs(got)[inactivePhone.ID] || len(got) != 4 {
		t.Errorf("Ringable(101) after activation = %+v", got)
	}

	// A number without devices rings nothing; a missing number is not found.
	apply(t, s, directory.PutEntry{Entry: directory.Entry{Site: b.site.ID, Number: "103", Name: "Empty"}})
	got, err = s.Ringable(ctx, b.site.ID, "103")
	must(t, "Ringable(empty)", err)
	if len(got) != 0 {
		t.Errorf("Ringable(103) = %+v, want none", got)
	}
	_, err = s.Ringable(ctx, b.site.ID, "555")
	wantErr(t, "Ringable(missing number)", err, directory.ErrNotFound)
	_, err = s.Ringable(ctx, "s_missing", "101")
	wantErr(t, "Ringable(missing site)", err, directory.ErrNotFound)

	// Removing a device or a membership stops the ringing.
	apply(t, s, directory.DeleteDevice{ID: tablet.ID}, directory.DeleteMembership{Site: b.site.ID, User: pending.ID})
	got, err = s.Ringable(ctx, b.site.ID, "101")
	must(t, "Ringable", err)
	if ids := deviceIDs(got); len(got) != 2 || !ids[b.phone.ID] || !ids[b.monitor.ID] {
		t.Errorf("Ringable(101) after removals = %+v", got)
	}
}

func testDoorDirectory(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Door")
	shown := func(want ...directory.Number) {
		t.Helper()
		got, err := s.DoorDirectory(ctx, b.site.ID)
		must(t, "DoorDirectory", err)
		if len(want) == 0 && len(got) == 0 {
			return
		}
		if !reflect.DeepEqual(numbers(got), want) {
			t.Errorf("DoorDirectory = %v, want %v", numbers(got), want)
		}
		for _, e := range got {
			if e.Site != b.site.ID || e.Name == "" {
				t.Errorf("DoorDirectory entry %+v", e)
			}
		}
	}
	shown("101")
	bram := newUser("bram@example.com")
	m := member(b.site, bram, "102")
	m.Status = directory.StatusPending
	apply(t, s, directory.PutUser{User: bram}, directory.PutMembership{Membership: m})
	shown("101") // a pending member is not shown
	m.Status, m.Licence = directory.StatusActive, directory.LicenceInactive
	apply(t, s, directory.PutMembership{Membership: m})
	shown("101") // nor one without a licence
	m.Licence = directory.LicenceActive
	apply(t, s, directory.PutMembership{Membership: m})
	shown("101", "102")
	apply(t, s, directory.DeleteMembership{Site: b.site.ID, User: b.anna.ID})
	shown("101", "102") // the monitor keeps 101 on the door station
	apply(t, s, directory.DeleteDevice{ID: b.monitor.ID})
	shown("102")
	apply(t, s, directory.PutEntry{Entry: directory.Entry{Site: b.site.ID, Number: "2", Name: "Caretaker"}},
		directory.PutDevice{Device: monitor(b.site, "2", "hall-2")})
	shown("2", "102")
	m.Number = "101"
	apply(t, s, directory.PutMembership{Membership: m})
	shown("2", "101")
}

func testTargets(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Targets")
	other := newBuilding(t, s, "Other Targets")
	third := newBuilding(t, s, "Third Targets")
	m := member(other.site, b.anna, "102")
	p := member(third.site, b.anna, "102")
	p.Status = directory.StatusPending
	front := doorStation(b.site, "front-door")
	apply(t, s, directory.PutMembership{Membership: m}, directory.PutMembership{Membership: p}, directory.PutDevice{Device: front})

	got, err := s.Targets(ctx, b.phone)
	must(t, "Targets(app)", err)
	want := map[directory.Target]bool{{Site: b.site.ID, Number: "101"}: true, {Site: other.site.ID, Number: "102"}: true}
	if len(got) != len(want) || !want[got[0]] || !want[got[1]] {
		t.Errorf("Targets(app) = %+v, want %v", got, want)
	}
	got, err = s.Targets(ctx, b.monitor)
	must(t, "Targets(monitor)", err)
	if !reflect.DeepEqual(got, []directory.Target{{Site: b.site.ID, Number: "101"}}) {
		t.Errorf("Targets(monitor) = %+v", got)
	}
	got, err = s.Targets(ctx, front)
	must(t, "Targets(door station)", err)
	if len(got) != 0 {
		t.Errorf("Targets(door station) = %+v, want none", got)
	}
}

// testPrefixIDs gives two sites and two users IDs of which one starts
// with the other ("s_pre" and "s_prefix", "u_pre" and "u_prefix"), which
// checkID allows: a store keying records by ID must keep them apart, so
// that a call to one user's call ID rings none of the other's devices, a
// device rings for its own user's call IDs only, and the lists show each
// its own.
func testPrefixIDs(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	short, long := newSite("Pre"), newSite("Prefix")
	short.ID, long.ID = "s_pre", "s_prefix"
	pre, prefix := newUser("pre@example.com"), newUser("prefix@example.com")
	pre.ID, prefix.ID = "u_pre", "u_prefix"
	prePhone, prefixPhone := appDevice(pre, "phone"), appDevice(prefix, "phone")
	preHall, prefixHall := monitor(short, "1", "hall"), monitor(long, "1", "hall")
	apply(t, s,
		directory.PutSite{Site: short}, directory.PutSite{Site: long},
		directory.PutEntry{Entry: directory.Entry{Site: short.ID, Number: "1", Name: "One"}},
		directory.PutEntry{Entry: directory.Entry{Site: long.ID, Number: "1", Name: "One"}},
		directory.PutEntry{Entry: directory.Entry{Site: long.ID, Number: "2", Name: "Two"}},
		directory.PutUser{User: pre}, directory.PutUser{User: prefix},
		directory.PutMembership{Membership: member(short, pre, "1")},
		directory.PutMembership{Membership: member(long, prefix, "1")},
		directory.PutDevice{Device: prePhone}, directory.PutDevice{Device: prefixPhone},
		directory.PutDevice{Device: preHall}, directory.PutDevice{Device: prefixHall},
	)
	for _, c := range []struct {
		site directory.Site
		want []directory.DeviceID
	}{
		{short, []directory.DeviceID{prePhone.ID, preHall.ID}},
		{long, []directory.DeviceID{prefixPhone.ID, prefixHall.ID}},
	} {
		ring, err := s.Ringable(ctx, c.site.ID, "1")
		must(t, "Ringable", err)
		if ids := deviceIDs(ring); len(ring) != 2 || !ids[c.want[0]] || !ids[c.want[1]] {
			t.Errorf("Ringable(1) of %s = %+v, want its own phone and monitor only", c.site.ID, ring)
		}
	}
	targets, err := s.Targets(ctx, prePhone)
	must(t, "Targets", err)
	if !reflect.DeepEqual(targets, []directory.Target{{Site: short.ID, Number: "1"}}) {
		t.Errorf("Targets of u_pre's phone = %+v, want 1 of s_pre only", targets)
	}
	ms, err := s.Memberships(ctx, pre.ID)
	must(t, "Memberships", err)
	if len(ms) != 1 || ms[0].Site != short.ID {
		t.Errorf("Memberships(u_pre) = %+v, want its one in s_pre", ms)
	}
	ds, err := s.UserDevices(ctx, pre.ID)
	must(t, "UserDevices", err)
	if len(ds) != 1 || ds[0].ID != prePhone.ID {
		t.Errorf("UserDevices(u_pre) = %+v, want its phone only", ds)
	}
	es, err := s.Entries(ctx, short.ID)
	must(t, "Entries", err)
	if !reflect.DeepEqual(numbers(es), []directory.Number{"1"}) {
		t.Errorf("Entries(s_pre) = %+v, want 1 only", es)
	}
	sm, err := s.SiteMembers(ctx, short.ID)
	must(t, "SiteMembers", err)
	if len(sm) != 1 || sm[0].User != pre.ID {
		t.Errorf("SiteMembers(s_pre) = %+v, want u_pre only", sm)
	}
	ds, err = s.SiteDevices(ctx, short.ID)
	must(t, "SiteDevices", err)
	if len(ds) != 1 || ds[0].ID != preHall.ID {
		t.Errorf("SiteDevices(s_pre) = %+v, want its monitor only", ds)
	}
	n, err := s.CountMembers(ctx, short.ID)
	must(t, "CountMembers", err)
	if n != 1 {
		t.Errorf("CountMembers(s_pre) = %d, want 1", n)
	}
}
