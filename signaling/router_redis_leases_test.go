package signaling

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// TestLeaseWritesBatch: attaches and detaches made at once go out in a few
// pipelines, not one round trip each, and each is written: every lease is
// there once the attaches returned, and gone once the detaches did.
func TestLeaseWritesBatch(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	hook := redistest.CountPipelines("set", "eval")
	rdb.AddHook(hook)
	r, err := NewRedisRouter("n1", rdb, RedisRouterOptions{}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 2000
	conns := make([]*Conn, n)
	for i := range conns {
		conns[i] = &Conn{device: directory.Device{ID: directory.DeviceID(fmt.Sprintf("d%d", i))}, id: fmt.Sprintf("c%d", i)}
	}
	leases := func() int64 {
		t.Helper()
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(conns))
		for i, c := range conns {
			cmds[i] = pipe.Exists(ctx, presenceKey(c.device.ID))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		var got int64
		for _, c := range cmds {
			got += c.Val()
		}
		return got
	}

	at := func(f func(c *Conn)) int64 {
		before := hook.Count()
		var wg sync.WaitGroup
		for _, c := range conns {
			wg.Add(1)
			go func() { defer wg.Done(); f(c) }()
		}
		wg.Wait()
		return hook.Count() - before
	}
	if p := at(func(c *Conn) { _, _ = r.Attach(ctx, c) }); p > n/4 {
		t.Errorf("%d attaches at once took %d pipelines; want them batched", n, p)
	}
	if got := leases(); got != n {
		t.Fatalf("%d leases after %d attaches returned", got, n)
	}
	if p := at(func(c *Conn) { r.Detach(ctx, c) }); p > n/4 {
		t.Errorf("%d detaches at once took %d pipelines; want them batched", n, p)
	}
	if got := leases(); got != 0 {
		t.Fatalf("%d leases left after %d detaches returned", got, n)
	}
}

// TestRefreshKeepsNoDetachedLease: a refresh under way while a connection
// detaches must not set its lease again after the detach deleted it (the
// lease would then outlive the connection by a whole lease TTL, and a
// rebuilt presence view would ring a device that is gone).
func TestRefreshKeepsNoDetachedLease(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	r, err := NewRedisRouter("n1", rdb, RedisRouterOptions{}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Other connections make each refresh a pipeline that takes a while.
	for i := range 2000 {
		_, _ = r.Attach(ctx, &Conn{device: directory.Device{ID: directory.DeviceID(fmt.Sprintf("other%d", i))}, id: fmt.Sprintf("o%d", i)})
	}
	for i := range 100 {
		c := &Conn{device: directory.Device{ID: directory.DeviceID(fmt.Sprintf("d%d", i))}, id: fmt.Sprintf("c%d", i)}
		_, _ = r.Attach(ctx, c)
		listed := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			close(listed)
			r.refresh(false)
		})
		<-listed
		r.Detach(ctx, c) // while the refresh lists the connections and writes their 2,000 leases
		wg.Wait()
		if n, err := rdb.Exists(ctx, presenceKey(c.device.ID)).Result(); err != nil || n != 0 {
			t.Fatalf("round %d: the detached connection's lease is there (%d, %v) after the detach and the refresh returned", i, n, err)
		}
	}
}
