package signaling

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// TestLeaseWritesBatch: attaches and detaches made at once go out in a few
// pipelines, not one round trip each, and each is written: every lease is
// there once the attaches returned, and gone once the detaches did.
func TestLeaseWritesBatch(t *testing.T) {
	rdb, r := leaseRouter(t, "n1", RedisRouterOptions{})
	hook := redistest.CountPipelines("set", "eval")
	rdb.AddHook(hook)
	ctx := context.Background()
	const n = 2000
	conns := make([]*Conn, n)
	for i := range conns {
		conns[i] = testConn(fmt.Sprintf("d%d", i), fmt.Sprintf("c%d", i))
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

// TestReassertKeepsNoDetachedLease: a reassertion of the leases under way
// while a connection detaches must not set its lease again after the
// detach deleted it (the lease would then outlive the connection until a
// sweep, and a rebuilt presence view would ring a device that is gone).
func TestReassertKeepsNoDetachedLease(t *testing.T) {
	rdb, r := leaseRouter(t, "n1", RedisRouterOptions{})
	ctx := context.Background()
	// Other connections make each reassertion a pipeline that takes a while.
	for i := range 2000 {
		_, _ = r.Attach(ctx, testConn(fmt.Sprintf("other%d", i), fmt.Sprintf("o%d", i)))
	}
	for i := range 100 {
		c := testConn(fmt.Sprintf("d%d", i), fmt.Sprintf("c%d", i))
		_, _ = r.Attach(ctx, c)
		listed := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			close(listed)
			r.reassert(nil)
		})
		<-listed
		r.Detach(ctx, c) // while the reassertion lists the connections and writes their 2,000 leases
		wg.Wait()
		if n, err := rdb.Exists(ctx, presenceKey(c.device.ID)).Result(); err != nil || n != 0 {
			t.Fatalf("round %d: the detached connection's lease is there (%d, %v) after the detach and the reassertion returned", i, n, err)
		}
	}
}

// TestLeaseLivesWithItsNode: a device's lease has no TTL of its own; it is
// believed while its node's alive key lives, which the node's first attach
// writes if nothing has yet. Once that expires, another
// node no longer locates the device there, and its resync deletes the
// lease; before that, a resync leaves it.
func TestLeaseLivesWithItsNode(t *testing.T) {
	opts := RedisRouterOptions{LeaseTTL: 600 * time.Millisecond, LeaseRefresh: 200 * time.Millisecond}
	rdb, n1 := leaseRouter(t, "n1", opts)
	n2 := routerOn(t, "n2", rdb, opts)
	ctx := context.Background()
	d := testConn("dirk-phone", "c1")
	// n1 is not running: its alive key is neither written at its start nor
	// renewed. Its first attach writes it, so that its first devices are
	// not taken for a dead node's (and nothing renews it after).
	_, _ = n1.Attach(ctx, d)
	if ttl, err := rdb.PTTL(ctx, presenceKey(d.device.ID)).Result(); err != nil || ttl != -1 {
		t.Fatalf("the lease's TTL is %v (%v); want none (-1 ms)", ttl, err)
	}
	located := func() (location, bool) {
		t.Helper()
		if err := n2.Locate(ctx, []directory.DeviceID{d.device.ID}); err != nil {
			t.Fatal(err)
		}
		n2.mu.Lock()
		defer n2.mu.Unlock()
		loc, ok := n2.where[d.device.ID]
		return loc, ok
	}
	if loc, ok := located(); !ok || loc.node != "n1" || loc.conn != "c1" {
		t.Fatalf("n2 locates dirk-phone at %+v (%v); want n1's connection c1", loc, ok)
	}
	if !n2.resync(ctx, "test") {
		t.Fatal("resync failed")
	}
	if n, _ := rdb.Exists(ctx, presenceKey(d.device.ID)).Result(); n != 1 {
		t.Fatal("a resync deleted the lease of a node that is alive")
	}

	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if _, ok := located(); !ok {
			break
		}
		if time.Since(start) > 5*time.Second {
			t.Fatal("dirk-phone is still located at n1 5 s after n1's alive key was last renewed (600 ms TTL)")
		}
	}
	if !n2.resync(ctx, "test") {
		t.Fatal("resync failed")
	}
	if n, _ := rdb.Exists(ctx, presenceKey(d.device.ID)).Result(); n != 0 {
		t.Fatal("the lease of a dead node is still there after a resync")
	}
	if got := testutil.ToFloat64(n2.metrics.swept); got != 1 {
		t.Fatalf("swept %v leases; want 1", got)
	}
}

// TestResyncMendsOwnLeases: a node's resync deletes the leases naming it
// that none of its connections holds (a delete lost to a Redis error, or
// leases from before it restarted), keeps its connections' own, and writes
// again those Redis lost.
func TestResyncMendsOwnLeases(t *testing.T) {
	rdb, r := leaseRouter(t, "n1", RedisRouterOptions{})
	ctx := context.Background()
	live, lost := testConn("anna-phone", "live"), testConn("hall-101", "lost")
	_, _ = r.Attach(ctx, live)
	_, _ = r.Attach(ctx, lost)
	if err := rdb.Set(ctx, presenceKey("bram-phone"), "n1 before-restart", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Del(ctx, presenceKey(lost.device.ID)).Err(); err != nil {
		t.Fatal(err)
	}
	if !r.resync(ctx, "test") {
		t.Fatal("resync failed")
	}
	if n, _ := rdb.Exists(ctx, presenceKey("bram-phone")).Result(); n != 0 {
		t.Error("a lease of this node that no connection holds outlived a resync")
	}
	for _, c := range []*Conn{live, lost} {
		if v, _ := rdb.Get(ctx, presenceKey(c.device.ID)).Result(); v != "n1 "+c.id {
			t.Errorf("%s's lease is %q after a resync; want n1's connection %s", c.device.ID, v, c.id)
		}
	}
}

// leaseRouter returns a Redis router on a fresh redis-server, not running.
func leaseRouter(t *testing.T, node string, opts RedisRouterOptions) (*redis.Client, *RedisRouter) {
	t.Helper()
	srv := redistest.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb, routerOn(t, node, rdb, opts)
}

// routerOn is node's router on rdb, logging nowhere, not running: the
// tests call its methods themselves.
func routerOn(t *testing.T, node string, rdb redis.UniversalClient, opts RedisRouterOptions) *RedisRouter {
	t.Helper()
	r, err := NewRedisRouter(node, rdb, opts, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSweepSparesANodeStillHeard: a node whose alive key is gone while
// its presence events still come (the key lost in Redis, or its renewals
// failed for a while) is not dead: a resync leaves its leases, and its
// devices stay reachable. Only a node also unheard for LeaseTTL is
// (TestLeaseLivesWithItsNode).
func TestSweepSparesANodeStillHeard(t *testing.T) {
	opts := RedisRouterOptions{LeaseTTL: 3 * time.Second}
	rdb, n1 := leaseRouter(t, "n1", opts)
	n2 := routerOn(t, "n2", rdb, opts)
	ctx := context.Background()
	d := testConn("dirk-phone", "c1")
	_, _ = n1.Attach(ctx, d)
	if err := rdb.Del(ctx, aliveKey("n1")).Err(); err != nil {
		t.Fatal(err)
	}
	n2.applyPresence("h n1 1", time.Now()) // n1's heartbeat, heard just now
	if !n2.resync(ctx, "test") {
		t.Fatal("resync failed")
	}
	if v, _ := rdb.Get(ctx, presenceKey(d.device.ID)).Result(); v != "n1 c1" {
		t.Fatalf("after a resync the lease of a node heard from just now is %q; want \"n1 c1\"", v)
	}
	if got := testutil.ToFloat64(n2.metrics.swept); got != 0 {
		t.Fatalf("swept %v leases; want none", got)
	}
}

// testConn is a connection of device id for the router alone: no socket.
func testConn(id, conn string) *Conn {
	return &Conn{device: directory.Device{ID: directory.DeviceID(id)}, id: conn}
}

// TestApplyPresence: events fold into the view in order; the first event
// of a node, a gap in its numbers, or numbers starting again (a restarted
// node) report a possibly lost event; malformed events are counted and
// change nothing.
func TestApplyPresence(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	r := routerOn(t, "n1", rdb, RedisRouterOptions{})
	now := time.Now()
	steps := []struct {
		event string
		lost  bool
		where string // n2's connection for d1 after the event; "" none
	}{
		{"+ n2 c1 d1 7", true, "c1"}, // the first heard from n2: what came before is unknown
		{"h n2 8", false, "c1"},
		{"- n2 c0 d1 9", false, "c1"}, // another connection's detach leaves c1
		{"+ n2 c2 d1 11", true, "c2"}, // 10 was lost
		{"- n2 c2 d1 12", false, ""},
		{"h n2 1", true, ""},  // n2 restarted
		{"h n1 5", false, ""}, // this node's own: no gap reckoning
		{"", false, ""},
		{"+ n2 c3 d1", false, ""},   // no number
		{"+ n2 c3 d1 x", false, ""}, // not a number
		{"h n2 2", false, ""},       // the malformed ones took no number
	}
	for _, s := range steps {
		if lost := r.applyPresence(s.event, now); lost != s.lost {
			t.Errorf("%q: lost %v, want %v", s.event, lost, s.lost)
		}
		if loc := r.where["d1"]; loc.conn != s.where {
			t.Errorf("after %q, d1 is at %q, want %q", s.event, loc.conn, s.where)
		}
	}
	if n := testutil.ToFloat64(r.metrics.dropped.WithLabelValues("malformed")); n != 3 {
		t.Errorf("%v malformed events counted, want 3", n)
	}
}

// TestLocateKeepsNewerWord: what Locate reads from Redis replaces what the
// view knew from before the read, and not what it heard since the read
// began (a presence event or a message, newer than the leases read): here
// neither device has a lease, dirk-phone's entry was learned before the
// read and goes, anna-phone's was learned after its start and stays.
func TestLocateKeepsNewerWord(t *testing.T) {
	_, r := leaseRouter(t, "n2", RedisRouterOptions{})
	now := time.Now()
	before := location{node: "n1", conn: "c1", expires: now.Add(time.Hour), learned: now.Add(-time.Minute)}
	since := location{node: "n1", conn: "c2", expires: now.Add(time.Hour), learned: now.Add(time.Minute)}
	r.mu.Lock()
	r.where["dirk-phone"], r.where["anna-phone"] = before, since
	r.mu.Unlock()
	if err := r.Locate(context.Background(), []directory.DeviceID{"dirk-phone", "anna-phone"}); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if loc, ok := r.where["dirk-phone"]; ok {
		t.Errorf("dirk-phone, with no lease, is still at %+v", loc)
	}
	if loc := r.where["anna-phone"]; loc != since {
		t.Errorf("anna-phone is at %+v; want what the view heard after the read began, %+v", loc, since)
	}
}

// TestGoneNodesForgotten: a presence rebuild forgets the nodes unheard from
// for an hour that name no device (random node IDs: each restart is a new
// node), and keeps the others.
func TestGoneNodesForgotten(t *testing.T) {
	ts := newNodes(t, harborView, unlimited(), 2, RedisRouterOptions{LeaseRefresh: 200 * time.Millisecond})
	ts.waitInStep(t)
	r := ts.hubs[0].router.(*RedisRouter)
	other := ts.hubs[1].cfg.NodeID
	// The other node is live once this one has heard from it (its first
	// heartbeat may come after the views are in step).
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		r.mu.Lock()
		_, heard := r.nodeSeen[other]
		r.mu.Unlock()
		if heard {
			break
		}
		if time.Since(start) > readTimeout {
			t.Fatalf("never heard from %s", other)
		}
	}
	r.mu.Lock()
	r.nodeSeen["gone"], r.lastSeq["gone"] = time.Now().Add(-2*time.Hour), 7
	r.nodeSeen["recent"], r.lastSeq["recent"] = time.Now().Add(-time.Minute), 3
	r.mu.Unlock()
	if !r.resync(context.Background(), "periodic") {
		t.Fatal("resync failed")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	_, gone := r.nodeSeen["gone"]
	_, goneSeq := r.lastSeq["gone"]
	_, recent := r.nodeSeen["recent"]
	_, live := r.nodeSeen[other]
	if gone || goneSeq || !recent || !live {
		t.Fatalf("after a rebuild: gone %v/%v, recent %v, %s %v; want false/false, true, true", gone, goneSeq, recent, other, live)
	}
}

// TestReassertLeavesAnotherNodesLease: reasserting the leases after a Redis
// failure sets again only those Redis lacks. A lease that names another
// node's connection is the device's later one (it connected there while
// this node's old connection is not yet closed): written over, calls would
// look for the device here, and the other node's detach would not find its
// lease to delete (nor would its word to close this one have come).
func TestReassertLeavesAnotherNodesLease(t *testing.T) {
	rdb, r := leaseRouter(t, "n1", RedisRouterOptions{})
	ctx := context.Background()
	c := testConn("dirk-phone", "c1")
	_, _ = r.Attach(ctx, c)
	if err := rdb.Set(ctx, presenceKey(c.device.ID), "n2 c2", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r.reassert(nil)
	if v, err := rdb.Get(ctx, presenceKey(c.device.ID)).Result(); err != nil || v != "n2 c2" {
		t.Fatalf("the device's lease after the reassertion: %q, %v; want the other node's, n2 c2", v, err)
	}
}
