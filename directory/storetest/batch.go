package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// changeWait is how long Subscribe tests wait for a change: stores may
// deliver asynchronously (through Redis pub/sub, for instance).
const changeWait = 5 * time.Second

func testAtomicity(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Atomic")
	site := newSite("Never")
	u := newUser("never@example.com")
	d := appDevice(u, "never-phone")
	_, hash := directory.NewToken()
	ms := b.monitor
	ms.Name = "renamed-in-vain"
	ops := []directory.Op{
		directory.PutSite{Site: site},
		directory.PutEntry{Entry: directory.Entry{Site: site.ID, Number: "1", Name: "One"}},
		directory.PutUser{User: u},
		directory.PutMembership{Membership: member(site, u, "1")},
		directory.PutDevice{Device: d},
		directory.SetDeviceToken{ID: d.ID, Token: hash},
		directory.PutDevice{Device: ms},
		directory.DeleteMembership{Site: b.site.ID, User: b.anna.ID},
		directory.PutEntry{Entry: directory.Entry{Site: site.ID, Number: "12a", Name: "Broken"}}, // breaks a rule
	}
	err := applyErr(t, s, directory.ErrInvalid, []string{"op 8", "12a"}, ops...)
	t.Logf("refused batch: %v", err)

	_, err = s.Site(ctx, site.ID)
	wantErr(t, "Site(refused)", err, directory.ErrNotFound)
	_, err = s.SiteByName(ctx, "", "Never")
	wantErr(t, "SiteByName(refused)", err, directory.ErrNotFound)
	_, err = s.UserByEmail(ctx, u.Email)
	wantErr(t, "UserByEmail(refused)", err, directory.ErrNotFound)
	_, err = s.Device(ctx, d.ID)
	wantErr(t, "Device(refused)", err, directory.ErrNotFound)
	_, err = s.DeviceByToken(ctx, hash)
	wantErr(t, "DeviceByToken(refused)", err, directory.ErrNotFound)
	got, err := s.Device(ctx, b.monitor.ID)
	must(t, "Device(monitor)", err)
	if got.Name != b.monitor.Name {
		t.Errorf("monitor renamed by a refused batch: %+v", got)
	}
	n, err := s.CountMembers(ctx, b.site.ID)
	must(t, "CountMembers", err)
	if n != 1 {
		t.Errorf("CountMembers = %d after a refused batch, want 1", n)
	}
	ring, err := s.Ringable(ctx, b.site.ID, "101")
	must(t, "Ringable", err)
	if len(ring) != 2 {
		t.Errorf("Ringable after a refused batch = %+v", ring)
	}
	// The same batch without the broken op applies.
	apply(t, s, ops[:len(ops)-1]...)
	_, err = s.DeviceByToken(ctx, hash)
	must(t, "DeviceByToken", err)
	must(t, "Apply(no ops)", s.Apply(ctx))
}

// recorder collects changes from a subscription.
type recorder struct {
	mu      sync.Mutex
	changes []directory.Change
}

func (r *recorder) add(c directory.Change) {
	r.mu.Lock()
	r.changes = append(r.changes, c)
	r.mu.Unlock()
}

// waitFor waits until a change matching want has arrived.
func (r *recorder) waitFor(t *testing.T, want directory.Change) {
	t.Helper()
	deadline := time.Now().Add(changeWait)
	for {
		r.mu.Lock()
		for _, c := range r.changes {
			if c == want {
				r.mu.Unlock()
				return
			}
		}
		got := append([]directory.Change(nil), r.changes...)
		r.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no change %+v within %v; got %+v", want, changeWait, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.changes = nil
	r.mu.Unlock()
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.changes)
}

func testSubscribe(t *testing.T, newStore func(t *testing.T) directory.Store) {
	s := newStore(t)
	var rec, late recorder
	cancel := s.Subscribe(rec.add)
	b := newBuilding(t, s, "Subscribed")
	rec.waitFor(t, directory.Change{Site: b.site.ID})
	rec.waitFor(t, directory.Change{Device: b.phone.ID})
	rec.waitFor(t, directory.Change{Device: b.monitor.ID})

	noPreview := b.site
	noPreview.Settings.Preview = !noPreview.Settings.Preview
	steps := []struct {
		name string
		op   directory.Op
		want directory.Change
	}{
		{"site settings", directory.PutSite{Site: noPreview}, directory.Change{Site: b.site.ID}},
		{"entry", directory.PutEntry{Entry: directory.Entry{Site: b.site.ID, Number: "102", Name: "Renamed"}}, directory.Change{Site: b.site.ID}},
		{"membership", directory.PutMembership{Membership: member(b.site, b.anna, "102")}, directory.Change{Site: b.site.ID}},
		{"membership names the user", directory.PutMembership{Membership: member(b.site, b.anna, "101")}, directory.Change{User: b.anna.ID}},
		{"removal names the user", directory.DeleteMembership{Site: b.site.ID, User: b.anna.ID}, directory.Change{User: b.anna.ID}},
		{"token", directory.SetDeviceToken{ID: b.phone.ID, Token: directory.HashToken("x")}, directory.Change{Device: b.phone.ID}},
		{"device of a site", directory.DeleteDevice{ID: b.monitor.ID}, directory.Change{Site: b.site.ID}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			rec.reset()
			apply(t, s, st.op)
			rec.waitFor(t, st.want)
		})
	}

	// A refused batch notifies nobody; a cancelled subscription hears nothing.
	rec.reset()
	applyErr(t, s, directory.ErrInvalid, nil,
		directory.PutEntry{Entry: directory.Entry{Site: b.site.ID, Number: "5", Name: "Five"}},
		directory.PutEntry{Entry: directory.Entry{Site: b.site.ID, Number: "x", Name: "Bad"}})
	cancel()
	cancel() // idempotent
	stopLate := s.Subscribe(late.add)
	defer stopLate()
	apply(t, s, directory.PutEntry{Entry: directory.Entry{Site: b.site.ID, Number: "6", Name: "Six"}})
	late.waitFor(t, directory.Change{Site: b.site.ID})
	if n := rec.len(); n != 0 {
		t.Errorf("got %d changes after a refused batch and a cancelled subscription", n)
	}
}

// testSubscribersReadTheWrite: a subscriber that reads the store when it
// hears of a change (as the signalling server re-reads a device and what
// it rings for) reads the state after the change, even where the store
// kept the answers of the same reads made before it.
func testSubscribersReadTheWrite(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Heard")
	_, hash := directory.NewToken()
	apply(t, s, directory.SetDeviceToken{ID: b.phone.ID, Token: hash})
	type heard struct {
		tokenErr error
		ring     map[directory.DeviceID]bool
	}
	got := make(chan heard, 1)
	defer s.Subscribe(func(c directory.Change) {
		if c.Device != b.phone.ID {
			return
		}
		var h heard
		_, h.tokenErr = s.DeviceByToken(ctx, hash)
		ring, err := s.Ringable(ctx, b.site.ID, "101")
		if err != nil {
			t.Errorf("Ringable when the deletion was heard: %v", err)
		}
		h.ring = deviceIDs(ring)
		select {
		case got <- h:
		default:
		}
	})()
	// The same reads before the change, which a store may keep.
	_, err := s.DeviceByToken(ctx, hash)
	must(t, "DeviceByToken", err)
	ring, err := s.Ringable(ctx, b.site.ID, "101")
	must(t, "Ringable", err)
	if !deviceIDs(ring)[b.phone.ID] {
		t.Fatalf("Ringable(101) = %+v, want the phone", ring)
	}

	apply(t, s, directory.DeleteDevice{ID: b.phone.ID})
	select {
	case h := <-got:
		wantErr(t, "the deleted phone's token, read when its deletion was heard", h.tokenErr, directory.ErrNotFound)
		if h.ring[b.phone.ID] || !h.ring[b.monitor.ID] {
			t.Errorf("when the phone's deletion was heard, 101 rang %v", h.ring)
		}
	case <-time.After(changeWait):
		t.Fatalf("the phone's deletion was not heard within %v", changeWait)
	}
}

func testCancelled(t *testing.T, newStore func(t *testing.T) directory.Store) {
	s := newStore(t)
	b := newBuilding(t, s, "Cancelled")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := map[string]func() error{
		"Apply":         func() error { return s.Apply(ctx, directory.PutSite{Site: newSite("Late")}) },
		"Site":          func() error { _, err := s.Site(ctx, b.site.ID); return err },
		"SiteByName":    func() error { _, err := s.SiteByName(ctx, "", b.site.Name); return err },
		"Sites":         func() error { _, err := s.Sites(ctx); return err },
		"Entries":       func() error { _, err := s.Entries(ctx, b.site.ID); return err },
		"DoorDirectory": func() error { _, err := s.DoorDirectory(ctx, b.site.ID); return err },
		"UserByEmail":   func() error { _, err := s.UserByEmail(ctx, b.anna.Email); return err },
		"Members":       func() error { _, err := s.Members(ctx, b.site.ID, "101"); return err },
		"Memberships":   func() error { _, err := s.Memberships(ctx, b.anna.ID); return err },
		"CountMembers":  func() error { _, err := s.CountMembers(ctx, b.site.ID); return err },
		"Device":        func() error { _, err := s.Device(ctx, b.phone.ID); return err },
		"DeviceByName": func() error {
			_, err := s.DeviceByName(ctx, directory.KindApp, string(b.anna.ID), "anna-phone")
			return err
		},
		"DeviceByToken": func() error { _, err := s.DeviceByToken(ctx, directory.HashToken("x")); return err },
		"Ringable":      func() error { _, err := s.Ringable(ctx, b.site.ID, "101"); return err },
		"Targets":       func() error { _, err := s.Targets(ctx, b.phone); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context = %v, want context.Canceled", name, err)
		}
	}
	_, err := s.SiteByName(context.Background(), "", "Late")
	if !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("a cancelled Apply wrote: %v", err)
	}
}
