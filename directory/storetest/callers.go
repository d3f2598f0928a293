package storetest

import (
	"cmp"
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
)

// wantCallers fails unless CallingDoors(site) returns exactly want, in ID
// order and as stored (so a renamed or moved door shows its new record).
func wantCallers(t *testing.T, s directory.Store, site directory.Site, want ...directory.Device) {
	t.Helper()
	got, err := s.CallingDoors(context.Background(), site.ID)
	must(t, "CallingDoors("+site.Name+")", err)
	if len(got) == 0 && len(want) == 0 {
		return
	}
	want = slices.Clone(want)
	slices.SortFunc(want, func(a, b directory.Device) int { return cmp.Compare(a.ID, b.ID) })
	if !reflect.DeepEqual(got, want) {
		t.Errorf("CallingDoors(%s) = %+v, want %+v", site.Name, got, want)
	}
}

// testCallingDoors holds a store to listing, under each site, the door
// stations of other sites that call it, through every write that changes
// which sites a door calls: adding and removing call sites, moving the
// door, renaming it, deleting it, a refused batch, and provisioning.
func testCallingDoors(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	gate := newBuilding(t, s, "Gate")
	north := newBuilding(t, s, "North")
	south := newBuilding(t, s, "South")

	_, err := s.CallingDoors(ctx, "s_missing")
	wantErr(t, "CallingDoors(missing site)", err, directory.ErrNotFound)
	wantCallers(t, s, north.site)

	door := doorStation(gate.site, "shared-gate")
	door.CallSites = []directory.SiteID{gate.site.ID, north.site.ID, south.site.ID}
	own := doorStation(north.site, "north-door") // calls only its own site
	own.CallSites = []directory.SiteID{north.site.ID}
	apply(t, s, directory.PutDevice{Device: door}, directory.PutDevice{Device: own})
	wantCallers(t, s, north.site, door)
	wantCallers(t, s, south.site, door)
	wantCallers(t, s, gate.site) // its own site lists it under SiteDevices, not here

	t.Run("RemoveCallSite", func(t *testing.T) {
		was := door
		door.CallSites = []directory.SiteID{north.site.ID}
		apply(t, s, directory.PutDevice{Device: door, Was: &was})
		wantCallers(t, s, north.site, door)
		wantCallers(t, s, south.site)
	})

	t.Run("AddCallSiteAndRename", func(t *testing.T) {
		was := door
		door.Name = "gate-panel"
		door.CallSites = []directory.SiteID{south.site.ID, north.site.ID}
		apply(t, s, directory.PutDevice{Device: door, Was: &was})
		wantCallers(t, s, north.site, door)
		wantCallers(t, s, south.site, door)
	})

	t.Run("Move", func(t *testing.T) {
		// Moved into a site it calls, it is that site's own door.
		was := door
		door.Site = north.site.ID
		apply(t, s, directory.PutDevice{Device: door, Was: &was})
		wantCallers(t, s, north.site)
		wantCallers(t, s, south.site, door)
		wantCallers(t, s, gate.site)
		// Moved out again, it calls north from outside once more.
		was = door
		door.Site = gate.site.ID
		apply(t, s, directory.PutDevice{Device: door, Was: &was})
		wantCallers(t, s, north.site, door)
		wantCallers(t, s, south.site, door)
	})

	t.Run("NoCallSites", func(t *testing.T) {
		was := door
		door.CallSites = nil
		apply(t, s, directory.PutDevice{Device: door, Was: &was})
		wantCallers(t, s, north.site)
		wantCallers(t, s, south.site)
		was = door
		door.CallSites = []directory.SiteID{north.site.ID}
		apply(t, s, directory.PutDevice{Device: door, Was: &was})
		wantCallers(t, s, north.site, door)
	})

	t.Run("RefusedBatch", func(t *testing.T) {
		more := doorStation(gate.site, "never-gate")
		more.CallSites = []directory.SiteID{south.site.ID}
		changed := door
		changed.CallSites = []directory.SiteID{south.site.ID}
		applyErr(t, s, directory.ErrInvalid, nil,
			directory.PutDevice{Device: more},
			directory.PutDevice{Device: changed},
			directory.PutEntry{Entry: directory.Entry{Site: gate.site.ID, Number: "12a", Name: "Broken"}})
		wantCallers(t, s, north.site, door)
		wantCallers(t, s, south.site)
	})

	t.Run("Delete", func(t *testing.T) {
		second := doorStation(south.site, "south-gate")
		second.CallSites = []directory.SiteID{north.site.ID}
		apply(t, s, directory.PutDevice{Device: second})
		wantCallers(t, s, north.site, door, second)
		apply(t, s, directory.DeleteDevice{ID: door.ID})
		wantCallers(t, s, north.site, second)
		// Put and deleted in one batch: never listed.
		brief := doorStation(gate.site, "brief-gate")
		brief.CallSites = []directory.SiteID{north.site.ID}
		apply(t, s, directory.PutDevice{Device: brief}, directory.DeleteDevice{ID: brief.ID})
		wantCallers(t, s, north.site, second)
		// A new door reusing the deleted one's name is a new device.
		again := doorStation(gate.site, door.Name)
		again.CallSites = []directory.SiteID{north.site.ID}
		apply(t, s, directory.PutDevice{Device: again})
		wantCallers(t, s, north.site, second, again)
	})
}

// testCallingDoorsProvision holds a store to keeping the call sites an
// admin gave a door station when a provisioning file that names the door
// is applied again (it finds the door by name and keeps its CallSites).
func testCallingDoorsProvision(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	other := newBuilding(t, s, "Across")
	file := []byte("sites:\n  - name: Campus\n    door_stations: [campus-gate]\n    ids:\n      - id: \"1\"\n        name: One\n")
	provision := func() {
		t.Helper()
		f, err := directory.ParseProvision(file)
		must(t, "ParseProvision", err)
		_, err = directory.Provision(ctx, s, f)
		must(t, "Provision", err)
	}
	provision()
	campus, err := s.SiteByName(ctx, "", "Campus")
	must(t, "SiteByName", err)
	door, err := s.DeviceByName(ctx, directory.KindDoorStation, string(campus.ID), "campus-gate")
	must(t, "DeviceByName", err)
	was := door
	door.CallSites = []directory.SiteID{other.site.ID}
	apply(t, s, directory.PutDevice{Device: door, Was: &was})
	wantCallers(t, s, other.site, door)
	provision()
	wantCallers(t, s, other.site, door)
}
