package api_test

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPasswordReset: "forgot password" answers the same for anyone; the
// e-mailed link works once; spending it ends the user's sessions and closes
// their app devices' live connections within 5 s.
func TestPasswordReset(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Reset Court")
	_, devTok := e.resident(op, site, "forgetful@example.com", "8")
	phone, _ := e.connect(devTok)
	app := e.residentApp("forgetful@example.com")

	for _, addr := range []string{"forgetful@example.com", "stranger@example.com"} {
		st, body := e.anon().do("POST", "/v1/app/password/forgot", map[string]string{"email": addr})
		if st != http.StatusAccepted || len(body) != 0 {
			t.Fatalf("forgot for %s: %d %q, want 202 and nothing else", addr, st, body)
		}
	}
	msg := e.mail.waitFor(t, "forgetful@example.com", regexp.MustCompile(`reset`))
	tok := regexp.MustCompile(`token=(\S+)`).FindStringSubmatch(mailText(t, msg.data))
	if tok == nil {
		t.Fatal("no reset link in the e-mail")
	}
	if e.mail.count("stranger@example.com") != 0 {
		t.Fatal("an unknown address got mail")
	}
	start := time.Now()
	e.anon().must(http.StatusNoContent, "POST", "/v1/app/password/reset", map[string]string{"token": tok[1], "new_password": "a brand new one"}, nil)
	e.anon().wantError(http.StatusGone, "expired", "POST", "/v1/app/password/reset", map[string]string{"token": tok[1], "new_password": "yet another one"})
	if code := phone.closed(5 * time.Second); code != 4010 {
		t.Fatalf("app device closed with %d after a reset, want 4010", code)
	}
	t.Logf("device closed %v after the reset", time.Since(start))
	app.wantError(http.StatusUnauthorized, "unauthenticated", "GET", "/v1/app/me", nil)
	e.anon().wantError(http.StatusUnauthorized, "bad_credentials", "POST", "/v1/app/login", map[string]string{"email": "forgetful@example.com", "password": "resident password"})
	e.anon().must(http.StatusOK, "POST", "/v1/app/login", map[string]string{"email": "forgetful@example.com", "password": "a brand new one"}, nil)
}

// TestBruteForceFromManyAddresses: failures from 50 source addresses lock
// the account's sign-ins (not the addresses): afterwards even the right
// password from a fresh address is refused until the lock passes.
func TestBruteForceFromManyAddresses(t *testing.T) {
	e := newEnv(t)
	from := func(i int) *http.Client {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(10+i))}}
		return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	}
	try := func(c *http.Client, pw string) int {
		body := fmt.Sprintf(`{"email":%q,"password":%q}`, operatorEmail, pw)
		resp, err := c.Post(e.srv.URL+"/v1/admin/login", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	locked := 0
	for i := range 50 {
		if try(from(i), fmt.Sprintf("guess number %d", i)) == http.StatusTooManyRequests {
			locked++
		}
	}
	if locked < 40 {
		t.Fatalf("%d of 50 guesses from 50 addresses were throttled, want all but the first few", locked)
	}
	if s := try(from(60), operatorPassword); s != http.StatusTooManyRequests {
		t.Fatalf("the right password from a fresh address while locked: %d, want 429", s)
	}
	e.now.advance(time.Hour)
	if s := try(from(61), operatorPassword); s != http.StatusOK {
		t.Fatalf("after the lock: %d", s)
	}
}
