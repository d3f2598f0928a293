package api_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/accounts"
)

// resetLink waits for the n-th e-mail to addr and returns the reset link's
// token and the whole link.
func (e *env) resetLink(addr string, n int) (token, link string) {
	e.t.Helper()
	text := mailText(e.t, e.mail.nth(e.t, addr, n).data)
	m := regexp.MustCompile(`\S+/reset#token=([^&\s]+)\S*`).FindStringSubmatch(text)
	if m == nil {
		e.t.Fatalf("no reset link in e-mail %d to %s:\n%s", n, addr, text)
	}
	return m[1], m[0]
}

// TestAdminPasswordReset: an admin who forgot their password asks for a
// link (202, and the same for an unknown address, which gets no mail); the
// e-mailed link says it is an admin's (/reset#token=…&for=admin) and spends
// once, for an hour: the new password signs in, the old one does not, and
// every session of the admin has ended.
func TestAdminPasswordReset(t *testing.T) {
	e := newEnv(t)
	const addr, oldPassword, newPassword = "manager@example.com", "the old password", "a brand new password"
	if _, err := e.acc.CreateAdmin(context.Background(), addr, oldPassword, false); err != nil {
		t.Fatal(err)
	}
	session := e.login(addr, oldPassword)
	session.must(http.StatusOK, "GET", "/v1/admin/me", nil, nil)

	for _, to := range []string{"nobody@example.com", addr} {
		st, body := e.anon().do("POST", "/v1/admin/password/forgot", map[string]string{"email": to})
		if st != http.StatusAccepted || len(body) != 0 {
			t.Fatalf("forgot for %s: %d %q, want 202 and nothing else", to, st, body)
		}
	}
	tok, link := e.resetLink(addr, 1)
	if want := "http://foyer.test/reset#token=" + tok + "&for=admin"; link != want {
		t.Fatalf("reset link %q, want %q", link, want)
	}
	if text := mailText(t, e.mail.nth(t, addr, 1).data); !strings.Contains(text, "admin portal account") {
		t.Fatalf("the admin's reset e-mail does not say which account:\n%s", text)
	}
	if n := e.mail.count("nobody@example.com"); n != 0 {
		t.Fatalf("an unknown address got %d e-mails", n)
	}

	e.anon().wantError(http.StatusUnprocessableEntity, "invalid", "POST", "/v1/admin/password/reset", map[string]string{"token": tok, "new_password": "short"})
	e.anon().must(http.StatusNoContent, "POST", "/v1/admin/password/reset", map[string]string{"token": tok, "new_password": newPassword}, nil)
	e.anon().wantError(http.StatusGone, "expired", "POST", "/v1/admin/password/reset", map[string]string{"token": tok, "new_password": "yet another one"})

	session.wantError(http.StatusUnauthorized, "unauthenticated", "GET", "/v1/admin/me", nil)
	e.anon().wantError(http.StatusUnauthorized, "bad_credentials", "POST", "/v1/admin/login", map[string]string{"email": addr, "password": oldPassword})
	e.anon().wantError(http.StatusUnauthorized, "bad_credentials", "POST", "/v1/admin/login", map[string]string{"email": addr, "password": "yet another one"})
	e.login(addr, newPassword).must(http.StatusOK, "GET", "/v1/admin/me", nil, nil)

	// A link works for an hour.
	e.anon().must(http.StatusAccepted, "POST", "/v1/admin/password/forgot", map[string]string{"email": addr}, nil)
	late, _ := e.resetLink(addr, 2)
	e.now.advance(accounts.ResetTTL)
	e.anon().wantError(http.StatusGone, "expired", "POST", "/v1/admin/password/reset", map[string]string{"token": late, "new_password": "too late a password"})
	e.login(addr, newPassword)
}

// TestAdminResetClearsInvitation: an invited admin who lost the invitation
// resets their password instead; the reset replaces the temporary password,
// so the new one signs in to a full session (no forced change).
func TestAdminResetClearsInvitation(t *testing.T) {
	e := newEnv(t)
	owner, site := e.siteOwner("Invite Court")
	const addr = "ivo.installer@example.com"
	owner.must(http.StatusCreated, "PUT", "/v1/sites/"+site+"/admins", map[string]string{"email": addr, "role": "installer"}, nil)
	e.mail.nth(t, addr, 1) // the invitation
	e.anon().must(http.StatusAccepted, "POST", "/v1/admin/password/forgot", map[string]string{"email": addr}, nil)
	tok, _ := e.resetLink(addr, 2)
	e.anon().must(http.StatusNoContent, "POST", "/v1/admin/password/reset", map[string]string{"token": tok, "new_password": "my own password"}, nil)
	var s struct {
		MustChangePassword bool `json:"must_change_password"`
	}
	e.anon().must(http.StatusOK, "POST", "/v1/admin/login", map[string]string{"email": addr, "password": "my own password"}, &s)
	if s.MustChangePassword {
		t.Fatal("signed in after a reset with must_change_password: the invitation's temporary state stayed")
	}
	if adm, err := e.acc.AdminByEmail(context.Background(), addr); err != nil || adm.TemporaryPassword || !adm.TemporarySince.IsZero() {
		t.Fatalf("the account after the reset: %+v, %v; want no temporary password", adm, err)
	}
}

// TestResetTokensKeepToTheirKind: one address that is both a resident's and
// an admin's gets an app link and an admin link; neither endpoint spends the
// other kind's token (410, as an unknown one), and the refused token still
// works where it belongs.
func TestResetTokensKeepToTheirKind(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Both Court")
	const addr = "both@example.com"
	e.resident(op, site, addr, "5") // e-mail 1: the invitation
	if _, err := e.acc.CreateAdmin(context.Background(), addr, "admin password 1", false); err != nil {
		t.Fatal(err)
	}

	e.anon().must(http.StatusAccepted, "POST", "/v1/app/password/forgot", map[string]string{"email": addr}, nil)
	appTok, appLink := e.resetLink(addr, 2)
	e.anon().must(http.StatusAccepted, "POST", "/v1/admin/password/forgot", map[string]string{"email": addr}, nil)
	adminTok, adminLink := e.resetLink(addr, 3)
	if strings.Contains(appLink, "for=admin") || !strings.HasSuffix(adminLink, "&for=admin") {
		t.Fatalf("links %q (app) and %q (admin): only the admin's says for=admin", appLink, adminLink)
	}

	e.anon().wantError(http.StatusGone, "expired", "POST", "/v1/admin/password/reset", map[string]string{"token": appTok, "new_password": "admin via app link"})
	e.anon().wantError(http.StatusGone, "expired", "POST", "/v1/app/password/reset", map[string]string{"token": adminTok, "new_password": "app via admin link"})
	e.anon().wantError(http.StatusUnauthorized, "bad_credentials", "POST", "/v1/admin/login", map[string]string{"email": addr, "password": "admin via app link"})
	e.anon().wantError(http.StatusUnauthorized, "bad_credentials", "POST", "/v1/app/login", map[string]string{"email": addr, "password": "app via admin link"})

	e.anon().must(http.StatusNoContent, "POST", "/v1/app/password/reset", map[string]string{"token": appTok, "new_password": "the app password"}, nil)
	e.anon().must(http.StatusNoContent, "POST", "/v1/admin/password/reset", map[string]string{"token": adminTok, "new_password": "the admin password"}, nil)
	e.anon().must(http.StatusOK, "POST", "/v1/app/login", map[string]string{"email": addr, "password": "the app password"}, nil)
	e.login(addr, "the admin password")
	e.anon().wantError(http.StatusUnauthorized, "bad_credentials", "POST", "/v1/admin/login", map[string]string{"email": addr, "password": "the app password"})
}

// TestAdminForgotAnswersAlike: the answer to an admin's "forgot password"
// does not tell a known address from an unknown one: the same status and
// body, and no slower (the e-mail is sent after the answer).
func TestAdminForgotAnswersAlike(t *testing.T) {
	e := newEnv(t)
	ask := func(addr string) (int, string, time.Duration) {
		start := time.Now()
		st, body := e.anon().do("POST", "/v1/admin/password/forgot", map[string]string{"email": addr})
		return st, string(body), time.Since(start)
	}
	var known, unknown time.Duration
	for range 3 {
		st1, b1, d1 := ask(operatorEmail)
		st2, b2, d2 := ask("stranger@example.com")
		if st1 != st2 || b1 != b2 || st1 != http.StatusAccepted {
			t.Fatalf("known address: %d %q; unknown: %d %q; want the same 202", st1, b1, st2, b2)
		}
		known, unknown = known+d1, unknown+d2
	}
	if known > unknown+time.Second {
		t.Fatalf("answers to a known address took %v, to an unknown one %v", known, unknown)
	}
	e.mail.nth(t, operatorEmail, 3)
	if n := e.mail.count("stranger@example.com"); n != 0 {
		t.Fatalf("an unknown address got %d e-mails", n)
	}
}
