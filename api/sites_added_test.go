package api_test

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// resident adds an app user to site, follows their invitation to an own
// password, and registers an app device; it returns the user ID and the
// device's token.
func (e *env) resident(op *client, site, addr, number string) (string, string) {
	e.t.Helper()
	var u struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users", map[string]string{"email": addr, "number": number, "display_name": "R " + number}, &u)
	temp := regexp.MustCompile(`Temporary password:\s+(\S+)`).FindStringSubmatch(mailText(e.t, e.mail.waitFor(e.t, addr, regexp.MustCompile(`(?i)subject:`)).data))
	if temp == nil {
		e.t.Fatal("no temporary password in the invitation")
	}
	var login struct{ Token string }
	e.anon().must(http.StatusOK, "POST", "/v1/app/login", map[string]string{"email": addr, "password": temp[1]}, &login)
	app := &client{e: e, token: login.Token}
	app.must(http.StatusNoContent, "POST", "/v1/app/password", map[string]string{"new_password": "resident password"}, nil)
	var dev struct{ Token string }
	app.must(http.StatusCreated, "POST", "/v1/app/devices", map[string]string{"name": "phone"}, &dev)
	return u.ID, dev.Token
}

// residentApp signs a resident made by resident in to the app API and
// returns the session.
func (e *env) residentApp(addr string) *client {
	e.t.Helper()
	var login struct{ Token string }
	e.anon().must(http.StatusOK, "POST", "/v1/app/login", map[string]string{"email": addr, "password": "resident password"}, &login)
	return &client{e: e, token: login.Token}
}

// TestExistingUserAddedToSite: an active app user added to another site
// is active there at once, gets a confirmation e-mail, and their connected
// app is asked to reconnect, after which the new site's door rings it.
func TestExistingUserAddedToSite(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	a, b := op.site("First Site"), op.site("Second Site")
	_, devTok := e.resident(op, a, "mover@example.com", "11")
	phone, welcome := e.connect(devTok)
	if ids := welcome["site_ids"].([]any); len(ids) != 1 {
		t.Fatalf("site_ids %v, want the first site only", ids)
	}
	_, doorTok := e.device(op, b, map[string]string{"kind": "door_station", "name": "B gate"})

	var added struct{ Status, Invitation string }
	start := time.Now()
	op.must(http.StatusCreated, "POST", "/v1/sites/"+b+"/users", map[string]string{"email": "mover@example.com", "number": "22", "display_name": "Mover"}, &added)
	if added.Status != "active" || added.Invitation != "accepted" {
		t.Fatalf("existing user added: %+v, want active and accepted", added)
	}
	e.mail.waitFor(t, "mover@example.com", regexp.MustCompile(`Second Site is now in your intercom app`))
	if code := phone.closed(5 * time.Second); code != 4011 {
		t.Fatalf("app closed with %d, want 4011 (reconfigured: reconnect)", code)
	}
	t.Logf("app asked to reconnect %v after the change", time.Since(start))
	phone, welcome = e.connect(devTok)
	if ids := welcome["site_ids"].([]any); !slices.Contains(ids, any(a)) || !slices.Contains(ids, any(b)) {
		t.Fatalf("site_ids after reconnecting %v, want both sites", ids)
	}
	door, _ := e.connect(doorTok)
	door.send(map[string]any{"type": "call", "to": "22"})
	door.next("calling")
	phone.next("ring")

	// Removing them from the second site reconfigures the app again.
	var list struct{ Users []struct{ ID, Email string } }
	op.must(http.StatusOK, "GET", "/v1/sites/"+b+"/users", nil, &list)
	op.must(http.StatusNoContent, "DELETE", "/v1/sites/"+b+"/users/"+list.Users[0].ID, nil, nil)
	if code := phone.closed(5 * time.Second); code != 4011 && code != 4010 {
		t.Fatalf("app closed with %d after removal from a site, want 4011", code)
	}
}

// TestAppDeviceRefusedWhole: registering an app device with a push token
// that cannot be kept is refused before anything is written: no new
// device, and a reinstall's old device token still signs in.
func TestAppDeviceRefusedWhole(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Push Court")
	_, devTok := e.resident(op, site, "push@example.com", "12")
	app := e.residentApp("push@example.com")
	huge := strings.Repeat("p", 4097)
	for _, name := range []string{"tablet", "phone"} { // new, and a reinstall
		msg := app.wantError(http.StatusUnprocessableEntity, "invalid", "POST", "/v1/app/devices", map[string]string{"name": name, "push_token": huge})
		if !strings.Contains(msg, "push token") {
			t.Errorf("%s: message %q does not name the push token", name, msg)
		}
	}
	var me struct{ Devices []struct{ Name string } }
	app.must(http.StatusOK, "GET", "/v1/app/me", nil, &me)
	if len(me.Devices) != 1 || me.Devices[0].Name != "phone" {
		t.Fatalf("devices after two refused registrations: %+v, want phone alone", me.Devices)
	}
	e.connect(devTok) // the phone's token still signs in (connect fails the test unless welcomed)
}

// TestPushTokenOnlyForOwnDevices: an app user sets the push token of their
// own app devices only; another person's device answers as one that does
// not exist.
func TestPushTokenOnlyForOwnDevices(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Token Court")
	e.resident(op, site, "x@example.com", "1")
	y, _ := e.resident(op, site, "y@example.com", "2")
	x := e.residentApp("x@example.com")
	var me struct{ Devices []struct{ ID string } }
	x.must(http.StatusOK, "GET", "/v1/app/me", nil, &me)
	if len(me.Devices) != 1 {
		t.Fatalf("x's devices: %+v, want one", me.Devices)
	}
	x.must(http.StatusNoContent, "PUT", "/v1/app/devices/"+me.Devices[0].ID+"/push-token", map[string]string{"push_token": "x-push"}, nil)
	devs, err := e.dir.UserDevices(context.Background(), directory.UserID(y))
	if err != nil || len(devs) != 1 {
		t.Fatalf("y's devices: %+v, %v", devs, err)
	}
	x.wantError(http.StatusNotFound, "not_found", "PUT", "/v1/app/devices/"+string(devs[0].ID)+"/push-token", map[string]string{"push_token": "x-push"})
}
