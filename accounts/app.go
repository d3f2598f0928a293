package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// ResetTTL is how long an e-mailed password-reset link works: long enough
// to find the mail, short enough that an old inbox is no key.
const ResetTTL = time.Hour

// InvitationTTL is how long an invitation's temporary password signs in,
// an app user's or an admin's: long enough for a resident back from
// holiday, short enough that an invitation never opened is no standing
// key to the account. The invitation is sent again for a new one.
const InvitationTTL = 14 * 24 * time.Hour

// ErrInvitationExpired answers the right temporary password after
// InvitationTTL: the invitation must be sent again.
var ErrInvitationExpired = fmt.Errorf("%w: this invitation's temporary password is older than %d days; ask for the invitation to be sent again", ErrExpired, InvitationTTL/(24*time.Hour))

// AppCredential is an app user's password. Temporary passwords come from
// invitations and only allow choosing a new one.
type AppCredential struct {
	PasswordHash string    `json:"password_hash"`
	Temporary    bool      `json:"temporary"`
	Changed      time.Time `json:"changed"`
}

// InvitationExpired reports whether c is an invitation's temporary
// password past InvitationTTL at now.
func (c AppCredential) InvitationExpired(now time.Time) bool {
	return c.Temporary && now.Sub(c.Changed) > InvitationTTL
}

// SetTempPassword gives an app user a fresh temporary password (for an
// invitation e-mail) and returns it; earlier temporary passwords stop
// working. It refuses when the user has chosen a password already.
func (s *Store) SetTempPassword(ctx context.Context, user directory.UserID) (string, error) {
	temp := NewTempPassword()
	hash, err := hashNew(ctx, temp)
	if err != nil {
		return "", err
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		var c AppCredential
		switch err := getJSON(tx, tAppCreds, string(user), &c); {
		case err == nil && !c.Temporary:
			return fmt.Errorf("%w: the user has already chosen a password", ErrConflict)
		case err != nil && !errors.Is(err, ErrNotFound):
			return err
		}
		return putJSON(tx, tAppCreds, string(user), AppCredential{PasswordHash: hash, Temporary: true, Changed: s.now().UTC()})
	})
	return temp, err
}

// AppCredential returns a user's credential state.
func (s *Store) AppCredential(ctx context.Context, user directory.UserID) (AppCredential, error) {
	var c AppCredential
	err := s.view(ctx, func(tx kv.Tx) error { return getJSON(tx, tAppCreds, string(user), &c) })
	return c, err
}

// LoginApp checks an app user's password under the per-account throttle;
// user is "" when the e-mail is unknown (answered the same, in the same
// time). It returns the credential checked (Temporary: the password was an
// invitation's; SignIn wants its hash); a temporary one older than
// InvitationTTL is refused (ErrInvitationExpired). The same check,
// and throttle, serves a password change's current password.
func (s *Store) LoginApp(ctx context.Context, email string, user directory.UserID, password string) (cred AppCredential, err error) {
	var c AppCredential
	var readErr error
	err = s.checkPassword(ctx, "app/"+emailKey(email), func() bool {
		c = AppCredential{PasswordHash: dummyHash}
		if user != "" {
			if readErr = s.view(ctx, func(tx kv.Tx) error { return getJSON(tx, tAppCreds, string(user), &c) }); readErr != nil {
				user, c.PasswordHash = "", dummyHash
				if errors.Is(readErr, ErrNotFound) {
					readErr = nil
				}
			}
		}
		return VerifyPassword(c.PasswordHash, password) && user != "" && readErr == nil
	})
	if readErr != nil {
		return AppCredential{}, readErr
	}
	if err != nil {
		return AppCredential{}, err
	}
	if c.InvitationExpired(s.now()) {
		return c, ErrInvitationExpired
	}
	return c, nil
}

// SetAppPassword sets a user's chosen password and ends their other
// sessions (keep: the token of the session that changed it, or "").
func (s *Store) SetAppPassword(ctx context.Context, user directory.UserID, password, keep string) error {
	hash, err := hashChosen(ctx, password)
	if err != nil {
		return err
	}
	keepKey := sessionKey(keep)
	return s.update(ctx, func(tx kv.Tx) error {
		if err := putJSON(tx, tAppCreds, string(user), AppCredential{PasswordHash: hash, Changed: s.now().UTC()}); err != nil {
			return err
		}
		if err := s.dropResetsOf(tx, ResetApp, string(user)); err != nil {
			return err
		}
		if err := clearMustChange(tx, keepKey); err != nil {
			return err
		}
		return endSessionsOf(tx, SessionApp, string(user), keepKey)
	})
}

// DeleteAppCredential forgets a user's password (the user was deleted).
func (s *Store) DeleteAppCredential(ctx context.Context, user directory.UserID) error {
	return s.update(ctx, func(tx kv.Tx) error {
		if err := tx.Delete(tAppCreds, string(user)); err != nil {
			return err
		}
		if err := s.dropResetsOf(tx, ResetApp, string(user)); err != nil {
			return err
		}
		return endSessionsOf(tx, SessionApp, string(user), "")
	})
}

// ResetKind says whose password a reset token resets: an app user's or an
// admin account's. A token spends only for its own kind.
type ResetKind string

// The kinds of reset token.
const (
	ResetApp   ResetKind = ""      // an app user's (records older than kinds have none)
	ResetAdmin ResetKind = "admin" // an admin account's
)

type reset struct {
	// Subject is the app user's ID, or the admin's (Kind ResetAdmin).
	Subject string    `json:"user"`
	Kind    ResetKind `json:"kind,omitempty"`
	Expires time.Time `json:"expires"`
}

// maxResets is how many unexpired reset links a user may have: more
// requests within ResetTTL send nothing (someone is flooding their inbox).
const maxResets = 3

// NewResetToken returns a single-use password-reset token for subject, an
// app user's ID (kind ResetApp) or an admin's (ResetAdmin), or
// ErrThrottled when it has maxResets unexpired ones already.
func (s *Store) NewResetToken(ctx context.Context, kind ResetKind, subject string) (string, error) {
	tok, hash := directory.NewToken()
	err := s.update(ctx, func(tx kv.Tx) error {
		live := 0
		err := scanJSON(tx, tResets, "", func(_ string, r reset) error {
			if r.Kind == kind && r.Subject == subject && s.now().Before(r.Expires) {
				live++
			}
			return nil
		})
		if err != nil {
			return err
		}
		if live >= maxResets {
			return fmt.Errorf("%w: %d reset links of this account are still valid", ErrThrottled, live)
		}
		return putJSON(tx, tResets, hashKey(hash), reset{Subject: subject, Kind: kind, Expires: s.now().Add(ResetTTL).UTC()})
	})
	return tok, err
}

// DropResets makes every reset link of user stop working (their e-mail
// address changed: the links went to the old one).
func (s *Store) DropResets(ctx context.Context, user directory.UserID) error {
	return s.update(ctx, func(tx kv.Tx) error { return s.dropResetsOf(tx, ResetApp, string(user)) })
}

// dropResetsOf deletes the reset records of subject (of kind), and expired
// ones of anyone.
func (s *Store) dropResetsOf(tx kv.Tx, kind ResetKind, subject string) error {
	return deleteWhere(tx, tResets, "", func(_ string, r reset) bool {
		return r.Kind == kind && r.Subject == subject || !s.now().Before(r.Expires)
	})
}

// ResetPassword spends an app user's reset token: the user's password
// becomes password and every session of theirs ends. It returns the user.
// An admin's token is ErrExpired here, and stays valid.
func (s *Store) ResetPassword(ctx context.Context, token, password string) (directory.UserID, error) {
	user, err := s.spendReset(ctx, ResetApp, token, password, func(tx kv.Tx, user, hash string) error {
		if err := putJSON(tx, tAppCreds, user, AppCredential{PasswordHash: hash, Changed: s.now().UTC()}); err != nil {
			return err
		}
		return endSessionsOf(tx, SessionApp, user, "")
	})
	return directory.UserID(user), err
}

// ResetAdminPassword spends an admin's reset token: the admin's password
// becomes password (a temporary one, an invitation's, is gone) and every
// session of theirs ends. It returns the admin's ID. An app user's token is
// ErrExpired here, and stays valid.
func (s *Store) ResetAdminPassword(ctx context.Context, token, password string) (string, error) {
	return s.spendReset(ctx, ResetAdmin, token, password, func(tx kv.Tx, id, hash string) error {
		if err := putChosenAdminPassword(tx, id, hash); err != nil {
			return err
		}
		return endSessionsOf(tx, SessionAdmin, id, "")
	})
}

// spendReset checks password, deletes the token of kind and, unless it
// expired (ErrExpired), sets the password with set (given the subject and
// the new hash) and drops the subject's other reset links, in one
// transaction. A token unknown, used or of another kind is ErrExpired too.
func (s *Store) spendReset(ctx context.Context, kind ResetKind, token, password string, set func(tx kv.Tx, subject, hash string) error) (string, error) {
	hash, err := hashChosen(ctx, password)
	if err != nil {
		return "", err
	}
	var r reset
	expired := false
	err = s.update(ctx, func(tx kv.Tx) error {
		key := hashKey(directory.HashToken(token))
		err := getJSON(tx, tResets, key, &r)
		if errors.Is(err, ErrNotFound) || err == nil && r.Kind != kind {
			// Used (deleted), never made, or another kind's link (not
			// spent here): all one to its holder.
			return fmt.Errorf("%w: unknown or already used reset link", ErrExpired)
		}
		if err != nil {
			return err
		}
		if err := tx.Delete(tResets, key); err != nil {
			return err
		}
		if expired = !s.now().Before(r.Expires); expired {
			return nil // spent and expired: answered below, the deletion kept
		}
		if err := set(tx, r.Subject, hash); err != nil {
			return err
		}
		return s.dropResetsOf(tx, kind, r.Subject)
	})
	switch {
	case err != nil:
		return "", err
	case expired:
		return "", ErrExpired
	}
	return r.Subject, nil
}

// maxPushToken bounds a push-notification token (APNs and FCM tokens are
// a few hundred bytes).
const maxPushToken = 4096

// CheckPushToken reports whether SetPushToken would take token, so that a
// request that also changes other things can be refused before any of it.
func CheckPushToken(token string) error {
	if len(token) > maxPushToken {
		return fmt.Errorf("%w: push token longer than %d bytes", ErrInvalid, maxPushToken)
	}
	return nil
}

// SetPushToken records the push-notification token of an app device ("" removes it).
func (s *Store) SetPushToken(ctx context.Context, device directory.DeviceID, token string) error {
	if err := CheckPushToken(token); err != nil {
		return err
	}
	return s.update(ctx, func(tx kv.Tx) error {
		if token == "" {
			return tx.Delete(tPush, string(device))
		}
		return tx.Put(tPush, string(device), []byte(token))
	})
}

// DropPushTokens removes the push tokens of app devices about to be
// deleted, in one transaction.
func (s *Store) DropPushTokens(ctx context.Context, devices ...directory.DeviceID) error {
	return s.update(ctx, func(tx kv.Tx) error {
		for _, d := range devices {
			if err := tx.Delete(tPush, string(d)); err != nil {
				return err
			}
		}
		return nil
	})
}

// PushToken returns an app device's push token, or "".
func (s *Store) PushToken(ctx context.Context, device directory.DeviceID) (string, error) {
	var tok []byte
	err := s.view(ctx, func(tx kv.Tx) (err error) {
		tok, err = get(tx, tPush, string(device))
		if errors.Is(err, ErrNotFound) {
			err = nil
		}
		return err
	})
	return string(tok), err
}
