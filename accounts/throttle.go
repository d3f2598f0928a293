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

func (s *Store) checkThrottle(ctx context.Context, key string) error {
	var t throttle
	err := s.view(ctx, func(tx kv.Tx) error { return getJSON(tx, tThrottle, key, &t) })
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if wait := t.LockedUntil.Sub(s.now()); wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	return nil
}

// failAttempt records a failure and returns ErrBadCredentials (or the
// throttle error when this failure starts a lock).
func (s *Store) failAttempt(ctx context.Context, key string) error {
	var t throttle
	err := s.update(ctx, func(tx kv.Tx) error {
		if err := getJSON(tx, tThrottle, key, &t); err != nil && !errors.Is(err, ErrNotFound) {
			return err
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
	return ErrBadCredentials
}

func (s *Store) resetThrottle(ctx context.Context, key string) error {
	return s.update(ctx, func(tx kv.Tx) error { return tx.Delete(tThrottle, key) })
}
