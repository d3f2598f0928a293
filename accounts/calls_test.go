package accounts

import (
	"context"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// TestPersonCalls: a call entry lands in the history of each person it was
// for, as it ended for them (answered by them or elsewhere, declined by
// them or elsewhere, missed), and of nobody else; newest first, paged by
// time and limit; leaving a site takes that site's calls out of the
// person's history and no other's; the site's retention purge takes them
// with the entry's personal data. On bbolt and on Redis.
func TestPersonCalls(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
		call := func(min int, site directory.SiteID, outcome string, people ...directory.UserID) Event {
			return Event{Site: site, Kind: EventCall, Time: t0.Add(time.Duration(min) * time.Minute), CallID: "c" + string(rune('0'+min)),
				Door: "d_gate", Number: "5", Outcome: outcome, People: people, Devices: []directory.DeviceID{"d_anna", "d_bram"}}
		}
		answered := call(1, "s1", "hangup", "anna", "bram")
		answered.Answered, answered.User, answered.AnsweredAfterMs, answered.DurationMs, answered.DoorOpened = "d_anna", "anna", 4200, 30000, true
		byMonitor := call(2, "s1", "hangup", "anna", "bram")
		byMonitor.Answered, byMonitor.DurationMs = "d_monitor", 9000
		declined := call(3, "s1", "declined", "anna", "bram")
		declined.Declined = []directory.UserID{"bram"}
		declinedThenTimeout := call(4, "s1", "no_answer", "anna", "bram")
		declinedThenTimeout.Declined = []directory.UserID{"anna"}
		missed := call(5, "s1", "unavailable", "anna", "bram")
		otherSite := call(6, "s2", "no_answer", "anna")
		noPeople := call(7, "s1", "no_answer") // a monitor's call ID
		if err := s.LogAll(ctx, []Event{answered, byMonitor, declined, declinedThenTimeout, missed, otherSite, noPeople}); err != nil {
			t.Fatal(err)
		}

		type row struct {
			call     string
			result   CallResult
			by       directory.DeviceID
			duration int64
		}
		history := func(user directory.UserID, before time.Time, limit int) []row {
			t.Helper()
			cs, err := s.PersonCalls(ctx, user, before, limit)
			if err != nil {
				t.Fatal(err)
			}
			var out []row
			for _, c := range cs {
				out = append(out, row{c.CallID, c.Result, c.AnsweredBy, c.DurationMs})
			}
			return out
		}
		want := func(user directory.UserID, got []row, want ...row) {
			t.Helper()
			if len(got) != len(want) {
				t.Fatalf("%s's calls %+v, want %+v", user, got, want)
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s's calls %+v, want %+v", user, got, want)
				}
			}
		}
		want("anna", history("anna", time.Time{}, 0),
			row{"c6", ResultMissed, "", 0}, row{"c5", ResultMissed, "", 0}, row{"c4", ResultDeclined, "", 0},
			row{"c3", ResultDeclinedElsewhere, "", 0}, row{"c2", ResultAnsweredElsewhere, "", 0}, row{"c1", ResultAnswered, "d_anna", 30000})
		want("bram", history("bram", time.Time{}, 0),
			row{"c5", ResultMissed, "", 0}, row{"c4", ResultMissed, "", 0}, row{"c3", ResultDeclined, "", 0},
			row{"c2", ResultAnsweredElsewhere, "", 0}, row{"c1", ResultAnsweredElsewhere, "", 0})
		want("anna", history("anna", t0.Add(5*time.Minute), 2), row{"c4", ResultDeclined, "", 0}, row{"c3", ResultDeclinedElsewhere, "", 0})
		want("carla", history("carla", time.Time{}, 0))
		cs, err := s.PersonCalls(ctx, "anna", time.Time{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if c := cs[5]; c.Site != "s1" || c.Door != "d_gate" || c.Number != "5" || !c.Time.Equal(t0.Add(time.Minute)) || c.Reason != "hangup" ||
			c.AnsweredAfterMs != 4200 || !c.DoorOpened {
			t.Fatalf("anna's answered call %+v", c)
		}

		// Anna leaves s2: its call goes from her history, s1's stay, and
		// Bram's history is untouched.
		if err := s.RemoveMembers(ctx, "s2", []directory.UserID{"anna"}); err != nil {
			t.Fatal(err)
		}
		if got := history("anna", time.Time{}, 0); len(got) != 5 || got[0].call != "c5" {
			t.Fatalf("anna's calls after leaving s2: %+v, want s1's five", got)
		}
		if got := history("bram", time.Time{}, 0); len(got) != 5 {
			t.Fatalf("bram's calls after anna left s2: %+v", got)
		}

		// s1's retention reaches past its first three calls: they go from
		// both histories, with the entries' people.
		if n, err := s.Purge(ctx, "s1", t0.Add(3*time.Minute+time.Second)); err != nil || n != 3 {
			t.Fatalf("purge: %d, %v; want 3 entries", n, err)
		}
		want("anna", history("anna", time.Time{}, 0), row{"c5", ResultMissed, "", 0}, row{"c4", ResultDeclined, "", 0})
		want("bram", history("bram", time.Time{}, 0), row{"c5", ResultMissed, "", 0}, row{"c4", ResultMissed, "", 0})
		evs, err := s.Events(ctx, "s1", EventCall, EventFilter{To: t0.Add(2 * time.Minute)})
		if err != nil || len(evs) != 1 || evs[0].People != nil || !evs[0].Purged {
			t.Fatalf("purged entry %+v, %v: want it without its people", evs, err)
		}
	})
}
