package accounts

import (
	"context"
	"errors"
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
		return putSession(tx, hashKey(hash), sess)
	})
	return tok, sess, err
}

// subjectSessionKey is the index entry of the session under key.
func subjectSessionKey(sess Session, key string) string {
	return string(sess.Kind) + ":" + sess.Subject + "/" + key
}

// putSession stores a new session under key, and its index entry.
func putSession(tx kv.Tx, key string, sess Session) error {
	if err := putJSON(tx, tSessions, key, sess); err != nil {
		return err
	}
	return tx.Put(tSubjectSessions, subjectSessionKey(sess, key), []byte(sess.Expires.Format(time.RFC3339)))
}

// dropSession deletes the session under key and its index entry.
func dropSession(tx kv.Tx, key string, sess Session) error {
	if err := tx.Delete(tSessions, key); err != nil {
		return err
	}
	return tx.Delete(tSubjectSessions, subjectSessionKey(sess, key))
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
	key := hashKey(directory.HashToken(token))
	return s.update(ctx, func(tx kv.Tx) error {
		var sess Session
		if err := getJSON(tx, tSessions, key, &sess); errors.Is(err, ErrNotFound) {
			return nil
		} else if err != nil {
			return err
		}
		return dropSession(tx, key, sess)
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
// or reset, or the account's deletion), except keep (a token hash key, or
// ""). It reads the subject's index entries, not every session.
func endSessionsOf(tx kv.Tx, kind SessionKind, subject, keep string) error {
	if err := indexSessions(tx); err != nil {
		return err
	}
	prefix := subjectSessionKey(Session{Kind: kind, Subject: subject}, "")
	entries, err := deleteRaw(tx, tSubjectSessions, prefix, func(k string, _ []byte) (bool, error) {
		return strings.TrimPrefix(k, prefix) != keep, nil
	})
	if err != nil {
		return err
	}
	for _, k := range entries {
		if err := tx.Delete(tSessions, strings.TrimPrefix(k, prefix)); err != nil {
			return err
		}
	}
	return nil
}

// metaSessionsIndexed, in tMeta, says every session has its index entry.
const metaSessionsIndexed = "sessions_indexed"

// sessionsIndexed reports whether every session has its index entry.
func sessionsIndexed(tx kv.Tx) (bool, error) {
	_, err := get(tx, tMeta, metaSessionsIndexed)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// indexSessions gives the sessions an earlier version stored (without
// index entries) their entries, all in tx, unless that was done: the first
// time it reads every session, afterwards one record.
func indexSessions(tx kv.Tx) error {
	if done, err := sessionsIndexed(tx); done || err != nil {
		return err
	}
	if err := indexSessionsUnder(tx, ""); err != nil {
		return err
	}
	return tx.Put(tMeta, metaSessionsIndexed, []byte("1"))
}

// indexSessionsUnder writes the index entries of the sessions whose keys
// start with prefix. An unreadable session gets none (the purge deletes
// it).
func indexSessionsUnder(tx kv.Tx, prefix string) error {
	entries := make(map[string][]byte)
	err := tx.Scan(tSessions, prefix, func(k string, b []byte) error {
		var sess Session
		if jsonUnmarshal(b, &sess) == nil {
			entries[subjectSessionKey(sess, k)] = []byte(sess.Expires.Format(time.RFC3339))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for k, v := range entries {
		if err := tx.Put(tSubjectSessions, k, v); err != nil {
			return err
		}
	}
	return nil
}

// IndexSessions brings the sessions of an earlier version into the index,
// unless that was done (Maintain runs it at start; ending a subject's
// sessions before it has does the same in its own transaction). It takes
// 16 transactions, a 16th of the sessions each (by their keys' first hex
// digit), not one long one that would hold up every other write: sessions
// signed in meanwhile get their entries as they are stored.
func (s *Store) IndexSessions(ctx context.Context) error {
	for _, digit := range "0123456789abcdef" {
		err := s.update(ctx, func(tx kv.Tx) error {
			if done, err := sessionsIndexed(tx); done || err != nil {
				return err
			}
			return indexSessionsUnder(tx, string(digit))
		})
		if err != nil {
			return err
		}
	}
	return s.update(ctx, func(tx kv.Tx) error {
		if done, err := sessionsIndexed(tx); done || err != nil {
			return err
		}
		return tx.Put(tMeta, metaSessionsIndexed, []byte("1"))
	})
}

// PurgeExpired removes expired sessions, reset tokens, provisioning codes,
// visitor passes and stale throttle entries.
func (s *Store) PurgeExpired(ctx context.Context) error {
	now := s.now()
	return s.update(ctx, func(tx kv.Tx) error {
		var entries []string // the index entries of the sessions purged
		_, err := deleteRaw(tx, tSessions, "", func(k string, b []byte) (bool, error) {
			var sess Session
			if err := jsonUnmarshal(b, &sess); err != nil {
				return true, nil // unreadable: purge it (it has no entry)
			}
			if now.Before(sess.Expires) {
				return false, nil
			}
			entries = append(entries, subjectSessionKey(sess, k))
			return true, nil
		})
		if err != nil {
			return err
		}
		for _, k := range entries {
			if err := tx.Delete(tSubjectSessions, k); err != nil {
				return err
			}
		}
		if err := purgeExpiredPasses(tx, now); err != nil {
			return err
		}
		for _, t := range []struct {
			table   string
			expires func([]byte) time.Time
		}{
			{tResets, expiresOf(func(v reset) time.Time { return v.Expires })},
			{tProvision, expiresOf(func(v Provisioning) time.Time { return v.Expires })},
			{tThrottle, expiresOf(func(v throttle) time.Time { return v.LockedUntil.Add(throttleMax) })},
		} {
			if _, err := deleteRaw(tx, t.table, "", func(_ string, v []byte) (bool, error) { return !now.Before(t.expires(v)), nil }); err != nil {
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
