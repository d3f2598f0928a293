package api_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRemoteOpen: a resident rung at a site lists its door stations (which
// are connected) and, once the site's managers allow it, opens one from
// the app outside a call: the door station gets unlock (relay 1, the
// site's door-open duration, no call), and the door log names the
// resident. Refused, sending nothing: while the setting is off (403), a
// door station not connected (409 door_offline), a monitor or another
// site's door station (404), a site where the person is not rung (404).
func TestRemoteOpen(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Open Court")
	other := op.site("Elsewhere")
	annaID, _ := e.resident(op, site, "anna@example.com", "5")
	bramID, _ := e.resident(op, site, "bram@example.com", "6")
	gateID, gateTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	backID, _ := e.device(op, site, map[string]string{"kind": "door_station", "name": "Back"}) // never connected
	hallID, _ := e.device(op, site, map[string]string{"kind": "monitor", "name": "Hall", "number": "5"})
	otherID, otherTok := e.device(op, other, map[string]string{"kind": "door_station", "name": "Other gate"})
	gate, _ := e.connect(gateTok)
	e.connect(otherTok)
	anna, bram := e.residentApp("anna@example.com"), e.residentApp("bram@example.com")
	doors := "/v1/app/sites/" + site + "/doors"

	type door struct {
		ID, Name string
		Online   bool
	}
	var list struct {
		RemoteOpen bool `json:"remote_open"`
		Doors      []door
	}
	anna.must(http.StatusOK, "GET", doors, nil, &list)
	slices.SortFunc(list.Doors, func(a, b door) int { return strings.Compare(a.Name, b.Name) })
	if want := []door{{backID, "Back", false}, {gateID, "Gate", true}}; list.RemoteOpen || !slices.Equal(list.Doors, want) {
		t.Fatalf("anna's doors: %+v, want %+v, remote opening off", list, want)
	}
	if msg := anna.wantError(http.StatusForbidden, "forbidden", "POST", doors+"/"+gateID+"/open", nil); !strings.Contains(msg, "Open Court") {
		t.Fatalf("opening while the site does not allow it: %q, want the site named", msg)
	}

	op.must(http.StatusOK, "PATCH", "/v1/sites/"+site, map[string]any{"settings": map[string]any{"remote_open": true, "door_open_duration_s": 7}}, nil)
	anna.must(http.StatusOK, "GET", doors, nil, &list)
	var me struct {
		Sites []struct {
			Name          string
			RemoteOpen    bool `json:"remote_open"`
			VisitorPasses bool `json:"visitor_passes"`
		}
	}
	anna.must(http.StatusOK, "GET", "/v1/app/me", nil, &me)
	if !list.RemoteOpen || len(me.Sites) != 1 || !me.Sites[0].RemoteOpen || !me.Sites[0].VisitorPasses {
		t.Fatalf("after the site turned remote opening on: doors %+v, the person's sites %+v; want it on in both (passes too)", list, me.Sites)
	}
	var opened struct {
		Relay      int
		DurationMS int64 `json:"duration_ms"`
	}
	anna.must(http.StatusOK, "POST", doors+"/"+gateID+"/open", nil, &opened)
	if m := gate.next("unlock"); m["relay"] != 1.0 || m["duration_ms"] != 7000.0 || m["call_id"] != nil || opened.Relay != 1 || opened.DurationMS != 7000 {
		t.Fatalf("the gate got %v (the API said %+v), want relay 1 for the site's 7 s, no call", m, opened)
	}

	anna.wantError(http.StatusConflict, "door_offline", "POST", doors+"/"+backID+"/open", nil)
	anna.wantError(http.StatusNotFound, "not_found", "POST", doors+"/"+hallID+"/open", nil)
	anna.wantError(http.StatusNotFound, "not_found", "POST", doors+"/"+otherID+"/open", nil)
	anna.wantError(http.StatusNotFound, "not_found", "POST", "/v1/app/sites/"+other+"/doors/"+otherID+"/open", nil)
	anna.wantError(http.StatusNotFound, "not_found", "GET", "/v1/app/sites/"+other+"/doors", nil)
	op.must(http.StatusOK, "PATCH", "/v1/sites/"+site+"/users/"+bramID, map[string]any{"licence": "inactive"}, nil)
	bram.wantError(http.StatusNotFound, "not_found", "POST", doors+"/"+gateID+"/open", nil)

	// Nothing refused reached the gate: the next thing it hears answers a code.
	if m := gate.pin("0000"); m["type"] != "error" {
		t.Fatalf("the gate after the refused openings: %v, want the wrong code's error (no unlock)", m)
	}
	var log struct {
		Events []struct{ Door, User, Outcome string }
	}
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/door", nil, &log)
	if len(log.Events) != 1 || log.Events[0].Door != gateID || log.Events[0].User != annaID || log.Events[0].Outcome != "app" {
		t.Fatalf("the door log: %+v, want the gate opened by anna from the app, once", log.Events)
	}

	// Five openings at once, then one every 6 s: two are spent (the gate's
	// and the back door's, which was not connected), three are left.
	for range 3 {
		anna.must(http.StatusOK, "POST", doors+"/"+gateID+"/open", nil, nil)
		gate.next("unlock")
	}
	if msg := anna.wantError(http.StatusTooManyRequests, "rate_limited", "POST", doors+"/"+gateID+"/open", nil); !strings.Contains(msg, "try again in 6 s") {
		t.Fatalf("a sixth opening at once: %q, want the wait named", msg)
	}
	e.now.advance(6 * time.Second)
	anna.must(http.StatusOK, "POST", doors+"/"+gateID+"/open", nil, nil)
	gate.next("unlock")
	if m := gate.pin("0000"); m["type"] != "error" {
		t.Fatalf("the gate after the refused sixth: %v, want the wrong code's error (no unlock)", m)
	}
}
