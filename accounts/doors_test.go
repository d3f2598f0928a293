package accounts

import (
	"context"
	"testing"
	"time"
)

// TestDoorOfflineOnce: a door station is marked offline once (a second
// node finding it gone too tells nobody again); back, it is forgotten with
// the time it went, and a second "back" finds nothing to tell.
func TestDoorOfflineOnce(t *testing.T) {
	onEachBackend(t, func(t *testing.T, s *Store) {
		ctx := context.Background()
		went := time.Date(2026, 12, 7, 21, 30, 0, 0, time.UTC)
		for i, want := range []bool{true, false} {
			first, err := s.MarkDoorOffline(ctx, "d_gate", went.Add(time.Duration(i)*time.Minute))
			if err != nil || first != want {
				t.Fatalf("marking offline, time %d: %v, %v; want %v", i+1, first, err, want)
			}
		}
		if doors, err := s.DoorsOffline(ctx); err != nil || len(doors) != 1 || !doors["d_gate"].Equal(went) {
			t.Fatalf("the doors offline: %v, %v; want d_gate since %v", doors, err, went)
		}
		if _, was, err := s.DoorBack(ctx, "d_other"); err != nil || was {
			t.Fatalf("another door back: %v, %v; want nothing to tell", was, err)
		}
		since, was, err := s.DoorBack(ctx, "d_gate")
		if err != nil || !was || !since.Equal(went) {
			t.Fatalf("back: since %v, %v, %v; want since %v", since, was, err, went)
		}
		if _, was, err := s.DoorBack(ctx, "d_gate"); err != nil || was {
			t.Fatalf("back again: %v, %v; want nothing to tell", was, err)
		}
		if doors, err := s.DoorsOffline(ctx); err != nil || len(doors) != 0 {
			t.Fatalf("the doors offline once back: %v, %v; want none", doors, err)
		}
		if first, err := s.MarkDoorOffline(ctx, "d_gate", went); err != nil || !first {
			t.Fatalf("offline again after coming back: %v, %v; want told again", first, err)
		}
	})
}
