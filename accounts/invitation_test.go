package accounts

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// testClock is a clock a test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClockedStore(t *testing.T) (*Store, *testClock) {
	t.Helper()
	c := &testClock{t: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	return newBoltStoreAt(t, c.now), c
}

// TestTemporaryPasswordsExpire: an invitation's temporary password, an
// app user's or an admin's, signs in for InvitationTTL and not after
// (ErrInvitationExpired, an ErrExpired); one sent again works afresh; a
// password the person chose does not expire.
func TestTemporaryPasswordsExpire(t *testing.T) {
	s, clock := newClockedStore(t)
	ctx := context.Background()

	temp, err := s.SetTempPassword(ctx, "u_anna")
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(InvitationTTL - time.Minute)
	if c, err := s.LoginApp(ctx, "anna@example.com", "u_anna", temp); err != nil || !c.Temporary {
		t.Fatalf("app sign-in within the invitation's life: temporary %v, %v", c.Temporary, err)
	}
	clock.advance(2 * time.Minute)
	if _, err := s.LoginApp(ctx, "anna@example.com", "u_anna", temp); !errors.Is(err, ErrInvitationExpired) || !errors.Is(err, ErrExpired) {
		t.Fatalf("app sign-in after the invitation's life: %v, want ErrInvitationExpired", err)
	}
	if _, err := s.LoginApp(ctx, "anna@example.com", "u_anna", "not the password"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("a wrong password on an expired invitation: %v, want ErrBadCredentials (nothing told)", err)
	}
	again, err := s.SetTempPassword(ctx, "u_anna")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginApp(ctx, "anna@example.com", "u_anna", again); err != nil {
		t.Fatalf("app sign-in with the invitation sent again: %v", err)
	}
	if err := s.SetAppPassword(ctx, "u_anna", "anna's own password", ""); err != nil {
		t.Fatal(err)
	}
	clock.advance(10 * InvitationTTL)
	if c, err := s.LoginApp(ctx, "anna@example.com", "u_anna", "anna's own password"); err != nil || c.Temporary {
		t.Fatalf("app sign-in with a chosen password long after: temporary %v, %v", c.Temporary, err)
	}

	adm, temp, err := s.InviteAdmin(ctx, "ivo@example.com", "s1", RoleInstaller)
	if err != nil {
		t.Fatal(err)
	}
	clock.advance(InvitationTTL - time.Minute)
	if _, err := s.LoginAdmin(ctx, "ivo@example.com", temp); err != nil {
		t.Fatalf("admin sign-in within the invitation's life: %v", err)
	}
	clock.advance(2 * time.Minute)
	if _, err := s.LoginAdmin(ctx, "ivo@example.com", temp); !errors.Is(err, ErrInvitationExpired) {
		t.Fatalf("admin sign-in after the invitation's life: %v, want ErrInvitationExpired", err)
	}
	again, err = s.SetAdminTempPassword(ctx, adm.ID, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginAdmin(ctx, "ivo@example.com", again); err != nil {
		t.Fatalf("admin sign-in with the invitation sent again: %v", err)
	}
	if err := s.SetAdminPassword(ctx, adm.ID, "ivo's own password", ""); err != nil {
		t.Fatal(err)
	}
	clock.advance(10 * InvitationTTL)
	if _, err := s.LoginAdmin(ctx, "ivo@example.com", "ivo's own password"); err != nil {
		t.Fatalf("admin sign-in with a chosen password long after: %v", err)
	}
}

// TestAdminFoundByAnyFormOfItsAddress: an admin whose address was given in
// one Unicode form signs in with the other (composed or decomposed
// accents): both are one address.
func TestAdminFoundByAnyFormOfItsAddress(t *testing.T) {
	s, _ := newClockedStore(t)
	ctx := context.Background()
	if _, err := s.CreateAdmin(ctx, "ren\u00e9@example.com", "a password of rené's", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoginAdmin(ctx, "Ren\u0065\u0301@Example.com", "a password of rené's"); err != nil {
		t.Fatalf("sign-in with the decomposed form: %v", err)
	}
	if _, err := s.CreateAdmin(ctx, "ren\u0065\u0301@example.com", "another password", false); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second account for the decomposed form: %v, want ErrConflict", err)
	}
}

// TestTempPasswordNeverReplacesAChosenOne: once an app user has chosen a
// password, an invitation sent again (by any site's admin) is refused
// (ErrConflict, the API's already_active) and the password stands.
func TestTempPasswordNeverReplacesAChosenOne(t *testing.T) {
	s, _ := newClockedStore(t)
	ctx := context.Background()
	if _, err := s.SetTempPassword(ctx, "u_anna"); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAppPassword(ctx, "u_anna", "anna's own password", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetTempPassword(ctx, "u_anna"); !errors.Is(err, ErrConflict) {
		t.Fatalf("an invitation after the user chose a password: %v, want ErrConflict", err)
	}
	if c, err := s.LoginApp(ctx, "anna@example.com", "u_anna", "anna's own password"); err != nil || c.Temporary {
		t.Fatalf("the chosen password after a refused invitation: temporary %v, %v", c.Temporary, err)
	}
}

// TestSignInRefusedOncePasswordChanged: a sign-in whose password check
// passed with a temporary password, whose session comes after the person
// chose their own, gets no session (ErrBadCredentials): it would outlive
// the choice that ended every other one.
func TestSignInRefusedOncePasswordChanged(t *testing.T) {
	s, _ := newClockedStore(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		// checked signs in with a temporary password, chooses one, and
		// returns the session's kind, subject and the hash checked.
		checked func(t *testing.T) (SessionKind, string, string)
	}{
		{"admin", func(t *testing.T) (SessionKind, string, string) {
			_, temp, err := s.InviteAdmin(ctx, "ivo@example.com", "s1", RoleAdmin)
			if err != nil {
				t.Fatal(err)
			}
			a, err := s.LoginAdmin(ctx, "ivo@example.com", temp)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SetAdminPassword(ctx, a.ID, "ivo's own password", ""); err != nil {
				t.Fatal(err)
			}
			return SessionAdmin, a.ID, a.PasswordHash
		}},
		{"app", func(t *testing.T) (SessionKind, string, string) {
			temp, err := s.SetTempPassword(ctx, "u_anna")
			if err != nil {
				t.Fatal(err)
			}
			cred, err := s.LoginApp(ctx, "anna@example.com", "u_anna", temp)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SetAppPassword(ctx, "u_anna", "anna's own password", ""); err != nil {
				t.Fatal(err)
			}
			return SessionApp, "u_anna", cred.PasswordHash
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			kind, subject, hash := c.checked(t)
			if _, _, err := s.SignIn(ctx, kind, subject, hash); !errors.Is(err, ErrBadCredentials) {
				t.Fatalf("a session for the temporary password after the chosen one: %v, want ErrBadCredentials", err)
			}
		})
	}
}
