package accounts

import (
	"context"
	"errors"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// Door stations offline. Every door station that has connected is kept
// here, shared by the nodes, as connected or gone since a time: the nodes'
// sweeps record gone one connected nowhere (since its connection closed,
// when the node it was on saw that, else since the sweep) and report one
// gone long enough, and the node it connects to records it connected
// again. What was reported to its managers is kept too, so that an outage
// is told once and its end by whichever node the door station comes back
// to.

// doorConnected is a door station's record in tDoorsSeen while it is
// connected (as last known); a gone one's is the time it went (doorStamp), as
// is a reported one's in tDoorsOffline.
const doorConnected = "connected"

func doorStamp(t time.Time) []byte { return []byte(t.UTC().Format(time.RFC3339Nano)) }

// doorTime reads a record: the time in it, the zero time for doorConnected.
func doorTime(v []byte) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, string(v))
	return t
}

// doorRecord reads door's record in table: nil when it has none.
func doorRecord(tx kv.Tx, table string, door directory.DeviceID) ([]byte, error) {
	v, err := get(tx, table, string(door))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	return v, err
}

// DoorConnected records that door is connected, and reports since when it
// had been offline if that was reported to its managers (then they are
// told it is back). Every door station connecting calls it, so the common
// case, a door known connected and not reported, is a read: no write
// transaction (an fsync on bbolt) per connection.
func (s *Store) DoorConnected(ctx context.Context, door directory.DeviceID) (went time.Time, told bool, err error) {
	var seen, reported []byte
	err = s.view(ctx, func(tx kv.Tx) error {
		var err error
		if seen, err = doorRecord(tx, tDoorsSeen, door); err == nil {
			reported, err = doorRecord(tx, tDoorsOffline, door)
		}
		return err
	})
	if err != nil || string(seen) == doorConnected && reported == nil {
		return time.Time{}, false, err
	}
	err = s.update(ctx, func(tx kv.Tx) error {
		if reported, err = doorRecord(tx, tDoorsOffline, door); err != nil {
			return err
		}
		if err := tx.Put(tDoorsSeen, string(door), []byte(doorConnected)); err != nil {
			return err
		}
		return tx.Delete(tDoorsOffline, string(door))
	})
	if err != nil || reported == nil {
		return time.Time{}, false, err
	}
	return doorTime(reported), true, nil
}

// DoorGone records that door has been connected to no node since at (a
// sweep found it so), unless it is recorded gone already.
func (s *Store) DoorGone(ctx context.Context, door directory.DeviceID, at time.Time) error {
	return s.doorGone(ctx, door, at, false)
}

// DoorClosed records that door's connection to a node closed at at, seen
// by that node: it has been gone since then, unless it is recorded gone
// since later (a later close). A close is a truer time than a sweep's, and
// a later close than an earlier one (it was connected until then).
func (s *Store) DoorClosed(ctx context.Context, door directory.DeviceID, at time.Time) error {
	return s.doorGone(ctx, door, at, true)
}

func (s *Store) doorGone(ctx context.Context, door directory.DeviceID, at time.Time, closed bool) error {
	return s.update(ctx, func(tx kv.Tx) error {
		seen, err := doorRecord(tx, tDoorsSeen, door)
		if err != nil {
			return err
		}
		if seen != nil && string(seen) != doorConnected && (!closed || !at.After(doorTime(seen))) {
			return nil
		}
		return tx.Put(tDoorsSeen, string(door), doorStamp(at))
	})
}

// DoorsSeen returns every door station that has connected: the zero time
// for one connected when last known, else since when it has been gone.
func (s *Store) DoorsSeen(ctx context.Context) (map[directory.DeviceID]time.Time, error) {
	return s.doorTimes(ctx, tDoorsSeen)
}

// MarkDoorOffline records that door, gone since went, has been reported
// offline, and reports whether it was not already (then its managers are
// told). It is not marked, and false is returned, when door is no longer
// recorded gone since then: it connected again meanwhile.
func (s *Store) MarkDoorOffline(ctx context.Context, door directory.DeviceID, went time.Time) (bool, error) {
	first := false
	err := s.update(ctx, func(tx kv.Tx) error {
		seen, err := doorRecord(tx, tDoorsSeen, door)
		if err != nil || string(seen) != string(doorStamp(went)) {
			return err
		}
		reported, err := doorRecord(tx, tDoorsOffline, door)
		if err != nil || reported != nil {
			return err
		}
		first = true
		return tx.Put(tDoorsOffline, string(door), seen)
	})
	return first && err == nil, err
}

// UnmarkDoorOffline forgets that door was reported offline: the report
// reached nobody, and the next sweep tries again.
func (s *Store) UnmarkDoorOffline(ctx context.Context, door directory.DeviceID) error {
	return s.update(ctx, func(tx kv.Tx) error { return tx.Delete(tDoorsOffline, string(door)) })
}

// ForgetDoor forgets door station door altogether: it was deleted.
func (s *Store) ForgetDoor(ctx context.Context, door directory.DeviceID) error {
	return s.update(ctx, func(tx kv.Tx) error {
		if err := tx.Delete(tDoorsSeen, string(door)); err != nil {
			return err
		}
		return tx.Delete(tDoorsOffline, string(door))
	})
}

// DoorsOffline returns the door stations reported offline and not back,
// with since when each has been.
func (s *Store) DoorsOffline(ctx context.Context) (map[directory.DeviceID]time.Time, error) {
	return s.doorTimes(ctx, tDoorsOffline)
}

// doorTimes reads every door station's record in table.
func (s *Store) doorTimes(ctx context.Context, table string) (map[directory.DeviceID]time.Time, error) {
	out := map[directory.DeviceID]time.Time{}
	err := s.view(ctx, func(tx kv.Tx) error {
		return tx.Scan(table, "", func(k string, v []byte) error {
			out[directory.DeviceID(k)] = doorTime(v)
			return nil
		})
	})
	return out, err
}
