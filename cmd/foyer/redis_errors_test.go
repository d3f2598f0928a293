package main

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// TestStoreRedisErrorsCounted: the stores' Redis commands that Redis fails
// are counted (op "store"), and their answers are not: a missing record,
// the commit scripts loaded on first use (NOSCRIPT, then EVAL), writes
// and reads that succeed.
func TestStoreRedisErrorsCounted(t *testing.T) {
	srv := redistest.StartServer(t)
	cfg := defaultConfig()
	cfg.Redis.URL = "redis://" + srv.Addr
	b, err := openBackend(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	failed := prometheus.NewCounter(prometheus.CounterOpts{Name: "store_errors"})
	b.storeErrs.countInto(failed)
	ctx := context.Background()

	site := directory.Site{ID: "s_errs", Name: "Errors", Settings: directory.DefaultSettings()}
	if err := b.store.Apply(ctx, directory.PutSite{Site: site}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Site(ctx, site.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Device(ctx, "d_missing"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("a missing device: %v, want not found", err)
	}
	if n := testutil.ToFloat64(failed); n != 0 {
		t.Fatalf("%v store errors counted for answers, want 0", n)
	}

	srv.Stop()
	if _, err := b.store.Site(ctx, site.ID); err == nil {
		t.Fatal("a read with Redis stopped succeeded")
	}
	if n := testutil.ToFloat64(failed); n < 1 {
		t.Fatalf("%v store errors counted with Redis stopped, want at least 1", n)
	}
}

// TestRedisFailed tells Redis failing from its answers.
func TestRedisFailed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{redis.Nil, false},
		{redis.TxFailedErr, false},
		{context.Canceled, false},
		{context.DeadlineExceeded, true},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), true},
	} {
		if got := redisFailed(tc.err); got != tc.want {
			t.Errorf("redisFailed(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
