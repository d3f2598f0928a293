package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

type callingDoor struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	SiteID   string `json:"site_id"`
	SiteName string `json:"site_name"`
}

// callingDoors lists the door stations of other sites that call site, as c.
func (c *client) callingDoors(site string) []callingDoor {
	c.e.t.Helper()
	var out struct{ Doors []callingDoor }
	c.must(http.StatusOK, "GET", "/v1/sites/"+site+"/calling-doors", nil, &out)
	return out.Doors
}

// auditHas reports whether site's audit log, read as c, has an entry with
// outcome by actor.
func (c *client) auditHas(site, outcome, actor string) bool {
	c.e.t.Helper()
	var audit struct {
		Events []struct{ Outcome, Actor, Details string }
	}
	c.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/audit", nil, &audit)
	return slices.ContainsFunc(audit.Events, func(ev struct{ Outcome, Actor, Details string }) bool {
		return ev.Outcome == outcome && ev.Actor == actor
	})
}

// TestCallingDoors: a site lists the door stations of other sites that
// call it, to its viewers and up, without anything secret; its admins may
// take it out of such a door's call sites, and nothing else of the door;
// the door's live connection reconnects without the site; the revocation
// is in both sites' audit logs.
func TestCallingDoors(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	gate, north, south := op.site("Gate House"), op.site("North Block"), op.site("South Block")
	op.must(http.StatusOK, "PUT", "/v1/sites/"+gate+"/entries/1", map[string]string{"name": "Porter"}, nil)
	doorID, doorTok := e.device(op, gate, map[string]string{"kind": "door_station", "name": "Shared gate"})
	op.must(http.StatusOK, "PATCH", "/v1/sites/"+gate+"/devices/"+doorID, map[string]any{"call_sites": []string{north, south}}, nil)
	monID, _ := e.device(op, gate, map[string]string{"kind": "monitor", "name": "Porter", "number": "1"})
	ownID, _ := e.device(op, north, map[string]string{"kind": "door_station", "name": "North door"})
	op.must(http.StatusOK, "PATCH", "/v1/sites/"+north+"/devices/"+ownID, map[string]any{"call_sites": []string{north}}, nil)
	southOnly, _ := e.device(op, gate, map[string]string{"kind": "door_station", "name": "Back gate"})
	op.must(http.StatusOK, "PATCH", "/v1/sites/"+gate+"/devices/"+southOnly, map[string]any{"call_sites": []string{south}}, nil)

	viewer := e.addAdmin(op, north, "north-viewer@example.com", "viewer")
	installer := e.addAdmin(op, north, "north-installer@example.com", "installer")
	admin := e.addAdmin(op, north, "north-admin@example.com", "admin")
	gateInstaller := e.addAdmin(op, gate, "gate-installer@example.com", "installer")
	southAdmin := e.addAdmin(op, south, "south-admin@example.com", "admin")

	want := []callingDoor{{ID: doorID, Name: "Shared gate", SiteID: gate, SiteName: "Gate House"}}
	if got := viewer.callingDoors(north); !slices.Equal(got, want) {
		t.Fatalf("north's calling doors = %+v, want %+v", got, want)
	}
	if _, body := viewer.do("GET", "/v1/sites/"+north+"/calling-doors", nil); strings.Contains(string(body), "token") || strings.Contains(string(body), south) {
		t.Errorf("calling doors show more than the door and its site: %s", body)
	}
	if got := op.callingDoors(gate); len(got) != 0 {
		t.Errorf("the gate's own site lists its own door as calling it: %+v", got)
	}

	t.Run("Refused", func(t *testing.T) {
		path := "/v1/sites/" + north + "/calling-doors"
		e.anon().wantError(http.StatusUnauthorized, "unauthenticated", "GET", path, nil)
		e.anon().wantError(http.StatusUnauthorized, "unauthenticated", "DELETE", path+"/"+doorID, nil)
		// A role on the door's own site, or on another site it calls, is no
		// role here: the site answers as if it did not exist.
		gateInstaller.wantError(http.StatusNotFound, "not_found", "GET", path, nil)
		gateInstaller.wantError(http.StatusNotFound, "not_found", "DELETE", path+"/"+doorID, nil)
		southAdmin.wantError(http.StatusNotFound, "not_found", "DELETE", path+"/"+doorID, nil)
		viewer.wantError(http.StatusForbidden, "forbidden", "DELETE", path+"/"+doorID, nil)
		installer.wantError(http.StatusForbidden, "forbidden", "DELETE", path+"/"+doorID, nil)
		op.wantError(http.StatusNotFound, "not_found", "GET", "/v1/sites/s_nothing/calling-doors", nil)
		admin.wantError(http.StatusNotFound, "not_found", "DELETE", "/v1/sites/s_nothing/calling-doors/"+doorID, nil)
		for name, id := range map[string]string{
			"unknown device":            "d_nothing",
			"monitor":                   monID,
			"site's own door":           ownID,
			"door calling another site": southOnly,
			"a name, not an ID":         "Shared%20gate",
			"path traversal in the ID":  "..%2F" + doorID,
			"a site ID":                 gate,
		} {
			msg := admin.wantError(http.StatusNotFound, "not_found", "DELETE", path+"/"+id, nil)
			if !strings.Contains(msg, "calls this site") {
				t.Errorf("%s: message %q does not say what is missing", name, msg)
			}
		}
		d, err := e.dir.Device(context.Background(), directory.DeviceID(doorID))
		if err != nil || len(d.CallSites) != 2 {
			t.Fatalf("after refused revocations the door is %+v, %v; want it calling both sites", d, err)
		}
	})

	door, welcome := e.connect(doorTok)
	if sites := welcome["site_ids"].([]any); !slices.Contains(sites, any(north)) {
		t.Fatalf("welcome site_ids = %v, want north among them", sites)
	}
	admin.must(http.StatusNoContent, "DELETE", "/v1/sites/"+north+"/calling-doors/"+doorID, nil, nil)
	if code := door.closed(5 * time.Second); code != 4011 {
		t.Fatalf("the door closed with %d after losing a call site, want 4011 (reconfigured)", code)
	}
	if got := admin.callingDoors(north); len(got) != 0 {
		t.Errorf("north still lists %+v after revoking it", got)
	}
	if got := southAdmin.callingDoors(south); len(got) != 2 {
		t.Errorf("south lists %+v; the revocation by north must leave it alone", got)
	}
	d, err := e.dir.Device(context.Background(), directory.DeviceID(doorID))
	if err != nil || d.Name != "Shared gate" || string(d.Site) != gate || !slices.Equal(d.CallSites, []directory.SiteID{directory.SiteID(south)}) {
		t.Errorf("after the revocation the door is %+v, %v; want it unchanged but for north", d, err)
	}
	_, welcome = e.connect(doorTok)
	if sites := welcome["site_ids"].([]any); slices.Contains(sites, any(north)) {
		t.Errorf("the reconnected door still belongs to north: site_ids %v", sites)
	}
	admin.wantError(http.StatusNotFound, "not_found", "DELETE", "/v1/sites/"+north+"/calling-doors/"+doorID, nil)
	if !admin.auditHas(north, "device.call_site.revoke", "north-admin@example.com") {
		t.Error("north's audit log lacks the revocation")
	}
	// The gate's managers see that an admin of north revoked it, not who:
	// north's admins are people of another site (docs/decisions.md).
	if !gateInstaller.auditHas(gate, "device.call_site.revoke", "an admin of site "+north) {
		t.Error("the gate's audit log lacks the revocation of its door's call site, by an admin of north")
	}
	if _, body := gateInstaller.do("GET", "/v1/sites/"+gate+"/logs/audit", nil); strings.Contains(string(body), "north-admin@example.com") {
		t.Errorf("the gate's audit log names north's admin: %s", body)
	}
	// The owning site keeps managing its door: it may call north again,
	// set by someone who is an installer of both sites.
	op.must(http.StatusOK, "PATCH", "/v1/sites/"+gate+"/devices/"+doorID, map[string]any{"call_sites": []string{north, south}}, nil)
	if got := viewer.callingDoors(north); !slices.Equal(got, want) {
		t.Errorf("north's calling doors after the gate set it again = %+v, want %+v", got, want)
	}
	// Someone with a role on the gate too is named there as everywhere.
	op.must(http.StatusNoContent, "DELETE", "/v1/sites/"+north+"/calling-doors/"+doorID, nil, nil)
	if !gateInstaller.auditHas(gate, "device.call_site.revoke", operatorEmail) {
		t.Error("the gate's audit log does not name the operator who revoked its door's call site")
	}
}

// TestCallingDoorRevokeRaces: a revocation overtaken by another edit of the
// door is made again on the door as it is now (the other edit is kept); one
// overtaken by the door's deletion is 404 and does not bring it back.
func TestCallingDoorRevokeRaces(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	ctx := context.Background()
	gate, north, south := op.site("Race Gate"), op.site("Race North"), op.site("Race South")
	doorID, _ := e.device(op, gate, map[string]string{"kind": "door_station", "name": "Gate"})
	op.must(http.StatusOK, "PATCH", "/v1/sites/"+gate+"/devices/"+doorID, map[string]any{"call_sites": []string{north, south}}, nil)
	once := func(f func(d directory.Device) directory.Op) {
		var done bool
		g := func() {
			if done {
				return
			}
			done = true
			d, err := e.dir.Device(ctx, directory.DeviceID(doorID))
			if err != nil {
				t.Error(err)
				return
			}
			if err := e.dir.Apply(ctx, f(d)); err != nil {
				t.Error(err)
			}
		}
		e.meanwhile.Store(&g)
	}
	defer e.meanwhile.Store(nil)

	once(func(d directory.Device) directory.Op {
		d.Name = "Main gate"
		return directory.PutDevice{Device: d}
	})
	op.must(http.StatusNoContent, "DELETE", "/v1/sites/"+north+"/calling-doors/"+doorID, nil, nil)
	d, err := e.dir.Device(ctx, directory.DeviceID(doorID))
	if err != nil || d.Name != "Main gate" || !slices.Equal(d.CallSites, []directory.SiteID{directory.SiteID(south)}) {
		t.Errorf("stored %+v, %v; want the name given meanwhile and north revoked", d, err)
	}

	once(func(d directory.Device) directory.Op { return directory.DeleteDevice{ID: d.ID} })
	op.wantError(http.StatusNotFound, "not_found", "DELETE", "/v1/sites/"+south+"/calling-doors/"+doorID, nil)
	if _, err := e.dir.Device(ctx, directory.DeviceID(doorID)); err == nil {
		t.Error("a door deleted while its call site was revoked came back")
	}
	if got := op.callingDoors(south); len(got) != 0 {
		t.Errorf("south lists %+v after the door's deletion", got)
	}
}
