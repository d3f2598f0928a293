package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// TestRemovedMemberLosesCodes: removing an app user from a site removes
// their access codes there: the keypad no longer opens for them, and the
// site's code list no longer shows them.
func TestRemovedMemberLosesCodes(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Gone Court")
	gateID, gateTok := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	var u struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users", map[string]any{"email": "g@example.com", "number": "5", "display_name": "G", "send_invitation": false}, &u)
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/codes", map[string]any{"user_id": u.ID, "pin": "4711", "doors": []string{gateID}}, nil)
	op.must(http.StatusNoContent, "DELETE", "/v1/sites/"+site+"/users/"+u.ID, nil, nil)

	var codes struct{ Codes []struct{ ID string } }
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/codes", nil, &codes)
	if len(codes.Codes) != 0 {
		t.Fatalf("the removed user's codes are still listed: %+v", codes.Codes)
	}
	gate, _ := e.connect(gateTok)
	gate.send(map[string]any{"type": "pin", "code": "4711"})
	_ = gate.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		var m map[string]any
		if err := gate.c.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		if m["type"] == "unlock" {
			t.Fatal("the code of a user removed from the site opened the door")
		}
		if m["type"] == "error" {
			if m["code"] != "not_found" {
				t.Fatalf("pin: %v, want not_found", m)
			}
			break
		}
	}
}

// TestBulkDeleteNamesAUserTwice: a bulk delete that names a user twice
// deletes each user once, rather than failing whole.
func TestBulkDeleteNamesAUserTwice(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Twice Court")
	var a, b struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users", map[string]any{"email": "a@example.com", "number": "1", "display_name": "A", "send_invitation": false}, &a)
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users", map[string]any{"email": "b@example.com", "number": "2", "display_name": "B", "send_invitation": false}, &b)
	var out struct{ Deleted int }
	op.must(http.StatusOK, "POST", "/v1/sites/"+site+"/users/delete", map[string]any{"ids": []string{a.ID, b.ID, a.ID}}, &out)
	var list struct{ Users []struct{ ID string } }
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/users", nil, &list)
	if out.Deleted != 2 || len(list.Users) != 0 {
		t.Fatalf("deleted %d, %d users left; want 2 and 0", out.Deleted, len(list.Users))
	}
}

// TestTransferToOwnerRefused: the owner cannot transfer the site to
// themselves (it would leave the site without an owner); they stay owner.
func TestTransferToOwnerRefused(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Own Court")
	if _, err := e.acc.CreateAdmin(context.Background(), "owner@example.com", "a password of theirs", false); err != nil {
		t.Fatal(err)
	}
	op.must(http.StatusNoContent, "POST", "/v1/sites/"+site+"/transfer", map[string]string{"email": "owner@example.com"}, nil)
	owner := e.login("owner@example.com", "a password of theirs")
	owner.wantError(http.StatusConflict, "conflict", "POST", "/v1/sites/"+site+"/transfer", map[string]string{"email": "owner@example.com"})
	if _, err := e.acc.CreateAdmin(context.Background(), "viewer@example.com", "a password of theirs", false); err != nil {
		t.Fatal(err)
	}
	owner.must(http.StatusNoContent, "PUT", "/v1/sites/"+site+"/admins", map[string]string{"email": "viewer@example.com", "role": "viewer"}, nil)
}

// TestEditRacingDeleteKeepsItDeleted: an edit that runs while the same user
// or device is deleted either lands before the delete or gets not_found;
// it never brings back what was deleted.
func TestEditRacingDeleteKeepsItDeleted(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Race Court")
	race := func(del, patch func()) {
		done := make(chan struct{})
		go func() { defer close(done); patch() }()
		del()
		<-done
	}
	for i := range 25 {
		var u struct{ ID string }
		op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users", map[string]any{"email": fmt.Sprintf("r%d@example.com", i), "number": "1", "display_name": "R", "send_invitation": false}, &u)
		path := "/v1/sites/" + site + "/users/" + u.ID
		race(func() { op.must(http.StatusNoContent, "DELETE", path, nil, nil) },
			func() { op.do("PATCH", path, map[string]any{"display_name": "Renamed"}) })
		if status, body := op.do("GET", path, nil); status != http.StatusNotFound {
			t.Fatalf("round %d: the deleted user is back after a racing edit: %d %s", i, status, body)
		}

		id, _ := e.device(op, site, map[string]string{"kind": "door_station", "name": fmt.Sprintf("Gate %d", i)})
		path = "/v1/sites/" + site + "/devices/" + id
		race(func() { op.must(http.StatusNoContent, "DELETE", path, nil, nil) },
			func() { op.do("PATCH", path, map[string]any{"name": fmt.Sprintf("Gate %d renamed", i)}) })
		if _, body := op.do("GET", "/v1/sites/"+site+"/devices", nil); strings.Contains(string(body), id) {
			t.Fatalf("round %d: the deleted door station is back after a racing edit: %s", i, body)
		}
	}
}

// TestOvertakenEditMadeAgain: another edit of the same user or device that
// lands between an edit's read and its write is kept: the edit is made
// again on what is there now, instead of storing what it read and undoing
// the other's field. An edit overtaken every time gives up with 409.
func TestOvertakenEditMadeAgain(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Busy Court")
	ctx := context.Background()
	once := func(f func()) {
		var done bool
		g := func() {
			if !done {
				done = true
				f()
			}
		}
		e.meanwhile.Store(&g)
	}
	defer e.meanwhile.Store(nil)

	var u struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users", map[string]any{"email": "busy@example.com", "number": "1", "display_name": "B", "send_invitation": false}, &u)
	suspend := func() {
		ms, err := e.dir.Memberships(ctx, directory.UserID(u.ID))
		if err != nil || len(ms) != 1 {
			t.Errorf("memberships %v, %v", ms, err)
			return
		}
		m := ms[0]
		m.Licence = directory.LicenceInactive
		if err := e.dir.Apply(ctx, directory.PutMembership{Membership: m}); err != nil {
			t.Error(err)
		}
	}
	once(suspend)
	path := "/v1/sites/" + site + "/users/" + u.ID
	var got struct {
		DisplayName string `json:"display_name"`
		Licence     string `json:"licence"`
	}
	op.must(http.StatusOK, "PATCH", path, map[string]any{"display_name": "Renamed"}, &got)
	if got.DisplayName != "Renamed" || got.Licence != "inactive" {
		t.Errorf("PATCH answered %+v; want the new name and the licence withdrawn meanwhile", got)
	}
	op.must(http.StatusOK, "GET", path, nil, &got)
	if got.DisplayName != "Renamed" || got.Licence != "inactive" {
		t.Errorf("stored %+v; want the new name and the licence withdrawn meanwhile", got)
	}

	id, _ := e.device(op, site, map[string]string{"kind": "door_station", "name": "Gate"})
	other := op.site("Next Door")
	once(func() {
		d, err := e.dir.Device(ctx, directory.DeviceID(id))
		if err != nil {
			t.Error(err)
			return
		}
		d.Name = "Main gate"
		if err := e.dir.Apply(ctx, directory.PutDevice{Device: d}); err != nil {
			t.Error(err)
		}
	})
	op.must(http.StatusOK, "PATCH", "/v1/sites/"+site+"/devices/"+id, map[string]any{"call_sites": []string{other}}, nil)
	d, err := e.dir.Device(ctx, directory.DeviceID(id))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "Main gate" || len(d.CallSites) != 1 || string(d.CallSites[0]) != other {
		t.Errorf("stored %+v; want the name given meanwhile and the new call site", d)
	}

	once(func() {
		s, err := e.dir.Site(ctx, directory.SiteID(site))
		if err != nil {
			t.Error(err)
			return
		}
		s.Settings.RingTimeout = 45 * time.Second
		if err := e.dir.Apply(ctx, directory.PutSite{Site: s}); err != nil {
			t.Error(err)
		}
	})
	op.must(http.StatusOK, "PATCH", "/v1/sites/"+site, map[string]any{"name": "Busy Court East"}, nil)
	if s, err := e.dir.Site(ctx, directory.SiteID(site)); err != nil || s.Name != "Busy Court East" || s.Settings.RingTimeout != 45*time.Second {
		t.Errorf("stored %+v, %v; want the new name and the ring timeout set meanwhile", s, err)
	}

	// Overtaken every time: 409, and nothing of the edit stored.
	n := 0
	always := func() {
		n++
		ms, _ := e.dir.Memberships(ctx, directory.UserID(u.ID))
		if len(ms) == 1 {
			m := ms[0]
			m.DisplayName = fmt.Sprintf("Other %d", n)
			if err := e.dir.Apply(ctx, directory.PutMembership{Membership: m}); err != nil {
				t.Error(err)
			}
		}
	}
	e.meanwhile.Store(&always)
	status, body := op.do("PATCH", path, map[string]any{"licence": "active"})
	e.meanwhile.Store(nil)
	var resp struct{ Error struct{ Code string } }
	_ = json.Unmarshal(body, &resp)
	if status != http.StatusConflict || resp.Error.Code != "conflict" {
		t.Errorf("an edit overtaken every time: %d %s, want 409 conflict", status, body)
	}
	op.must(http.StatusOK, "GET", path, nil, &got)
	if got.Licence != "inactive" || got.DisplayName != fmt.Sprintf("Other %d", n) {
		t.Errorf("after the 409: %+v, want the other edits only (%d of them)", got, n)
	}
}

// TestInvitationResentWithMailDown: sending a user's invitation again
// while the mail server refuses it answers as adding a user does: the
// user's view with email_error (not the mail server's answer), not a bare
// 500; once the mail works, sending again delivers it.
func TestInvitationResentWithMailDown(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Quiet Court")
	var u struct {
		ID         string `json:"id"`
		Invitation string `json:"invitation"`
		EmailError string `json:"email_error"`
	}
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users", map[string]any{"email": "q@example.com", "number": "1", "display_name": "Q", "send_invitation": false}, &u)
	resend := "/v1/sites/" + site + "/users/" + u.ID + "/invitation"
	e.mail.reject.Store(true)
	op.must(http.StatusOK, "POST", resend, nil, &u)
	if u.Invitation != "not_sent" || !strings.Contains(u.EmailError, "could not be sent") || strings.Contains(u.EmailError, "550") {
		t.Fatalf("resent with the mail server refusing: %+v, want not_sent and an email_error without the server's answer", u)
	}
	if !strings.Contains(e.logs.String(), "invitation e-mail failed") {
		t.Fatal("the failed invitation is not in the operator's log")
	}
	e.mail.reject.Store(false)
	u.EmailError = ""
	op.must(http.StatusOK, "POST", resend, nil, &u)
	if u.Invitation != "sent" || u.EmailError != "" {
		t.Fatalf("resent with the mail server back: %+v", u)
	}
	e.mail.waitFor(t, "q@example.com", regexp.MustCompile(`Quiet Court`))
}

// TestOwnerRoleNotGranted: a grant cannot take a site's owner's ownership
// away (another role, or none): ownership moves only by transfer, so the
// site never loses its owner; the operator is refused too.
func TestOwnerRoleNotGranted(t *testing.T) {
	e := newEnv(t)
	owner, site := e.siteOwner("Kept Court")
	op := e.operator()
	for _, role := range []string{"admin", "viewer", ""} {
		t.Run("role "+role, func(t *testing.T) {
			for _, c := range []*client{op, owner} {
				msg := c.wantError(http.StatusBadRequest, "bad_request", "PUT", "/v1/sites/"+site+"/admins", map[string]string{"email": "owner@example.com", "role": role})
				if !strings.Contains(msg, "transfer") {
					t.Errorf("message %q does not point to the transfer", msg)
				}
			}
		})
	}
	if got := adminRows(op, site)["owner@example.com"]; got != "owner active" {
		t.Fatalf("the owner is %q afterwards, want owner active", got)
	}
}

// TestBulkDeleteLimit: a bulk delete names 1 to 10,000 IDs; 10,001 is
// refused before anything is looked up.
func TestBulkDeleteLimit(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Many Court")
	ids := func(n int) []string { return slices.Repeat([]string{"u"}, n) }
	var out struct{ Deleted int }
	op.must(http.StatusOK, "POST", "/v1/sites/"+site+"/users/delete", map[string]any{"ids": ids(10000)}, &out)
	if out.Deleted != 0 {
		t.Errorf("10,000 IDs of nobody: deleted %d, want 0", out.Deleted)
	}
	for _, n := range []int{0, 10001} {
		if msg := op.wantError(http.StatusBadRequest, "bad_request", "POST", "/v1/sites/"+site+"/users/delete", map[string]any{"ids": ids(n)}); !strings.Contains(msg, "10,000") {
			t.Errorf("%d IDs: message %q does not give the limit", n, msg)
		}
	}
}
