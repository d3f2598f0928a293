package accounts

import (
	"context"
	"errors"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// Door stations reported offline: the site's managers are told once when a
// door station has been gone a while, and once when it is back. Any node
// may find a door station gone (the one its connection was on) and any node
// may see it come back (the one it reconnects to), so what was reported is
// kept here, shared.

// MarkDoorOffline records that door has been offline since since, and
// reports whether it was not recorded already (then its managers are told).
func (s *Store) MarkDoorOffline(ctx context.Context, door directory.DeviceID, since time.Time) (bool, error) {
	first := false
	err := s.update(ctx, func(tx kv.Tx) error {
		if _, err := get(tx, tDoorsOffline, string(door)); err == nil || !errors.Is(err, ErrNotFound) {
			return err
		}
		first = true
		return tx.Put(tDoorsOffline, string(door), []byte(since.UTC().Format(time.RFC3339Nano)))
	})
	return first && err == nil, err
}

// DoorBack forgets that door was offline, and reports since when it was,
// if it was recorded (then its managers are told it is back). Every door
// station connecting asks, so the common answer, nothing recorded, is a
// read: no write transaction (an fsync on bbolt) per connection.
func (s *Store) DoorBack(ctx context.Context, door directory.DeviceID) (since time.Time, was bool, err error) {
	err = s.view(ctx, func(tx kv.Tx) error {
		_, err := get(tx, tDoorsOffline, string(door))
		was = err == nil
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	})
	if err != nil || !was {
		return time.Time{}, false, err
	}
	was = false
	err = s.update(ctx, func(tx kv.Tx) error {
		v, err := get(tx, tDoorsOffline, string(door))
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		was = true
		since, _ = time.Parse(time.RFC3339Nano, string(v))
		return tx.Delete(tDoorsOffline, string(door))
	})
	return since, was && err == nil, err
}

// DoorsOffline returns the door stations reported offline and not back,
// with since when each has been.
func (s *Store) DoorsOffline(ctx context.Context) (map[directory.DeviceID]time.Time, error) {
	out := map[directory.DeviceID]time.Time{}
	err := s.view(ctx, func(tx kv.Tx) error {
		return tx.Scan(tDoorsOffline, "", func(k string, v []byte) error {
			out[directory.DeviceID(k)], _ = time.Parse(time.RFC3339Nano, string(v))
			return nil
		})
	})
	return out, err
}
