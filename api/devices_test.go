package api_test

import (
	"net/http"
	"testing"
	"time"
)

type provisioned struct {
	Device           struct{ ID string }
	ProvisioningCode string `json:"provisioning_code"`
}

// device creates a door station or monitor and provisions it; it returns
// its ID and token.
func (e *env) device(op *client, site string, body map[string]string) (string, string) {
	e.t.Helper()
	var p provisioned
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/devices", body, &p)
	var tok struct{ Token string }
	e.anon().must(http.StatusOK, "POST", "/v1/provision", map[string]string{"code": p.ProvisioningCode}, &tok)
	return p.Device.ID, tok.Token
}

// TestDevices: provisioning codes are single-use and expire; a monitor
// rings for its call ID; revoking a device closes its live connection.
func TestDevices(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Device Court")
	op.must(http.StatusOK, "PUT", "/v1/sites/"+site+"/entries/12", map[string]string{"name": "Peeters"}, nil)
	_, doorTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	monID, monTok := e.device(op, site, map[string]string{"kind": "monitor", "name": "Hall 12", "number": "12"})

	var stale provisioned
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/devices", map[string]string{"kind": "door_station", "name": "Back gate"}, &stale)
	e.now.advance(25 * time.Hour)
	e.anon().wantError(http.StatusGone, "expired", "POST", "/v1/provision", map[string]string{"code": stale.ProvisioningCode})
	op = e.operator() // the day-long session has ended too

	door, _ := e.connect(doorTok)
	mon, _ := e.connect(monTok)
	door.send(map[string]any{"type": "call", "to": "12"})
	calling := door.next("calling")
	mon.next("ring")
	door.send(map[string]any{"type": "hangup", "call_id": calling["call_id"]})
	mon.next("cancel")

	// Reassign the monitor, then revoke it: its connection closes within 5 s.
	op.must(http.StatusOK, "PUT", "/v1/sites/"+site+"/entries/13", map[string]string{"name": "Smits"}, nil)
	op.must(http.StatusOK, "PATCH", "/v1/sites/"+site+"/devices/"+monID, map[string]string{"number": "13"}, nil)
	start := time.Now()
	op.must(http.StatusNoContent, "DELETE", "/v1/sites/"+site+"/devices/"+monID, nil, nil)
	if code := mon.closed(5 * time.Second); code < 4000 {
		t.Fatalf("revoked monitor closed with %d, want a 4xxx code", code)
	}
	t.Logf("revoked device closed after %v", time.Since(start))
	op.wantError(http.StatusNotFound, "not_found", "DELETE", "/v1/sites/"+site+"/devices/"+monID, nil)
}

// TestDevicesOnline: the site's device list says which devices are
// connected now: a monitor once it has said hello, not before and not once
// its connection has closed; a door station never connected is not.
func TestDevicesOnline(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Status Court")
	op.must(http.StatusOK, "PUT", "/v1/sites/"+site+"/entries/4", map[string]string{"name": "Four"}, nil)
	doorID, _ := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	monID, monTok := e.device(op, site, map[string]string{"kind": "monitor", "name": "Hall 4", "number": "4"})
	online := func() map[string]bool {
		t.Helper()
		var list struct {
			Devices []struct {
				ID     string
				Online *bool
			}
		}
		op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/devices", nil, &list)
		on := make(map[string]bool)
		for _, d := range list.Devices {
			if d.Online == nil {
				t.Fatalf("device %s listed without online", d.ID)
			}
			on[d.ID] = *d.Online
		}
		if len(on) != 2 {
			t.Fatalf("%d devices listed, want 2", len(on))
		}
		return on
	}
	if on := online(); on[doorID] || on[monID] {
		t.Fatalf("online before any hello: %v", on)
	}
	mon, _ := e.connect(monTok)
	if on := online(); on[doorID] || !on[monID] {
		t.Fatalf("online with the monitor connected: %v, want the monitor only", on)
	}
	_ = mon.c.Close()
	for deadline := time.Now().Add(5 * time.Second); online()[monID]; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the monitor is still listed online 5 s after its connection closed")
		}
	}
}
