package storetest

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

func testMemberships(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Members")
	other := newBuilding(t, s, "Other")
	bram := newUser("bram@example.com")
	apply(t, s, directory.PutUser{User: bram},
		directory.PutMembership{Membership: member(b.site, bram, "101")},
		directory.PutMembership{Membership: member(other.site, bram, "102")})

	count := func(site directory.Site, want int) {
		t.Helper()
		n, err := s.CountMembers(ctx, site.ID)
		must(t, "CountMembers", err)
		if n != want {
			t.Errorf("CountMembers(%s) = %d, want %d", site.Name, n, want)
		}
	}
	count(b.site, 2)
	count(other.site, 2)
	_, err := s.CountMembers(ctx, "s_missing")
	wantErr(t, "CountMembers(missing)", err, directory.ErrNotFound)

	ms, err := s.Members(ctx, b.site.ID, "101")
	must(t, "Members", err)
	if len(ms) != 2 {
		t.Fatalf("Members(101) = %+v, want 2", ms)
	}
	for _, m := range ms {
		if m.User == bram.ID && !reflect.DeepEqual(m, member(b.site, bram, "101")) {
			t.Errorf("stored membership %+v, want %+v", m, member(b.site, bram, "101"))
		}
	}
	ms, err = s.Members(ctx, b.site.ID, "102")
	must(t, "Members(102)", err)
	if len(ms) != 0 {
		t.Errorf("Members(102) = %+v, want none", ms)
	}
	_, err = s.Members(ctx, b.site.ID, "555")
	wantErr(t, "Members(missing number)", err, directory.ErrNotFound)

	ms, err = s.Memberships(ctx, bram.ID)
	must(t, "Memberships", err)
	if len(ms) != 2 {
		t.Errorf("Memberships(bram) = %+v, want 2", ms)
	}
	_, err = s.Memberships(ctx, "u_missing")
	wantErr(t, "Memberships(missing user)", err, directory.ErrNotFound)

	t.Run("EditOfChangedMembership", func(t *testing.T) {
		// Two edits made from the same read: the first is stored, the second
		// is stale and changes nothing (it would undo the first's field).
		read := member(b.site, bram, "101")
		renamed, licensed := read, read
		renamed.DisplayName = "Bram R."
		licensed.Licence = directory.LicenceInactive
		apply(t, s, directory.PutMembership{Membership: renamed, Was: &read})
		applyErr(t, s, directory.ErrStale, []string{string(bram.ID)}, directory.PutMembership{Membership: licensed, Was: &read})
		ms, err := s.Members(ctx, b.site.ID, "101")
		must(t, "Members(101)", err)
		for _, m := range ms {
			if m.User == bram.ID && m != renamed {
				t.Errorf("after a stale edit: %+v, want %+v", m, renamed)
			}
		}
		apply(t, s, directory.PutMembership{Membership: read, Was: &renamed}) // back as it was
	})

	t.Run("OnePerUserAndSite", func(t *testing.T) {
		moved := member(b.site, bram, "102")
		moved.Status = directory.StatusPending
		moved.DisplayName = "Bram (moved)"
		apply(t, s, directory.PutMembership{Membership: moved})
		count(b.site, 2)
		ms, err := s.Members(ctx, b.site.ID, "101")
		must(t, "Members(101)", err)
		if len(ms) != 1 || ms[0].User != b.anna.ID {
			t.Errorf("Members(101) after move = %+v, want only anna", ms)
		}
		ms, err = s.Members(ctx, b.site.ID, "102")
		must(t, "Members(102)", err)
		if len(ms) != 1 || !reflect.DeepEqual(ms[0], moved) {
			t.Errorf("Members(102) after move = %+v, want %+v", ms, moved)
		}
		all, err := s.Memberships(ctx, bram.ID)
		must(t, "Memberships", err)
		if len(all) != 2 {
			t.Errorf("Memberships(bram) after move = %+v", all)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		apply(t, s, directory.DeleteMembership{Site: b.site.ID, User: bram.ID})
		count(b.site, 1)
		applyErr(t, s, directory.ErrNotFound, nil, directory.DeleteMembership{Site: b.site.ID, User: bram.ID})
		// An edit of a membership deleted meanwhile does not bring it back.
		applyErr(t, s, directory.ErrNotFound, nil, directory.PutMembership{Membership: member(b.site, bram, "101"), Was: ptr(member(b.site, bram, "101"))})
		all, err := s.Memberships(ctx, bram.ID)
		must(t, "Memberships", err)
		if len(all) != 1 || all[0].Site != other.site.ID {
			t.Errorf("Memberships(bram) after delete = %+v", all)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		carol := newUser("carol@example.com")
		apply(t, s, directory.PutUser{User: carol})
		edits := map[string]struct {
			edit func(*directory.Membership)
			want error
		}{
			"missing site":   {func(m *directory.Membership) { m.Site = "s_missing" }, directory.ErrNotFound},
			"missing user":   {func(m *directory.Membership) { m.User = "u_missing" }, directory.ErrNotFound},
			"missing number": {func(m *directory.Membership) { m.Number = "555" }, directory.ErrNotFound},
			"bad number":     {func(m *directory.Membership) { m.Number = "12a" }, directory.ErrInvalid},
			"bad status":     {func(m *directory.Membership) { m.Status = "asleep" }, directory.ErrInvalid},
			"empty status":   {func(m *directory.Membership) { m.Status = "" }, directory.ErrInvalid},
			"bad licence":    {func(m *directory.Membership) { m.Licence = "gold" }, directory.ErrInvalid},
			"no name":        {func(m *directory.Membership) { m.DisplayName = "" }, directory.ErrInvalid},
		}
		for name, c := range edits {
			t.Run(name, func(t *testing.T) {
				m := member(b.site, carol, "101")
				c.edit(&m)
				applyErr(t, s, c.want, nil, directory.PutMembership{Membership: m})
			})
		}
		count(b.site, 1)
	})

	t.Run("Ringable", func(t *testing.T) {
		m := directory.Membership{Status: directory.StatusActive, Licence: directory.LicenceActive}
		if !m.Ringable() {
			t.Error("active + active membership is not ringable")
		}
		m.Status = directory.StatusPending
		if m.Ringable() {
			t.Error("pending membership is ringable")
		}
		m.Status, m.Licence = directory.StatusActive, directory.LicenceInactive
		if m.Ringable() {
			t.Error("membership with inactive licence is ringable")
		}
	})
}

func testLimitPerNumber(t *testing.T, newStore func(t *testing.T) directory.Store) {
	s := newStore(t)
	site := newSite("Harbour View")
	ops := []directory.Op{
		directory.PutSite{Site: site},
		directory.PutEntry{Entry: directory.Entry{Site: site.ID, Number: "101", Name: "Full"}},
		directory.PutEntry{Entry: directory.Entry{Site: site.ID, Number: "102", Name: "Other"}},
	}
	var users []directory.User
	for i := range directory.MaxUsersPerNumber + 1 {
		u := newUser(fmt.Sprintf("user%d@example.com", i))
		users = append(users, u)
		ops = append(ops, directory.PutUser{User: u})
	}
	apply(t, s, ops...)
	for i, u := range users[:directory.MaxUsersPerNumber] {
		m := member(site, u, "101")
		switch i % 3 { // pending users and inactive licences hold a place too
		case 1:
			m.Status = directory.StatusPending
		case 2:
			m.Licence = directory.LicenceInactive
		}
		apply(t, s, directory.PutMembership{Membership: m})
	}
	seventh := users[directory.MaxUsersPerNumber]
	err := applyErr(t, s, directory.ErrLimit, []string{"call ID 101", "Harbour View", "6 app users"},
		directory.PutMembership{Membership: member(site, seventh, "101")})
	t.Logf("7th user: %v", err)

	// Replacing a member of a full number is not a new place.
	m := member(site, users[0], "101")
	m.DisplayName = "Renamed"
	apply(t, s, directory.PutMembership{Membership: m})
	// Moving into a full number is refused; moving out frees a place.
	apply(t, s, directory.PutMembership{Membership: member(site, seventh, "102")})
	applyErr(t, s, directory.ErrLimit, nil, directory.PutMembership{Membership: member(site, seventh, "101")})
	apply(t, s, directory.PutMembership{Membership: member(site, users[1], "102")},
		directory.PutMembership{Membership: member(site, seventh, "101")})
	ms, err := s.Members(context.Background(), site.ID, "101")
	must(t, "Members", err)
	if len(ms) != directory.MaxUsersPerNumber {
		t.Errorf("Members(101) = %d, want %d", len(ms), directory.MaxUsersPerNumber)
	}
}

func testLimitPerSite(t *testing.T, newStore func(t *testing.T) directory.Store) {
	if testing.Short() {
		t.Skip("fills a site with 59,994 users")
	}
	ctx := context.Background()
	s := newStore(t)
	start := time.Now()
	site := FillSite(t, s, "Big", directory.MaxUsersPerSite).Site
	t.Logf("filled a site with %d users in %v", directory.MaxUsersPerSite, time.Since(start))
	n, err := s.CountMembers(ctx, site.ID)
	must(t, "CountMembers", err)
	if n != directory.MaxUsersPerSite {
		t.Fatalf("CountMembers = %d, want %d", n, directory.MaxUsersPerSite)
	}
	extra := newUser("one-too-many@example.com")
	last := directory.Number(fmt.Sprint(FillNumbers(directory.MaxUsersPerSite) + 1))
	err = applyErr(t, s, directory.ErrLimit, []string{"Big", "59994"},
		directory.PutUser{User: extra},
		directory.PutEntry{Entry: directory.Entry{Site: site.ID, Number: last, Name: "Extra"}},
		directory.PutMembership{Membership: member(site, extra, last)})
	t.Logf("user 59,995: %v", err)

	// A move inside a full site keeps the count.
	ms, err := s.Members(ctx, site.ID, "1")
	must(t, "Members", err)
	moved := ms[0]
	moved.Number = last
	apply(t, s, directory.PutEntry{Entry: directory.Entry{Site: site.ID, Number: last, Name: "Extra"}},
		directory.PutMembership{Membership: moved})
	// Freeing a place lets a new user in.
	apply(t, s, directory.DeleteMembership{Site: site.ID, User: moved.User})
	apply(t, s, directory.PutUser{User: extra}, directory.PutMembership{Membership: member(site, extra, last)})
	n, err = s.CountMembers(ctx, site.ID)
	must(t, "CountMembers", err)
	if n != directory.MaxUsersPerSite {
		t.Errorf("CountMembers = %d, want %d", n, directory.MaxUsersPerSite)
	}
}
