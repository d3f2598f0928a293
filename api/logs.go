package api

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/jsonarray"
	"github.com/foyer-intercom/foyer/signaling"
)

// listEvents returns one of a site's logs (call, door, access, audit),
// newest first, filtered by user, device and date range (from/to as
// RFC 3339 or YYYY-MM-DD, to exclusive), as JSON or with format=csv.
func (a *API) listEvents(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleViewer)
	if err != nil {
		return err
	}
	kind := accounts.EventKind(r.PathValue("kind"))
	if !kind.Valid() {
		return errNotFound("no log %q (call, door, access or audit)", kind)
	}
	q := r.URL.Query()
	f := accounts.EventFilter{User: directory.UserID(q.Get("user")), Device: directory.DeviceID(q.Get("device"))}
	if f.From, err = parseDay(q.Get("from")); err != nil {
		return errBadRequest("from: %s", err.Error())
	}
	if f.To, err = parseDay(q.Get("to")); err != nil {
		return errBadRequest("to: %s", err.Error())
	}
	if f.Limit, err = queryLimit(q, 0, 0); err != nil {
		return err
	}
	evs, err := a.acc.Events(r.Context(), s.ID, kind, f)
	if err != nil {
		return err
	}
	if q.Get("format") == "csv" {
		return writeEventsCSV(w, evs)
	}
	return ok(w, map[string]any{"events": jsonarray.Of(evs)})
}

// queryLimit reads a request's limit: def when it gives none, else a
// number from 1 to max (no bound when max is 0).
func queryLimit(q url.Values, def, max int) (int, error) {
	l := q.Get("limit")
	if l == "" {
		return def, nil
	}
	n, err := strconv.Atoi(l)
	if err != nil || n < 1 || max > 0 && n > max {
		if max == 0 {
			return 0, errBadRequest("limit: a positive number")
		}
		return 0, errBadRequest("limit: a number from 1 to %d", max)
	}
	return n, nil
}

func parseDay(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, v)
}

// writeEventsCSV answers with evs as a CSV download (format=csv), a row
// per event (api.md, "Logs and retention").
func writeEventsCSV(w http.ResponseWriter, evs []accounts.Event) error {
	header := []string{"time", "kind", "outcome", "actor", "user", "door", "call_id", "number", "devices", "answered", "answered_after_ms", "duration_ms", "door_opened", "details"}
	return writeCSV(w, "log.csv", header, len(evs), func(i int) []string {
		e := evs[i]
		devs := make([]string, len(e.Devices))
		for j, d := range e.Devices {
			devs[j] = string(d)
		}
		return []string{e.Time.UTC().Format(time.RFC3339Nano), string(e.Kind), e.Outcome, e.Actor, string(e.User), string(e.Door), e.CallID, string(e.Number),
			strings.Join(devs, ";"), string(e.Answered), strconv.FormatInt(e.AnsweredAfterMs, 10), strconv.FormatInt(e.DurationMs, 10), strconv.FormatBool(e.DoorOpened), e.Details}
	})
}

// liveCalls lists the site's calls in progress, on every node (each call
// lives on the node holding its door station); the nodes that did not
// answer in time are named.
func (a *API) liveCalls(w http.ResponseWriter, r *http.Request, p *principal) error {
	s, _, err := a.need(r, p, accounts.RoleViewer)
	if err != nil {
		return err
	}
	live := signaling.LiveCalls{Calls: []signaling.LiveCall{}}
	if a.cfg.LiveCalls != nil {
		live = a.cfg.LiveCalls(r.Context(), s.ID)
	}
	return ok(w, live)
}
