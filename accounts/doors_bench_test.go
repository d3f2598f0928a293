package accounts

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// BenchmarkDoorSweepReads: what each node's door sweep reads each fifth of
// signaling.door_offline_after (every door station that has connected, and
// those reported offline), with 10,000 door stations of which 10 are
// reported offline, beside the read each door station's connection makes
// (DoorConnected for one known connected). On bbolt and on Redis.
func BenchmarkDoorSweepReads(b *testing.B) {
	const doors, offline = 10000, 10
	for _, backend := range []struct {
		name string
		s    func(b *testing.B) *Store
	}{{"bolt", func(b *testing.B) *Store { return newBoltStoreAt(b, time.Now) }}, {"redis", func(b *testing.B) *Store { return newRedisStore(b) }}} {
		s := backend.s(b)
		ctx := context.Background()
		went := doorStamp(time.Now())
		err := s.update(ctx, func(tx kv.Tx) error {
			for i := range doors {
				id := fmt.Sprintf("d_door%06d", i)
				state := []byte(doorConnected)
				if i < offline {
					state = went
					if err := tx.Put(tDoorsOffline, id, state); err != nil {
						return err
					}
				}
				if err := tx.Put(tDoorsSeen, id, state); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(backend.name+"/sweep", func(b *testing.B) {
			for b.Loop() {
				seen, err := s.DoorsSeen(ctx)
				if err != nil || len(seen) != doors {
					b.Fatalf("%d doors seen, %v", len(seen), err)
				}
				if told, err := s.DoorsOffline(ctx); err != nil || len(told) != offline {
					b.Fatalf("%d doors offline, %v", len(told), err)
				}
			}
		})
		b.Run(backend.name+"/connect", func(b *testing.B) {
			for b.Loop() {
				if _, told, err := s.DoorConnected(ctx, directory.DeviceID(fmt.Sprintf("d_door%06d", doors-1))); err != nil || told {
					b.Fatal(told, err)
				}
			}
		})
	}
}
