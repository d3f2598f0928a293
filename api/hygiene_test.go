package api_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestLogHygiene runs the account and call flows with the node logging at
// debug level, then checks that no secret reached any log line: passwords
// (right and wrong), temporary passwords, session and device tokens,
// resume tokens, API keys, provisioning codes and reset links.
func TestLogHygiene(t *testing.T) {
	e := newEnv(t)
	secrets := map[string]string{"operator password": operatorPassword}
	op := e.operator()
	secrets["admin session"] = op.token
	site := op.site("Hygiene Court")
	e.anon().do("POST", "/v1/admin/login", map[string]string{"email": operatorEmail, "password": "a wrong guess 123"})
	secrets["wrong password"] = "a wrong guess 123"

	var key struct{ Key string }
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/api-keys", map[string]string{"name": "sync", "role": "viewer"}, &key)
	secrets["API key"] = key.Key
	var p provisioned
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/devices", map[string]string{"kind": "door_station", "name": "Gate"}, &p)
	secrets["provisioning code"] = p.ProvisioningCode
	var door struct{ Token string }
	e.anon().must(http.StatusOK, "POST", "/v1/provision", map[string]string{"code": p.ProvisioningCode}, &door)
	secrets["door token"] = door.Token

	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users", map[string]string{"email": "clean@example.com", "number": "4", "display_name": "Clean"}, nil)
	temp := regexp.MustCompile(`Temporary password:\s+(\S+)`).FindStringSubmatch(mailText(t, e.mail.waitFor(t, "clean@example.com", regexp.MustCompile(`(?i)subject:`)).data))
	secrets["temporary password"] = temp[1]
	var login struct{ Token string }
	e.anon().must(http.StatusOK, "POST", "/v1/app/login", map[string]string{"email": "clean@example.com", "password": temp[1]}, &login)
	secrets["app session"] = login.Token
	app := &client{e: e, token: login.Token}
	app.must(http.StatusNoContent, "POST", "/v1/app/password", map[string]string{"new_password": "the clean password"}, nil)
	secrets["new password"] = "the clean password"
	var dev struct{ Token string }
	app.must(http.StatusCreated, "POST", "/v1/app/devices", map[string]string{"name": "phone"}, &dev)
	secrets["app device token"] = dev.Token

	phone, welcome := e.connect(dev.Token)
	secrets["resume token"], _ = welcome["resume_token"].(string)
	dws, _ := e.connect(door.Token)
	dws.send(map[string]any{"type": "call", "to": "4"})
	id := dws.next("calling")["call_id"]
	phone.next("ring")
	phone.send(map[string]any{"type": "answer", "call_id": id})
	phone.next("answered")
	phone.send(map[string]any{"type": "hangup", "call_id": id})
	dws.next("answered")
	dws.next("ended")
	refused, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.srv.URL, "http")+"/v1/signal", nil)
	if err != nil {
		t.Fatal(err)
	}
	refused.WriteJSON(map[string]any{"type": "hello", "version": 1, "token": "fyr_not-a-real-token-but-still-secret"})
	(&ws{t: t, c: refused}).closed(5 * time.Second) // refused: its text must not be logged either
	secrets["refused token"] = "fyr_not-a-real-token-but-still-secret"

	e.anon().do("POST", "/v1/app/password/forgot", map[string]string{"email": "clean@example.com"})
	reset := regexp.MustCompile(`token=(\S+)`).FindStringSubmatch(mailText(t, e.mail.waitFor(t, "clean@example.com", regexp.MustCompile(`reset`)).data))
	secrets["reset link"] = reset[1]
	e.anon().must(http.StatusNoContent, "POST", "/v1/app/password/reset", map[string]string{"token": reset[1], "new_password": "after the reset"}, nil)
	secrets["reset password"] = "after the reset"

	logs := e.logs.String()
	if strings.Count(logs, "\n") < 5 {
		t.Fatalf("only %d log lines: the capture is not working", strings.Count(logs, "\n"))
	}
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("%s: empty secret; the test lost it", what)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the %s appears in the log", what)
		}
	}
	t.Logf("%d log lines checked for %d secrets", strings.Count(logs, "\n"), len(secrets))
}

// TestResponseHeaders: no API answer is kept by a cache (they carry
// session tokens and personal data) or sniffed into another type by a
// browser: a JSON answer, an error and a CSV download alike.
func TestResponseHeaders(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Headers")
	for _, tc := range []struct {
		name, method, path, body, auth, ctype string
		status                                int
	}{
		{"login", "POST", "/v1/admin/login", `{"email":"` + operatorEmail + `","password":"` + operatorPassword + `"}`, "", "application/json", http.StatusOK},
		{"error", "GET", "/v1/sites/s_nosuchsite", "", op.token, "application/json", http.StatusNotFound},
		{"csv", "GET", "/v1/sites/" + site + "/users/export", "", op.token, "text/csv; charset=utf-8", http.StatusOK},
	} {
		req, _ := http.NewRequest(tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if tc.auth != "" {
			req.Header.Set("Authorization", "Bearer "+tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != tc.status || !strings.HasPrefix(h.Get("Content-Type"), tc.ctype) ||
			h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: status %d, Content-Type %q, Cache-Control %q, X-Content-Type-Options %q; want %d, %s, no-store, nosniff",
				tc.name, resp.StatusCode, h.Get("Content-Type"), h.Get("Cache-Control"), h.Get("X-Content-Type-Options"), tc.status, tc.ctype)
		}
	}
}
