package web_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestPortalForgotPassword: an admin who forgot their password clicks
// "Forgot password?" on the portal's sign-in form in headless Chromium and
// types their e-mail address; the form says a link was sent if the account
// exists (and says the same for an address that is none, which gets no
// mail). The e-mailed link (/reset#token=…&for=admin) opens the reset page
// for an admin portal account; the new password chosen there signs in to
// the portal, the old one no longer does, and a session opened before has
// ended.
func TestPortalForgotPassword(t *testing.T) {
	node := newPortal(t)
	const addr, oldPassword, newPassword = "forgetful.manager@example.com", "portal password 1", "a new portal password"
	other := node.siteAdminElsewhere(t, "s_forgot", addr, oldPassword) // a session before the reset

	browser := chromium(t)
	c := &call{t: t}
	p := c.open(browser, "admin", node.srv.URL+"/admin")
	c.waitFor(p, "the sign-in form with Forgot password?", seen(`shown("login") && shown("forgot-link") &&
		document.getElementById("forgot-link").textContent === "Forgot password?"`))
	c.click(p, "#forgot-link")
	c.waitFor(p, "the form asking the e-mail", seen(`shown("forgot") && !shown("login") && !shown("forgot-done") &&
		document.activeElement.id === "forgot-email"`))

	const sent = ` && document.getElementById("forgot-done").textContent.includes("a link to choose a new password was sent")`
	c.typeInto(p, "#forgot-email", "stranger@example.com")
	c.click(p, "#forgot-send")
	c.waitFor(p, "the answer for an unknown address", seen(`shown("forgot-done") && !shown("error")`+sent))
	c.clear(p, "#forgot-email")
	c.typeInto(p, "#forgot-email", addr)
	c.click(p, "#forgot-send")
	c.waitFor(p, "the answer for the account's address", seen(`shown("forgot-done") && !shown("error")`+sent+` &&
		document.getElementById("forgot-done").textContent.includes(`+jsString(addr)+`)`))
	c.screenshot(p, "admin-forgot-sent")

	link := regexp.MustCompile(`\S+/reset#token=\S+`).FindString(node.mailTo(t, addr))
	if !strings.HasPrefix(link, node.srv.URL+"/reset#token=") || !strings.HasSuffix(link, "&for=admin") {
		t.Fatalf("reset link %q, want %s/reset#token=…&for=admin", link, node.srv.URL)
	}
	time.Sleep(200 * time.Millisecond) // the mail to the account is out: one to the stranger would be too
	if items, err := node.outbox.List(); err != nil || len(items) != 1 {
		t.Fatalf("outbox: %d messages, %v; want the account's only", len(items), err)
	}

	reset := c.open(browser, "reset", link)
	c.waitFor(reset, "the form, for an admin account", state("ready")+` && !document.getElementById("reset").hidden &&
		document.getElementById("status").textContent.includes("admin portal account")`)
	c.typeInto(reset, "#pw1", newPassword)
	c.typeInto(reset, "#pw2", newPassword)
	c.click(reset, "#save")
	c.waitFor(reset, "says the password changed", state("done")+` && document.getElementById("reset").hidden &&
		document.getElementById("done").textContent.includes("Sign in to the admin portal") &&
		!document.getElementById("portal").hidden`)
	c.screenshot(reset, "admin-reset-done")

	if st := node.adminMe(t, other); st != http.StatusUnauthorized {
		t.Fatalf("GET /v1/admin/me in the session opened before the reset: %d, want 401 (ended)", st)
	}
	if st, _ := node.adminLogin(t, addr, oldPassword); st != http.StatusUnauthorized {
		t.Fatalf("login with the old password after the reset: %d, want 401", st)
	}

	c.click(reset, "#portal a")
	c.waitFor(reset, "the portal's sign-in form", `location.pathname === "/admin" && !document.getElementById("login").hidden`)
	c.signInToPortal(reset, addr, newPassword)
	c.waitFor(reset, "signed in to the portal with the new password", seen(`shown("app") && shown("logout") && !shown("password") &&
		!shown("error") && document.getElementById("who").textContent === `+jsString(addr)+` &&
		document.getElementById("site").value === "s_forgot"`))
	c.screenshot(reset, "admin-signed-in-after-reset")
}
