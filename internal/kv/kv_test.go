package kv_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"

	"github.com/foyer-intercom/foyer/internal/kv"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

func newBolt(t *testing.T) kv.Store {
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "kv.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	s, err := kv.NewBolt(db)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newRedis(t *testing.T) kv.Store {
	rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	return kv.NewRedis(rdb)
}

func newCluster(t *testing.T) kv.Store {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: redistest.StartCluster(t)})
	t.Cleanup(func() { _ = rdb.Close() })
	return kv.NewRedis(rdb)
}

func TestStores(t *testing.T) {
	for name, open := range map[string]func(*testing.T) kv.Store{
		"bolt": newBolt, "redis": newRedis, "cluster": newCluster,
	} {
		t.Run(name, func(t *testing.T) {
			t.Run("ReadWrite", func(t *testing.T) { testReadWrite(t, open(t)) })
			t.Run("Rollback", func(t *testing.T) { testRollback(t, open(t)) })
			t.Run("NilValue", func(t *testing.T) { testNilValue(t, open(t)) })
			t.Run("Cancelled", func(t *testing.T) { testCancelled(t, open(t)) })
			t.Run("Scan", func(t *testing.T) { testScan(t, open(t)) })
			t.Run("ValuesOutliveTx", func(t *testing.T) { testValuesOutliveTx(t, open(t)) })
			t.Run("ScanLargeTable", func(t *testing.T) { testScanLargeTable(t, open(t)) })
			t.Run("Serialised", func(t *testing.T) { testSerialised(t, open(t)) })
			t.Run("ScanSerialised", func(t *testing.T) { testScanSerialised(t, open(t)) })
		})
	}
}

func get(t *testing.T, s kv.Store, table, key string) (string, error) {
	t.Helper()
	var v []byte
	err := s.View(context.Background(), func(tx kv.Tx) (err error) {
		v, err = tx.Get(table, key)
		return err
	})
	return string(v), err
}

func testReadWrite(t *testing.T, s kv.Store) {
	ctx := context.Background()
	if _, err := get(t, s, "a", "k"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("get from an empty store: %v, want ErrNotFound", err)
	}
	err := s.Update(ctx, func(tx kv.Tx) error {
		if err := tx.Put("a", "k", []byte("v1")); err != nil {
			return err
		}
		v, err := tx.Get("a", "k")
		if err != nil || string(v) != "v1" {
			return fmt.Errorf("read own write: %q, %v", v, err)
		}
		if err := tx.Put("a", "gone", []byte("x")); err != nil {
			return err
		}
		if err := tx.Delete("a", "gone"); err != nil {
			return err
		}
		if _, err := tx.Get("a", "gone"); !errors.Is(err, kv.ErrNotFound) {
			return fmt.Errorf("read own delete: %v", err)
		}
		return tx.Put("b", "k", []byte{})
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := get(t, s, "a", "k"); err != nil || v != "v1" {
		t.Fatalf("after commit: %q, %v", v, err)
	}
	if _, err := get(t, s, "a", "gone"); !errors.Is(err, kv.ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}
	if v, err := get(t, s, "b", "k"); err != nil || v != "" {
		t.Fatalf("empty value: %q, %v", v, err)
	}
	if err := s.View(ctx, func(tx kv.Tx) error { return tx.Put("a", "k", nil) }); err == nil {
		t.Error("a write in View succeeded")
	}
}

func testRollback(t *testing.T, s kv.Store) {
	boom := errors.New("boom")
	err := s.Update(context.Background(), func(tx kv.Tx) error {
		_ = tx.Put("a", "k1", []byte("1"))
		_ = tx.Put("a", "k2", []byte("2"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update: %v, want fn's error", err)
	}
	for _, k := range []string{"k1", "k2"} {
		if _, err := get(t, s, "a", k); !errors.Is(err, kv.ErrNotFound) {
			t.Errorf("%s after a failed Update: %v, want nothing written", k, err)
		}
	}
}

// testNilValue: Put with a nil value stores an empty one, as Put of
// []byte{} does; it does not delete the key.
func testNilValue(t *testing.T, s kv.Store) {
	err := s.Update(context.Background(), func(tx kv.Tx) error {
		if err := tx.Put("a", "k", []byte("v")); err != nil {
			return err
		}
		return tx.Put("a", "k", nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := get(t, s, "a", "k"); err != nil || v != "" {
		t.Fatalf("after Put of nil: %q, %v; want an empty value", v, err)
	}
}

// testCancelled: a transaction whose context is already done writes
// nothing and says why.
func testCancelled(t *testing.T, s kv.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Update(ctx, func(tx kv.Tx) error { return tx.Put("a", "k", []byte("v")) })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Update with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := get(t, s, "a", "k"); !errors.Is(err, kv.ErrNotFound) {
		t.Errorf("after an Update with a cancelled context: %v, want nothing written", err)
	}
	err = s.View(ctx, func(tx kv.Tx) error {
		_, err := tx.Get("a", "k")
		return err
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("View with a cancelled context: %v, want context.Canceled", err)
	}
}

func testScan(t *testing.T, s kv.Store) {
	ctx := context.Background()
	err := s.Update(ctx, func(tx kv.Tx) error {
		for _, k := range []string{"s1/b", "s1/a", "s1*/x", "s1?/y", "s2/a", "s1/c"} {
			if err := tx.Put("t", k, []byte("v"+k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = s.Update(ctx, func(tx kv.Tx) error {
		_ = tx.Delete("t", "s1/c")
		_ = tx.Put("t", "s1/0", []byte("v"))
		_ = tx.Put("t", "s2/b", []byte("v")) // another prefix's own write
		return tx.Scan("t", "s1/", func(k string, v []byte) error {
			got = append(got, k+"="+string(v))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "[s1/0=v s1/a=vs1/a s1/b=vs1/b]"
	if fmt.Sprint(got) != want {
		t.Fatalf("scan: %v, want %s (ordered, prefix only, own writes merged)", got, want)
	}
	// A prefix is literal: HSCAN's pattern characters in it match only
	// themselves.
	for prefix, want := range map[string]string{"s1*/": "[s1*/x]", "s1?/": "[s1?/y]"} {
		got = nil
		err := s.View(ctx, func(tx kv.Tx) error {
			return tx.Scan("t", prefix, func(k string, _ []byte) error {
				got = append(got, k)
				return nil
			})
		})
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("scan of %q: %v, %v; want %s", prefix, got, err, want)
		}
	}
	stop := errors.New("stop")
	n := 0
	err = s.View(ctx, func(tx kv.Tx) error {
		return tx.Scan("t", "", func(string, []byte) error { n++; return stop })
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("scan stopped by fn: %v after %d calls", err, n)
	}
}

// testValuesOutliveTx: the values Get and Scan return stay as they were
// read once the transaction has ended, whatever later commits write (a
// push token read in a View is used after it).
func testValuesOutliveTx(t *testing.T, s kv.Store) {
	ctx := context.Background()
	value := func(c byte) []byte { return bytes.Repeat([]byte{c}, 512) }
	err := s.Update(ctx, func(tx kv.Tx) error {
		for i := range 16 { // a table too large to be kept inline in its parent
			if err := tx.Put("a", fmt.Sprintf("k%02d", i), value('0')); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got, scanned []byte
	err = s.View(ctx, func(tx kv.Tx) (err error) {
		if got, err = tx.Get("a", "k00"); err != nil {
			return err
		}
		return tx.Scan("a", "k01", func(_ string, v []byte) error { scanned = v; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 { // rewrites, and grows the store, many times over
		err := s.Update(ctx, func(tx kv.Tx) error {
			for k := range 16 {
				if err := tx.Put("a", fmt.Sprintf("k%02d", k), value(byte('a'+i%26))); err != nil {
					return err
				}
			}
			return tx.Put("filler", strconv.Itoa(i), value('f'))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got, value('0')) || !bytes.Equal(scanned, value('0')) {
		t.Fatalf("values read before 200 commits changed after their transaction:\nget  %.40q\nscan %.40q", got, scanned)
	}
}

// testScanLargeTable: a scan returns every record of a table larger than
// one HSCAN batch (512), as all sessions are scanned to end a user's.
func testScanLargeTable(t *testing.T, s kv.Store) {
	const n = 2000
	ctx := context.Background()
	err := s.Update(ctx, func(tx kv.Tx) error {
		for i := range n {
			if err := tx.Put("big", fmt.Sprintf("k%05d", i), []byte("v")); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = s.View(ctx, func(tx kv.Tx) error {
		return tx.Scan("big", "k", func(k string, _ []byte) error {
			got = append(got, k)
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("scan of a table of %d records: %d", n, len(got))
	}
	for i, k := range got {
		if want := fmt.Sprintf("k%05d", i); k != want {
			t.Fatalf("record %d: %s, want %s", i, k, want)
		}
	}
}

// testSerialised runs read-modify-write increments from many goroutines: no
// increment may be lost.
func testSerialised(t *testing.T, s kv.Store) {
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				err := s.Update(context.Background(), func(tx kv.Tx) error {
					v, err := tx.Get("c", "n")
					if err != nil && !errors.Is(err, kv.ErrNotFound) {
						return err
					}
					n, _ := strconv.Atoi(string(v))
					return tx.Put("c", "n", []byte(strconv.Itoa(n+1)))
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if v, err := get(t, s, "c", "n"); err != nil || v != strconv.Itoa(workers*each) {
		t.Fatalf("counter: %q, %v; want %d", v, err, workers*each)
	}
}

// testScanSerialised has many goroutines each take the next free number by
// scanning a table and writing the number it found free, as a unique access
// code is chosen: a scan is a read, so no two may take the same number.
func testScanSerialised(t *testing.T, s kv.Store) {
	const workers, each = 8, 10
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				err := s.Update(context.Background(), func(tx kv.Tx) error {
					n := 0
					if err := tx.Scan("q", "", func(string, []byte) error { n++; return nil }); err != nil {
						return err
					}
					return tx.Put("q", fmt.Sprintf("%04d", n), []byte("taken"))
				})
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	n := 0
	err := s.View(context.Background(), func(tx kv.Tx) error {
		return tx.Scan("q", "", func(string, []byte) error { n++; return nil })
	})
	if err != nil || n != workers*each {
		t.Fatalf("%d numbers taken (%v) by %d updates; want each its own", n, err, workers*each)
	}
}
