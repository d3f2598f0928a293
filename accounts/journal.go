package accounts

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// journalQueue is how many log entries may wait to be written: minutes of
// a call storm, so that a slow store delays the log, never a call.
const journalQueue = 8192

// maintainEvery is how often expired records and old personal data are purged.
const maintainEvery = time.Hour

// Journal writes log entries from the call path: Record never blocks (it
// is called under a call's lock); a writer goroutine stores them.
type Journal struct {
	// Immutable after construction.
	store *Store
	log   *slog.Logger
	q     chan Event

	dropped atomic.Int64
}

// NewJournal returns a journal writing to s; run it with Run.
func NewJournal(s *Store, log *slog.Logger) *Journal {
	return &Journal{store: s, log: log, q: make(chan Event, journalQueue)}
}

// Record queues an entry; when the queue is full the entry is dropped and
// counted (Dropped), and the call goes on.
func (j *Journal) Record(e Event) {
	if e.Time.IsZero() {
		e.Time = j.store.now().UTC()
	}
	select {
	case j.q <- e:
	default:
		if j.dropped.Add(1) == 1 {
			j.log.Error("log queue full: dropping entries until the store keeps up")
		}
	}
}

// Dropped is how many entries were dropped.
func (j *Journal) Dropped() int64 { return j.dropped.Load() }

// journalBatch is the most entries one transaction writes, and
// journalLinger how long the first entry of a batch waits for others: in a
// storm entries are stored a batch at a time, one disk sync each, instead of
// one sync per entry. A crash can lose what waits (as it can lose the
// queue); the call itself is never delayed.
const (
	journalBatch  = 256
	journalLinger = 20 * time.Millisecond
)

// Run writes queued entries until ctx ends, then writes what is left. Each
// write takes the entries queued within journalLinger of the first (up to
// journalBatch) into one transaction.
func (j *Journal) Run(ctx context.Context) {
	batch := make([]Event, 0, journalBatch)
	write := func(first Event, wait bool) {
		batch = append(batch[:0], first)
		var until <-chan time.Time // nil: take only what is queued already
		if wait {
			t := time.NewTimer(journalLinger)
			defer t.Stop()
			until = t.C
		}
		for len(batch) < journalBatch {
			select {
			case e := <-j.q:
				batch = append(batch, e)
				continue
			default:
			}
			if until == nil {
				break
			}
			select {
			case e := <-j.q:
				batch = append(batch, e)
			case <-until:
				until = nil
			case <-ctx.Done():
				until = nil
			}
		}
		wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := j.store.LogAll(wctx, batch); err != nil {
			j.log.Error("log write failed", "entries", len(batch), "first_site", first.Site, "err", err)
		}
	}
	for {
		select {
		case e := <-j.q:
			write(e, true)
		case <-ctx.Done():
			for {
				select {
				case e := <-j.q:
					write(e, false)
				default:
					return
				}
			}
		}
	}
}

// Maintain purges, every maintainEvery until ctx ends, expired sessions
// and codes, and the personal data of log entries older than each site's
// retention; its first pass indexes an earlier version's sessions.
func (s *Store) Maintain(ctx context.Context, dir directory.Store, log *slog.Logger) {
	t := time.NewTicker(maintainEvery)
	defer t.Stop()
	for {
		if err := s.MaintainOnce(ctx, dir); err != nil && ctx.Err() == nil {
			log.Error("purging old records failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// MaintainOnce is one pass of Maintain.
func (s *Store) MaintainOnce(ctx context.Context, dir directory.Store) error {
	if err := s.IndexSessions(ctx); err != nil {
		return err
	}
	if err := s.PurgeExpired(ctx); err != nil {
		return err
	}
	sites, err := dir.Sites(ctx)
	if err != nil {
		return err
	}
	for _, site := range sites {
		if _, err := s.Purge(ctx, site.ID, s.now().Add(-site.Settings.LogRetention)); err != nil {
			return err
		}
	}
	return nil
}
