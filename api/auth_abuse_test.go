package api_test

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"
)

// burst sends n logins with wrong passwords for addr at once, and counts
// the answers by status.
func burst(e *env, path, addr string, n int) map[int]int {
	return parallelPosts(e, n, path, func(i int) string {
		return fmt.Sprintf(`{"email":%q,"password":"wrong guess %d"}`, addr, i)
	})
}

// TestConcurrentGuessesThrottled: the per-account lock is checked before the
// password is verified and the failure is counted only afterwards, so a
// burst of concurrent guesses is verified in full. Sequentially only 6
// guesses are ever verified (5 free, the 6th starts the lock).
func TestConcurrentGuessesThrottled(t *testing.T) {
	e := newEnv(t)
	got := burst(e, "/v1/admin/login", operatorEmail, 24)
	t.Logf("24 concurrent wrong admin logins: %v", got)
	if verified := got[http.StatusUnauthorized]; verified > 6 {
		t.Errorf("%d of 24 concurrent guesses were verified (401), want at most 6 before the lock (the rest 429)", verified)
	}
}

// TestAdminPasswordChangeEndsSessions: an admin who changes their
// password (e.g. after a leak) leaves every other session of theirs alive
// for up to 12 h. The app side ends other sessions; the admin side does not.
func TestAdminPasswordChangeEndsSessions(t *testing.T) {
	e := newEnv(t)
	thief := e.operator()
	owner := e.operator()
	owner.must(http.StatusNoContent, "POST", "/v1/admin/password", map[string]string{"current_password": operatorPassword, "new_password": "a fresh password"}, nil)
	if st, body := thief.do("GET", "/v1/sites", nil); st != http.StatusUnauthorized {
		t.Errorf("another session after the password change: %d %s, want 401", st, body)
	}
}

// TestResetEndsOtherLinks: every reset link issued stays valid for
// its hour after another link was spent (or the password was changed), so
// a link seen by someone else still takes the account over afterwards.
func TestResetEndsOtherLinks(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Links")
	e.resident(op, site, "links@example.com", "9")
	for range 2 {
		e.anon().must(http.StatusAccepted, "POST", "/v1/app/password/forgot", map[string]string{"email": "links@example.com"}, nil)
	}
	re := regexp.MustCompile(`token=(\S+)`)
	deadline := time.Now().Add(5 * time.Second)
	var toks []string
	for len(toks) < 2 && time.Now().Before(deadline) {
		toks = toks[:0]
		e.mail.mu.Lock()
		msgs := append([]received(nil), e.mail.msgs...)
		e.mail.mu.Unlock()
		for _, m := range msgs {
			if tok := re.FindStringSubmatch(mailText(t, m.data)); tok != nil {
				toks = append(toks, tok[1])
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(toks) < 2 {
		t.Fatalf("got %d reset links, want 2", len(toks))
	}
	e.anon().must(http.StatusNoContent, "POST", "/v1/app/password/reset", map[string]string{"token": toks[0], "new_password": "the owner's new one"}, nil)
	if st, body := e.anon().do("POST", "/v1/app/password/reset", map[string]string{"token": toks[1], "new_password": "the attacker's one"}); st != http.StatusGone {
		t.Errorf("an older link after the password was reset: %d %s, want 410", st, body)
	}
}

// TestForgotPasswordLimited: "forgot password" has no limit: each request
// mails the person a new link.
func TestForgotPasswordLimited(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Flood")
	op.must(http.StatusCreated, "POST", "/v1/sites/"+site+"/users", map[string]any{"email": "victim@example.com", "number": "1", "display_name": "V", "send_invitation": false}, nil)
	for range 30 {
		e.anon().must(http.StatusAccepted, "POST", "/v1/app/password/forgot", map[string]string{"email": "victim@example.com"}, nil)
	}
	for deadline := time.Now().Add(5 * time.Second); e.mail.count("victim@example.com") < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d reset e-mails within 5 s, want the first 3", e.mail.count("victim@example.com"))
		}
	}
	time.Sleep(500 * time.Millisecond) // the other 27 requests' goroutines end
	if n := e.mail.count("victim@example.com"); n > 3 {
		t.Errorf("30 anonymous requests sent %d reset e-mails to one person, want a handful", n)
	}
}

// TestRemovedUserGetsNoReset: a person deleted from their last site
// loses password and sessions (docs/decisions.md), but "forgot password"
// still finds them and gives them a password again; they sign in and
// register app devices with no site at all.
func TestRemovedUserGetsNoReset(t *testing.T) {
	e := newEnv(t)
	op := e.operator()
	site := op.site("Gone")
	id, _ := e.resident(op, site, "gone@example.com", "3")
	op.must(http.StatusNoContent, "DELETE", "/v1/sites/"+site+"/users/"+id, nil, nil)
	e.anon().must(http.StatusAccepted, "POST", "/v1/app/password/forgot", map[string]string{"email": "gone@example.com"}, nil)
	deadline := time.Now().Add(2 * time.Second)
	for e.mail.count("gone@example.com") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.mail.count("gone@example.com"); n >= 2 {
		t.Errorf("a person with no site left got a password-reset e-mail (%d mails)", n)
	}
}

// TestCurrentPasswordThrottled: whoever holds a session (a stolen cookie or
// token) gets no more guesses at the account's current password, through
// POST /v1/admin/password, than a login does: after the free ones the
// account is locked, and even the right password is refused until then.
func TestCurrentPasswordThrottled(t *testing.T) {
	e := newEnv(t)
	thief := e.operator()
	change := func(current string) (int, []byte) {
		return thief.do("POST", "/v1/admin/password", map[string]string{"current_password": current, "new_password": "the thief's password"})
	}
	for i := 0; ; i++ {
		st, body := change(fmt.Sprintf("guess %d", i))
		if st == http.StatusTooManyRequests {
			break
		}
		if st != http.StatusUnauthorized || i == 6 {
			t.Fatalf("guess %d of the current password: %d %s; want 401, then 429 after 5", i, st, body)
		}
	}
	if st, body := change(operatorPassword); st != http.StatusTooManyRequests {
		t.Errorf("the right current password while locked: %d %s, want 429", st, body)
	}
}
