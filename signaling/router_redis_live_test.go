package signaling

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/foyer-intercom/foyer/directory"
)

// TestLiveCallsAcrossNodes: a site's calls in progress are listed by every
// node, whichever node owns them, and only that site's. A node that is
// heard from but does not answer, or answers what cannot be read, is
// named, and the calls of the others are still listed; a node that has
// stopped (its alive key deleted) is not waited for. On one Redis and on
// a Redis Cluster.
func TestLiveCallsAcrossNodes(t *testing.T) {
	for _, cluster := range []bool{false, true} {
		t.Run(map[bool]string{false: "redis", true: "cluster"}[cluster], func(t *testing.T) {
			liveCallsAcrossNodes(t, newNodesWith(t, harborView, unlimited(), 2, nodeOptions{cluster: cluster}))
		})
	}
}

func liveCallsAcrossNodes(t *testing.T, ts *testServer) {
	site := ts.siteNamed(t, "Harbour View")
	front := ts.connectTo(t, 0, "front-door")
	garage := ts.connectTo(t, 1, "garage-door")
	other := ts.connectTo(t, 1, "other-door")
	anna := ts.connectTo(t, 0, "anna-phone")
	bram := ts.connectTo(t, 1, "bram-phone")
	dirk := ts.connectTo(t, 1, "dirk-phone")
	olga := ts.connectTo(t, 0, "olga-phone")

	first, _ := front.call("101") // owned by node0, ringing anna and bram
	anna.expect("ring")
	bram.expect("ring")
	second, _ := garage.call("102") // owned by node1
	dirk.expect("ring")
	elsewhere, _ := other.call("201") // node1's, another site's
	olga.expect("ring")
	bram.send(map[string]any{"type": "answer", "call_id": first})
	bram.expect("answered")
	front.expect("answered")

	id := func(c *client) directory.DeviceID { return directory.DeviceID(c.welcome["device_id"].(string)) }
	want := []LiveCall{
		{CallID: CallID(first), Node: "node0", Door: id(front), DoorName: "front-door", Number: "101", State: "answered", Answered: id(bram)},
		{CallID: CallID(second), Node: "node1", Door: id(garage), DoorName: "garage-door", Number: "102", State: "ringing", Ringing: 1},
	}
	listed := func(node int) LiveCalls {
		t.Helper()
		live := ts.hubs[node].LiveCalls(context.Background(), site)
		for i := range live.Calls {
			c := &live.Calls[i]
			if c.Started.IsZero() || c.Started.Location() != time.UTC {
				t.Errorf("node %d lists %s started at %v, want a time in UTC", node, c.CallID, c.Started)
			}
			if (c.State == "answered") == c.AnsweredAt.IsZero() {
				t.Errorf("node %d lists %s %s, answered at %v", node, c.CallID, c.State, c.AnsweredAt)
			}
			c.Started, c.AnsweredAt = time.Time{}, time.Time{}
		}
		return live
	}
	for node := range 2 {
		live := listed(node)
		if !slices.Equal(live.Calls, want) || live.Unanswered != nil {
			t.Fatalf("node %d lists %+v, want %+v and no node unanswered", node, live, want)
		}
	}

	// A node heard from (its heartbeat, its alive key) and subscribed to
	// its channel, that does not answer.
	ctx := context.Background()
	rdb := ts.rdbs[0]
	if err := rdb.Set(ctx, aliveKey("ghost"), "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	sub := rdb.SSubscribe(ctx, nodeChannel("ghost"))
	t.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	r0 := ts.hubs[0].router.(*RedisRouter)
	for seq := 1; !slices.Contains(r0.nodesHeard(time.Now(), ""), "ghost"); seq++ {
		if seq > 100 {
			t.Fatal("node0 never heard the ghost's heartbeat")
		}
		if err := rdb.SPublish(ctx, presenceChannel, "h ghost "+strconv.Itoa(seq)).Err(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	live := listed(0)
	if !slices.Equal(live.Calls, want) || !slices.Equal(live.Unanswered, []string{"ghost"}) {
		t.Fatalf("with a silent node: %+v, want %+v and ghost unanswered", live, want)
	}
	select {
	case m := <-sub.Channel():
		if env, err := unmarshalEnvelope(m.Payload); err != nil || env.Kind != "live" || env.Site != site || env.From != "node0" {
			t.Fatalf("the ghost was asked %q (%v)", m.Payload, err)
		}
	case <-time.After(readTimeout):
		t.Fatal("the ghost was never asked")
	}

	// It answers with what is no list of calls.
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		m, ok := <-sub.Channel()
		if !ok {
			return
		}
		env, err := unmarshalEnvelope(m.Payload)
		if err != nil {
			return
		}
		bad, _ := (&envelope{Kind: "live_calls", From: "ghost", Ask: env.Ask, Frame: []byte("{not json")}).marshal()
		rdb.SPublish(ctx, nodeChannel("node0"), bad)
	}()
	malformed := testutil.ToFloat64(r0.metrics.dropped.WithLabelValues("malformed"))
	live = listed(0)
	<-answered
	if !slices.Equal(live.Calls, want) || !slices.Equal(live.Unanswered, []string{"ghost"}) {
		t.Fatalf("with a node answering garbage: %+v, want %+v and ghost unanswered", live, want)
	}
	if n := testutil.ToFloat64(r0.metrics.dropped.WithLabelValues("malformed")) - malformed; n != 1 {
		t.Errorf("%v malformed answers counted, want 1", n)
	}

	// A query naming no site is counted and left unanswered; an answer to
	// no query is dropped. Node 0 goes on answering (the ghost reads it).
	for _, env := range []envelope{{Kind: "live", From: "ghost", Ask: "q1"}, {Kind: "live_calls", From: "ghost", Ask: "nosuchask", Frame: []byte("[]")}} {
		b, _ := env.marshal()
		if err := rdb.SPublish(ctx, nodeChannel("node0"), b).Err(); err != nil {
			t.Fatal(err)
		}
	}
	good, _ := (&envelope{Kind: "live", From: "ghost", Site: site, Ask: "q2"}).marshal()
	if err := rdb.SPublish(ctx, nodeChannel("node0"), good).Err(); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-sub.Channel():
		env, err := unmarshalEnvelope(m.Payload)
		var got []LiveCall
		if err == nil {
			err = json.Unmarshal(env.Frame, &got)
		}
		if err != nil || env.Kind != "live_calls" || env.Ask != "q2" || len(got) != 1 || got[0].CallID != CallID(first) {
			t.Fatalf("node 0 answered the ghost %q (%v), want its call %s for q2 alone", m.Payload, err, first)
		}
	case <-time.After(readTimeout):
		t.Fatal("node 0 never answered the ghost's query")
	}
	if n := testutil.ToFloat64(r0.metrics.dropped.WithLabelValues("malformed")) - malformed; n != 2 {
		t.Errorf("%v malformed envelopes counted, want 2: the answer that was no list, the query naming no site", n)
	}

	// Stopped: no subscriber, no alive key, though heard from a moment ago.
	_ = sub.Close()
	if err := rdb.Del(ctx, aliveKey("ghost")).Err(); err != nil {
		t.Fatal(err)
	}
	if live := listed(0); !slices.Equal(live.Calls, want) || live.Unanswered != nil {
		t.Fatalf("with a stopped node: %+v, want %+v and no node unanswered", live, want)
	}

	for _, c := range []struct {
		door *client
		call string
	}{{front, first}, {garage, second}, {other, elsewhere}} {
		c.door.send(map[string]any{"type": "hangup", "call_id": c.call})
		c.door.expect("ended")
	}
	for node := range 2 {
		if live := listed(node); len(live.Calls) != 0 || live.Unanswered != nil {
			t.Fatalf("node %d lists %+v once every call ended", node, live)
		}
	}
}

// TestLiveCallsOneNode: a node of its own lists its calls, named as
// its, and asks nobody.
func TestLiveCallsOneNode(t *testing.T) {
	ts := newNodes(t, harborView, unlimited(), 1, RedisRouterOptions{})
	site := ts.siteNamed(t, "Harbour View")
	door := ts.connect(t, "front-door")
	anna := ts.connect(t, "anna-phone")
	id, _ := door.call("101")
	anna.expect("ring")
	live := ts.hub.LiveCalls(context.Background(), site)
	if len(live.Calls) != 1 || live.Calls[0].CallID != CallID(id) || live.Calls[0].Node != ts.hub.cfg.NodeID || live.Unanswered != nil {
		t.Fatalf("%+v, want %s alone, on node %s", live, id, ts.hub.cfg.NodeID)
	}
}

// TestConnectedAcrossNodes: every node says which devices are connected,
// to it or to another node, and stops saying so once a device has gone.
func TestConnectedAcrossNodes(t *testing.T) {
	ts := newNodes(t, harborView, unlimited(), 2, RedisRouterOptions{})
	anna := ts.connectTo(t, 0, "anna-phone")
	bram := ts.connectTo(t, 1, "bram-phone")
	id := func(c *client) directory.DeviceID { return directory.DeviceID(c.welcome["device_id"].(string)) }
	ids := []directory.DeviceID{id(anna), id(bram), "d_nosuchdevice"}
	for node := range 2 {
		on := ts.hubs[node].Connected(context.Background(), ids)
		if !on[id(anna)] || !on[id(bram)] || len(on) != 2 {
			t.Fatalf("node %d: connected %v, want anna-phone and bram-phone", node, on)
		}
	}
	_ = bram.ws.Close()
	for deadline := time.Now().Add(readTimeout); ; time.Sleep(10 * time.Millisecond) {
		on := ts.hubs[0].Connected(context.Background(), ids)
		if !on[id(anna)] {
			t.Fatalf("node 0: connected %v, anna-phone missing", on)
		}
		if !on[id(bram)] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node 0 still says bram-phone is connected %v after it closed", readTimeout)
		}
	}
}

// TestOpenDoorAcrossNodes: a node opens a door station connected to
// another node (a resident's app asked the first): the door station gets
// unlock, relay 1, for the duration given, with no call; a door station
// connected nowhere is ErrDoorOffline, and counted as no opening.
func TestOpenDoorAcrossNodes(t *testing.T) {
	ts := newNodes(t, harborView, unlimited(), 2, RedisRouterOptions{})
	door := ts.connectTo(t, 1, "front-door")
	id := directory.DeviceID(door.welcome["device_id"].(string))
	if err := ts.hubs[0].OpenDoor(context.Background(), id, 4*time.Second); err != nil {
		t.Fatal(err)
	}
	if m := door.expect("unlock"); m["relay"] != 1.0 || m["duration_ms"] != 4000.0 || m["call_id"] != nil {
		t.Fatalf("the door station got %v, want relay 1 for 4 s, no call", m)
	}
	if got := testutil.ToFloat64(ts.hubs[0].metrics.doorOpenings.WithLabelValues(openedByApp)); got != 1 {
		t.Fatalf("openings from the app counted on the opening node: %v, want 1", got)
	}
	if err := ts.hubs[0].OpenDoor(context.Background(), "d_nosuchdoor", time.Second); !errors.Is(err, ErrDoorOffline) {
		t.Fatalf("a door station connected nowhere: %v, want ErrDoorOffline", err)
	}
	if got := testutil.ToFloat64(ts.hubs[0].metrics.doorOpenings.WithLabelValues(openedByApp)); got != 1 {
		t.Fatalf("openings counted after one that reached nothing: %v, want 1", got)
	}
}
