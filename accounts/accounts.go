// Package accounts keeps who may do what outside the call path: admin
// accounts and their roles per site, sessions and API keys, app users'
// passwords and reset tokens, device provisioning codes, access codes, and
// the event logs. It stores everything in a kv.Store (the embedded bbolt
// file, or the shared Redis), beside the directory.
//
// Secrets are never stored: passwords as Argon2id hashes, tokens and codes
// as SHA-256 hashes of 256-bit random values (directory.NewToken).
package accounts

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// Tables of the kv store, with their key layouts.
const (
	tAdmins          = "admins"           // admin ID → Admin
	tAdminEmail      = "admin_email"      // lower-case e-mail → admin ID
	tRoles           = "roles"            // site "/" admin ID → Role
	tAdminRoles      = "admin_roles"      // admin ID "/" site → Role (the reverse index)
	tSessions        = "sessions"         // hex(token hash) → Session
	tAPIKeys         = "api_keys"         // hex(key hash) → APIKey
	tAppCreds        = "app_creds"        // user ID → AppCredential
	tResets          = "resets"           // hex(token hash) → reset
	tProvision       = "provision"        // hex(code hash) → Provisioning
	tThrottle        = "throttle"         // "login/" lower-case e-mail → throttle
	tTags            = "tags"             // site "/" user ID → []string
	tCodes           = "codes"            // site "/" code ID → AccessCode
	tKeypadLocks     = "keypad_locks"     // door station ID → keypadLock
	tEvents          = "events"           // site "/" kind "/" time "/" id → Event
	tPush            = "push"             // app device ID → push token
	tPersonCalls     = "person_calls"     // user ID "/" time "/" event id → the call's key in tEvents
	tSubjectSessions = "subject_sessions" // kind ":" subject "/" hex(token hash) → expiry: sessions by whose they are
	tMeta            = "meta"             // name → value: what the store's data has been brought to
	tDoorsOffline    = "doors_offline"    // door station ID → since when (RFC 3339): reported offline to its managers
	tDoorsSeen       = "doors_seen"       // door station ID → "connected" (when last known) or since when it has been gone (RFC 3339)
)

// Tables names every table of the kv store (for kv.Redis.MoveToParts).
func Tables() []string {
	return []string{tAdmins, tAdminEmail, tRoles, tAdminRoles, tSessions, tAPIKeys, tAppCreds, tResets,
		tProvision, tThrottle, tTags, tCodes, tKeypadLocks, tEvents, tPush, tPersonCalls, tSubjectSessions, tMeta, tDoorsOffline, tDoorsSeen}
}

// Errors. The API maps them to HTTP statuses in one place.
var (
	ErrNotFound       = errors.New("not found")
	ErrConflict       = errors.New("conflict")
	ErrInvalid        = errors.New("invalid")
	ErrBadCredentials = errors.New("wrong e-mail or password")
	ErrThrottled      = errors.New("too many attempts")
	// ErrNotInviter: an invitation is sent again only by the site that
	// sent it.
	ErrNotInviter = errors.New("the invitation came from another site; only its owners send it again")
	ErrExpired    = errors.New("expired")
	ErrBusy       = errors.New("busy: too many password checks at once; try again")
)

// Clock tells the time; tests inject one to move past expiries.
type Clock func() time.Time

// Store is the account data on a kv.Store.
type Store struct {
	// Immutable after construction.
	kv  kv.Store
	now Clock
}

// New returns a Store on s. now may be nil (the wall clock).
func New(s kv.Store, now Clock) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{kv: s, now: now}
}

// Now is the store's clock.
func (s *Store) Now() time.Time { return s.now() }

// KV is the underlying store, for transactions that span several records.
func (s *Store) KV() kv.Store { return s.kv }

func hashKey(h directory.TokenHash) string { return hex.EncodeToString(h[:]) }

// sessionKey is the key of the session whose token is tok, or "" for "".
func sessionKey(tok string) string {
	if tok == "" {
		return ""
	}
	return hashKey(directory.HashToken(tok))
}

// get reads table/key: ErrNotFound when there is no such record, and the
// store's own error when it failed, which says nothing about the record
// (every read of the package goes through it, so that no caller takes a
// failure for an answer).
func get(tx kv.Tx, table, key string) ([]byte, error) {
	b, err := tx.Get(table, key)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, ErrNotFound
	}
	return b, err
}

// getJSON reads table/key into v, as get does.
func getJSON(tx kv.Tx, table, key string, v any) error {
	b, err := get(tx, table, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("accounts: corrupt %s record %q: %w", table, key, err)
	}
	return nil
}

func putJSON(tx kv.Tx, table, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Put(table, key, b)
}

// scanJSON decodes every record of table under prefix into a fresh T and
// calls fn with it.
func scanJSON[T any](tx kv.Tx, table, prefix string, fn func(key string, v T) error) error {
	return tx.Scan(table, prefix, func(k string, b []byte) error {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return fmt.Errorf("accounts: corrupt %s record %q: %w", table, k, err)
		}
		return fn(k, v)
	})
}

// deleteWhere deletes the records of table under prefix for which doomed
// is true.
func deleteWhere[T any](tx kv.Tx, table, prefix string, doomed func(key string, v T) bool) error {
	_, err := deleteRaw(tx, table, prefix, func(k string, b []byte) (bool, error) {
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			return false, fmt.Errorf("accounts: corrupt %s record %q: %w", table, k, err)
		}
		return doomed(k, v), nil
	})
	return err
}

// deleteRaw deletes the records of table under prefix for which doomed is
// true, and returns their keys. An error from doomed stops it, deleting
// nothing.
func deleteRaw(tx kv.Tx, table, prefix string, doomed func(key string, v []byte) (bool, error)) ([]string, error) {
	var keys []string
	err := tx.Scan(table, prefix, func(k string, v []byte) error {
		d, err := doomed(k, v)
		if d {
			keys = append(keys, k)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := tx.Delete(table, k); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func (s *Store) view(ctx context.Context, fn func(kv.Tx) error) error   { return s.kv.View(ctx, fn) }
func (s *Store) update(ctx context.Context, fn func(kv.Tx) error) error { return s.kv.Update(ctx, fn) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
