package storetest

import (
	"context"
	"fmt"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
)

// testLists checks the listings the admin API reads: User, SiteMembers,
// SiteDevices and UserDevices, through creates, moves and deletes.
func testLists(t *testing.T, newStore func(t *testing.T) directory.Store) {
	s := newStore(t)
	ctx := context.Background()
	b := newBuilding(t, s, "List Court")
	other := newBuilding(t, s, "Other Court")
	door := doorStation(b.site, "gate")
	bob := newUser("bob@example.com")
	tablet := appDevice(bob, "bob-tablet")
	apply(t, s,
		directory.PutDevice{Device: door},
		directory.PutUser{User: bob},
		directory.PutEntry{Entry: directory.Entry{Site: other.site.ID, Number: "9", Name: "Nine"}},
		directory.PutMembership{Membership: member(b.site, bob, "102")},
		directory.PutMembership{Membership: member(other.site, bob, "9")},
		directory.PutDevice{Device: tablet},
	)

	u, err := s.User(ctx, bob.ID)
	must(t, "User", err)
	if u != bob {
		t.Errorf("User: %+v, want %+v", u, bob)
	}
	_, err = s.User(ctx, "u_nobody")
	wantErr(t, "User of an unknown ID", err, directory.ErrNotFound)

	ms, err := s.SiteMembers(ctx, b.site.ID)
	must(t, "SiteMembers", err)
	if got, want := memberList(ms), fmt.Sprintf("[101:%s 102:%s]", b.anna.ID, bob.ID); got != want {
		t.Errorf("SiteMembers: %s, want %s", got, want)
	}
	_, err = s.SiteMembers(ctx, "s_nowhere")
	wantErr(t, "SiteMembers of an unknown site", err, directory.ErrNotFound)

	ds, err := s.SiteDevices(ctx, b.site.ID)
	must(t, "SiteDevices", err)
	if got := deviceIDs(ds); len(ds) != 2 || !got[door.ID] || !got[b.monitor.ID] {
		t.Errorf("SiteDevices: %v, want the door station and the monitor only", ds)
	}
	ds, err = s.UserDevices(ctx, bob.ID)
	must(t, "UserDevices", err)
	if len(ds) != 1 || ds[0].ID != tablet.ID || ds[0].Name != tablet.Name || ds[0].User != bob.ID {
		t.Errorf("UserDevices: %+v, want [%+v]", ds, tablet)
	}
	_, err = s.UserDevices(ctx, "u_nobody")
	wantErr(t, "UserDevices of an unknown user", err, directory.ErrNotFound)

	// A monitor moved to another site leaves this one's list; a deleted
	// door station leaves it too.
	moved := b.monitor
	moved.Site, moved.Number, moved.Name = other.site.ID, "101", "hall-101-b"
	apply(t, s, directory.PutDevice{Device: moved}, directory.DeleteDevice{ID: door.ID}, directory.DeleteMembership{Site: b.site.ID, User: bob.ID})
	ds, err = s.SiteDevices(ctx, b.site.ID)
	must(t, "SiteDevices after changes", err)
	if len(ds) != 0 {
		t.Errorf("SiteDevices after moving and deleting: %v, want none", ds)
	}
	ds, err = s.SiteDevices(ctx, other.site.ID)
	must(t, "SiteDevices of the other site", err)
	if got := deviceIDs(ds); len(ds) != 2 || !got[moved.ID] || !got[other.monitor.ID] {
		t.Errorf("SiteDevices of the other site: %v, want its monitor and the moved one", ds)
	}
	ms, err = s.SiteMembers(ctx, b.site.ID)
	must(t, "SiteMembers after removal", err)
	if got, want := memberList(ms), fmt.Sprintf("[101:%s]", b.anna.ID); got != want {
		t.Errorf("SiteMembers after removing bob: %s, want %s", got, want)
	}
}

func memberList(ms []directory.Membership) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = fmt.Sprintf("%s:%s", m.Number, m.User)
	}
	return fmt.Sprint(out)
}
