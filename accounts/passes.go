package accounts

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// Visitor passes: keypad PINs a resident makes in the app for a visitor
// (api.md, "Visitor passes"). Unlike an admin's access codes they are
// always bounded in time and few, and the server picks their PINs.
const (
	// MaxPassesPerPerson is how many live passes (not used up, not
	// expired) a person may hold on one site, and MaxPassesPerSite how many
	// a site's people may hold together: each is a PIN someone at the
	// keypad could guess.
	MaxPassesPerPerson = 10
	MaxPassesPerSite   = 1000
	// MaxPassValidity is how far ahead a pass may end; DefaultPassValidity
	// how long one lasts when the resident does not say.
	MaxPassValidity     = 7 * 24 * time.Hour
	DefaultPassValidity = 24 * time.Hour
	// passDigits is a pass's PIN length: with MaxPassesPerSite live, one
	// guess in 100,000 opens a door, and the keypad's lock-out leaves about
	// a hundred guesses a door a day.
	passDigits = 8
)

// live reports whether a pass still opens a door at some time from now.
func (c AccessCode) live(now time.Time) bool {
	return !c.Used && (c.ValidUntil == nil || now.Before(*c.ValidUntil))
}

// PutPass stores c, a visitor pass of c.User on c.Site (Pass set, its PIN
// chosen here at random among those no other code of the site has), in one
// transaction with the count of the person's live passes there: at
// MaxPassesPerPerson it is refused (directory.ErrLimit).
func (s *Store) PutPass(ctx context.Context, c AccessCode) (AccessCode, error) {
	now := s.now()
	c.ID, c.Created, c.Pass, c.Used = directory.NewID("c_"), now.UTC(), true, false
	c.PIN = strings.Repeat("0", passDigits) // a valid placeholder, for Validate
	if err := c.Validate(); err != nil {
		return AccessCode{}, err
	}
	err := s.update(ctx, func(tx kv.Tx) error {
		taken := make(map[string]bool)
		mine, site := 0, 0
		err := scanJSON(tx, tCodes, string(c.Site)+"/", func(_ string, o AccessCode) error {
			if !o.Used {
				taken[o.PIN] = true
			}
			if o.Pass && o.live(now) {
				site++
				if o.User == c.User {
					mine++
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if mine >= MaxPassesPerPerson {
			return fmt.Errorf("%w: %d visitor passes of yours are live on this site, at most %d; delete one first", directory.ErrLimit, mine, MaxPassesPerPerson)
		}
		if site >= MaxPassesPerSite {
			return fmt.Errorf("%w: this site has %d live visitor passes, the most it may have; try again once some have ended", directory.ErrLimit, site)
		}
		if c.PIN, err = randomPIN(taken); err != nil {
			return err
		}
		return putJSON(tx, tCodes, string(c.Site)+"/"+c.ID, c)
	})
	if err != nil {
		return AccessCode{}, err
	}
	return c, nil
}

// pinSource is where visitor passes' PINs are drawn from; tests replace it
// to draw a taken PIN on purpose.
var pinSource io.Reader = rand.Reader

// randomPIN returns a PIN of passDigits digits not in taken.
func randomPIN(taken map[string]bool) (string, error) {
	limit := big.NewInt(100_000_000)
	for range 100 {
		n, err := rand.Int(pinSource, limit)
		if err != nil {
			return "", err
		}
		if pin := fmt.Sprintf("%0*d", passDigits, n.Int64()); !taken[pin] {
			return pin, nil
		}
	}
	return "", fmt.Errorf("%w: no free PIN found for a visitor pass; try again", ErrConflict)
}

// Passes returns a person's visitor passes on a site, newest first.
func (s *Store) Passes(ctx context.Context, site directory.SiteID, user directory.UserID) ([]AccessCode, error) {
	var out []AccessCode
	err := s.view(ctx, func(tx kv.Tx) error {
		return scanJSON(tx, tCodes, string(site)+"/", func(_ string, c AccessCode) error {
			if c.Pass && c.User == user {
				out = append(out, c)
			}
			return nil
		})
	})
	slices.SortFunc(out, func(a, b AccessCode) int { return b.Created.Compare(a.Created) })
	return out, err
}

// DeletePass deletes a person's visitor pass; another's, or an admin's
// access code, is ErrNotFound.
func (s *Store) DeletePass(ctx context.Context, site directory.SiteID, user directory.UserID, id string) error {
	return s.update(ctx, func(tx kv.Tx) error {
		var c AccessCode
		if err := getJSON(tx, tCodes, string(site)+"/"+id, &c); err != nil {
			return err
		}
		if !c.Pass || c.User != user {
			return fmt.Errorf("%w: no visitor pass %s of yours", ErrNotFound, id)
		}
		return tx.Delete(tCodes, string(site)+"/"+id)
	})
}

// purgeExpiredPasses deletes the visitor passes past their end, of every
// site: a pass's use stays in the site's access log.
func purgeExpiredPasses(tx kv.Tx, now time.Time) error {
	return deleteWhere(tx, tCodes, "", func(_ string, c AccessCode) bool {
		return c.Pass && c.ValidUntil != nil && !now.Before(*c.ValidUntil)
	})
}
