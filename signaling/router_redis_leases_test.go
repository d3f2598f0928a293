package signaling

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// leasePipelines counts the pipelines that write presence leases.
type leasePipelines struct{ n atomic.Int64 }

func (h *leasePipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *leasePipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *leasePipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if name := c.Name(); name == "set" || name == "eval" {
				h.n.Add(1)
				break
			}
		}
		return next(ctx, cmds)
	}
}

// TestLeaseWritesBatch: attaches and detaches made at once go out in a few
// pipelines, not one round trip each, and each is written: every lease is
// there after the attaches and gone after the detaches. Before the router
// runs, and after it stops, an attach writes its own lease.
func TestLeaseWritesBatch(t *testing.T) {
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	hook := &leasePipelines{}
	rdb.AddHook(hook)
	r, err := NewRedisRouter("n1", rdb, RedisRouterOptions{}, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const n = 2000
	conns := make([]*Conn, n+2)
	for i := range conns {
		conns[i] = &Conn{device: directory.Device{ID: directory.DeviceID(fmt.Sprintf("d%d", i))}, id: fmt.Sprintf("c%d", i)}
	}
	leases := func(cs []*Conn) int64 {
		t.Helper()
		pipe := rdb.Pipeline()
		cmds := make([]*redis.IntCmd, len(cs))
		for i, c := range cs {
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

	// Not running yet: the attach writes its own lease.
	_, _ = r.Attach(ctx, conns[0])
	if leases(conns[:1]) != 1 || hook.n.Load() != 1 {
		t.Fatalf("before Run: %d leases in %d pipelines, want 1 in 1", leases(conns[:1]), hook.n.Load())
	}

	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { r.Run(runCtx, nil); close(ran) }()
	for start := time.Now(); ; time.Sleep(time.Millisecond) { // the writer starts with Run
		r.leases.mu.Lock()
		running := r.leases.running
		r.leases.mu.Unlock()
		if running {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("the lease writer never started")
		}
	}
	all := conns[1 : n+1]
	at := func(f func(c *Conn)) int64 {
		before := hook.n.Load()
		var wg sync.WaitGroup
		for _, c := range all {
			wg.Add(1)
			go func() { defer wg.Done(); f(c) }()
		}
		wg.Wait()
		return hook.n.Load() - before
	}
	if p := at(func(c *Conn) { _, _ = r.Attach(ctx, c) }); p > n/4 {
		t.Errorf("%d attaches at once took %d pipelines; want them batched", n, p)
	}
	if got := leases(all); got != n {
		t.Fatalf("%d leases after %d attaches returned", got, n)
	}
	if p := at(func(c *Conn) { r.Detach(ctx, c) }); p > n/4 {
		t.Errorf("%d detaches at once took %d pipelines; want them batched", n, p)
	}
	if got := leases(all); got != 0 {
		t.Fatalf("%d leases left after %d detaches returned", got, n)
	}

	stop()
	<-ran
	_, _ = r.Attach(ctx, conns[n+1]) // stopped: written here again
	if leases(conns[n+1:]) != 1 {
		t.Fatal("an attach after the router stopped wrote no lease")
	}
}
