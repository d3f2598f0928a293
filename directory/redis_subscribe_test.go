package directory_test

import (
	"context"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/redistest"
	"github.com/foyer-intercom/foyer/internal/silentproxy"
)

// hearAgain applies changes through a until b hears one: changes published
// before b has subscribed again are lost, which is pub/sub's contract.
func hearAgain(t *testing.T, a *directory.Redis, onB *changes) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), changeWait)
	defer cancel()
	start := time.Now()
	var applied []directory.SiteID // every change made after the fault
	for i := 0; ; i++ {
		site := directory.Site{ID: directory.SiteID(directory.NewID("s_")), Name: directory.NewID("n"), Settings: directory.DefaultSettings()}
		if err := a.Apply(ctx, directory.PutSite{Site: site}); err != nil {
			t.Fatalf("Apply %d: %v", i, err)
		}
		applied = append(applied, site.ID)
		select {
		case <-ctx.Done():
			t.Fatalf("no change heard within %v", changeWait)
		case <-time.After(50 * time.Millisecond): // delivery is asynchronous: look after a while
		}
		// Any of them heard proves b subscribes again (earlier ones may
		// have been published while it was deaf, and are lost).
		onB.mu.Lock()
		heard := 0
		for _, id := range applied {
			heard += onB.got[directory.Change{Site: id}]
		}
		onB.mu.Unlock()
		if heard > 0 {
			t.Logf("heard again after %v (%d batches)", time.Since(start).Round(time.Millisecond), i+1)
			return
		}
	}
}

// TestRedisSubscriptionReplaced kills the subscription's connection, as a
// restarting Redis would: the store must subscribe again.
func TestRedisSubscriptionReplaced(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t)
	a, b := twoNodes(t, singleClients(t, addr))
	var onB changes
	defer b.Subscribe(onB.add)()
	admin := redisClient(t, addr)
	if err := admin.ClientKillByFilter(t.Context(), "TYPE", "pubsub").Err(); err != nil {
		t.Fatalf("CLIENT KILL: %v", err)
	}
	hearAgain(t, a, &onB)
}

// TestRedisSubscriptionSilent silences the subscription's connection
// without closing it, as a half-open TCP connection or a dropping network
// path does: only the health check can notice, and it must replace it.
func TestRedisSubscriptionSilent(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t)
	p := silentproxy.Start(t, addr)
	prefix := uniquePrefix()
	a := newRedisStore(t, redisClient(t, addr), prefix)
	b := newRedisStore(t, redisClient(t, p.Addr()), prefix)
	var onB changes
	defer b.Subscribe(onB.add)()
	p.Silence() // every connection open now goes silent; new ones work
	hearAgain(t, a, &onB)
}
