package directory_test

import (
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/directory/storetest"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// changeWait is how long the cross-instance tests wait for a change.
const changeWait = 15 * time.Second

// redisClient connects to a single redis-server started for the test.
func redisClient(t testing.TB, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// uniquePrefix gives each store its own keyspace on a shared server, so
// tests need no FLUSHALL and may run in parallel.
func uniquePrefix() string { return "t" + directory.NewID("") + ":" }

// newRedisStore returns an empty store on client, closed at cleanup.
func newRedisStore(t testing.TB, client redis.UniversalClient, prefix string) *directory.Redis {
	t.Helper()
	s, err := directory.NewRedis(client, directory.RedisKeyPrefix(prefix))
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestRedis(t *testing.T) {
	t.Parallel()
	client := redisClient(t, redistest.Start(t))
	storetest.Run(t, func(t *testing.T) directory.Store { return newRedisStore(t, client, uniquePrefix()) })
}

func TestRedisCluster(t *testing.T) {
	t.Parallel()
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: redistest.StartCluster(t)})
	t.Cleanup(func() { _ = client.Close() })
	storetest.Run(t, func(t *testing.T) directory.Store { return newRedisStore(t, client, uniquePrefix()) })
}

func TestRedisOptions(t *testing.T) {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer client.Close()
	for _, p := range []string{"foyer{", "a}b", string(make([]byte, 65))} {
		if _, err := directory.NewRedis(client, directory.RedisKeyPrefix(p)); err == nil {
			t.Errorf("NewRedis accepted the prefix %q", p)
		}
	}
	if _, err := directory.NewRedis(nil); err == nil {
		t.Error("NewRedis accepted a nil client")
	}
	if _, err := directory.NewRedis(client, directory.RedisLogger(nil)); err == nil {
		t.Error("NewRedis accepted a nil logger")
	}
}

// changes collects the changes a subscription hears.
type changes struct {
	mu  sync.Mutex
	got map[directory.Change]int
}

func (c *changes) add(ch directory.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.got == nil {
		c.got = make(map[directory.Change]int)
	}
	c.got[ch]++
}

// waitFor waits until every change of want has been heard.
func (c *changes) waitFor(t *testing.T, want ...directory.Change) {
	t.Helper()
	deadline := time.Now().Add(changeWait)
	for {
		c.mu.Lock()
		missing := 0
		for _, w := range want {
			if c.got[w] == 0 {
				missing++
			}
		}
		c.mu.Unlock()
		if missing == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %v not heard within %v", missing, want, changeWait)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// twoNodes returns two stores sharing one Redis keyspace through separate
// clients made by newClient, as two foyer nodes do.
func twoNodes(t *testing.T, newClient func() redis.UniversalClient) (a, b *directory.Redis) {
	prefix := uniquePrefix()
	return newRedisStore(t, newClient(), prefix), newRedisStore(t, newClient(), prefix)
}

// singleClients makes clients of one redis-server.
func singleClients(t *testing.T, addr string) func() redis.UniversalClient {
	return func() redis.UniversalClient { return redisClient(t, addr) }
}

func TestRedisChangesReachOtherNodes(t *testing.T) {
	t.Parallel()
	t.Run("Single", func(t *testing.T) {
		t.Parallel()
		testChangesReachOtherNodes(t, singleClients(t, redistest.Start(t)))
	})
	t.Run("Cluster", func(t *testing.T) {
		t.Parallel()
		addrs := redistest.StartCluster(t)
		testChangesReachOtherNodes(t, func() redis.UniversalClient {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
			t.Cleanup(func() { _ = c.Close() })
			return c
		})
	})
}

func testChangesReachOtherNodes(t *testing.T, newClient func() redis.UniversalClient) {
	a, b := twoNodes(t, newClient)
	var onA, onB changes
	defer a.Subscribe(onA.add)()
	defer b.Subscribe(onB.add)()

	site := directory.Site{ID: "s_1", Name: "Harbour View", Settings: directory.DefaultSettings()}
	door := directory.Device{ID: "d_door", Kind: directory.KindDoorStation, Name: "front-door", Site: site.ID}
	if err := a.Apply(t.Context(), directory.PutSite{Site: site}, directory.PutDevice{Device: door}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	want := []directory.Change{{Site: site.ID}, {Device: door.ID}}
	onB.waitFor(t, want...)
	onA.waitFor(t, want...) // synchronously, before Apply returned

	// And the other way round; b sees a's write at once (no cache).
	if _, err := b.Device(t.Context(), door.ID); err != nil {
		t.Fatalf("b.Device: %v", err)
	}
	if err := b.Apply(t.Context(), directory.DeleteDevice{ID: door.ID}); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	onA.waitFor(t, directory.Change{Device: door.ID}, directory.Change{Site: site.ID})
	onA.mu.Lock()
	defer onA.mu.Unlock()
	if n := onA.got[directory.Change{Device: door.ID}]; n > 2 {
		t.Errorf("a heard its own and b's change of the door station %d times, want 2", n)
	}
}
