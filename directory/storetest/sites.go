package storetest

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

func testSites(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	harbour := newSite("Harbour View")
	apply(t, s, directory.PutSite{Site: harbour})

	got, err := s.Site(ctx, harbour.ID)
	must(t, "Site", err)
	if !reflect.DeepEqual(got, harbour) {
		t.Errorf("Site = %+v, want %+v", got, harbour)
	}
	got, err = s.SiteByName(ctx, "", "Harbour View")
	must(t, "SiteByName", err)
	if got.ID != harbour.ID {
		t.Errorf("SiteByName = %s, want %s", got.ID, harbour.ID)
	}
	_, err = s.Site(ctx, "s_missing")
	wantErr(t, "Site(missing)", err, directory.ErrNotFound)
	_, err = s.SiteByName(ctx, "", "Nowhere")
	wantErr(t, "SiteByName(missing)", err, directory.ErrNotFound)

	t.Run("NameUniqueAmongSiblings", func(t *testing.T) {
		applyErr(t, s, directory.ErrConflict, []string{"Harbour View"}, directory.PutSite{Site: newSite("Harbour View")})
		tower := newSite("Tower A")
		tower.ParentID = harbour.ID
		other := newSite("Tower A")
		apply(t, s, directory.PutSite{Site: tower}, directory.PutSite{Site: other})
		got, err := s.SiteByName(ctx, harbour.ID, "Tower A")
		must(t, "SiteByName(sub-site)", err)
		if got.ID != tower.ID || got.ParentID != harbour.ID {
			t.Errorf("SiteByName(sub-site) = %+v, want %+v", got, tower)
		}
		dup := newSite("Tower A")
		dup.ParentID = harbour.ID
		applyErr(t, s, directory.ErrConflict, nil, directory.PutSite{Site: dup})
	})

	t.Run("Rename", func(t *testing.T) {
		quay := newSite("Quay")
		apply(t, s, directory.PutSite{Site: quay})
		read := quay
		quay.Name = "Quay House"
		apply(t, s, directory.PutSite{Site: quay, Was: &read})
		// A second edit made from the same read is stale: it would undo the rename.
		slow := read
		slow.Settings.Preview = !slow.Settings.Preview
		applyErr(t, s, directory.ErrStale, []string{string(quay.ID)}, directory.PutSite{Site: slow, Was: &read})
		_, err := s.SiteByName(ctx, "", "Quay")
		wantErr(t, "SiteByName(old name)", err, directory.ErrNotFound)
		apply(t, s, directory.PutSite{Site: newSite("Quay")}) // the old name is free
		got, err := s.SiteByName(ctx, "", "Quay House")
		must(t, "SiteByName(new name)", err)
		if got.ID != quay.ID {
			t.Errorf("renamed site has ID %s, want %s", got.ID, quay.ID)
		}
	})

	t.Run("Parents", func(t *testing.T) {
		orphan := newSite("Orphan")
		orphan.ParentID = "s_missing"
		applyErr(t, s, directory.ErrNotFound, nil, directory.PutSite{Site: orphan})
		a, b := newSite("A"), newSite("B")
		b.ParentID = a.ID
		apply(t, s, directory.PutSite{Site: a}, directory.PutSite{Site: b})
		a.ParentID = b.ID
		applyErr(t, s, directory.ErrInvalid, []string{"cycle"}, directory.PutSite{Site: a})
		self := newSite("Self")
		self.ParentID = self.ID
		applyErr(t, s, directory.ErrInvalid, nil, directory.PutSite{Site: self})
	})

	t.Run("InvalidNames", func(t *testing.T) {
		for _, name := range []string{"", "   ", strings.Repeat("x", directory.MaxNameLen+1), "bad\x00name"} {
			applyErr(t, s, directory.ErrInvalid, nil, directory.PutSite{Site: newSite(name)})
		}
		apply(t, s, directory.PutSite{Site: newSite(strings.Repeat("é", directory.MaxNameLen))})
		bad := newSite("Bad ID")
		bad.ID = "has space"
		applyErr(t, s, directory.ErrInvalid, nil, directory.PutSite{Site: bad})
	})

	t.Run("List", func(t *testing.T) {
		all, err := s.Sites(ctx)
		must(t, "Sites", err)
		found := false
		for _, x := range all {
			found = found || x.ID == harbour.ID
		}
		if len(all) < 6 || !found {
			t.Errorf("Sites returned %d sites (Harbour View found: %v)", len(all), found)
		}
	})
}

func testSettings(t *testing.T, newStore func(t *testing.T) directory.Store) {
	d := directory.DefaultSettings()
	want := directory.Settings{
		RingTimeout: 30 * time.Second, CallTimeLimit: 180 * time.Second, DoorOpenDuration: 5 * time.Second,
		LogRetention: 90 * 24 * time.Hour, Preview: true, VisitorPasses: true,
	}
	if d != want {
		t.Errorf("DefaultSettings() = %+v, want %+v", d, want)
	}
	must(t, "DefaultSettings().Validate()", d.Validate())

	s := newStore(t)
	cases := []struct {
		name string
		edit func(*directory.Settings)
		ok   bool
	}{
		{"ring timeout 10s", func(x *directory.Settings) { x.RingTimeout = 10 * time.Second }, true},
		{"ring timeout 180s", func(x *directory.Settings) { x.RingTimeout = 180 * time.Second }, true},
		{"ring timeout 9s", func(x *directory.Settings) { x.RingTimeout = 9 * time.Second }, false},
		{"ring timeout 181s", func(x *directory.Settings) { x.RingTimeout = 181 * time.Second }, false},
		{"ring timeout zero", func(x *directory.Settings) { x.RingTimeout = 0 }, false},
		{"call limit 30s", func(x *directory.Settings) { x.CallTimeLimit = 30 * time.Second }, true},
		{"call limit 600s", func(x *directory.Settings) { x.CallTimeLimit = 600 * time.Second }, true},
		{"call limit 29s", func(x *directory.Settings) { x.CallTimeLimit = 29 * time.Second }, false},
		{"call limit 601s", func(x *directory.Settings) { x.CallTimeLimit = 601 * time.Second }, false},
		{"door open 1s", func(x *directory.Settings) { x.DoorOpenDuration = time.Second }, true},
		{"door open 60s", func(x *directory.Settings) { x.DoorOpenDuration = 60 * time.Second }, true},
		{"door open 0", func(x *directory.Settings) { x.DoorOpenDuration = 0 }, false},
		{"door open 61s", func(x *directory.Settings) { x.DoorOpenDuration = 61 * time.Second }, false},
		{"retention 1 day", func(x *directory.Settings) { x.LogRetention = 24 * time.Hour }, true},
		{"retention 3650 days", func(x *directory.Settings) { x.LogRetention = 3650 * 24 * time.Hour }, true},
		{"retention 0", func(x *directory.Settings) { x.LogRetention = 0 }, false},
		{"retention 3651 days", func(x *directory.Settings) { x.LogRetention = 3651 * 24 * time.Hour }, false},
		{"preview off", func(x *directory.Settings) { x.Preview = false }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			site := newSite("Settings " + c.name)
			c.edit(&site.Settings)
			if err := site.Settings.Validate(); (err == nil) != c.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, c.ok)
			}
			if c.ok {
				apply(t, s, directory.PutSite{Site: site})
				got, err := s.Site(context.Background(), site.ID)
				must(t, "Site", err)
				if got.Settings != site.Settings {
					t.Errorf("stored settings %+v, want %+v", got.Settings, site.Settings)
				}
				return
			}
			applyErr(t, s, directory.ErrInvalid, nil, directory.PutSite{Site: site})
		})
	}
}
