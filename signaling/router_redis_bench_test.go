package signaling

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/redistest"
)

// BenchmarkCrossNodeRing measures door station `call` on node A → the last
// of 7 `ring` frames read, for an ID whose 7 devices are on node A
// (same-node) and for one whose 7 devices are on node B (cross-node), in
// one two-node cluster on a real redis-server, beside the floor: go-redis
// SPUBLISH of a ring-sized envelope → received by an SSUBSCRIBEd client,
// on the same redis-server. Every iteration measures all three, in an
// order that rotates, so that the machine's drift (other processes, CPU
// frequency) falls on all three alike. Between calls (timer stopped) the
// door station hangs up and the devices read their cancels.
//
// overhead-x is (cross − same) / raw at the median of the iterations'
// own differences: what crossing nodes costs, in units of one raw Redis
// delivery.
func BenchmarkCrossNodeRing(b *testing.B) {
	x := newCrossNodes(b)
	lat := rotate(b, []string{"same", "cross", "raw"},
		func() time.Duration { return ringOnce(b, x.door, "1", x.frames[0]) }, // same-node
		func() time.Duration { return ringOnce(b, x.door, "2", x.frames[1]) }, // cross-node
		rawDelivery(b, x.ts.redis.Addr),
	)
	over := make([]time.Duration, b.N)
	for i := range over {
		over[i] = lat[1][i] - lat[0][i] // the same round's
	}
	slices.Sort(over)
	slices.Sort(lat[2])
	b.ReportMetric(quantile(over, 0.50), "overhead-p50-ns")
	b.ReportMetric(quantile(over, 0.50)/quantile(lat[2], 0.50), "overhead-x")
}

// crossNodes is two nodes sharing a real redis-server: the door station on
// node A, call ID 1 ringing 7 devices on node A and ID 2 ringing 7 on node
// B, each device read by pump into its channel.
type crossNodes struct {
	ts      *testServer
	door    *client
	clients [][]*client     // by node
	frames  [][]chan pumped // by node, as clients
}

func newCrossNodes(b *testing.B) *crossNodes {
	var yaml strings.Builder
	yaml.WriteString(sevenSite)
	names := [][]string{sevenOn(&yaml, "1", ""), sevenOn(&yaml, "2", "b-")}
	x := &crossNodes{ts: newNodes(b, yaml.String(), benchConfig(), 2, RedisRouterOptions{})}
	x.door = x.ts.connectTo(b, 0, "door")
	x.clients = make([][]*client, len(names))
	x.frames = make([][]chan pumped, len(names))
	for node, devices := range names {
		for _, n := range devices {
			c := x.ts.connectTo(b, node, n)
			ch := make(chan pumped, 16)
			x.clients[node] = append(x.clients[node], c)
			x.frames[node] = append(x.frames[node], ch)
			go pump(c, ch)
		}
	}
	return x
}

// BenchmarkCrossNodeCancel measures one device's `answer` → the last of
// the other six devices' `cancel` (answered_elsewhere) read, with the door
// station on node A, for an ID whose 7 devices are on node A (same-node)
// and for one whose devices are on node B (cross-node: the answer crosses
// to the owning node A through Redis, and the cancels cross back). Same
// rotation as BenchmarkCrossNodeRing; between measurements (timer
// stopped) the door station calls and every device rings before the
// answer, and hangs up after it.
func BenchmarkCrossNodeCancel(b *testing.B) {
	x := newCrossNodes(b)
	rotate(b, []string{"same", "cross"},
		func() time.Duration { return cancelOnce(b, x.door, "1", x.clients[0][0], x.frames[0]) },
		func() time.Duration { return cancelOnce(b, x.door, "2", x.clients[1][0], x.frames[1]) },
	)
}

// cancelOnce: with the timer stopped, door calls to and all 7 devices read
// their ring; then winner (the first of frames) answers, timed until the
// other six have read cancel answered_elsewhere. With the timer stopped
// again, the door hangs up and both ends read what follows.
func cancelOnce(b *testing.B, door *client, to string, winner *client, frames []chan pumped) time.Duration {
	b.Helper()
	b.StopTimer()
	door.send(map[string]any{"type": "call", "to": to})
	for _, ch := range frames {
		if m, ok := <-ch; !ok || m.Type != "ring" {
			b.Fatalf("want ring, got %v", m)
		}
	}
	id := door.expect("calling")["call_id"]
	b.StartTimer()
	start := time.Now()
	winner.send(map[string]any{"type": "answer", "call_id": id})
	for _, ch := range frames[1:] {
		if m, ok := <-ch; !ok || m.Type != "cancel" || m.Reason != "answered_elsewhere" {
			b.Fatalf("want cancel answered_elsewhere, got %v", m)
		}
	}
	took := time.Since(start)
	b.StopTimer()
	if m := <-frames[0]; m.Type != "answered" {
		b.Fatalf("the winner got %v", m)
	}
	door.expect("answered")
	door.send(map[string]any{"type": "hangup", "call_id": id})
	door.expect("ended")
	if m := <-frames[0]; m.Type != "ended" {
		b.Fatalf("the winner got %v", m)
	}
	b.StartTimer()
	return took
}

// rawDelivery returns a func timing one go-redis SPUBLISH of a ring for 7
// devices, encoded as a node encodes it for another, → its receipt by an
// SSUBSCRIBEd client, on the Redis at addr.
func rawDelivery(b *testing.B, addr string) func() time.Duration {
	pub := redis.NewClient(&redis.Options{Addr: addr})
	b.Cleanup(func() { _ = pub.Close() })
	subc := redis.NewClient(&redis.Options{Addr: addr})
	b.Cleanup(func() { _ = subc.Close() })
	ctx := context.Background()
	sub := subc.SSubscribe(ctx, "bench")
	b.Cleanup(func() { _ = sub.Close() })
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		b.Fatal(err)
	}
	msgs := sub.Channel()
	env := envelope{Kind: "deliver", From: "node0", Frame: encode(Ring{
		Type: TypeRing, CallID: "c_node0_abcdefghijklmnop", To: "1", LifetimeMS: 30000, Preview: true,
		From: Caller{DoorStationID: "d_0123456789abcdef", Name: "door", SiteID: "s_0123456789abcdef", SiteName: "Race"},
	})}
	for i := range 7 {
		env.Devices = append(env.Devices, directory.DeviceID(fmt.Sprintf("d_0123456789abcde%d", i)))
	}
	frame, err := env.marshal()
	if err != nil {
		b.Fatal(err)
	}
	return func() time.Duration {
		start := time.Now()
		if err := pub.SPublish(ctx, "bench", frame).Err(); err != nil {
			b.Fatal(err)
		}
		<-msgs
		return time.Since(start)
	}
}

// BenchmarkRedisPubSubRaw is the floor for cross-node delivery alone, on
// a fresh redis-server: rawDelivery, b.N times.
func BenchmarkRedisPubSubRaw(b *testing.B) {
	rotate(b, []string{""}, rawDelivery(b, redistest.StartServer(b).Addr))
}
