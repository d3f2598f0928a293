package accounts

import (
	"context"

	"fmt"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// Session lifetimes: an admin's working day; an app stays signed in for a
// month of use (each use extends nothing: it logs in again after).
const (
	AdminSessionTTL = 12 * time.Hour
	AppSessionTTL   = 30 * 24 * time.Hour
)

// SessionKind says whose session it is.
type SessionKind string

// Session kinds.
const (
	SessionAdmin SessionKind = "admin"
	SessionApp   SessionKind = "app"
)

// Session is a signed-in admin (portal or script) or app.
type Session struct {
	Kind    SessionKind `json:"kind"`
	Subject string      `json:"subject"` // admin ID or app user ID
	// CSRF is the token the portal echoes in X-CSRF-Token with the cookie.
	CSRF    string    `json:"csrf"`
	Expires time.Time `json:"expires"`
	// MustChangePassword: signed in with a temporary password, which only
	// allows choosing a new one.
	MustChangePassword bool `json:"must_change_password,omitempty"`
}

// SignIn starts the session of a sign-in whose password check passed
// against passwordHash, the subject's (an admin's ID, or an app user's)
// password hash then, and returns its bearer token (shown once). It
// checks, in the transaction that stores the session, that the subject's
// password is still that one: a password chosen between the check and the
// session (or an invitation sent again) ends the sessions there are, and
// this one must not outlive it; the sign-in then fails with
// ErrBadCredentials. The session may only choose a password
// (MustChangePassword) when that one is an invitation's.
func (s *Store) SignIn(ctx context.Context, kind SessionKind, subject, passwordHash string) (string, Session, error) {
	ttl := AdminSessionTTL
	if kind == SessionApp {
		ttl = AppSessionTTL
	}
	tok, hash := directory.NewToken()
	csrf, _ := directory.NewToken()
	sess := Session{Kind: kind, Subject: subject, CSRF: csrf, Expires: s.now().Add(ttl).UTC()}
	err := s.update(ctx, func(tx kv.Tx) error {
		var current string
		switch kind {
		case SessionAdmin:
			var a Admin
			if err := getJSON(tx, tAdmins, subject, &a); err != nil {
				return err
			}
			current, sess.MustChangePassword = a.PasswordHash, a.TemporaryPassword
		case SessionApp:
			var c AppCredential
			if err := getJSON(tx, tAppCreds, subject, &c); err != nil {
				return err
			}
			current, sess.MustChangePassword = c.PasswordHash, c.Temporary
		}
		if current != passwordHash {
			return fmt.Errorf("%w: the password changed as you signed in", ErrBadCredentials)
		}
		return putJSON(tx, tSessions, hashKey(hash), sess)
	})
	return tok, sess, err
}

// SessionByToken returns the live session a token names.
func (s *Store) SessionByToken(ctx context.Context, token string) (Session, error) {
	var sess Session
	err := s.view(ctx, func(tx kv.Tx) error {
		return getJSON(tx, tSessions, hashKey(directory.HashToken(token)), &sess)
	})
	if err != nil {
		return Session{}, err
	}
	if !s.now().Before(sess.Expires) {
		return Session{}, ErrExpired
	}
	return sess, nil
}

// EndSession logs a session out.
func (s *Store) EndSession(ctx context.Context, token string) error {
	return s.update(ctx, func(tx kv.Tx) error {
		return tx.Delete(tSessions, hashKey(directory.HashToken(token)))
	})
}

// clearMustChange lets the session under key (a token hash key, or "")
// do everything again: its subject has chosen a password.
func clearMustChange(tx kv.Tx, key string) error {
	if key == "" {
		return nil
	}
	var sess Session
	if err := getJSON(tx, tSessions, key, &sess); err != nil {
		return nil // ended meanwhile: nothing to clear
	}
	sess.MustChangePassword = false
	return putJSON(tx, tSessions, key, sess)
}

// endSessionsOf ends every session of a subject (after a password change
// or reset), except keep (a token hash key, or "").
func endSessionsOf(tx kv.Tx, kind SessionKind, subject, keep string) error {
	return deleteWhere(tx, tSessions, "", func(k string, sess Session) bool {
		return sess.Kind == kind && sess.Subject == subject && k != keep
	})
}

// PurgeExpired removes expired sessions, reset tokens, provisioning codes
// and stale throttle entries.
func (s *Store) PurgeExpired(ctx context.Context) error {
	now := s.now()
	return s.update(ctx, func(tx kv.Tx) error {
		var doomed [][2]string
		collect := func(table string, expires func([]byte) time.Time) error {
			return tx.Scan(table, "", func(k string, v []byte) error {
				if !now.Before(expires(v)) {
					doomed = append(doomed, [2]string{table, k})
				}
				return nil
			})
		}
		if err := collect(tSessions, expiresOf[Session](func(v Session) time.Time { return v.Expires })); err != nil {
			return err
		}
		if err := collect(tResets, expiresOf[reset](func(v reset) time.Time { return v.Expires })); err != nil {
			return err
		}
		if err := collect(tProvision, expiresOf[Provisioning](func(v Provisioning) time.Time { return v.Expires })); err != nil {
			return err
		}
		if err := collect(tThrottle, expiresOf[throttle](func(v throttle) time.Time { return v.LockedUntil.Add(throttleMax) })); err != nil {
			return err
		}
		for _, d := range doomed {
			if err := tx.Delete(d[0], d[1]); err != nil {
				return err
			}
		}
		return nil
	})
}

func expiresOf[T any](f func(T) time.Time) func([]byte) time.Time {
	return func(b []byte) time.Time {
		var v T
		if err := jsonUnmarshal(b, &v); err != nil {
			return time.Time{} // unreadable: purge it
		}
		return f(v)
	}
}

// APIKey lets an integration act on one site with a role (at most admin).
type APIKey struct {
	ID      string           `json:"id"`
	Name    string           `json:"name"`
	Site    directory.SiteID `json:"site"`
	Role    Role             `json:"role"`
	Created time.Time        `json:"created"`
}

// apiKeyPrefix marks API keys so the API can tell them from session tokens.
const apiKeyPrefix = "fyk_"

// IsAPIKey reports whether a bearer token is an API key.
func IsAPIKey(token string) bool { return strings.HasPrefix(token, apiKeyPrefix) }

// CreateAPIKey creates a key for site and returns it (shown once).
func (s *Store) CreateAPIKey(ctx context.Context, site directory.SiteID, name string, role Role) (string, APIKey, error) {
	if !role.Valid() || role == RoleOwner {
		return "", APIKey{}, fmt.Errorf("%w: an API key's role must be admin, installer or viewer", ErrInvalid)
	}
	if name = strings.TrimSpace(name); name == "" || len(name) > 100 {
		return "", APIKey{}, fmt.Errorf("%w: an API key needs a name of 1–100 bytes", ErrInvalid)
	}
	tok, _ := directory.NewToken()
	tok = apiKeyPrefix + strings.TrimPrefix(tok, "fyr_")
	k := APIKey{ID: directory.NewID("k_"), Name: name, Site: site, Role: role, Created: s.now().UTC()}
	err := s.update(ctx, func(tx kv.Tx) error { return putJSON(tx, tAPIKeys, hashKey(directory.HashToken(tok)), k) })
	return tok, k, err
}

// APIKeyByToken returns the key a bearer token is.
func (s *Store) APIKeyByToken(ctx context.Context, token string) (APIKey, error) {
	var k APIKey
	err := s.view(ctx, func(tx kv.Tx) error { return getJSON(tx, tAPIKeys, hashKey(directory.HashToken(token)), &k) })
	return k, err
}

// APIKeys lists a site's keys.
func (s *Store) APIKeys(ctx context.Context, site directory.SiteID) ([]APIKey, error) {
	var keys []APIKey
	err := s.view(ctx, func(tx kv.Tx) error {
		return scanJSON(tx, tAPIKeys, "", func(_ string, k APIKey) error {
			if k.Site == site {
				keys = append(keys, k)
			}
			return nil
		})
	})
	return keys, err
}

// DeleteAPIKey revokes a site's key by ID.
func (s *Store) DeleteAPIKey(ctx context.Context, site directory.SiteID, id string) error {
	return s.update(ctx, func(tx kv.Tx) error {
		var found string
		err := scanJSON(tx, tAPIKeys, "", func(h string, k APIKey) error {
			if k.Site == site && k.ID == id {
				found = h
			}
			return nil
		})
		if err != nil {
			return err
		}
		if found == "" {
			return ErrNotFound
		}
		return tx.Delete(tAPIKeys, found)
	})
}
