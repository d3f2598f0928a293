package main

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// TestStoreRedisErrorsCounted: the stores' Redis commands that Redis fails
// are counted (op "store"), and marked unavailable when Redis is out of
// reach, and their answers are not: a missing record,
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
	if _, err := b.store.Site(ctx, site.ID); !errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("a read with Redis stopped: %v, want it marked unavailable", err)
	}
	if n := testutil.ToFloat64(failed); n < 1 {
		t.Fatalf("%v store errors counted with Redis stopped, want at least 1", n)
	}
	// A pipeline's commands are marked each, as their reader sees them.
	cmds, err := b.storeRdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "a")
		p.Get(ctx, "b")
		return nil
	})
	if !errors.Is(err, directory.ErrUnavailable) || !errors.Is(cmds[0].Err(), directory.ErrUnavailable) || !errors.Is(cmds[1].Err(), directory.ErrUnavailable) {
		t.Fatalf("a pipeline with Redis stopped: %v; its commands: %v, %v; want each marked unavailable", err, cmds[0].Err(), cmds[1].Err())
	}
	// The account records (sign-ins, sessions, the logs) are the store's
	// too: their failures count the same.
	before := testutil.ToFloat64(failed)
	if _, err := accounts.New(b.records, nil).AdminByEmail(ctx, "op@example.com"); err == nil || errors.Is(err, accounts.ErrNotFound) {
		t.Fatalf("an account read with Redis stopped: %v", err)
	}
	if n := testutil.ToFloat64(failed); n <= before {
		t.Fatalf("%v store errors counted after an account read failed, as many as before", n)
	}
}

// reply is an error reply of Redis's, as go-redis returns it.
type reply string

func (r reply) Error() string { return string(r) }
func (reply) RedisError()     {}

// TestRedisFailureKinds tells Redis failing (counted) from its answers,
// and among failures a Redis out of reach or not serving for now (marked
// directory.ErrUnavailable: the API answers 503, try again) from Redis
// refusing a command (a fault: 500).
func TestRedisFailureKinds(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		err                 error
		failed, unavailable bool
	}{
		{nil, false, false},
		{redis.Nil, false, false},
		{redis.TxFailedErr, false, false},
		{context.Canceled, false, false},
		{reply("NOSCRIPT No matching script"), false, false},
		{reply("NOPERM User u has no permissions to run the 'hget' command"), true, false},
		{reply("WRONGTYPE Operation against a key holding the wrong kind of value"), true, false},
		{reply("OOM command not allowed when used memory > 'maxmemory'."), true, false}, // marked full instead
		{refused, true, true},
		{errors.New("dial tcp 127.0.0.1:1: connect: connection refused"), true, true},
		{context.DeadlineExceeded, true, true},
		{io.EOF, true, true},
		{redis.ErrPoolTimeout, true, true},
		{redis.ErrClosed, true, true},
		{reply("LOADING Redis is loading the dataset in memory"), true, true},
		{reply("READONLY You can't write against a read only replica."), true, true},
		{reply("MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."), true, true},
		{reply("CLUSTERDOWN The cluster is down"), true, true},
		{reply("TRYAGAIN Multiple keys request during rehashing of slot"), true, true},
		{reply("ERR max number of clients reached"), true, true},
		{reply("NOREPLICAS Not enough good replicas to write."), true, true},
	} {
		if got := redisFailed(tc.err); got != tc.failed {
			t.Errorf("redisFailed(%v) = %v, want %v", tc.err, got, tc.failed)
		}
		got := markFailure(tc.err)
		if marked := errors.Is(got, directory.ErrUnavailable); marked != tc.unavailable {
			t.Errorf("markFailure(%v) = %v: marked %v, want %v", tc.err, got, marked, tc.unavailable)
		}
		if tc.err != nil && !errors.Is(got, tc.err) {
			t.Errorf("markFailure(%v) = %v, which no longer wraps it", tc.err, got)
		}
		if again := markFailure(got); again != got {
			t.Errorf("marked twice: %v", again)
		}
		if full := errors.Is(got, directory.ErrFull); full != redis.IsOOMError(tc.err) {
			t.Errorf("markFailure(%v) = %v: marked full %v", tc.err, got, full)
		}
	}
}

// TestRedisClientHonoursDeadlines: an operation on the Redis clients serve
// builds ends at its context's deadline, not only at the client's own I/O
// timeout (redisIOTimeout), against a Redis that accepts connections and
// never answers. Without ContextTimeoutEnabled go-redis ignores the
// deadline, and a lease pipeline (redisbatch) or a request waits the I/O
// timeout out, once per attempt.
func TestRedisClientHonoursDeadlines(t *testing.T) {
	addr := fakeRedis(t, func(c net.Conn) { // reads every command, answers none
		defer c.Close()
		_, _ = io.Copy(io.Discard, c)
	})
	const deadline = 50 * time.Millisecond
	eachRedisClient(t, addr, func(t *testing.T, rdb redis.UniversalClient) {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		err := rdb.Get(ctx, "k").Err()
		took := time.Since(start)
		if err == nil {
			t.Fatal("a Redis that never answers answered")
		}
		// Far below one I/O timeout, far above the deadline: the
		// deadline ended it.
		if took >= redisIOTimeout*4/5 {
			t.Fatalf("the operation took %v (%v), with a deadline of %v and an I/O timeout of %v", took, err, deadline, redisIOTimeout)
		}
	})
}

// TestRedisClientRetriesOnce: an operation on the Redis clients serve
// builds is tried twice at most (redisMaxRetries), against a Redis whose
// connections close at once, so that a node answers a call with a
// retryable error within a second while Redis is away. go-redis's own
// default is 3 retries, each waiting its I/O timeout when Redis is silent.
func TestRedisClientRetriesOnce(t *testing.T) {
	var accepted atomic.Int64
	addr := fakeRedis(t, func(c net.Conn) {
		accepted.Add(1) // before the close that ends the attempt
		_ = c.Close()
	})
	eachRedisClient(t, addr, func(t *testing.T, rdb redis.UniversalClient) {
		before := accepted.Load()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := rdb.Get(ctx, "k").Err(); err == nil {
			t.Fatal("a Redis that closes every connection answered")
		}
		// Every attempt's connection was counted before it closed.
		if n := accepted.Load() - before; n < 1 || n > 2 {
			t.Fatalf("%d connections for one operation, want 1 or 2 (one retry at most)", n)
		}
	})
}

// fakeRedis listens on loopback and hands each connection to serve, on a
// goroutine of its own, until the test ends; it returns the address.
func fakeRedis(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serve(c)
		}
	}()
	return ln.Addr().String()
}

// eachRedisClient runs check as a subtest on each client serve builds for
// addr: a single Redis (redis.url) and a Cluster (redis.cluster_addrs).
func eachRedisClient(t *testing.T, addr string, check func(t *testing.T, rdb redis.UniversalClient)) {
	t.Helper()
	for name, rc := range map[string]RedisConfig{
		"url":     {URL: "redis://" + addr},
		"cluster": {ClusterAddrs: []string{addr}},
	} {
		t.Run(name, func(t *testing.T) {
			rdb, err := redisClient(rc)
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			check(t, rdb)
		})
	}
}
