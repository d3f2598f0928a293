package directory

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestRedisJournalEncoding(t *testing.T) {
	j := redisJournal{Seq: 42, Groups: map[string][]redisWrite{
		"s:s_1": {{Op: 'S', Key: "p{s:s_1}:site", Value: `{"id":"s_1"}`}, {Op: 'X', Key: "p{s:s_1}:entries", Field: "101"}},
		"g:7":   {{Op: 'H', Key: "p{g:7}:ua:u_1", Field: "d_1", Value: "phone\x00é"}, {Op: 'D', Key: "p{g:7}:dt:d_1"}},
	}}
	b := encodeJournal(j)
	got, err := decodeJournal(b)
	if err != nil || !reflect.DeepEqual(got, j) {
		t.Fatalf("decodeJournal(encodeJournal(j)) = %+v, %v; want %+v", got, err, j)
	}
	for n := range len(b) {
		if _, err := decodeJournal(b[:n]); !errors.Is(err, errCorruptJournal) {
			t.Errorf("journal cut to %d of %d bytes: %v, want errCorruptJournal", n, len(b), err)
		}
	}
}

// crashAfterCommit runs ops up to the commit point of Apply and stops
// there, as a writer dying right after its commit point would; its lock
// is then deleted, as its lease would expire.
func crashAfterCommit(t *testing.T, r *Redis, ops ...Op) redisJournal {
	t.Helper()
	ctx := t.Context()
	l, err := r.lock(ctx)
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	l.stop()
	w := newRedisWriter(r.client, r.keys)
	if err := w.run(ctx, ops); err != nil {
		t.Fatalf("run: %v", err)
	}
	j := redisJournal{Seq: l.seq, Groups: w.writes()}
	if err := r.commit(ctx, l, j); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if err := r.client.Del(ctx, r.keys.lock()).Err(); err != nil {
		t.Fatalf("deleting the lock: %v", err)
	}
	return j
}

func TestRedisJournalReplay(t *testing.T) {
	ctx := context.Background()
	r, client := testRedis(t, "replay:")

	site := Site{ID: "s_1", Name: "Harbour View", Settings: DefaultSettings()}
	crashAfterCommit(t, r, PutSite{Site: site}, PutEntry{Entry: Entry{Site: site.ID, Number: "101", Name: "Jansen"}})
	if _, err := r.Site(ctx, site.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Site before any replay: %v, want not found (the writer died before applying)", err)
	}
	// The next writer completes the batch before its own.
	if err := r.Apply(ctx, PutEntry{Entry: Entry{Site: site.ID, Number: "102", Name: "Peeters"}}); err != nil {
		t.Fatalf("Apply after a crash: %v", err)
	}
	es, err := r.Entries(ctx, site.ID)
	if err != nil || len(es) != 2 {
		t.Fatalf("Entries after replay = %+v, %v; want 101 and 102", es, err)
	}
	if n, _ := client.Exists(ctx, r.keys.journal()).Result(); n != 0 {
		t.Error("the replayed journal was not deleted")
	}
}

// TestRedisJournalFenced replays an old batch after a newer one changed
// the same records, as a writer paused past its lease would: the applied
// counters must refuse it.
func TestRedisJournalFenced(t *testing.T) {
	ctx := context.Background()
	r, _ := testRedis(t, "fenced:")

	site := Site{ID: "s_1", Name: "Old Name", Settings: DefaultSettings()}
	old := crashAfterCommit(t, r, PutSite{Site: site})
	renamed := site
	renamed.Name = "New Name"
	if err := r.Apply(ctx, PutSite{Site: renamed}); err != nil { // replays old, then renames
		t.Fatalf("Apply: %v", err)
	}
	if err := r.applyJournal(ctx, old); err != nil { // the paused writer wakes up
		t.Fatalf("applyJournal(old): %v", err)
	}
	got, err := r.Site(ctx, site.ID)
	if err != nil || got.Name != "New Name" {
		t.Fatalf("Site after a stale re-apply = %+v, %v; want the new name", got, err)
	}
	if _, err := r.SiteByName(ctx, "", "Old Name"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the stale batch restored the old name index: %v", err)
	}
}

// TestRedisLockLost runs a writer whose lease ran out before its commit
// point (paused past redisLockTTL) while another writer took the lock: it
// must commit nothing, and its release must leave the other's lock alone,
// or two writers would check the rules against the same state at once.
func TestRedisLockLost(t *testing.T) {
	ctx := context.Background()
	r, client := testRedis(t, "lost:")

	site := Site{ID: "s_1", Name: "Harbour View", Settings: DefaultSettings()}
	l, err := r.lock(ctx)
	if err != nil {
		t.Fatalf("lock: %v", err)
	}
	l.stop()
	w := newRedisWriter(r.client, r.keys)
	if err := w.run(ctx, []Op{PutSite{Site: site}}); err != nil {
		t.Fatalf("run: %v", err)
	}
	// The lease expires; another writer takes the lock.
	if err := client.Del(ctx, r.keys.lock()).Err(); err != nil {
		t.Fatalf("deleting the lock: %v", err)
	}
	other, err := r.lock(ctx)
	if err != nil {
		t.Fatalf("lock (the other writer): %v", err)
	}
	defer other.stop()

	err = r.commit(ctx, l, redisJournal{Seq: l.seq, Groups: w.writes()})
	if !errors.Is(err, errRedisLockLost) {
		t.Fatalf("commit without the lock: %v, want errRedisLockLost", err)
	}
	if n, _ := client.Exists(ctx, r.keys.journal()).Result(); n != 0 {
		t.Error("a writer without the lock left a journal, which the next writer would apply")
	}
	if err := r.release(ctx, l, true); err != nil {
		t.Fatalf("release: %v", err)
	}
	if got, err := client.Get(ctx, r.keys.lock()).Result(); err != nil || got != other.token {
		t.Fatalf("after the late writer's release the lock holds %q (%v), want the other writer's", got, err)
	}
	if err := r.release(ctx, other, true); err != nil {
		t.Fatalf("release (the other writer): %v", err)
	}

	// The next batch has nothing to complete: the site was never written.
	if err := r.Apply(ctx, PutSite{Site: Site{ID: "s_2", Name: "Quay", Settings: DefaultSettings()}}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if _, err := r.Site(ctx, site.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Site written by a writer that had lost the lock: %v, want not found", err)
	}
}
