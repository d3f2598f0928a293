package kv_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/internal/kv"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// hscans records the hashes a client's HSCANs name.
type hscans struct {
	mu     sync.Mutex
	hashes map[string]int
}

func (h *hscans) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *hscans) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); len(args) > 1 && cmd.Name() == "hscan" {
			h.mu.Lock()
			h.hashes[fmt.Sprint(args[1])]++
			h.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}
func (h *hscans) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// TestRedisScanReadsOnePart: on Redis a key "<part>/<rest>" lives in a hash
// of its part, and once MoveToParts has run (as serve runs it) a scan of
// one part reads that hash alone, not the records of every other part (a
// site's log entries, not every site's).
func TestRedisScanReadsOnePart(t *testing.T) {
	addr := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = rdb.Close() })
	seen := &hscans{hashes: make(map[string]int)}
	rdb.AddHook(seen)
	s := kv.NewRedis(rdb)
	ctx := context.Background()
	err := s.Update(ctx, func(tx kv.Tx) error {
		for i := range 1000 {
			if err := tx.Put("events", fmt.Sprintf("s2/%04d", i), []byte("v")); err != nil {
				return err
			}
		}
		if err := tx.Put("events", "plain", []byte("p")); err != nil {
			return err
		}
		return tx.Put("events", "s1/a", []byte("a"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.MoveToParts(ctx, "events"); err != nil {
		t.Fatal(err)
	}
	seen.hashes = make(map[string]int)
	var got []string
	err = s.View(ctx, func(tx kv.Tx) error {
		return tx.Scan("events", "s1/", func(k string, v []byte) error {
			got = append(got, k+"="+string(v))
			return nil
		})
	})
	if err != nil || fmt.Sprint(got) != "[s1/a=a]" {
		t.Fatalf("scan of s1/: %v, %v", got, err)
	}
	if fmt.Sprint(seen.hashes) != "map[{kv}:t:events/s1:1]" {
		t.Fatalf("a scan of one part read %v; want its own hash alone", seen.hashes)
	}
	if n, err := rdb.HLen(ctx, "{kv}:t:events").Result(); err != nil || n != 1 {
		t.Fatalf("the table's own hash holds %d keys (%v), want the key with no part alone", n, err)
	}
	n := 0
	err = s.View(ctx, func(tx kv.Tx) error {
		return tx.Scan("events", "", func(string, []byte) error { n++; return nil })
	})
	if err != nil || n != 1002 {
		t.Fatalf("a scan of the whole table saw %d keys (%v), want 1002", n, err)
	}
}

// TestRedisMoveToParts: keys with a part that a foyer of before the parts
// kept in a table's single hash are read (a key written or deleted since
// reads as written or deleted) until MoveToParts has moved them into their
// parts' hashes, where reads find them after; running it again changes
// nothing. A key another node has moved meanwhile is not moved again from
// what was read before.
func TestRedisMoveToParts(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	old := map[string]string{"s1/a": "1", "s2/b": "2", "plain": "3"}
	for i := range 1500 { // more than one HSCAN batch
		old[fmt.Sprintf("s3/%04d", i)] = "x"
	}
	for k, v := range old {
		if err := rdb.HSet(ctx, "{kv}:t:events", k, v).Err(); err != nil {
			t.Fatal(err)
		}
	}
	s := kv.NewRedis(rdb)
	// Before the move: read from the single hash; a write or a delete
	// since takes the old copy out.
	err := s.Update(ctx, func(tx kv.Tx) error {
		if v, err := tx.Get("events", "s1/a"); err != nil || string(v) != "1" {
			return fmt.Errorf("s1/a before the move: %q, %v", v, err)
		}
		if err := tx.Put("events", "s2/b", []byte("2")); err != nil { // rewritten, same value
			return err
		}
		return tx.Delete("events", "s3/0000")
	})
	if err != nil {
		t.Fatal(err)
	}
	delete(old, "s3/0000")
	var before []string
	err = s.View(ctx, func(tx kv.Tx) error {
		if _, err := tx.Get("events", "s3/0000"); !errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("a deleted key of before the move: %v", err)
		}
		return tx.Scan("events", "s", func(k string, _ []byte) error {
			before = append(before, k)
			return nil
		})
	})
	if err != nil || len(before) != len(old)-1 || before[0] != "s1/a" {
		t.Fatalf("a scan before the move: %d keys from %v (%v), want the %d with a part", len(before), before[:min(3, len(before))], err, len(old)-1)
	}
	if n, _ := rdb.HExists(ctx, "{kv}:t:events", "s2/b").Result(); n {
		t.Fatal("a key written before the move keeps its old copy in the single hash")
	}
	for range 2 {
		if err := s.MoveToParts(ctx, "events", "nosuchtable"); err != nil {
			t.Fatal(err)
		}
		got := make(map[string]string)
		err := s.View(ctx, func(tx kv.Tx) error {
			return tx.Scan("events", "", func(k string, v []byte) error {
				got[k] = string(v)
				return nil
			})
		})
		if err != nil || len(got) != len(old) || got["s1/a"] != "1" || got["plain"] != "3" || got["s3/1499"] != "x" {
			t.Fatalf("after the move the table reads %d keys (%v), want the %d written before", len(got), err, len(old))
		}
		if n, _ := rdb.HLen(ctx, "{kv}:t:events").Result(); n != 1 {
			t.Fatalf("the single hash keeps %d keys, want the one with no part", n)
		}
		err = s.View(ctx, func(tx kv.Tx) error {
			v, err := tx.Get("events", "s2/b")
			if err == nil && string(v) != "2" {
				err = fmt.Errorf("s2/b = %q", v)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Another node moved s4/z and deleted it since: nothing to move back.
	if err := s.Update(ctx, func(tx kv.Tx) error { return tx.Put("events", "s4/z", []byte("new")) }); err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, func(tx kv.Tx) error { return tx.Delete("events", "s4/z") }); err != nil {
		t.Fatal(err)
	}
	if err := kv.MoveStale(ctx, rdb, "events", "s4/z"); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.HExists(ctx, "{kv}:t:events/s4", "s4/z").Result(); n {
		t.Fatal("a key read before another node moved and deleted it was moved back")
	}
}
