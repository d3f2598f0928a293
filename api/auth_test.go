package api_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/api"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/email"
)

// addAdmin creates an admin account with a role on site and signs it in.
func (e *env) addAdmin(op *client, site, addr, role string) *client {
	e.t.Helper()
	if _, err := e.acc.CreateAdmin(context.Background(), addr, "a password of theirs", false); err != nil {
		e.t.Fatal(err)
	}
	op.must(http.StatusNoContent, "PUT", "/v1/sites/"+site+"/admins", map[string]string{"email": addr, "role": role}, nil)
	return e.login(addr, "a password of theirs")
}

// TestRoles: what each role may do, sub-sites inherit, and another site's
// objects answer exactly as if they did not exist.
func TestRoles(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	a, b := op.site("Site A"), op.site("Site B")
	var sub struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites", map[string]string{"name": "A annex", "parent_id": a}, &sub)
	var bUser struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+b+"/users", map[string]any{"email": "b@example.com", "number": "1", "display_name": "B", "send_invitation": false}, &bUser)

	viewer := e.addAdmin(op, a, "viewer@example.com", "viewer")
	installer := e.addAdmin(op, a, "installer@example.com", "installer")
	admin := e.addAdmin(op, a, "admin@example.com", "admin")

	add := func(c *client, site, addr string) (int, []byte) {
		return c.do("POST", "/v1/sites/"+site+"/users", map[string]any{"email": addr, "number": "7", "display_name": "X", "send_invitation": false})
	}
	viewer.must(http.StatusOK, "GET", "/v1/sites/"+a+"/users", nil, nil)
	viewer.must(http.StatusOK, "GET", "/v1/sites/"+sub.ID+"/users", nil, nil) // inherited
	if s, _ := add(viewer, a, "v@example.com"); s != http.StatusForbidden {
		t.Errorf("viewer adding a user: %d, want 403", s)
	}
	if s, _ := add(installer, a, "i@example.com"); s != http.StatusForbidden {
		t.Errorf("installer adding a user: %d, want 403", s)
	}
	installer.must(http.StatusCreated, "POST", "/v1/sites/"+a+"/devices", map[string]string{"kind": "door_station", "name": "Gate"}, nil)
	viewer.wantError(http.StatusForbidden, "forbidden", "POST", "/v1/sites/"+a+"/devices", map[string]string{"kind": "door_station", "name": "Gate 2"})
	if s, b := add(admin, sub.ID, "sub@example.com"); s != http.StatusCreated {
		t.Errorf("admin of the parent adding to a sub-site: %d %s", s, b)
	}
	admin.wantError(http.StatusForbidden, "forbidden", "PUT", "/v1/sites/"+a+"/admins", map[string]string{"email": "viewer@example.com", "role": "admin"})
	admin.wantError(http.StatusForbidden, "forbidden", "POST", "/v1/sites", map[string]string{"name": "mine"})

	// Site B, its user and a site that does not exist answer the same.
	nowhere := "s_doesnotexist0000000000"
	for _, path := range []string{
		"/v1/sites/" + b, "/v1/sites/" + b + "/users", "/v1/sites/" + b + "/users/" + bUser.ID, "/v1/sites/" + b + "/logs/call",
	} {
		for _, c := range []*client{viewer, admin} {
			st, body := c.do("GET", path, nil)
			st2, body2 := c.do("GET", strings.Replace(path, b, nowhere, 1), nil)
			if st != http.StatusNotFound || st2 != http.StatusNotFound || strings.Replace(string(body), b, nowhere, 1) != string(body2) {
				t.Errorf("GET %s as an admin of A: %d %s; of a missing site: %d %s; want identical 404s", path, st, body, st2, body2)
			}
		}
	}
	if s, _ := add(admin, b, "intruder@example.com"); s != http.StatusNotFound {
		t.Errorf("admin of A adding a user to B: %d, want 404", s)
	}
	// A's admin cannot read B's user through A either.
	admin.wantError(http.StatusNotFound, "not_found", "GET", "/v1/sites/"+a+"/users/"+bUser.ID, nil)
	var sites struct{ Sites []struct{ ID, Role string } }
	admin.must(http.StatusOK, "GET", "/v1/sites", nil, &sites)
	if len(sites.Sites) != 2 {
		t.Errorf("admin of A lists %v, want A and its annex", sites.Sites)
	}

	// An API key acts on its site only, with its role.
	var key struct{ Key string }
	admin.must(http.StatusCreated, "POST", "/v1/sites/"+a+"/api-keys", map[string]string{"name": "hr-sync", "role": "viewer"}, &key)
	kc := &client{e: e, token: key.Key}
	kc.must(http.StatusOK, "GET", "/v1/sites/"+a+"/users", nil, nil)
	kc.wantError(http.StatusNotFound, "not_found", "GET", "/v1/sites/"+b+"/users", nil)
	if s, _ := add(kc, a, "key@example.com"); s != http.StatusForbidden {
		t.Errorf("viewer key adding a user: %d, want 403", s)
	}
	admin.wantError(http.StatusForbidden, "forbidden", "POST", "/v1/sites/"+a+"/api-keys", map[string]string{"name": "x", "role": "owner"})
	// Not even an owner makes an owner's key: a key is at most admin.
	op.wantError(http.StatusUnprocessableEntity, "invalid", "POST", "/v1/sites/"+a+"/api-keys", map[string]string{"name": "x", "role": "owner"})
}

// TestSessions: bearer scheme rules, logout, CSRF on cookie writes.
func TestSessions(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	op.site("S")
	for _, h := range []string{"bearer " + op.token, "BEARER " + op.token} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/sites", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("Authorization %q: %v %v", h[:7], resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	for _, h := range []string{op.token, "Basic " + op.token, "Bearer", "Bearer x" + op.token} {
		req, _ := http.NewRequest("GET", e.srv.URL+"/v1/sites", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("Authorization %.12q…: %v %v, want 401", h, resp.StatusCode, err)
		}
		resp.Body.Close()
	}

	// The portal's cookie: writes need the CSRF token and a same-origin Origin.
	var login struct {
		Token     string
		CSRFToken string `json:"csrf_token"`
	}
	e.anon().must(http.StatusOK, "POST", "/v1/admin/login", map[string]string{"email": operatorEmail, "password": operatorPassword}, &login)
	post := func(csrf, origin string) int {
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/sites", strings.NewReader(`{"name":"via cookie `+csrf[:min(4, len(csrf))]+origin+`"}`))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(&http.Cookie{Name: "foyer_session", Value: login.Token})
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post("", ""); s != http.StatusForbidden {
		t.Errorf("cookie write without CSRF token: %d, want 403", s)
	}
	if s := post("wrong", ""); s != http.StatusForbidden {
		t.Errorf("cookie write with a wrong CSRF token: %d, want 403", s)
	}
	if s := post(login.CSRFToken, "https://evil.example"); s != http.StatusForbidden {
		t.Errorf("cookie write from another origin: %d, want 403", s)
	}
	if s := post(login.CSRFToken, e.srv.URL); s != http.StatusCreated {
		t.Errorf("cookie write with CSRF token from the same origin: %d, want 201", s)
	}

	c := &client{e: e, token: login.Token}
	c.must(http.StatusNoContent, "POST", "/v1/admin/logout", nil, nil)
	c.wantError(http.StatusUnauthorized, "unauthenticated", "GET", "/v1/sites", nil)

	// Sessions expire.
	op2 := e.operator()
	e.now.advance(13 * time.Hour)
	op2.wantError(http.StatusUnauthorized, "unauthenticated", "GET", "/v1/sites", nil)
}

// TestLoginThrottle: repeated failures lock the account's logins — from
// any address, the right password included — and an unknown account
// answers exactly the same.
func TestLoginThrottle(t *testing.T) {
	e := newEnv(t)
	try := func(addr, pw string) (int, string) {
		s, b := e.anon().do("POST", "/v1/admin/login", map[string]string{"email": addr, "password": pw})
		return s, string(b)
	}
	var known, unknown []string
	for range 7 {
		s, b := try(operatorEmail, "wrong password!")
		known = append(known, b)
		_ = s
		s2, b2 := try("nobody@example.com", "wrong password!")
		unknown = append(unknown, b2)
		_ = s2
	}
	for i := range known {
		if stripRetry(known[i]) != stripRetry(unknown[i]) {
			t.Fatalf("attempt %d: known account answered %s, unknown %s", i+1, known[i], unknown[i])
		}
	}
	if !strings.Contains(known[6], "too_many_attempts") {
		t.Fatalf("7th failure: %s, want too_many_attempts", known[6])
	}
	if s, _ := try(operatorEmail, operatorPassword); s != http.StatusTooManyRequests {
		t.Fatalf("right password while locked: %d, want 429", s)
	}
	e.now.advance(20 * time.Minute)
	if s, b := try(operatorEmail, operatorPassword); s != http.StatusOK {
		t.Fatalf("right password after the lock: %d %s", s, b)
	}
}

// stripRetry drops the seconds of a throttle message, which tick.
func stripRetry(s string) string {
	if i := strings.Index(s, "try again in"); i >= 0 {
		return s[:i]
	}
	return s
}

// TestSessionCookie: the portal's session cookie is HttpOnly (no script
// reads it), SameSite=Strict (no other site's page sends it), for the whole
// host, and Secure when secure_cookies is set; logout clears it with the
// same attributes.
func TestSessionCookie(t *testing.T) {
	for _, secure := range []bool{false, true} {
		t.Run(fmt.Sprintf("secure=%v", secure), func(t *testing.T) {
			e := newEnvWith(t, func(c *api.Config) { c.SecureCookies = secure })
			session := func(resp *http.Response) *http.Cookie {
				t.Helper()
				for _, c := range resp.Cookies() {
					if c.Name == "foyer_session" {
						return c
					}
				}
				t.Fatalf("%s: no foyer_session cookie set", resp.Request.URL.Path)
				return nil
			}
			check := func(c *http.Cookie, what string) {
				t.Helper()
				if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure != secure {
					t.Errorf("%s cookie: HttpOnly %v, SameSite %v, Path %q, Secure %v; want HttpOnly, Strict, /, Secure %v",
						what, c.HttpOnly, c.SameSite, c.Path, c.Secure, secure)
				}
			}
			body := `{"email":"` + operatorEmail + `","password":"` + operatorPassword + `"}`
			resp, err := http.Post(e.srv.URL+"/v1/admin/login", "application/json", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			login := session(resp)
			if resp.StatusCode != http.StatusOK || login.Value == "" || login.Expires.IsZero() {
				t.Fatalf("login: status %d, cookie %+v", resp.StatusCode, login)
			}
			check(login, "login")

			req, _ := http.NewRequest("POST", e.srv.URL+"/v1/admin/logout", nil)
			req.Header.Set("Authorization", "Bearer "+login.Value)
			if resp, err = http.DefaultClient.Do(req); err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			logout := session(resp)
			if resp.StatusCode != http.StatusNoContent || logout.Value != "" || logout.MaxAge >= 0 {
				t.Fatalf("logout: status %d, cookie %+v; want 204 and the cookie cleared", resp.StatusCode, logout)
			}
			check(logout, "logout")
		})
	}
}

// TestRoleFloors: every write, and every read above the viewer's, is
// refused (403) to each role below the one docs/api.md names for it, and
// allowed to that role. Each case makes the objects it acts on afresh.
func TestRoleFloors(t *testing.T) {
	outbox, err := email.NewOutbox(t.TempDir(), "foyer <noreply@foyer.test>")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvWith(t, func(c *api.Config) { c.Outbox = outbox })
	owner, site := e.siteOwner("Floor Court")
	op := e.operator()
	clients := map[string]*client{
		"viewer":    e.addAdmin(op, site, "viewer@example.com", "viewer"),
		"installer": e.addAdmin(op, site, "installer@example.com", "installer"),
		"admin":     e.addAdmin(op, site, "admin@example.com", "admin"),
		"owner":     owner,
		"operator":  op,
	}
	ranks := []string{"viewer", "installer", "admin", "owner", "operator"}
	if err := outbox.Send(context.Background(), email.Message{To: "someone@example.com", Subject: "a temporary password", Text: "secret"}); err != nil {
		t.Fatal(err)
	}
	var box struct{ Messages []struct{ Name string } }
	op.must(http.StatusOK, "GET", "/v1/outbox", nil, &box)
	if len(box.Messages) != 1 {
		t.Fatalf("outbox lists %d messages, want 1", len(box.Messages))
	}

	at := "/v1/sites/" + site
	n := 0
	newUser := func() string {
		n++
		var u struct{ ID string }
		op.must(http.StatusCreated, "POST", at+"/users", map[string]any{"email": fmt.Sprintf("floor%d@example.com", n), "number": fmt.Sprint(n), "display_name": "F", "send_invitation": false}, &u)
		return u.ID
	}
	newDoor := func() string {
		n++
		var p provisioned
		op.must(http.StatusCreated, "POST", at+"/devices", map[string]string{"kind": "door_station", "name": fmt.Sprintf("Gate %d", n)}, &p)
		return p.Device.ID
	}
	cases := []struct {
		name   string
		min    string
		method string
		// setup makes what the request acts on and returns its path and body.
		setup func() (string, any)
		ok    int
	}{
		{"rename the site", "admin", "PATCH", func() (string, any) { return at, map[string]string{"name": "Floor Court"} }, http.StatusOK},
		{"change a setting", "admin", "PATCH", func() (string, any) { return at, map[string]any{"settings": map[string]int{"ring_timeout_s": 60}} }, http.StatusOK},
		{"create a sub-site", "admin", "POST", func() (string, any) { return "/v1/sites", map[string]string{"name": "Annex", "parent_id": site} }, http.StatusCreated},
		{"list API keys", "admin", "GET", func() (string, any) { return at + "/api-keys", nil }, http.StatusOK},
		{"create an API key", "admin", "POST", func() (string, any) { return at + "/api-keys", map[string]string{"name": "k", "role": "viewer"} }, http.StatusCreated},
		{"delete an API key", "admin", "DELETE", func() (string, any) {
			var k struct {
				APIKey struct{ ID string } `json:"api_key"`
			}
			op.must(http.StatusCreated, "POST", at+"/api-keys", map[string]string{"name": "k", "role": "viewer"}, &k)
			return at + "/api-keys/" + k.APIKey.ID, nil
		}, http.StatusNoContent},
		{"name a call ID", "admin", "PUT", func() (string, any) { return at + "/entries/900", map[string]string{"name": "Lobby"} }, http.StatusOK},
		{"delete a call ID", "admin", "DELETE", func() (string, any) {
			op.must(http.StatusOK, "PUT", at+"/entries/901", map[string]string{"name": "Spare"}, nil)
			return at + "/entries/901", nil
		}, http.StatusNoContent},
		{"edit an app user", "admin", "PATCH", func() (string, any) { return at + "/users/" + newUser(), map[string]string{"display_name": "G"} }, http.StatusOK},
		{"delete an app user", "admin", "DELETE", func() (string, any) { return at + "/users/" + newUser(), nil }, http.StatusNoContent},
		{"delete app users", "admin", "POST", func() (string, any) { return at + "/users/delete", map[string]any{"ids": []string{newUser()}} }, http.StatusOK},
		{"send an invitation", "admin", "POST", func() (string, any) { return at + "/users/" + newUser() + "/invitation", nil }, http.StatusOK},
		{"import app users", "admin", "POST", func() (string, any) {
			return at + "/users/import", "email,call_id,display_name\nimported@example.com,950,I\n"
		}, http.StatusOK},
		{"list access codes", "admin", "GET", func() (string, any) { return at + "/codes", nil }, http.StatusOK},
		{"create an access code", "admin", "POST", func() (string, any) {
			return at + "/codes", map[string]any{"user_id": newUser(), "pin": "4711", "doors": []string{newDoor()}}
		}, http.StatusCreated},
		{"delete an access code", "admin", "DELETE", func() (string, any) {
			var c struct{ ID string }
			op.must(http.StatusCreated, "POST", at+"/codes", map[string]any{"user_id": newUser(), "pin": "8080", "doors": []string{newDoor()}}, &c)
			return at + "/codes/" + c.ID, nil
		}, http.StatusNoContent},
		{"rename a door station", "installer", "PATCH", func() (string, any) { return at + "/devices/" + newDoor(), map[string]string{"name": "Back door"} }, http.StatusOK},
		{"revoke a door station", "installer", "DELETE", func() (string, any) { return at + "/devices/" + newDoor(), nil }, http.StatusNoContent},
		{"a new provisioning code", "installer", "POST", func() (string, any) { return at + "/devices/" + newDoor() + "/provisioning", nil }, http.StatusCreated},
		{"send an admin's invitation again", "owner", "POST", func() (string, any) {
			n++
			addr := fmt.Sprintf("invited%d@example.com", n)
			op.must(http.StatusCreated, "PUT", at+"/admins", map[string]string{"email": addr, "role": "viewer"}, nil)
			return at + "/admins/invitation", map[string]string{"email": addr}
		}, http.StatusOK},
		{"list the outbox", "operator", "GET", func() (string, any) { return "/v1/outbox", nil }, http.StatusOK},
		{"read an outbox message", "operator", "GET", func() (string, any) { return "/v1/outbox/" + box.Messages[0].Name, nil }, http.StatusOK},
		{"take a backup", "operator", "GET", func() (string, any) { return "/v1/backup", nil }, http.StatusOK},
		{"list the admin accounts", "operator", "GET", func() (string, any) { return "/v1/admin/accounts", nil }, http.StatusOK},
		{"delete an admin account", "operator", "DELETE", func() (string, any) {
			adm, err := e.acc.CreateAdmin(context.Background(), "leaving@example.com", "a password of theirs", false)
			if err != nil {
				t.Fatal(err)
			}
			return "/v1/admin/accounts/" + adm.ID, nil
		}, http.StatusNoContent},
		// Last: it makes the owner an admin.
		{"transfer the site", "owner", "POST", func() (string, any) { return at + "/transfer", map[string]string{"email": "admin@example.com"} }, http.StatusNoContent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, body := c.setup()
			for _, role := range ranks[:slices.Index(ranks, c.min)] {
				clients[role].wantError(http.StatusForbidden, "forbidden", c.method, path, body)
			}
			clients[c.min].must(c.ok, c.method, path, body, nil)
		})
	}
}

// TestOtherSitesObjects: a role on site A reaches nothing of site B through
// A's paths or bodies: B's door stations (edit, revoke, provisioning, access
// codes), B's app users (delete, bulk delete, an e-mail change of someone
// in both sites), and call sites or moves to a site where the role is too
// low. Each is refused and B's objects are as they were.
func TestOtherSitesObjects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := e.operator()
	a, b, c := op.site("A Court"), op.site("B Court"), op.site("C Court")
	var aUser, shared struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+a+"/users", map[string]any{"email": "a@example.com", "number": "1", "display_name": "A", "send_invitation": false}, &aUser)
	op.must(http.StatusCreated, "POST", "/v1/sites/"+a+"/users", map[string]any{"email": "shared@example.com", "number": "2", "display_name": "S", "send_invitation": false}, &shared)
	op.must(http.StatusCreated, "POST", "/v1/sites/"+b+"/users", map[string]any{"email": "shared@example.com", "number": "2", "display_name": "S", "send_invitation": false}, nil)
	bUser, bDevTok := e.resident(op, b, "b@example.com", "20")
	aDoor, _ := e.device(op, a, map[string]string{"kind": "door_station", "name": "A gate"})
	bDoor, bDoorTok := e.device(op, b, map[string]string{"kind": "door_station", "name": "B gate"})
	installer := e.addAdmin(op, a, "installer@example.com", "installer")
	op.must(http.StatusNoContent, "PUT", "/v1/sites/"+c+"/admins", map[string]string{"email": "installer@example.com", "role": "viewer"}, nil)
	admin := e.addAdmin(op, a, "admin@example.com", "admin")

	at := "/v1/sites/" + a
	cases := []struct {
		name   string
		who    *client
		method string
		path   string
		body   any
		status int
		code   string
	}{
		{"rename B's door through A", installer, "PATCH", at + "/devices/" + bDoor, map[string]string{"name": "Mine now"}, 404, "not_found"},
		{"revoke B's door through A", installer, "DELETE", at + "/devices/" + bDoor, nil, 404, "not_found"},
		{"provision B's door through A", installer, "POST", at + "/devices/" + bDoor + "/provisioning", nil, 404, "not_found"},
		{"a new door calling a site the installer only views", installer, "POST", at + "/devices", map[string]any{"kind": "door_station", "name": "Rogue", "call_sites": []string{c}}, 403, "forbidden"},
		{"a new door calling a site of no role", installer, "POST", at + "/devices", map[string]any{"kind": "door_station", "name": "Rogue", "call_sites": []string{b}}, 404, "not_found"},
		{"A's door calling a site the installer only views", installer, "PATCH", at + "/devices/" + aDoor, map[string]any{"call_sites": []string{c}}, 403, "forbidden"},
		{"A's door calling a site of no role", installer, "PATCH", at + "/devices/" + aDoor, map[string]any{"call_sites": []string{b}}, 404, "not_found"},
		{"A's door moved to a site the installer only views", installer, "PATCH", at + "/devices/" + aDoor, map[string]any{"site_id": c}, 403, "forbidden"},
		{"A's door moved to a site of no role", installer, "PATCH", at + "/devices/" + aDoor, map[string]any{"site_id": b}, 404, "not_found"},
		{"delete B's user through A", admin, "DELETE", at + "/users/" + bUser, nil, 404, "not_found"},
		{"an access code for B's door", admin, "POST", at + "/codes", map[string]any{"user_id": aUser.ID, "pin": "4711", "doors": []string{bDoor}}, 404, "not_found"},
		{"the e-mail of someone in B too", admin, "PATCH", at + "/users/" + shared.ID, map[string]string{"email": "taken@example.com"}, 403, "forbidden"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.who.wantError(tc.status, tc.code, tc.method, tc.path, tc.body)
		})
	}
	t.Run("bulk delete naming B's user", func(t *testing.T) {
		var out struct{ Deleted int }
		admin.must(http.StatusOK, "POST", at+"/users/delete", map[string]any{"ids": []string{bUser}}, &out)
		if out.Deleted != 0 {
			t.Errorf("deleted %d, want 0", out.Deleted)
		}
	})

	for id, want := range map[string]struct {
		name string
		site string
	}{bDoor: {"B gate", b}, aDoor: {"A gate", a}} {
		d, err := e.dir.Device(ctx, directory.DeviceID(id))
		if err != nil || d.Name != want.name || string(d.Site) != want.site || len(d.CallSites) != 0 {
			t.Errorf("door %s afterwards: %+v, %v; want %q in %s calling nowhere else", id, d, err, want.name, want.site)
		}
	}
	e.connect(bDoorTok) // B's door still signs in
	var devs struct{ Devices []struct{ Name string } }
	op.must(http.StatusOK, "GET", at+"/devices", nil, &devs)
	if len(devs.Devices) != 1 {
		t.Errorf("A's devices afterwards: %+v, want its gate alone", devs.Devices)
	}
	var codes struct{ Codes []any }
	op.must(http.StatusOK, "GET", at+"/codes", nil, &codes)
	if len(codes.Codes) != 0 {
		t.Errorf("A has codes afterwards: %+v", codes.Codes)
	}
	// B's resident keeps their membership, password and app device.
	op.must(http.StatusOK, "GET", "/v1/sites/"+b+"/users/"+bUser, nil, nil)
	e.anon().must(http.StatusOK, "POST", "/v1/app/login", map[string]string{"email": "b@example.com", "password": "resident password"}, nil)
	e.connect(bDevTok)
	var s struct{ Email string }
	op.must(http.StatusOK, "GET", "/v1/sites/"+b+"/users/"+shared.ID, nil, &s)
	if s.Email != "shared@example.com" {
		t.Errorf("the shared user's e-mail is %q, want it unchanged", s.Email)
	}
}

// TestRoleInheritance: on a sub-site the highest of the roles on it and its
// ancestors counts, whichever is nearer; an API key acts on its site's
// sub-sites with its role, and not on its site's parent.
func TestRoleInheritance(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	parent := op.site("Parent Court")
	var sub struct{ ID string }
	op.must(http.StatusCreated, "POST", "/v1/sites", map[string]string{"name": "Child Court", "parent_id": parent}, &sub)
	admin := e.addAdmin(op, parent, "admin@example.com", "admin")
	op.must(http.StatusNoContent, "PUT", "/v1/sites/"+sub.ID+"/admins", map[string]string{"email": "admin@example.com", "role": "viewer"}, nil)
	viewer := e.addAdmin(op, parent, "viewer@example.com", "viewer")
	op.must(http.StatusNoContent, "PUT", "/v1/sites/"+sub.ID+"/admins", map[string]string{"email": "viewer@example.com", "role": "installer"}, nil)

	role := func(c *client, site string) string {
		t.Helper()
		var s struct{ Role string }
		c.must(http.StatusOK, "GET", "/v1/sites/"+site, nil, &s)
		return s.Role
	}
	for _, tc := range []struct {
		name string
		who  *client
		want string
	}{
		{"admin of the parent, viewer of the sub-site", admin, "admin"},
		{"viewer of the parent, installer of the sub-site", viewer, "installer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := role(tc.who, sub.ID); got != tc.want {
				t.Errorf("role on the sub-site %q, want %q", got, tc.want)
			}
		})
	}
	admin.must(http.StatusCreated, "POST", "/v1/sites/"+sub.ID+"/users", map[string]any{"email": "u@example.com", "number": "1", "display_name": "U", "send_invitation": false}, nil)
	viewer.must(http.StatusCreated, "POST", "/v1/sites/"+sub.ID+"/devices", map[string]string{"kind": "door_station", "name": "Gate"}, nil)

	var key struct{ Key string }
	admin.must(http.StatusCreated, "POST", "/v1/sites/"+parent+"/api-keys", map[string]string{"name": "sync", "role": "admin"}, &key)
	kc := &client{e: e, token: key.Key}
	kc.must(http.StatusCreated, "POST", "/v1/sites/"+sub.ID+"/users", map[string]any{"email": "k@example.com", "number": "2", "display_name": "K", "send_invitation": false}, nil)
	var subKey struct{ Key string }
	admin.must(http.StatusCreated, "POST", "/v1/sites/"+sub.ID+"/api-keys", map[string]string{"name": "sub", "role": "admin"}, &subKey)
	(&client{e: e, token: subKey.Key}).wantError(http.StatusNotFound, "not_found", "GET", "/v1/sites/"+parent+"/users", nil)
}
