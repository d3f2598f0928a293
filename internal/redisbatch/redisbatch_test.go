package redisbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/internal/redistest"
)

func client(t *testing.T, addr string) (*redis.Client, *redistest.Pipelines) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialerRetries: 1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	h := redistest.CountPipelines("get", "set")
	rdb.AddHook(h)
	return rdb, h
}

// TestCallersShareRoundTrips: 2,000 callers at once go out in a few
// pipelines, and each gets its own commands' results.
func TestCallersShareRoundTrips(t *testing.T) {
	rdb, h := client(t, redistest.Start(t))
	b := New(rdb, 256, 5*time.Second)
	const n = 2000
	var wg sync.WaitGroup
	wrong := make(chan string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("k%d", i)
			var get *redis.StringCmd
			if err := b.Do(func(p redis.Pipeliner) {
				p.Set(context.Background(), key, i, 0)
				get = p.Get(context.Background(), key)
			}); err != nil {
				wrong <- err.Error()
				return
			}
			if v, err := get.Int(); err != nil || v != i {
				wrong <- fmt.Sprintf("%s: %d, %v", key, v, err)
			}
		}()
	}
	wg.Wait()
	close(wrong)
	for w := range wrong {
		t.Error(w)
	}
	if got := h.Count(); got >= n/4 || got < n/256 {
		t.Errorf("%d callers at once took %d pipelines; want them grouped, at most 256 a pipeline", n, got)
	}
}

// TestLoneCaller: one caller, one pipeline; a missing key is its command's
// redis.Nil, not the pipeline's error.
func TestLoneCaller(t *testing.T) {
	rdb, h := client(t, redistest.Start(t))
	b := New(rdb, 256, 5*time.Second)
	var get *redis.StringCmd
	if err := b.Do(func(p redis.Pipeliner) { get = p.Get(context.Background(), "missing") }); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(get.Err(), redis.Nil) {
		t.Errorf("GET of a missing key: %v, want redis.Nil", get.Err())
	}
	if got := h.Count(); got != 1 {
		t.Errorf("%d pipelines, want 1", got)
	}
}

// TestRedisAway: with Redis gone every caller gets the pipeline's error,
// within the bound, and none is left waiting.
func TestRedisAway(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb, _ := client(t, srv.Addr)
	b := New(rdb, 16, time.Second)
	srv.Stop()
	const n = 100
	errs := make(chan error, n)
	start := time.Now()
	for range n {
		go func() { errs <- b.Do(func(p redis.Pipeliner) { p.Get(context.Background(), "k") }) }()
	}
	for range n {
		if err := <-errs; err == nil {
			t.Fatal("a caller got no error with Redis gone")
		}
	}
	if d := time.Since(start); d > 20*time.Second { // 7 pipelines of at most 1 s, with room for a slow machine
		t.Errorf("%d callers took %v to fail", n, d)
	}
}

// TestSizeAtLeastOne: a batch size below one still sends each caller.
func TestSizeAtLeastOne(t *testing.T) {
	rdb, h := client(t, redistest.Start(t))
	b := New(rdb, 0, 5*time.Second)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := b.Do(func(p redis.Pipeliner) { p.Set(context.Background(), fmt.Sprint(i), i, 0) }); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := h.Count(); got != 10 {
		t.Errorf("%d pipelines for 10 callers one at a time, want 10", got)
	}
}

// TestOneAfterAnother: a caller that comes after the last pipeline finished
// sends its own at once; it does not wait for a pipeline nobody will send.
func TestOneAfterAnother(t *testing.T) {
	rdb, h := client(t, redistest.Start(t))
	b := New(rdb, 256, 5*time.Second)
	for i := range 3 {
		done := make(chan error, 1)
		go func() { done <- b.Do(func(p redis.Pipeliner) { p.Set(context.Background(), "k", i, 0) }) }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("caller %d, coming after the others finished, is still waiting", i+1)
		}
	}
	if got := h.Count(); got != 3 {
		t.Errorf("%d pipelines for 3 callers one after another, want 3", got)
	}
}

// TestStalledRedis: a Redis that holds its answers (paused, not gone)
// fails each caller at the pipeline's bound rather than holding it until
// Redis answers. The client, as foyer's are, honours its context's
// deadline, and here has no read timeout of its own, so the bound is the
// Batcher's alone.
func TestStalledRedis(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, ReadTimeout: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil { // a connection open before the stall
		t.Fatal(err)
	}
	b := New(rdb, 16, 200*time.Millisecond)
	srv.Pause(t, 30*time.Second)
	err := b.Do(func(p redis.Pipeliner) { p.Set(context.Background(), "k", "v", 0) })
	if err == nil {
		t.Fatal("a pipeline to a Redis stalled far beyond the bound succeeded: it waited for Redis to answer")
	}
}
