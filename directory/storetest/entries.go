package storetest

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
)

func testEntries(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	site := newSite("Entries")
	apply(t, s, directory.PutSite{Site: site})
	put := func(n directory.Number, name string) directory.Op {
		return directory.PutEntry{Entry: directory.Entry{Site: site.ID, Number: n, Name: name}}
	}
	apply(t, s, put("101", "Jansen"), put("2", "Concierge"), put("0", "Reception"), put("999999", "Roof"), put("07", "Seven"))

	got, err := s.Entries(ctx, site.ID)
	must(t, "Entries", err)
	want := []directory.Number{"0", "2", "07", "101", "999999"}
	if !reflect.DeepEqual(numbers(got), want) {
		t.Errorf("Entries numbers = %v, want %v (numeric order)", numbers(got), want)
	}
	if got[3] != (directory.Entry{Site: site.ID, Number: "101", Name: "Jansen"}) {
		t.Errorf("entry 101 = %+v", got[3])
	}

	t.Run("UniquePerSiteRename", func(t *testing.T) {
		apply(t, s, put("101", "Jansen-de Vries"))
		got, err := s.Entries(ctx, site.ID)
		must(t, "Entries", err)
		if len(got) != 5 || got[3].Name != "Jansen-de Vries" {
			t.Errorf("after rename: %+v", got)
		}
	})

	t.Run("InvalidNumbers", func(t *testing.T) {
		for _, n := range []directory.Number{"", "1234567", "12a", " 1", "-1", "1.5", "١٢"} {
			applyErr(t, s, directory.ErrInvalid, nil, put(n, "Bad"))
			if err := n.Validate(); err == nil {
				t.Errorf("Number(%q).Validate() = nil", n)
			}
		}
		applyErr(t, s, directory.ErrInvalid, nil, put("5", ""))
		applyErr(t, s, directory.ErrInvalid, nil, put("5", strings.Repeat("n", directory.MaxNameLen+1)))
	})

	t.Run("MissingSite", func(t *testing.T) {
		applyErr(t, s, directory.ErrNotFound, nil,
			directory.PutEntry{Entry: directory.Entry{Site: "s_missing", Number: "1", Name: "X"}})
		_, err := s.Entries(ctx, "s_missing")
		wantErr(t, "Entries(missing site)", err, directory.ErrNotFound)
		_, err = s.DoorDirectory(ctx, "s_missing")
		wantErr(t, "DoorDirectory(missing site)", err, directory.ErrNotFound)
	})

	t.Run("Delete", func(t *testing.T) {
		apply(t, s, directory.DeleteEntry{Site: site.ID, Number: "999999"})
		got, err := s.Entries(ctx, site.ID)
		must(t, "Entries", err)
		if len(got) != 4 {
			t.Errorf("after delete: %v", numbers(got))
		}
		applyErr(t, s, directory.ErrNotFound, nil, directory.DeleteEntry{Site: site.ID, Number: "999999"})
	})

	t.Run("DeleteInUse", func(t *testing.T) {
		b := newBuilding(t, s, "In Use")
		applyErr(t, s, directory.ErrConflict, []string{"101"}, directory.DeleteEntry{Site: b.site.ID, Number: "101"})
		apply(t, s, directory.DeleteMembership{Site: b.site.ID, User: b.anna.ID})
		applyErr(t, s, directory.ErrConflict, []string{"monitor"}, directory.DeleteEntry{Site: b.site.ID, Number: "101"})
		apply(t, s, directory.DeleteDevice{ID: b.monitor.ID}, directory.DeleteEntry{Site: b.site.ID, Number: "101"})
		_, err := s.Members(ctx, b.site.ID, "101")
		wantErr(t, "Members(deleted entry)", err, directory.ErrNotFound)
	})
}

func testUsers(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	anna := newUser("  Anna.Jansen@Example.COM ")
	apply(t, s, directory.PutUser{User: anna})
	for _, email := range []string{"anna.jansen@example.com", "ANNA.JANSEN@EXAMPLE.COM", " Anna.Jansen@example.com"} {
		got, err := s.UserByEmail(ctx, email)
		must(t, "UserByEmail("+email+")", err)
		if got.ID != anna.ID || got.Email != "anna.jansen@example.com" {
			t.Errorf("UserByEmail(%q) = %+v, want ID %s and a lower-case e-mail", email, got, anna.ID)
		}
	}
	_, err := s.UserByEmail(ctx, "nobody@example.com")
	wantErr(t, "UserByEmail(missing)", err, directory.ErrNotFound)

	applyErr(t, s, directory.ErrConflict, []string{"anna.jansen@example.com"},
		directory.PutUser{User: newUser("ANNA.jansen@example.com")})

	for _, bad := range []string{"", "anna", "anna@", "@example.com", "anna example@x.com", "Anna <anna@example.com>",
		strings.Repeat("a", 250) + "@example.com"} {
		applyErr(t, s, directory.ErrInvalid, nil, directory.PutUser{User: newUser(bad)})
		if _, err := directory.NormalizeEmail(bad); err == nil {
			t.Errorf("NormalizeEmail(%q) = nil error", bad)
		}
	}

	// Changing an e-mail frees the old one.
	anna.Email = "anna@jansen.example"
	apply(t, s, directory.PutUser{User: anna})
	_, err = s.UserByEmail(ctx, "anna.jansen@example.com")
	wantErr(t, "UserByEmail(old e-mail)", err, directory.ErrNotFound)
	apply(t, s, directory.PutUser{User: newUser("anna.jansen@example.com")})
	got, err := s.UserByEmail(ctx, "Anna@Jansen.example")
	must(t, "UserByEmail(new e-mail)", err)
	if got.ID != anna.ID {
		t.Errorf("UserByEmail(new e-mail) = %s, want %s", got.ID, anna.ID)
	}
}
