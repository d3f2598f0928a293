package accounts

import (
	"context"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// TestDoorOfflineOnce: a door station gone is recorded since it went (its
// last close seen, else the first sweep that found it gone);
// it is marked offline once, only while still gone since then (a second
// node finding it gone too tells nobody again, and one that connected
// meanwhile is not marked); connected again, it is told back once with
// the time it went; a deleted one is forgotten.
func TestDoorOfflineOnce(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		went := time.Date(2026, 12, 7, 21, 30, 0, 0, time.UTC)
		seenIs := func(want map[directory.DeviceID]time.Time) {
			t.Helper()
			seen, err := s.DoorsSeen(ctx)
			if err != nil || len(seen) != len(want) {
				t.Fatalf("the doors seen: %v, %v; want %v", seen, err, want)
			}
			for id, at := range want {
				if got, ok := seen[id]; !ok || !got.Equal(at) {
					t.Fatalf("the doors seen: %v; want %v", seen, want)
				}
			}
		}

		if first, err := s.MarkDoorOffline(ctx, "d_gate", went); err != nil || first {
			t.Fatalf("marking offline a door never seen: %v, %v; want not marked", first, err)
		}
		// Gone since a sweep found it, then since a close its node saw: a
		// close moves the time later (it was connected until then), never
		// earlier, and a later sweep leaves it.
		for _, step := range []struct {
			closed bool
			at     time.Time
		}{{false, went.Add(-time.Minute)}, {true, went}, {true, went.Add(-2 * time.Minute)}, {false, went.Add(time.Minute)}} {
			record := s.DoorGone
			if step.closed {
				record = s.DoorClosed
			}
			if err := record(ctx, "d_gate", step.at); err != nil {
				t.Fatal(err)
			}
		}
		if _, _, err := s.DoorConnected(ctx, "d_hall"); err != nil {
			t.Fatal(err)
		}
		seenIs(map[directory.DeviceID]time.Time{"d_gate": went, "d_hall": {}})

		if first, err := s.MarkDoorOffline(ctx, "d_gate", went.Add(time.Minute)); err != nil || first {
			t.Fatalf("marking offline since a time it was not gone since: %v, %v; want not marked", first, err)
		}
		for i, want := range []bool{true, false} {
			if first, err := s.MarkDoorOffline(ctx, "d_gate", went); err != nil || first != want {
				t.Fatalf("marking offline, time %d: %v, %v; want %v", i+1, first, err, want)
			}
		}
		if doors, err := s.DoorsOffline(ctx); err != nil || len(doors) != 1 || !doors["d_gate"].Equal(went) {
			t.Fatalf("the doors offline: %v, %v; want d_gate since %v", doors, err, went)
		}
		if _, told, err := s.DoorConnected(ctx, "d_hall"); err != nil || told {
			t.Fatalf("another door connected: %v, %v; want nothing to tell", told, err)
		}
		since, told, err := s.DoorConnected(ctx, "d_gate")
		if err != nil || !told || !since.Equal(went) {
			t.Fatalf("back: since %v, %v, %v; want since %v", since, told, err, went)
		}
		if _, told, err := s.DoorConnected(ctx, "d_gate"); err != nil || told {
			t.Fatalf("back again: %v, %v; want nothing to tell", told, err)
		}
		if doors, err := s.DoorsOffline(ctx); err != nil || len(doors) != 0 {
			t.Fatalf("the doors offline once back: %v, %v; want none", doors, err)
		}
		seenIs(map[directory.DeviceID]time.Time{"d_gate": {}, "d_hall": {}})
		if first, err := s.MarkDoorOffline(ctx, "d_gate", went); err != nil || first {
			t.Fatalf("marking offline a door connected again: %v, %v; want not marked", first, err)
		}

		// Gone again, reported, and the report reaching nobody: unmarked.
		again := went.Add(time.Hour)
		if err := s.DoorGone(ctx, "d_gate", again); err != nil {
			t.Fatal(err)
		}
		if first, err := s.MarkDoorOffline(ctx, "d_gate", again); err != nil || !first {
			t.Fatalf("offline again after coming back: %v, %v; want told again", first, err)
		}
		if err := s.UnmarkDoorOffline(ctx, "d_gate"); err != nil {
			t.Fatal(err)
		}
		if first, err := s.MarkDoorOffline(ctx, "d_gate", again); err != nil || !first {
			t.Fatalf("offline after the report reached nobody: %v, %v; want told again", first, err)
		}
		if err := s.ForgetDoor(ctx, "d_gate"); err != nil {
			t.Fatal(err)
		}
		seenIs(map[directory.DeviceID]time.Time{"d_hall": {}})
		if doors, err := s.DoorsOffline(ctx); err != nil || len(doors) != 0 {
			t.Fatalf("the doors offline once the gate is forgotten: %v, %v; want none", doors, err)
		}
	})
}
