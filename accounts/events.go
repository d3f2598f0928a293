package accounts

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// EventKind names one of a site's logs.
type EventKind string

// The logs.
const (
	EventCall   EventKind = "call"   // one per call: who rang, who was rung, the outcome
	EventDoor   EventKind = "door"   // a door opened (from a call or an access code)
	EventAccess EventKind = "access" // an access code tried on a keypad
	EventAudit  EventKind = "audit"  // an admin change
)

// Valid reports whether k is a known log.
func (k EventKind) Valid() bool {
	switch k {
	case EventCall, EventDoor, EventAccess, EventAudit:
		return true
	}
	return false
}

// Event is one log entry. Which fields are set depends on Kind; the
// personal ones (Actor, User, Devices, Details) are cleared by Purge once
// the entry is older than the site's retention.
type Event struct {
	ID   string           `json:"id"`
	Site directory.SiteID `json:"site"`
	Kind EventKind        `json:"kind"`
	Time time.Time        `json:"time"`
	// Actor: the admin (e-mail) or device (ID) that acted.
	Actor string `json:"actor,omitempty"`
	// User: the app user concerned (an access code's owner, who answered).
	User directory.UserID `json:"user,omitempty"`
	// Door is the door station concerned.
	Door directory.DeviceID `json:"door,omitempty"`
	// Devices: for a call, every device rung; the answering one is Answered.
	Devices []directory.DeviceID `json:"devices,omitempty"`
	// People: for a call, the people it was for (signaling.CallRecord), each
	// of whom has it in their history (PersonCalls); Declined those of them
	// who declined.
	People   []directory.UserID `json:"people,omitempty"`
	Declined []directory.UserID `json:"declined,omitempty"`
	Answered directory.DeviceID `json:"answered,omitempty"`
	CallID   string             `json:"call_id,omitempty"`
	Number   directory.Number   `json:"number,omitempty"`
	// Outcome: how a call ended (answered, no_answer, declined, …), or
	// granted/denied/locked for access codes, or the audit action.
	Outcome string `json:"outcome,omitempty"`
	// AnsweredAfterMs and DurationMs time a call.
	AnsweredAfterMs int64 `json:"answered_after_ms,omitempty"`
	DurationMs      int64 `json:"duration_ms,omitempty"`
	DoorOpened      bool  `json:"door_opened,omitempty"`
	// Details: free text (an audit entry's object and change).
	Details string `json:"details,omitempty"`
	// Purged: personal data removed under the retention policy.
	Purged bool `json:"purged,omitempty"`
}

// eventKey orders a site's entries of one kind by time.
func eventKey(e Event) string {
	return fmt.Sprintf("%s/%s/%020d/%s", e.Site, e.Kind, e.Time.UnixNano(), e.ID)
}

// Log appends an event; ID and Time are filled when empty.
func (s *Store) Log(ctx context.Context, e Event) error { return s.LogAll(ctx, []Event{e}) }

// LogAll stores log entries in one transaction: one disk sync for all of
// them, their times in UTC. An entry without a site or a valid kind is refused by name and the
// others are stored.
func (s *Store) LogAll(ctx context.Context, es []Event) error {
	var bad []error
	keep := make([]Event, 0, len(es))
	for _, e := range es {
		if !e.Kind.Valid() || e.Site == "" {
			bad = append(bad, fmt.Errorf("%w: event %q needs a site and a kind (site %q, kind %q)", ErrInvalid, e.ID, e.Site, e.Kind))
			continue
		}
		if e.ID == "" {
			e.ID = directory.NewID("e_")
		}
		if e.Time.IsZero() {
			e.Time = s.now()
		}
		e.Time = e.Time.UTC() // the API's times are UTC; a call's start comes from the local clock
		keep = append(keep, e)
	}
	if len(keep) > 0 {
		if err := s.update(ctx, func(tx kv.Tx) error {
			for _, e := range keep {
				if err := putJSON(tx, tEvents, eventKey(e), e); err != nil {
					return err
				}
				if err := putPersonCalls(tx, e); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return errors.Join(bad...)
}

// EventFilter selects log entries; zero fields select everything.
type EventFilter struct {
	From, To time.Time // To is exclusive
	// User selects the entries about a person: who answered or opened, an
	// access code's owner, and the calls that were for them.
	User   directory.UserID
	Device directory.DeviceID
	Limit  int // newest first; 0: all
}

func (f EventFilter) match(e Event) bool {
	switch {
	case !f.From.IsZero() && e.Time.Before(f.From):
		return false
	case !f.To.IsZero() && !e.Time.Before(f.To):
		return false
	case f.User != "" && e.User != f.User && !slices.Contains(e.People, f.User):
		return false
	case f.Device != "" && e.Door != f.Device && e.Answered != f.Device && !slices.Contains(e.Devices, f.Device) && e.Actor != string(f.Device):
		return false
	}
	return true
}

// Events returns a site's entries of one kind, newest first.
func (s *Store) Events(ctx context.Context, site directory.SiteID, kind EventKind, f EventFilter) ([]Event, error) {
	var out []Event
	err := s.view(ctx, func(tx kv.Tx) error {
		return scanJSON(tx, tEvents, string(site)+"/"+string(kind)+"/", func(_ string, e Event) error {
			if f.match(e) {
				out = append(out, e)
			}
			return nil
		})
	})
	return newestFirst(out, f.Limit), err
}

// newestFirst reverses out, scanned oldest first, and keeps its first
// limit (every one when 0).
func newestFirst[T any](out []T, limit int) []T {
	slices.Reverse(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// Purge clears the personal data of a site's entries older than before.
// It returns how many entries it cleared.
func (s *Store) Purge(ctx context.Context, site directory.SiteID, before time.Time) (int, error) {
	n := 0
	err := s.update(ctx, func(tx kv.Tx) error {
		var old []Event
		err := scanJSON(tx, tEvents, string(site)+"/", func(_ string, e Event) error {
			if e.Time.Before(before) && !e.Purged {
				old = append(old, e)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, e := range old {
			if err := dropPersonCalls(tx, e); err != nil {
				return err
			}
			e.Actor, e.User, e.Devices, e.Answered, e.Details, e.Purged = "", "", nil, "", "", true
			e.People, e.Declined = nil, nil
			if err := putJSON(tx, tEvents, eventKey(e), e); err != nil {
				return err
			}
		}
		n = len(old)
		return nil
	})
	return n, err
}

// SetTags replaces the tags of a user's membership of a site.
func (s *Store) SetTags(ctx context.Context, site directory.SiteID, user directory.UserID, tags []string) error {
	return s.update(ctx, func(tx kv.Tx) error { return setTags(tx, site, user, tags) })
}

func setTags(tx kv.Tx, site directory.SiteID, user directory.UserID, tags []string) error {
	key := string(site) + "/" + string(user)
	if len(tags) == 0 {
		return tx.Delete(tTags, key)
	}
	return putJSON(tx, tTags, key, tags)
}

// Tags returns every tagged user of a site.
func (s *Store) Tags(ctx context.Context, site directory.SiteID) (map[directory.UserID][]string, error) {
	tags := make(map[directory.UserID][]string)
	err := s.view(ctx, func(tx kv.Tx) error {
		return scanJSON(tx, tTags, string(site)+"/", func(k string, v []string) error {
			tags[directory.UserID(strings.TrimPrefix(k, string(site)+"/"))] = v
			return nil
		})
	})
	return tags, err
}

// SetTagsBatch replaces many users' tags of one site in one transaction.
func (s *Store) SetTagsBatch(ctx context.Context, site directory.SiteID, tags map[directory.UserID][]string) error {
	return s.update(ctx, func(tx kv.Tx) error {
		for u, t := range tags {
			if err := setTags(tx, site, u, t); err != nil {
				return err
			}
		}
		return nil
	})
}
