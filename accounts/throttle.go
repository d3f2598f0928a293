package accounts

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/foyer-intercom/foyer/internal/kv"
)

// Login throttle, per account (not per address: an attacker has many
// addresses, the victim one account). After throttleFree failures each
// further failure locks the account's logins for twice as long, from
// throttleBase up to throttleMax. A success clears it.
const (
	throttleFree = 5
	throttleBase = 30 * time.Second
	throttleMax  = 15 * time.Minute
)

// ThrottledError says how long to wait; it wraps ErrThrottled.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many failed attempts; try again in %s", e.RetryAfter.Round(time.Second))
}

// Unwrap makes errors.Is(err, ErrThrottled) hold.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

type throttle struct {
	Failures    int       `json:"failures"`
	LockedUntil time.Time `json:"locked_until"`
}

// beginAttempt checks key's lock and counts this attempt as a failure, in
// one transaction, before the password is checked: attempts made at the
// same moment cannot all pass a check that none of them has counted yet. A
// success takes it back (resetThrottle).
func (s *Store) beginAttempt(ctx context.Context, key string) error {
	var locked time.Duration
	err := s.update(ctx, func(tx kv.Tx) error {
		var t throttle
		if err := getJSON(tx, tThrottle, key, &t); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if locked = t.LockedUntil.Sub(s.now()); locked > 0 {
			return nil
		}
		t.Failures++
		if over := t.Failures - throttleFree; over > 0 {
			lock := throttleBase << min(over-1, 20)
			t.LockedUntil = s.now().Add(min(lock, throttleMax))
		}
		return putJSON(tx, tThrottle, key, t)
	})
	if err != nil {
		return err
	}
	if locked > 0 {
		return &ThrottledError{RetryAfter: locked}
	}
	return nil
}

func (s *Store) resetThrottle(ctx context.Context, key string) error {
	return s.update(ctx, func(tx kv.Tx) error { return tx.Delete(tThrottle, key) })
}

// checkPassword runs check, which checks a password, under key's throttle
// and holding a hashing slot. It returns ErrBusy when no slot frees up in
// time, the throttle's error while locked, and ErrBadCredentials when check
// says no.
func (s *Store) checkPassword(ctx context.Context, key string, check func() bool) error {
	release, err := hashSlot(ctx)
	if err != nil {
		return err
	}
	defer release()
	if err := s.beginAttempt(ctx, key); err != nil {
		return err
	}
	if !check() {
		return ErrBadCredentials
	}
	return s.resetThrottle(ctx, key)
}
