package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
)

func testDevices(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Devices")
	other := newBuilding(t, s, "Other Devices")
	front := doorStation(b.site, "front-door")
	front.CallSites = []directory.SiteID{other.site.ID}
	apply(t, s, directory.PutDevice{Device: front})

	for _, d := range []directory.Device{front, b.phone, b.monitor} {
		got, err := s.Device(ctx, d.ID)
		must(t, "Device", err)
		if !reflect.DeepEqual(got, d) {
			t.Errorf("Device(%s) = %+v, want %+v", d.Name, got, d)
		}
		got, err = s.DeviceByName(ctx, d.Kind, scope(d), d.Name)
		must(t, "DeviceByName", err)
		if got.ID != d.ID {
			t.Errorf("DeviceByName(%s) = %s, want %s", d.Name, got.ID, d.ID)
		}
	}
	_, err := s.Device(ctx, "d_missing")
	wantErr(t, "Device(missing)", err, directory.ErrNotFound)
	_, err = s.DeviceByName(ctx, directory.KindMonitor, string(b.site.ID), "front-door")
	wantErr(t, "DeviceByName(wrong kind)", err, directory.ErrNotFound)

	t.Run("KindRules", func(t *testing.T) {
		cases := map[string]struct {
			d    directory.Device
			want error
		}{
			"door station without site":    {directory.Device{Kind: directory.KindDoorStation}, directory.ErrInvalid},
			"door station with number":     {directory.Device{Kind: directory.KindDoorStation, Site: b.site.ID, Number: "101"}, directory.ErrInvalid},
			"door station with user":       {directory.Device{Kind: directory.KindDoorStation, Site: b.site.ID, User: b.anna.ID}, directory.ErrInvalid},
			"door station of missing site": {directory.Device{Kind: directory.KindDoorStation, Site: "s_missing"}, directory.ErrNotFound},
			"door station calling missing": {directory.Device{Kind: directory.KindDoorStation, Site: b.site.ID, CallSites: []directory.SiteID{"s_missing"}}, directory.ErrNotFound},
			"monitor without number":       {directory.Device{Kind: directory.KindMonitor, Site: b.site.ID}, directory.ErrInvalid},
			"monitor without site":         {directory.Device{Kind: directory.KindMonitor, Number: "101"}, directory.ErrInvalid},
			"monitor with user":            {directory.Device{Kind: directory.KindMonitor, Site: b.site.ID, Number: "101", User: b.anna.ID}, directory.ErrInvalid},
			"monitor of missing number":    {directory.Device{Kind: directory.KindMonitor, Site: b.site.ID, Number: "555"}, directory.ErrNotFound},
			"monitor with call sites":      {directory.Device{Kind: directory.KindMonitor, Site: b.site.ID, Number: "101", CallSites: []directory.SiteID{b.site.ID}}, directory.ErrInvalid},
			"app without user":             {directory.Device{Kind: directory.KindApp}, directory.ErrInvalid},
			"app with site":                {directory.Device{Kind: directory.KindApp, User: b.anna.ID, Site: b.site.ID}, directory.ErrInvalid},
			"app with number":              {directory.Device{Kind: directory.KindApp, User: b.anna.ID, Number: "101"}, directory.ErrInvalid},
			"app of missing user":          {directory.Device{Kind: directory.KindApp, User: "u_missing"}, directory.ErrNotFound},
			"unknown kind":                 {directory.Device{Kind: "toaster", Site: b.site.ID}, directory.ErrInvalid},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				c.d.ID = directory.DeviceID(directory.NewID("d_"))
				c.d.Name = "new device"
				applyErr(t, s, c.want, nil, directory.PutDevice{Device: c.d})
			})
		}
		applyErr(t, s, directory.ErrInvalid, nil, directory.PutDevice{Device: doorStation(b.site, "")})
	})

	t.Run("NamesUniqueInScope", func(t *testing.T) {
		applyErr(t, s, directory.ErrConflict, []string{"front-door"}, directory.PutDevice{Device: doorStation(b.site, "front-door")})
		applyErr(t, s, directory.ErrConflict, []string{"anna-phone"}, directory.PutDevice{Device: appDevice(b.anna, "anna-phone")})
		applyErr(t, s, directory.ErrConflict, nil, directory.PutDevice{Device: monitor(b.site, "102", "hall-101")})
		// Other scopes may reuse the names.
		apply(t, s,
			directory.PutDevice{Device: doorStation(other.site, "front-door")},
			directory.PutDevice{Device: appDevice(b.anna, "tablet")},
			directory.PutDevice{Device: appDevice(other.anna, "tablet")},
			directory.PutDevice{Device: monitor(b.site, "102", "front-door")})
	})

	t.Run("Replace", func(t *testing.T) {
		moved := b.monitor
		moved.Number, moved.Name = "102", "hall-102"
		apply(t, s, directory.PutDevice{Device: moved, Was: &b.monitor})
		// A second edit made from the same read is stale: it would undo the first.
		renamed := b.monitor
		renamed.Name = "hall"
		applyErr(t, s, directory.ErrStale, []string{string(moved.ID)}, directory.PutDevice{Device: renamed, Was: &b.monitor})
		_, err := s.DeviceByName(ctx, directory.KindMonitor, string(b.site.ID), "hall-101")
		wantErr(t, "DeviceByName(old name)", err, directory.ErrNotFound)
		got, err := s.DeviceByName(ctx, directory.KindMonitor, string(b.site.ID), "hall-102")
		must(t, "DeviceByName(new name)", err)
		if !reflect.DeepEqual(got, moved) {
			t.Errorf("replaced device = %+v, want %+v", got, moved)
		}
		ring, err := s.Ringable(ctx, b.site.ID, "101")
		must(t, "Ringable(101)", err)
		if deviceIDs(ring)[moved.ID] {
			t.Error("a monitor moved to 102 still rings for 101")
		}
		ring, err = s.Ringable(ctx, b.site.ID, "102")
		must(t, "Ringable(102)", err)
		if !deviceIDs(ring)[moved.ID] {
			t.Error("a monitor moved to 102 does not ring for 102")
		}
	})

	t.Run("Delete", func(t *testing.T) {
		apply(t, s, directory.DeleteDevice{ID: front.ID})
		_, err := s.Device(ctx, front.ID)
		wantErr(t, "Device(deleted)", err, directory.ErrNotFound)
		_, err = s.DeviceByName(ctx, directory.KindDoorStation, string(b.site.ID), "front-door")
		wantErr(t, "DeviceByName(deleted)", err, directory.ErrNotFound)
		applyErr(t, s, directory.ErrNotFound, nil, directory.DeleteDevice{ID: front.ID})
		// An edit of a device deleted meanwhile does not bring it back.
		applyErr(t, s, directory.ErrNotFound, nil, directory.PutDevice{Device: front, Was: &front})
		_, err = s.Device(ctx, front.ID)
		wantErr(t, "Device(deleted, then edited)", err, directory.ErrNotFound)
		apply(t, s, directory.PutDevice{Device: doorStation(b.site, "front-door")}) // the name is free
	})
}

// scope is the name scope of a device.
func scope(d directory.Device) string {
	if d.Kind == directory.KindApp {
		return string(d.User)
	}
	return string(d.Site)
}

func testTokens(t *testing.T, newStore func(t *testing.T) directory.Store) {
	ctx := context.Background()
	s := newStore(t)
	b := newBuilding(t, s, "Tokens")
	tok1, hash1 := directory.NewToken()
	apply(t, s, directory.SetDeviceToken{ID: b.phone.ID, Token: hash1})
	got, err := s.DeviceByToken(ctx, directory.HashToken(tok1))
	must(t, "DeviceByToken", err)
	if !reflect.DeepEqual(got, b.phone) {
		t.Errorf("DeviceByToken = %+v, want %+v", got, b.phone)
	}
	_, err = s.DeviceByToken(ctx, directory.HashToken("fyr_not-a-token"))
	wantErr(t, "DeviceByToken(unknown)", err, directory.ErrNotFound)
	applyErr(t, s, directory.ErrNotFound, nil, directory.SetDeviceToken{ID: "d_missing", Token: hash1})

	// Rotation: the old token stops working at once.
	_, hash2 := directory.NewToken()
	apply(t, s, directory.SetDeviceToken{ID: b.phone.ID, Token: hash2})
	_, err = s.DeviceByToken(ctx, hash1)
	wantErr(t, "DeviceByToken(rotated)", err, directory.ErrNotFound)
	got, err = s.DeviceByToken(ctx, hash2)
	must(t, "DeviceByToken(new)", err)
	if got.ID != b.phone.ID {
		t.Errorf("DeviceByToken(new) = %s", got.ID)
	}

	// A token belongs to one device.
	applyErr(t, s, directory.ErrConflict, nil, directory.SetDeviceToken{ID: b.monitor.ID, Token: hash2})

	// A zero hash revokes.
	apply(t, s, directory.SetDeviceToken{ID: b.phone.ID})
	_, err = s.DeviceByToken(ctx, hash2)
	wantErr(t, "DeviceByToken(revoked)", err, directory.ErrNotFound)

	// Deleting a device removes its token.
	_, hash3 := directory.NewToken()
	apply(t, s, directory.SetDeviceToken{ID: b.monitor.ID, Token: hash3})
	apply(t, s, directory.DeleteDevice{ID: b.monitor.ID})
	_, err = s.DeviceByToken(ctx, hash3)
	wantErr(t, "DeviceByToken(deleted device)", err, directory.ErrNotFound)
}
