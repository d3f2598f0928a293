package signaling

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// bareRouter is a RedisRouter on its own Redis client with hooks, not run
// (no publisher: the test calls Flush and resend itself).
func bareRouter(t *testing.T, addr string, hooks ...redis.Hook) *RedisRouter {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	for _, h := range hooks {
		rdb.AddHook(h)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return routerOn(t, "n1", rdb, RedisRouterOptions{})
}

// splitFirst runs the first pipeline of several commands one command at a
// time, calling between after the first: Redis serving another client
// (here, the receiving node's SSUBSCRIBE) between two commands of one
// pipeline.
type splitFirst struct {
	once    sync.Once
	between func()
}

func (h *splitFirst) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *splitFirst) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h *splitFirst) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		split := false
		h.once.Do(func() { split = len(cmds) > 1 })
		if !split {
			return next(ctx, cmds)
		}
		err := next(ctx, cmds[:1])
		h.between()
		if err2 := next(ctx, cmds[1:]); err == nil {
			err = err2
		}
		return err
	}
}

// TestHeldOrderWithinPipeline: c1 then c2 for node x in one pipeline, and x
// subscribes between the two. c1 reached nobody and is held; c2, though it
// went, is sent again behind c1, so x's last word is c1 then c2.
func TestHeldOrderWithinPipeline(t *testing.T) {
	srv := redistest.StartServer(t)
	sub := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = sub.Close() })
	var ps *redis.PubSub
	r := bareRouter(t, srv.Addr, &splitFirst{between: func() {
		ps = sub.SSubscribe(context.Background(), nodeChannel("x"))
		if _, err := ps.Receive(context.Background()); err != nil {
			t.Error(err)
		}
	}})
	r.publish("x", envelope{Kind: "left", Call: "c1", Devices: []directory.DeviceID{"d"}})
	r.publish("x", envelope{Kind: "left", Call: "c2", Devices: []directory.DeviceID{"d"}})
	r.Flush(context.Background())
	if r.resend(context.Background()) {
		t.Fatal("still holding after x subscribed")
	}
	if got := callsOf(receiveOn(t, ps, "x")(3)); fmt.Sprint(got) != "[c2 c1 c2]" {
		t.Fatalf("node x received %v, want [c2 c1 c2]: c2 again after c1", got)
	}
}

// TestResendOneRoundTrip: what waits for several nodes is sent again in one
// pipeline, so a Redis that answers slowly holds the sender (and every
// Flush behind it) for one round trip a pass, not one per node.
func TestResendOneRoundTrip(t *testing.T) {
	srv := redistest.StartServer(t)
	pipes := redistest.CountPipelines("spublish")
	r := bareRouter(t, srv.Addr, pipes)
	for i := range 5 {
		r.publish(fmt.Sprintf("ghost%d", i), envelope{Kind: "left", Call: "c", Devices: []directory.DeviceID{"d"}})
	}
	r.Flush(context.Background())
	before := pipes.Count()
	if !r.resend(context.Background()) {
		t.Fatal("nothing held for the five nodes nobody subscribes as")
	}
	if n := pipes.Count() - before; n != 1 {
		t.Fatalf("a resend to 5 nodes took %d pipelines, want 1", n)
	}
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if len(r.held) != 5 {
		t.Fatalf("%d nodes held, want 5", len(r.held))
	}
}

// subscribeAs subscribes to node's channel on its own client, as node
// would, and returns receiveOn for it.
func subscribeAs(t *testing.T, addr, node string) func(n int) []envelope {
	t.Helper()
	sub := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { _ = sub.Close() })
	ps := sub.SSubscribe(context.Background(), nodeChannel(node))
	if _, err := ps.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	return receiveOn(t, ps, node)
}

// receiveOn returns a function that reads the next n envelopes node's
// subscription ps receives, within readTimeout.
func receiveOn(t *testing.T, ps *redis.PubSub, node string) func(n int) []envelope {
	return func(n int) []envelope {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), readTimeout)
		defer cancel()
		var got []envelope
		for range n {
			m, err := ps.ReceiveMessage(ctx)
			if err != nil {
				t.Fatalf("node %s received %d of %d envelopes (calls %q), then: %v", node, len(got), n, callsOf(got), err)
			}
			env, err := unmarshalEnvelope(m.Payload)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, env)
		}
		return got
	}
}

// callsOf lists the calls of envs, in order.
func callsOf(envs []envelope) []CallID {
	calls := make([]CallID, len(envs))
	for i, e := range envs {
		calls[i] = e.Call
	}
	return calls
}

// TestQueuedWaitsBehindHeld: an envelope queued for a node while earlier
// ones wait for it to subscribe again waits behind them, though the node
// is there by the time it is flushed: the node receives c1 then c2 (a
// ring, then its cancel), not c2 first.
func TestQueuedWaitsBehindHeld(t *testing.T) {
	srv := redistest.StartServer(t)
	r := bareRouter(t, srv.Addr)
	r.publish("x", envelope{Kind: "left", Call: "c1", Devices: []directory.DeviceID{"d"}})
	r.Flush(context.Background())
	if !r.holding() {
		t.Fatal("c1 not held for x, which nobody subscribes as")
	}
	receive := subscribeAs(t, srv.Addr, "x")
	r.publish("x", envelope{Kind: "left", Call: "c2", Devices: []directory.DeviceID{"d"}})
	r.Flush(context.Background())
	if r.resend(context.Background()) {
		t.Fatal("still holding after x subscribed")
	}
	if got := callsOf(receive(2)); fmt.Sprint(got) != "[c1 c2]" {
		t.Fatalf("node x received %v, want [c1 c2]: c2 behind the held c1", got)
	}
}

// TestResendKeepsOrderBeyondBatch: more envelopes wait for a node than one
// resend sends (publishBatch); those a resend lost again stay ahead of
// those it did not send yet, so the node receives them all in order once
// it subscribes.
func TestResendKeepsOrderBeyondBatch(t *testing.T) {
	srv := redistest.StartServer(t)
	r := bareRouter(t, srv.Addr)
	const n = publishBatch + 44
	for i := range n {
		r.publish("x", envelope{Kind: "left", Call: CallID(fmt.Sprint(i)), Devices: []directory.DeviceID{"d"}})
	}
	r.Flush(context.Background())
	if !r.resend(context.Background()) { // nobody subscribes as x: the first batch is lost again
		t.Fatal("nothing held for x")
	}
	receive := subscribeAs(t, srv.Addr, "x")
	for r.resend(context.Background()) {
	}
	for i, call := range callsOf(receive(n)) {
		if call != CallID(fmt.Sprint(i)) {
			t.Fatalf("node x received %v at position %d, want %d: out of order", call, i, i)
		}
	}
}

// TestHeldQueueFullUntilSent: a node's held-back queue that was full (its
// deliveries refused, TestDeliverReportsFullHeldQueue) and is then sent
// once the node subscribes again takes new envelopes again: the node's
// devices are rung again, not refused for as long as this node runs.
func TestHeldQueueFullUntilSent(t *testing.T) {
	srv := redistest.StartServer(t)
	r := bareRouter(t, srv.Addr)
	r.sendMu.Lock()
	for range publishQueue {
		r.holdLocked(queued{node: "x", env: envelope{Kind: "left", Call: "c", Devices: []directory.DeviceID{"d"}}}, "no_receiver")
	}
	r.sendMu.Unlock()
	if r.publish("x", envelope{Kind: "left", Call: "c", Devices: []directory.DeviceID{"d"}}) {
		t.Fatal("an envelope behind a full held-back queue was taken")
	}
	subscribeAs(t, srv.Addr, "x")
	for r.resend(context.Background()) {
	}
	if !r.publish("x", envelope{Kind: "left", Call: "c", Devices: []directory.DeviceID{"d"}}) {
		t.Fatal("an envelope for x refused after its held-back queue was all sent")
	}
}

// TestDeliveriesOfDifferentFramesNotMerged: consecutive deliveries to one
// node of frames of the same length (two calls' rings: call IDs have one
// length) are two envelopes, each device with its own frame; only the
// very same frame to several devices is sent once.
func TestDeliveriesOfDifferentFramesNotMerged(t *testing.T) {
	srv := redistest.StartServer(t)
	r := bareRouter(t, srv.Addr)
	receive := subscribeAs(t, srv.Addr, "x")
	frames := map[directory.DeviceID][]byte{
		"d_a": []byte(`{"type":"ring","call_id":"c_n1_aaaa"}`),
		"d_b": []byte(`{"type":"ring","call_id":"c_n1_bbbb"}`),
	}
	r.publish("x", envelope{Kind: "deliver", Devices: []directory.DeviceID{"d_a"}, Frame: frames["d_a"]})
	r.publish("x", envelope{Kind: "deliver", Devices: []directory.DeviceID{"d_b"}, Frame: frames["d_b"]})
	r.Flush(context.Background())
	got := map[directory.DeviceID]string{}
	for _, env := range receive(2) { // merged, there would be one
		for _, d := range env.Devices {
			got[d] = string(env.Frame)
		}
	}
	for d, want := range frames {
		if got[d] != string(want) {
			t.Errorf("%s got %s, want %s", d, got[d], want)
		}
	}
}

// TestHeldDroppedCountedByCause: held envelopes dropped are counted by
// the failure that stopped them, for all of their node's: no_receiver for
// a node that never subscribed, c2 included, which only waited behind c1;
// redis_error for what Redis did not take.
func TestHeldDroppedCountedByCause(t *testing.T) {
	srv := redistest.StartServer(t)
	r := bareRouter(t, srv.Addr)
	dropped := func(why string) float64 { return testutil.ToFloat64(r.metrics.dropped.WithLabelValues(why)) }
	r.publish("x", envelope{Kind: "left", Call: "c1", Devices: []directory.DeviceID{"d"}})
	r.Flush(context.Background())
	r.publish("x", envelope{Kind: "left", Call: "c2", Devices: []directory.DeviceID{"d"}})
	r.Flush(context.Background())
	srv.Stop()
	r.publish("y", envelope{Kind: "left", Call: "c3", Devices: []directory.DeviceID{"d"}})
	r.Flush(context.Background())
	r.sendMu.Lock()
	for node, h := range r.held {
		r.dropHeldLocked(node, h)
	}
	r.sendMu.Unlock()
	for why, want := range map[string]float64{"no_receiver": 2, "redis_error": 1, "": 0} {
		if n := dropped(why); n != want {
			t.Errorf("dropped %q: %v, want %v", why, n, want)
		}
	}
}

// TestProbesNotHeld: a node's probe of its own subscription that nobody
// received (the node resubscribing) is not held and sent again: the next
// probe follows within probeInterval, and a stale one, received late,
// would count seconds of waiting as the pub/sub round trip.
func TestProbesNotHeld(t *testing.T) {
	srv := redistest.StartServer(t)
	r := bareRouter(t, srv.Addr)
	r.publish(r.node, envelope{Kind: "probe", Sent: time.Now().UnixNano()})
	r.Flush(context.Background())
	if r.holding() {
		t.Fatal("a probe nobody received was held to be sent again")
	}
}

// TestHeldDroppedCountedByLastCause: envelopes held after a Redis error
// and then sent again to a node that never subscribes are dropped as
// no_receiver, the last failure, not the first: Redis is back, the node is
// what is missing.
func TestHeldDroppedCountedByLastCause(t *testing.T) {
	srv := redistest.StartServer(t)
	r := bareRouter(t, srv.Addr)
	r.sendMu.Lock()
	r.holdLocked(queued{node: "x", env: envelope{Kind: "left", Call: "c", Devices: []directory.DeviceID{"d"}}}, "redis_error")
	r.sendMu.Unlock()
	if !r.resend(context.Background()) {
		t.Fatal("nothing held for x, which nobody subscribes as")
	}
	r.sendMu.Lock()
	r.dropHeldLocked("x", r.held["x"])
	r.sendMu.Unlock()
	for why, want := range map[string]float64{"no_receiver": 1, "redis_error": 0} {
		if n := testutil.ToFloat64(r.metrics.dropped.WithLabelValues(why)); n != want {
			t.Errorf("dropped %q: %v, want %v", why, n, want)
		}
	}
}
