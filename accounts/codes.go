package accounts

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// Keypad lock-out: after keypadFree wrong codes in a row on one door
// station, its keypad refuses every code for keypadLock, doubling with each
// further wrong code up to keypadLockMax. A right code clears the count.
const (
	keypadFree    = 5
	keypadLock    = 30 * time.Second
	keypadLockMax = 15 * time.Minute
)

// pinPattern: 4 to 8 digits, like the keypads of door stations.
var pinPattern = regexp.MustCompile(`^[0-9]{4,8}$`)

// Window is a weekly time window: on Days (0 = Sunday … 6 = Saturday),
// from From to To (minutes since midnight, To exclusive, To > From), in
// the code's time zone.
type Window struct {
	Days []time.Weekday `json:"days"`
	From int            `json:"from"`
	To   int            `json:"to"`
}

// AccessCode is a PIN that opens chosen door stations of a site.
type AccessCode struct {
	ID    string           `json:"id"`
	Site  directory.SiteID `json:"site"`
	User  directory.UserID `json:"user"`
	Label string           `json:"label,omitempty"`
	PIN   string           `json:"pin"`
	// Doors: the door stations whose keypad accepts it.
	Doors []directory.DeviceID `json:"doors"`
	// Schedule: when empty, any time; otherwise only inside a window.
	Schedule []Window `json:"schedule,omitempty"`
	// TimeZone of the schedule (IANA name); default UTC.
	TimeZone   string     `json:"time_zone,omitempty"`
	ValidFrom  *time.Time `json:"valid_from,omitempty"`
	ValidUntil *time.Time `json:"valid_until,omitempty"`
	// OneTime codes work once (visitors, deliveries); Used records it.
	OneTime bool `json:"one_time,omitempty"`
	Used    bool `json:"used,omitempty"`
	// Pass: a visitor pass, made by the resident (User) in the app (PutPass).
	Pass    bool      `json:"pass,omitempty"`
	Created time.Time `json:"created"`
}

// Validate checks a code's fields.
func (c AccessCode) Validate() error {
	switch {
	case !pinPattern.MatchString(c.PIN):
		return fmt.Errorf("%w: pin must be 4 to 8 digits", ErrInvalid)
	case c.User == "":
		return fmt.Errorf("%w: an access code belongs to an app user (user_id)", ErrInvalid)
	case len(c.Doors) == 0:
		return fmt.Errorf("%w: enable the code on at least one door station (doors)", ErrInvalid)
	case c.ValidFrom != nil && c.ValidUntil != nil && !c.ValidFrom.Before(*c.ValidUntil):
		return fmt.Errorf("%w: valid_from must be before valid_until", ErrInvalid)
	case len(c.Label) > 100:
		return fmt.Errorf("%w: label longer than 100 bytes", ErrInvalid)
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		return fmt.Errorf("%w: time_zone %q is not an IANA time zone", ErrInvalid, c.TimeZone)
	}
	for i, w := range c.Schedule {
		if len(w.Days) == 0 || w.From < 0 || w.To > 24*60 || w.To <= w.From {
			return fmt.Errorf("%w: schedule[%d]: needs days and 0 <= from < to <= 1440", ErrInvalid, i)
		}
		for _, d := range w.Days {
			if d < time.Sunday || d > time.Saturday {
				return fmt.Errorf("%w: schedule[%d]: day %d is not 0–6", ErrInvalid, i, d)
			}
		}
	}
	return nil
}

// activeAt reports whether the code opens a door at t.
func (c AccessCode) activeAt(t time.Time) bool {
	if c.Used || (c.ValidFrom != nil && t.Before(*c.ValidFrom)) || (c.ValidUntil != nil && !t.Before(*c.ValidUntil)) {
		return false
	}
	if len(c.Schedule) == 0 {
		return true
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return false
	}
	lt := t.In(loc)
	minute := lt.Hour()*60 + lt.Minute()
	for _, w := range c.Schedule {
		if slices.Contains(w.Days, lt.Weekday()) && minute >= w.From && minute < w.To {
			return true
		}
	}
	return false
}

// PutCode creates (empty ID) or replaces an access code. PINs are unique
// within a site among codes not yet used up.
func (s *Store) PutCode(ctx context.Context, c AccessCode) (AccessCode, error) {
	if err := c.Validate(); err != nil {
		return AccessCode{}, err
	}
	if c.ID == "" {
		c.ID = directory.NewID("c_")
		c.Created = s.now().UTC()
	}
	err := s.update(ctx, func(tx kv.Tx) error {
		err := scanJSON(tx, tCodes, string(c.Site)+"/", func(_ string, o AccessCode) error {
			if o.ID != c.ID && o.PIN == c.PIN && !o.Used {
				return fmt.Errorf("%w: another access code of this site has that pin", ErrConflict)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return putJSON(tx, tCodes, string(c.Site)+"/"+c.ID, c)
	})
	return c, err
}

// Codes lists a site's access codes.
func (s *Store) Codes(ctx context.Context, site directory.SiteID) ([]AccessCode, error) {
	var out []AccessCode
	err := s.view(ctx, func(tx kv.Tx) error {
		return scanJSON(tx, tCodes, string(site)+"/", func(_ string, c AccessCode) error {
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// DeleteCode removes an access code.
func (s *Store) DeleteCode(ctx context.Context, site directory.SiteID, id string) error {
	return s.update(ctx, func(tx kv.Tx) error {
		if _, err := get(tx, tCodes, string(site)+"/"+id); err != nil {
			return err
		}
		return tx.Delete(tCodes, string(site)+"/"+id)
	})
}

// RemoveMembers forgets, in one transaction, what the site keeps of users
// who are no longer its members: their tags, their access codes, and the
// site's calls in their history. A code of someone who left must not open
// the door.
func (s *Store) RemoveMembers(ctx context.Context, site directory.SiteID, users []directory.UserID) error {
	gone := make(map[directory.UserID]bool, len(users))
	for _, u := range users {
		gone[u] = true
	}
	return s.update(ctx, func(tx kv.Tx) error {
		for _, u := range users {
			if err := setTags(tx, site, u, nil); err != nil {
				return err
			}
			if err := dropPersonCallsOf(tx, u, site); err != nil {
				return err
			}
		}
		return deleteWhere(tx, tCodes, string(site)+"/", func(_ string, c AccessCode) bool { return gone[c.User] })
	})
}

type keypadState struct {
	Failures    int       `json:"failures"`
	LockedUntil time.Time `json:"locked_until"`
}

// CheckPin is a door station's keypad: it returns the code that opens door
// now, spending it when one-time. A wrong code returns ErrBadCredentials; a
// locked keypad a *ThrottledError.
func (s *Store) CheckPin(ctx context.Context, door directory.Device, pin string) (AccessCode, error) {
	now := s.now()
	var found AccessCode
	var result error
	err := s.update(ctx, func(tx kv.Tx) error {
		found, result = AccessCode{}, nil
		var st keypadState
		if err := getJSON(tx, tKeypadLocks, string(door.ID), &st); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if wait := st.LockedUntil.Sub(now); wait > 0 {
			result = &ThrottledError{RetryAfter: wait}
			return nil
		}
		if pinPattern.MatchString(pin) {
			err := scanJSON(tx, tCodes, string(door.Site)+"/", func(_ string, c AccessCode) error {
				if c.PIN == pin && slices.Contains(c.Doors, door.ID) && c.activeAt(now) {
					found = c
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		if found.ID == "" {
			st.Failures++
			if over := st.Failures - keypadFree; over >= 0 {
				st.LockedUntil = now.Add(min(keypadLock<<min(over, 20), keypadLockMax))
			}
			result = ErrBadCredentials
			return putJSON(tx, tKeypadLocks, string(door.ID), st)
		}
		if found.OneTime {
			found.Used = true
			if err := putJSON(tx, tCodes, string(found.Site)+"/"+found.ID, found); err != nil {
				return err
			}
		}
		return tx.Delete(tKeypadLocks, string(door.ID))
	})
	if err != nil {
		return AccessCode{}, err
	}
	return found, result
}

// NormalizeTags trims, drops empty and duplicate tags.
func NormalizeTags(tags []string) ([]string, error) {
	var out []string
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t == "" || slices.Contains(out, t) {
			continue
		}
		if len(t) > 40 || strings.ContainsAny(t, ";,\n") {
			return nil, fmt.Errorf("%w: tag %q (at most 40 bytes, no ; , or newline)", ErrInvalid, t)
		}
		out = append(out, t)
	}
	if len(out) > 20 {
		return nil, fmt.Errorf("%w: at most 20 tags", ErrInvalid)
	}
	return out, nil
}
