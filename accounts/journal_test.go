package accounts

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

func newBoltStore(t testing.TB) *Store { return newBoltStoreAt(t, time.Now) }

// newBoltStoreAt is a store on a fresh bbolt file telling the time by now.
func newBoltStoreAt(t testing.TB, now Clock) *Store {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "accounts.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	records, err := kv.NewBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	return New(records, now)
}

// newRedisStore is a store on a fresh redis-server.
func newRedisStore(tb testing.TB) *Store {
	tb.Helper()
	srv := redistest.StartServer(tb)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	tb.Cleanup(func() { _ = rdb.Close() })
	return New(kv.NewRedis(rdb), time.Now)
}

// onEachBackend runs test on a store on bbolt and on one on Redis.
func onEachBackend(t *testing.T, test func(t *testing.T, s *Store)) {
	for name, s := range map[string]*Store{"bolt": newBoltStore(t), "redis": newRedisStore(t)} {
		t.Run(name, func(t *testing.T) { test(t, s) })
	}
}

// TestLogAllRefusesOnlyTheBadEntry: an entry without a site or kind is
// named in the error; the others of the batch are stored.
func TestLogAllRefusesOnlyTheBadEntry(t *testing.T) {
	s := newBoltStore(t)
	ctx := context.Background()
	err := s.LogAll(ctx, []Event{
		{Site: "s1", Kind: EventCall, ID: "e_first"},
		{Site: "s1", Kind: "nonsense", ID: "e_bad"},
		{Kind: EventDoor, ID: "e_nosite"},
		{Site: "s1", Kind: EventDoor, ID: "e_last"},
	})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err %v, want ErrInvalid", err)
	}
	for _, id := range []string{"e_bad", "e_nosite"} {
		if msg := err.Error(); !strings.Contains(msg, id) {
			t.Errorf("the error %q does not name %s", msg, id)
		}
	}
	for kind, want := range map[EventKind]string{EventCall: "e_first", EventDoor: "e_last"} {
		got, err := s.Events(ctx, "s1", kind, EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].ID != want {
			t.Errorf("%s entries: %+v, want only %s", kind, got, want)
		}
	}
}

// TestJournalStoresEveryEntry: a burst larger than one batch, recorded
// while the writer runs and then while it stops, is stored whole.
func TestJournalStoresEveryEntry(t *testing.T) {
	s := newBoltStore(t)
	j := NewJournal(s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { j.Run(ctx); close(done) }()
	const n = 3*journalBatch + 17
	for i := range n {
		j.Record(Event{Site: "s1", Kind: EventCall, ID: fmt.Sprintf("e_%05d", i), Door: directory.DeviceID("d")})
	}
	stop() // what is still queued is written before Run returns
	<-done
	if j.Dropped() != 0 {
		t.Fatalf("%d entries dropped", j.Dropped())
	}
	got, err := s.Events(context.Background(), "s1", EventCall, EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range got {
		seen[e.ID] = true
	}
	if len(got) != n || len(seen) != n {
		t.Fatalf("%d entries stored (%d distinct), want %d", len(got), len(seen), n)
	}
}

// TestJournalStoresUTC: an entry recorded with a time in the server's
// local zone (a call's start, read from the local clock) is stored in UTC,
// as the API promises its times.
func TestJournalStoresUTC(t *testing.T) {
	s := newBoltStore(t)
	j := NewJournal(s, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { j.Run(ctx); close(done) }()
	at := time.Date(2026, 12, 6, 17, 30, 0, 0, time.FixedZone("IST", 5*3600+1800))
	j.Record(Event{Site: "s1", Kind: EventCall, ID: "e_local", Door: "d", Time: at})
	stop()
	<-done
	got, err := s.Events(context.Background(), "s1", EventCall, EventFilter{})
	if err != nil || len(got) != 1 {
		t.Fatalf("%d entries, %v", len(got), err)
	}
	if !got[0].Time.Equal(at) || got[0].Time.Location() != time.UTC {
		t.Fatalf("stored time %v, want %v in UTC", got[0].Time, at.UTC())
	}
}

// TestPurgeKeepsEntriesWithinRetention: the retention purge clears the
// personal data of entries older than its bound only; younger entries keep
// theirs, and every entry keeps its outcome.
func TestPurgeKeepsEntriesWithinRetention(t *testing.T) {
	s := newBoltStore(t)
	ctx := context.Background()
	now := time.Now().UTC()
	for _, e := range []Event{
		{ID: "e_old", Time: now.Add(-100 * 24 * time.Hour)},
		{ID: "e_new", Time: now.Add(-24 * time.Hour)},
	} {
		e.Site, e.Kind, e.Actor, e.User, e.Outcome = "s1", EventAccess, "gate", "u_anna", "granted"
		if err := s.Log(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Purge(ctx, "s1", now.Add(-90*24*time.Hour)); err != nil || n != 1 {
		t.Fatalf("purged %d entries (%v), want the one past retention", n, err)
	}
	got, err := s.Events(ctx, "s1", EventAccess, EventFilter{})
	if err != nil || len(got) != 2 {
		t.Fatalf("entries after the purge: %+v, %v", got, err)
	}
	if e := got[0]; e.ID != "e_new" || e.Purged || e.Actor != "gate" || e.User != "u_anna" {
		t.Errorf("entry within retention: %+v, want it whole", e)
	}
	if e := got[1]; e.ID != "e_old" || !e.Purged || e.Actor != "" || e.User != "" || e.Outcome != "granted" {
		t.Errorf("entry past retention: %+v, want its personal data cleared and its outcome kept", e)
	}
}

// TestPurgeExpiredKeepsLiveRecords: the hourly purge keeps every session,
// reset link, provisioning code and login lock that still holds, and
// removes them once they have expired.
func TestPurgeExpiredKeepsLiveRecords(t *testing.T) {
	s, clock := newClockedStore(t)
	ctx := context.Background()
	a, err := s.CreateAdmin(ctx, "purge@example.com", "a password of mine", false)
	if err != nil {
		t.Fatal(err)
	}
	// live makes a session, a reset link and a provisioning code of a.
	live := func() (sess, link, code string) {
		t.Helper()
		cur, err := s.Admin(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if sess, _, err = s.SignIn(ctx, SessionAdmin, a.ID, cur.PasswordHash); err != nil {
			t.Fatal(err)
		}
		if link, err = s.NewResetToken(ctx, ResetAdmin, a.ID); err != nil {
			t.Fatal(err)
		}
		if code, _, err = s.NewProvisioningCode(ctx, "d1", "s1"); err != nil {
			t.Fatal(err)
		}
		return sess, link, code
	}
	sess, link, code := live()
	for range throttleFree + 1 {
		_, _ = s.LoginAdmin(ctx, "purge@example.com", "a wrong guess")
	}

	if err := s.PurgeExpired(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SessionByToken(ctx, sess); err != nil {
		t.Errorf("a live session after the purge: %v", err)
	}
	var locked *ThrottledError
	if _, err := s.LoginAdmin(ctx, "purge@example.com", "a password of mine"); !errors.As(err, &locked) {
		t.Errorf("a locked login after the purge: %v, want it still locked", err)
	}
	if _, err := s.SpendProvisioningCode(ctx, code); err != nil {
		t.Errorf("a live provisioning code after the purge: %v", err)
	}
	if _, err := s.ResetAdminPassword(ctx, link, "a chosen password"); err != nil {
		t.Errorf("a live reset link after the purge: %v", err)
	}

	live()
	clock.advance(ProvisioningTTL + throttleMax + time.Minute) // past the longest of them
	if err := s.PurgeExpired(ctx); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{tSessions, tResets, tProvision, tThrottle} {
		n := 0
		err := s.kv.View(ctx, func(tx kv.Tx) error {
			return tx.Scan(table, "", func(string, []byte) error { n++; return nil })
		})
		if err != nil || n != 0 {
			t.Errorf("%s after everything expired: %d records (%v), want none", table, n, err)
		}
	}
}
