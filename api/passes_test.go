package api_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// pass is a visitor pass as the API returns it.
type pass struct {
	ID         string
	PIN        string
	Doors      []string
	Label      string
	OneTime    bool      `json:"one_time"`
	Used       bool      `json:"used"`
	Pass       bool      `json:"pass"`
	ValidUntil time.Time `json:"valid_until"`
}

// TestVisitorPasses: a resident makes a visitor pass in the app: the
// server picks an 8-digit PIN that opens every door station of the site,
// once by default and for a day unless told; a pass for longer use works
// until deleted. Passes are few (10 live a person), end within 7 days, are
// the person's own (another's, or an admin's code, is not found), show in
// the admins' list of codes and the audit log, stop working when deleted,
// go once past their end, and are refused where the site turned them off
// or the person is not rung.
func TestVisitorPasses(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Pass Court")
	other := op.site("Elsewhere")
	e.resident(op, site, "anna@example.com", "5")
	e.resident(op, site, "bram@example.com", "6")
	gateID, gateTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	backID, backTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Back"})
	e.device(op, site, map[string]string{"kind": "monitor", "name": "Hall", "number": "5"})
	anna, bram := e.residentApp("anna@example.com"), e.residentApp("bram@example.com")
	passes := "/v1/app/sites/" + site + "/passes"

	var made struct{ Pass pass }
	start := time.Now()
	anna.must(http.StatusCreated, "POST", passes, map[string]any{"label": "Plumber"}, &made)
	p := made.Pass
	if !regexp.MustCompile(`^[0-9]{8}$`).MatchString(p.PIN) || !p.OneTime || !p.Pass || p.Used || p.Label != "Plumber" {
		t.Fatalf("a pass made with a label only: %+v, want an 8-digit PIN, one-time", p)
	}
	want := []string{gateID, backID}
	slices.Sort(want)
	slices.Sort(p.Doors)
	if !slices.Equal(p.Doors, want) {
		t.Fatalf("pass doors %v, want the site's door stations %v (not the monitor)", p.Doors, want)
	}
	if d := p.ValidUntil.Sub(start); d < 23*time.Hour || d > 25*time.Hour {
		t.Fatalf("pass ends in %v, want a day", d)
	}

	gate, _ := e.connect(gateTok)
	back, _ := e.connect(backTok)
	if m := gate.pin(p.PIN); m["type"] != "unlock" {
		t.Fatalf("the pass at the gate: %v, want unlock", m)
	}
	if m := back.pin(p.PIN); m["code"] != "not_found" {
		t.Fatalf("the one-time pass used again: %v, want not_found", m)
	}
	var list struct{ Passes []pass }
	anna.must(http.StatusOK, "GET", passes, nil, &list)
	if len(list.Passes) != 1 || list.Passes[0].ID != p.ID || !list.Passes[0].Used {
		t.Fatalf("anna's passes after the visit: %+v, want it used", list.Passes)
	}

	// A pass for the week's cleaner works each time.
	week := time.Now().Add(7*24*time.Hour - time.Minute)
	anna.must(http.StatusCreated, "POST", passes, map[string]any{"label": "Cleaner", "one_time": false, "valid_until": week}, &made)
	cleaner := made.Pass
	for range 2 {
		if m := back.pin(cleaner.PIN); m["type"] != "unlock" {
			t.Fatalf("a multi-use pass: %v, want unlock each time", m)
		}
	}

	// Bad requests change nothing.
	for _, c := range []struct {
		body any
		code string
	}{
		{map[string]any{"valid_until": time.Now().Add(-time.Minute)}, "invalid"},
		{map[string]any{"valid_until": time.Now().Add(8 * 24 * time.Hour)}, "invalid"},
		{map[string]any{"valid_from": time.Now().Add(3 * time.Hour), "valid_until": time.Now().Add(2 * time.Hour)}, "invalid"},
		{map[string]any{"label": strings.Repeat("x", 101)}, "invalid"},
		{[]byte(`{"label": `), "bad_request"},
		{map[string]any{"one_time": "yes"}, "bad_request"},
	} {
		status := map[string]int{"invalid": http.StatusUnprocessableEntity, "bad_request": http.StatusBadRequest}[c.code]
		if msg := anna.wantError(status, c.code, "POST", passes, c.body); msg == "" {
			t.Fatalf("%v: no message", c.body)
		}
	}
	anna.must(http.StatusOK, "GET", passes, nil, &list)
	if len(list.Passes) != 2 {
		t.Fatalf("after refused requests anna has %d passes, want 2", len(list.Passes))
	}

	// Ten live at most: the cleaner's and nine more (the used one is not
	// live), then one too many.
	for i := range 9 {
		anna.must(http.StatusCreated, "POST", passes, map[string]any{"label": "guest " + string(rune('a'+i))}, nil)
	}
	anna.wantError(http.StatusConflict, "limit", "POST", passes, map[string]any{"label": "one too many"})

	// Another person's pass, and an admin's code, are not anna's to delete.
	var annaMe struct{ User struct{ ID string } }
	anna.must(http.StatusOK, "GET", "/v1/app/me", nil, &annaMe)
	var code struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/codes", map[string]any{"user_id": annaMe.User.ID, "pin": "4711", "doors": []string{gateID}}, &code)
	anna.wantError(http.StatusNotFound, "not_found", "DELETE", passes+"/"+code.ID, nil)
	bram.wantError(http.StatusNotFound, "not_found", "DELETE", passes+"/"+cleaner.ID, nil)
	if m := gate.pin(cleaner.PIN); m["type"] != "unlock" {
		t.Fatalf("the cleaner's pass after bram tried to delete it: %v", m)
	}
	bram.must(http.StatusOK, "GET", passes, nil, &list)
	if len(list.Passes) != 0 {
		t.Fatalf("bram lists anna's passes: %+v", list.Passes)
	}
	anna.wantError(http.StatusNotFound, "not_found", "POST", "/v1/app/sites/"+other+"/passes", map[string]any{})
	// A person the site does not ring (licence withdrawn) makes none.
	var bramMe struct{ User struct{ ID string } }
	bram.must(http.StatusOK, "GET", "/v1/app/me", nil, &bramMe)
	op.must(http.StatusOK, "PATCH", "/v1/sites/"+site+"/users/"+bramMe.User.ID, map[string]any{"licence": "inactive"}, nil)
	bram.wantError(http.StatusNotFound, "not_found", "POST", passes, map[string]any{})

	// The admins see the passes among the site's codes, and in the audit log.
	var codes struct {
		Codes []struct {
			ID   string
			Pass bool
		}
	}
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/codes", nil, &codes)
	if n := len(codes.Codes); n != 12 || !slices.ContainsFunc(codes.Codes, func(c struct {
		ID   string
		Pass bool
	}) bool {
		return c.ID == cleaner.ID && c.Pass
	}) {
		t.Fatalf("the site's codes: %d (%+v), want anna's 11 passes and her code, the cleaner's marked a pass", n, codes.Codes)
	}
	var audit struct {
		Events []struct{ User, Outcome, Details string }
	}
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/logs/audit", nil, &audit)
	if !slices.ContainsFunc(audit.Events, func(ev struct{ User, Outcome, Details string }) bool {
		return ev.Outcome == "pass.create" && ev.Details == cleaner.ID && ev.User == annaMe.User.ID
	}) {
		t.Fatalf("audit log: %+v, want the cleaner's pass made by anna", audit.Events)
	}

	// Deleted, it opens nothing; room for another.
	anna.must(http.StatusNoContent, "DELETE", passes+"/"+cleaner.ID, nil, nil)
	if m := gate.pin(cleaner.PIN); m["code"] != "not_found" {
		t.Fatalf("a deleted pass: %v, want not_found", m)
	}
	anna.must(http.StatusCreated, "POST", passes, map[string]any{"label": "after a delete"}, nil)

	// The site turns passes off: no new ones, though there is room.
	anna.must(http.StatusOK, "GET", passes, nil, &list)
	anna.must(http.StatusNoContent, "DELETE", passes+"/"+list.Passes[0].ID, nil, nil)
	op.must(http.StatusOK, "PATCH", "/v1/sites/"+site, map[string]any{"settings": map[string]bool{"visitor_passes": false}}, nil)
	if msg := anna.wantError(http.StatusForbidden, "forbidden", "POST", passes, map[string]any{}); !strings.Contains(msg, "Pass Court") {
		t.Fatalf("passes off: %q, want the site named", msg)
	}

	// A day on, the day passes are gone; the week's (deleted) too.
	e.now.advance(25 * time.Hour)
	if err := e.acc.MaintainOnce(context.Background(), e.dir); err != nil {
		t.Fatal(err)
	}
	anna = e.residentApp("anna@example.com")
	list.Passes = nil
	anna.must(http.StatusOK, "GET", passes, nil, &list)
	if len(list.Passes) != 0 {
		t.Fatalf("a day later: %+v, want the day passes purged", list.Passes)
	}
}
