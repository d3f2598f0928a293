package web_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/mailtest"
)

// mailWait bounds the wait for an e-mail sent after the API answered.
const mailWait = 5 * time.Second

// TestPasswordResetPage: a resident who forgot their password asks for a
// reset through the API, opens the e-mailed link in headless Chromium, and
// chooses a new password there. The page takes the token out of the
// address, checks the two passwords before sending anything, and says the
// password changed; afterwards the new password signs in and the old one
// does not. The same link opened again says it was already used. Without a
// token the page explains, and offers no form.
func TestPasswordResetPage(t *testing.T) {
	p := newPortal(t)
	ctx := context.Background()
	file, err := directory.ParseProvision([]byte(site))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := directory.Provision(ctx, p.store, file); err != nil {
		t.Fatal(err)
	}
	u, err := p.store.UserByEmail(ctx, "anna@example.com")
	if err != nil {
		t.Fatal(err)
	}
	const oldPassword, newPassword = "old password 1", "a brand new password"
	if err := p.acc.SetAppPassword(ctx, u.ID, oldPassword, ""); err != nil {
		t.Fatal(err)
	}
	if st := p.post(t, "/v1/app/login", map[string]string{"email": "anna@example.com", "password": oldPassword}); st != http.StatusOK {
		t.Fatalf("login with the password before the reset: %d, want 200", st)
	}

	browser := chromium(t)
	c := &call{t: t}

	bare := c.open(browser, "no token", p.srv.URL+"/reset")
	c.waitFor(bare, "explains the missing link", state("no_token")+` && document.getElementById("reset").hidden &&
		document.getElementById("status").textContent.includes("link from your password-reset e-mail") &&
		!document.getElementById("help").hidden`)
	c.screenshot(bare, "reset-no-token")

	if st := p.post(t, "/v1/app/password/forgot", map[string]string{"email": "anna@example.com"}); st != http.StatusAccepted {
		t.Fatalf("forgot: %d, want 202", st)
	}
	link := regexp.MustCompile(`\S+/reset#token=\S+`).FindString(p.mailTo(t, "anna@example.com"))
	if !strings.HasPrefix(link, p.srv.URL+"/reset#token=") {
		t.Fatalf("reset link %q, want one to %s/reset#token=…", link, p.srv.URL)
	}

	page := c.open(browser, "reset", link)
	c.waitFor(page, "offers the form", state("ready")+` && !document.getElementById("reset").hidden`)
	if url, _ := eval[string](page, `location.href`); url != p.srv.URL+"/reset" {
		c.fail("the address after reading the token is %q, want %s/reset: the token stays in the address bar and history", url, p.srv.URL)
	}
	if n := c.number(page, `sessionStorage.length + localStorage.length`); n != 0 {
		c.fail("the page stored %v items; the token is to stay in memory only", n)
	}
	c.countRequests(page)
	refused := []struct{ what, first, again, says string }{
		{"two different passwords", newPassword, newPassword + "!", "not the same"},
		{"a short password", "short", "short", "at least 10 characters"},
		{"a password over 256 bytes", strings.Repeat("é", 129), strings.Repeat("é", 129), "at most 256 bytes"},
		{"a password of 257 bytes", strings.Repeat("é", 128) + "!", strings.Repeat("é", 128) + "!", "at most 256 bytes"},
		// Nine characters, eighteen JavaScript (UTF-16) string units: the
		// server counts characters.
		{"nine characters outside the BMP", strings.Repeat("😀", 9), strings.Repeat("😀", 9), "at least 10 characters"},
	}
	for _, r := range refused {
		c.clear(page, "#pw1")
		c.clear(page, "#pw2")
		c.typeInto(page, "#pw1", r.first)
		c.typeInto(page, "#pw2", r.again)
		c.click(page, "#save")
		c.waitFor(page, r.what+" refused on the page", state("ready")+` && !document.getElementById("problem").hidden &&
			document.getElementById("problem").textContent.includes(`+jsString(r.says)+`)`)
	}
	c.screenshot(page, "reset-refused")
	if n := c.number(page, `window.sent`); n != 0 {
		c.fail("the page sent %v requests for passwords it refuses, want none", n)
	}

	c.clear(page, "#pw1")
	c.clear(page, "#pw2")
	c.typeInto(page, "#pw1", newPassword)
	c.typeInto(page, "#pw2", newPassword)
	c.click(page, "#save")
	c.waitFor(page, "says the password changed", state("done")+` && document.getElementById("reset").hidden &&
		document.getElementById("problem").hidden &&
		document.getElementById("done").textContent.includes("Password changed") &&
		document.getElementById("done").textContent.includes("Sign in in the app")`)
	c.screenshot(page, "reset-done")
	if st := p.post(t, "/v1/app/login", map[string]string{"email": "anna@example.com", "password": newPassword}); st != http.StatusOK {
		t.Fatalf("login with the new password: %d, want 200", st)
	}
	if st := p.post(t, "/v1/app/login", map[string]string{"email": "anna@example.com", "password": oldPassword}); st != http.StatusUnauthorized {
		t.Fatalf("login with the old password after the reset: %d, want 401", st)
	}

	again := c.open(browser, "reset again", link)
	c.waitFor(again, "offers the form", state("ready"))
	c.typeInto(again, "#pw1", "yet another password")
	c.typeInto(again, "#pw2", "yet another password")
	c.click(again, "#save")
	c.waitFor(again, "says the link was used", state("expired")+` && document.getElementById("reset").hidden &&
		document.getElementById("status").textContent.includes("already used") && !document.getElementById("help").hidden`)
	c.screenshot(again, "reset-used")
	if st := p.post(t, "/v1/app/login", map[string]string{"email": "anna@example.com", "password": "yet another password"}); st != http.StatusUnauthorized {
		t.Fatalf("login with the password typed on a spent link: %d, want 401", st)
	}
	if st := p.post(t, "/v1/app/login", map[string]string{"email": "anna@example.com", "password": newPassword}); st != http.StatusOK {
		t.Fatalf("login with the new password after the spent link was tried: %d, want 200", st)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// post sends a JSON body to the portal's API and returns the status.
func (p *portal) post(t *testing.T, path string, body any) int {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(p.srv.URL+path, "application/json", strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// mailTo waits for the outbox's first message to addr and returns its
// decoded text.
func (p *portal) mailTo(t *testing.T, addr string) string {
	t.Helper()
	deadline := time.Now().Add(mailWait)
	for time.Now().Before(deadline) {
		items, err := p.outbox.List()
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			if !strings.Contains(it.To, addr) {
				continue
			}
			raw, err := p.outbox.Read(it.Name)
			if err != nil {
				t.Fatal(err)
			}
			return mailBody(t, raw)
		}
		time.Sleep(50 * time.Millisecond) // polling a folder: the mail is sent after the answer
	}
	t.Fatalf("no e-mail to %s in the outbox within %v", addr, mailWait)
	return ""
}

// mailBody decodes a single-part message's body.
func mailBody(t *testing.T, raw []byte) string {
	t.Helper()
	s, err := mailtest.Body(raw)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
