package directory_test

import (
	"context"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// TestRedisCallingDoorsStaleIndex: CallingDoors reads the callers index and
// then the door records, in two round trips, so a door changed in between
// (it stopped calling the site, or moved into it) is named by the index
// but no longer calls the site. Such a door is not listed: its record now
// may name a site the called site's managers have no business with. The
// entries are written directly, as the index looks to such a read.
func TestRedisCallingDoorsStaleIndex(t *testing.T) {
	ctx := context.Background()
	client := redisClient(t, redistest.Start(t))
	s := newRedisStore(t, client, uniquePrefix())
	gate := directory.Site{ID: "s_gate", Name: "Gate", Settings: directory.DefaultSettings()}
	north := directory.Site{ID: "s_north", Name: "North", Settings: directory.DefaultSettings()}
	secret := directory.Site{ID: "s_secret", Name: "Secret", Settings: directory.DefaultSettings()}
	calls := directory.Device{ID: "d_calls", Kind: directory.KindDoorStation, Name: "calls", Site: gate.ID, CallSites: []directory.SiteID{north.ID}}
	moved := directory.Device{ID: "d_moved", Kind: directory.KindDoorStation, Name: "moved", Site: secret.ID}
	own := directory.Device{ID: "d_own", Kind: directory.KindDoorStation, Name: "own", Site: north.ID, CallSites: []directory.SiteID{north.ID}}
	if err := s.Apply(ctx, directory.PutSite{Site: gate}, directory.PutSite{Site: north}, directory.PutSite{Site: secret},
		directory.PutDevice{Device: calls}, directory.PutDevice{Device: moved}, directory.PutDevice{Device: own}); err != nil {
		t.Fatal(err)
	}
	// As read just before moved left gate (and stopped calling north) and
	// own moved into north.
	if err := client.HSet(ctx, s.CallersKey(north.ID), string(moved.ID), string(gate.ID), string(own.ID), string(gate.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	ds, err := s.CallingDoors(ctx, north.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].ID != calls.ID {
		t.Errorf("CallingDoors(north) = %+v, want only %s", ds, calls.ID)
	}
}

// TestRedisSiteDevicesStaleIndex: as TestRedisCallingDoorsStaleIndex, for
// SiteDevices: a device that moved to another site between the index read
// and the record read is not listed under the site it left.
func TestRedisSiteDevicesStaleIndex(t *testing.T) {
	ctx := context.Background()
	client := redisClient(t, redistest.Start(t))
	s := newRedisStore(t, client, uniquePrefix())
	north := directory.Site{ID: "s_north", Name: "North", Settings: directory.DefaultSettings()}
	secret := directory.Site{ID: "s_secret", Name: "Secret", Settings: directory.DefaultSettings()}
	stays := directory.Device{ID: "d_stays", Kind: directory.KindDoorStation, Name: "stays", Site: north.ID}
	moved := directory.Device{ID: "d_moved", Kind: directory.KindDoorStation, Name: "moved", Site: secret.ID}
	if err := s.Apply(ctx, directory.PutSite{Site: north}, directory.PutSite{Site: secret},
		directory.PutDevice{Device: stays}, directory.PutDevice{Device: moved}); err != nil {
		t.Fatal(err)
	}
	if err := client.HSet(ctx, s.SiteDevicesKey(north.ID), string(moved.ID), string(moved.Kind)).Err(); err != nil {
		t.Fatal(err)
	}
	ds, err := s.SiteDevices(ctx, north.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].ID != stays.ID {
		t.Errorf("SiteDevices(north) = %+v, want only %s", ds, stays.ID)
	}
}
