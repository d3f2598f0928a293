package accounts

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// BenchmarkSiteLogOnRedis: one site's newest 100 call log entries (the
// portal's Logs tab), and its retention purge, on a Redis holding 500,000
// entries of 50 sites (10,000 each).
func BenchmarkSiteLogOnRedis(b *testing.B) {
	s := newRedisStore(b)
	ctx := context.Background()
	const sites, per = 50, 10000
	base := time.Now().Add(-24 * time.Hour)
	for first := 0; first < sites*per; first += 1000 {
		es := make([]Event, 0, 1000)
		for i := first; i < first+1000; i++ {
			es = append(es, Event{Site: directory.SiteID(fmt.Sprintf("s_%02d", i%sites)), Kind: EventCall, Time: base.Add(time.Duration(i) * time.Millisecond),
				Devices: []directory.DeviceID{"d_aaaaaaaaaaaaaaaa", "d_bbbbbbbbbbbbbbbb"}, Answered: "d_aaaaaaaaaaaaaaaa", Outcome: "answered", Number: "101"})
		}
		if err := s.LogAll(ctx, es); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("query", func(b *testing.B) {
		for b.Loop() {
			if evs, err := s.Events(ctx, "s_07", EventCall, EventFilter{Limit: 100}); err != nil || len(evs) != 100 {
				b.Fatalf("%d entries, %v", len(evs), err)
			}
		}
	})
	b.Run("purge", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Purge(ctx, "s_07", base.Add(-time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLogCalls: the journal's write of a storm's call log entries, a
// batch of 256 in one transaction on bbolt, each call for 0, 2 or 6
// people (each person's history gets a record of it). With ids=1 every
// call is for the same people, so their records go to the same few pages;
// with ids=2715 each call is for the people of one of 2,715 call IDs of six
// (the load's building of 19,005 devices), so its records land all over
// the histories, as in a storm. 40 batches are written first, so that the
// histories are not empty. ns/op is a batch's.
func BenchmarkLogCalls(b *testing.B) {
	for _, ids := range []int{1, 2715} {
		for _, people := range []int{0, 2, 6} {
			b.Run(fmt.Sprintf("ids=%d/people=%d", ids, people), func(b *testing.B) {
				s := newBoltStore(b)
				ctx := context.Background()
				who := make([][]directory.UserID, ids)
				for i := range who {
					for j := range people {
						who[i] = append(who[i], directory.UserID(fmt.Sprintf("u_person%010d", i*6+j)))
					}
				}
				batch := make([]Event, 256)
				base := time.Now()
				n := 0
				logBatch := func() {
					for j := range batch {
						n++
						batch[j] = Event{Site: directory.SiteID(fmt.Sprintf("s_%02d", n%20)), Kind: EventCall, Time: base.Add(time.Duration(n) * time.Millisecond),
							Door: "d_gate", Number: "101", Outcome: "hangup", People: who[n*7919%ids], Answered: "d_aaaaaaaaaaaaaaaa"}
					}
					if err := s.LogAll(ctx, batch); err != nil {
						b.Fatal(err)
					}
				}
				for range 40 {
					logBatch()
				}
				for b.Loop() {
					logBatch()
				}
			})
		}
	}
}
