package accounts

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// CallResult is how a call ended for one of the people it was for: what
// their app shows in its call history. Answered elsewhere is not a missed
// call.
type CallResult string

// Call results (api.md, "A person's calls").
const (
	// ResultAnswered: a device of theirs answered.
	ResultAnswered CallResult = "answered"
	// ResultAnsweredElsewhere: another person's device, or a monitor, answered.
	ResultAnsweredElsewhere CallResult = "answered_elsewhere"
	// ResultDeclined: a device of theirs declined and nobody answered.
	ResultDeclined CallResult = "declined"
	// ResultDeclinedElsewhere: someone else declined it and nobody answered.
	ResultDeclinedElsewhere CallResult = "declined_elsewhere"
	// ResultMissed: nobody answered or declined: the ring timed out, the
	// visitor gave up, or no device was connected.
	ResultMissed CallResult = "missed"
)

// PersonCall is one call in a person's history: the call of a site's log
// as it ended for them.
type PersonCall struct {
	CallID string             `json:"call_id"`
	Site   directory.SiteID   `json:"site_id"`
	Door   directory.DeviceID `json:"door_station_id"`
	Number directory.Number   `json:"to"`
	Time   time.Time          `json:"time"`
	Result CallResult         `json:"result"`
	// Reason is the call's end reason (the protocol's ended reasons).
	Reason string `json:"reason"`
	// AnsweredBy is their device that answered (Result answered).
	AnsweredBy      directory.DeviceID `json:"answered_by,omitempty"`
	AnsweredAfterMs int64              `json:"answered_after_ms,omitempty"`
	DurationMs      int64              `json:"duration_ms,omitempty"`
	DoorOpened      bool               `json:"door_opened,omitempty"`
}

// personCallKey orders a person's calls by time: the person is the key's
// part, so on Redis their history is a hash of its own.
func personCallKey(user directory.UserID, e Event) string {
	return fmt.Sprintf("%s/%020d/%s", user, e.Time.UnixNano(), e.ID)
}

// personCall is the call entry e as it ended for user, one of its People.
func personCall(e Event, user directory.UserID) PersonCall {
	c := PersonCall{
		CallID: e.CallID, Site: e.Site, Door: e.Door, Number: e.Number, Time: e.Time,
		Reason: e.Outcome, DoorOpened: e.DoorOpened,
		AnsweredAfterMs: e.AnsweredAfterMs, DurationMs: e.DurationMs,
	}
	switch {
	case e.Answered != "" && e.User == user:
		c.Result, c.AnsweredBy = ResultAnswered, e.Answered
	case e.Answered != "":
		c.Result = ResultAnsweredElsewhere
	case slices.Contains(e.Declined, user):
		c.Result = ResultDeclined
	case e.Outcome == "declined":
		c.Result = ResultDeclinedElsewhere
	default:
		c.Result = ResultMissed
	}
	if c.Result != ResultAnswered {
		c.DurationMs = 0 // someone else's conversation
	}
	return c
}

// putPersonCalls stores call entry e in the history of each of its People:
// a record of the person's, whose value is the entry's key (a copy of the
// entry for each person made the journal's writes half as fast again).
func putPersonCalls(tx kv.Tx, e Event) error {
	key := []byte(eventKey(e))
	for _, u := range e.People {
		if err := tx.Put(tPersonCalls, personCallKey(u, e), key); err != nil {
			return err
		}
	}
	return nil
}

// dropPersonCalls deletes call entry e from the history of each of its
// People (its personal data purged).
func dropPersonCalls(tx kv.Tx, e Event) error {
	for _, u := range e.People {
		if err := tx.Delete(tPersonCalls, personCallKey(u, e)); err != nil {
			return err
		}
	}
	return nil
}

// PersonCalls returns a person's calls on every site, newest first: those
// before before (every one when zero), at most limit (every one when 0),
// each from its site's log entry. A site's calls stay for its log
// retention, and go when the person leaves the site.
func (s *Store) PersonCalls(ctx context.Context, user directory.UserID, before time.Time, limit int) ([]PersonCall, error) {
	var out []PersonCall
	err := s.view(ctx, func(tx kv.Tx) error {
		prefix := string(user) + "/"
		var entries []string // their keys in the site logs, oldest first
		err := tx.Scan(tPersonCalls, prefix, func(k string, v []byte) error {
			if before.IsZero() || k < personCallKey(user, Event{Time: before}) {
				entries = append(entries, string(v))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, key := range newestFirst(entries, limit) {
			var e Event
			if err := getJSON(tx, tEvents, key, &e); err != nil {
				return err
			}
			out = append(out, personCall(e, user))
		}
		return nil
	})
	return out, err
}

// dropPersonCallsOf deletes from user's history the calls of site.
func dropPersonCallsOf(tx kv.Tx, user directory.UserID, site directory.SiteID) error {
	_, err := deleteRaw(tx, tPersonCalls, string(user)+"/", func(_ string, v []byte) (bool, error) {
		return strings.HasPrefix(string(v), string(site)+"/"), nil
	})
	return err
}
