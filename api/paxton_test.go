package api_test

import (
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestPaxtonPath is the whole path of a new resident: an admin adds an app
// user → the invitation reaches a real SMTP server → the app signs in with
// the temporary password → must change it → the user is active → a door
// station's call to their ID rings the new app device.
func TestPaxtonPath(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Harbour View")

	var door struct {
		Device           struct{ ID string }
		ProvisioningCode string `json:"provisioning_code"`
	}
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/devices", map[string]string{"kind": "door_station", "name": "Main gate"}, &door)
	var prov struct{ Token string }
	e.anon().must(http.StatusOK, "POST", "/v1/provision", map[string]string{"code": door.ProvisioningCode}, &prov)
	e.anon().wantError(http.StatusNotFound, "not_found", "POST", "/v1/provision", map[string]string{"code": door.ProvisioningCode})

	var added struct {
		ID, Status, Invitation string
	}
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users",
		map[string]string{"email": "Anna.Jansen@example.com", "number": "101", "display_name": "Anna Jansen"}, &added)
	if added.Status != "pending" || added.Invitation != "sent" {
		t.Fatalf("new user: status %q invitation %q, want pending and sent", added.Status, added.Invitation)
	}

	msg := e.mail.waitFor(t, "anna.jansen@example.com", regexp.MustCompile(`(?i)subject:`))
	body := mailText(t, msg.data)
	if !strings.Contains(body, "Harbour View") {
		t.Errorf("invitation does not name the site:\n%s", body)
	}
	temp := regexp.MustCompile(`\b[abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789]{16}\b`).FindString(body)
	if temp == "" {
		t.Fatalf("no temporary password in the invitation:\n%s", body)
	}

	// Pending users are not rung: the door station's call finds nobody.
	dws, _ := e.connect(prov.Token)
	dws.send(map[string]any{"type": "call", "to": "101", "ref": "c0"})
	if ended := dws.next("ended"); ended["reason"] != "unavailable" {
		t.Fatalf("call to a pending user: %v, want ended unavailable", ended)
	}

	var login struct {
		Token              string
		MustChangePassword bool `json:"must_change_password"`
	}
	e.anon().must(http.StatusOK, "POST", "/v1/app/login", map[string]string{"email": "anna.jansen@example.com", "password": temp}, &login)
	if !login.MustChangePassword {
		t.Fatal("login with the temporary password: must_change_password is false")
	}
	app := &client{e: e, token: login.Token}
	app.wantError(http.StatusForbidden, "password_change_required", "GET", "/v1/app/me", nil)
	app.wantError(http.StatusForbidden, "password_change_required", "POST", "/v1/app/devices", map[string]string{"name": "phone"})
	app.wantError(http.StatusUnprocessableEntity, "invalid", "POST", "/v1/app/password", map[string]string{"new_password": "short"})
	app.must(http.StatusNoContent, "POST", "/v1/app/password", map[string]string{"new_password": "a long new secret"}, nil)

	var user struct{ Status, Invitation string }
	op.must(http.StatusOK, "GET", "/v1/sites/"+site+"/users/"+added.ID, nil, &user)
	if user.Status != "active" || user.Invitation != "accepted" {
		t.Fatalf("after choosing a password: status %q invitation %q, want active and accepted", user.Status, user.Invitation)
	}
	e.anon().wantError(http.StatusUnauthorized, "bad_credentials", "POST", "/v1/app/login", map[string]string{"email": "anna.jansen@example.com", "password": temp})

	var dev struct{ Token string }
	app.must(http.StatusCreated, "POST", "/v1/app/devices", map[string]string{"name": "Anna's phone"}, &dev)
	phone, welcome := e.connect(dev.Token)
	if ids, _ := welcome["site_ids"].([]any); !slices.Contains(ids, any(site)) {
		t.Fatalf("welcome site_ids %v do not hold the site %s", welcome["site_ids"], site)
	}

	dws.send(map[string]any{"type": "call", "to": "101", "ref": "c1"})
	calling := dws.next("calling")
	if calling["ringing"] != float64(1) {
		t.Fatalf("calling: %v, want 1 device ringing", calling)
	}
	ring := phone.next("ring")
	if ring["call_id"] != calling["call_id"] {
		t.Fatalf("ring %v is not for call %v", ring, calling["call_id"])
	}

	// The app's session lasts 30 days from its sign-in, used or not.
	e.now.advance(29 * 24 * time.Hour)
	app.must(http.StatusOK, "GET", "/v1/app/me", nil, nil)
	e.now.advance(2 * 24 * time.Hour)
	app.wantError(http.StatusUnauthorized, "unauthenticated", "GET", "/v1/app/me", nil)
}

// mailText returns the decoded plain-text body of a raw message.
func mailText(t *testing.T, raw string) string {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("unreadable e-mail: %v", err)
	}
	return partText(t, m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body)
}

func partText(t *testing.T, ctype, cte string, body io.Reader) string {
	t.Helper()
	mt, params, _ := mime.ParseMediaType(ctype)
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		var out []string
		for {
			p, err := mr.NextPart()
			if err != nil {
				break
			}
			// multipart.Reader decodes quoted-printable itself.
			out = append(out, partText(t, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p))
		}
		return strings.Join(out, "\n")
	}
	return decodeBody(t, cte, body)
}
