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
	var yaml strings.Builder
	yaml.WriteString(sevenSite)
	names := [][]string{sevenOn(&yaml, "1", ""), sevenOn(&yaml, "2", "b-")} // ID 1 on node A, ID 2 on node B
	ts := newNodes(b, yaml.String(), unlimited(), 2, RedisRouterOptions{})
	door := ts.connectTo(b, 0, "door")
	frames := make([][]chan map[string]any, len(names))
	for node, devices := range names {
		for _, n := range devices {
			ch := make(chan map[string]any, 16)
			frames[node] = append(frames[node], ch)
			go pump(ts.connectTo(b, node, n), ch)
		}
	}
	measure := []func() time.Duration{
		func() time.Duration { return ringOnce(b, door, "1", frames[0]) }, // same-node
		func() time.Duration { return ringOnce(b, door, "2", frames[1]) }, // cross-node
		rawDelivery(b, ts.redis.Addr),
	}
	lat := make([][]time.Duration, len(measure))
	over := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		var got [3]time.Duration
		for k := range measure {
			j := (i + k) % len(measure)
			got[j] = measure[j]()
			lat[j] = append(lat[j], got[j])
		}
		over = append(over, got[1]-got[0])
	}
	b.StopTimer()
	for j, name := range []string{"same", "cross", "raw"} {
		slices.Sort(lat[j])
		b.ReportMetric(quantile(lat[j], 0.50), name+"-p50-ns")
		b.ReportMetric(quantile(lat[j], 0.99), name+"-p99-ns")
	}
	slices.Sort(over)
	b.ReportMetric(quantile(over, 0.50), "overhead-p50-ns")
	b.ReportMetric(quantile(over, 0.50)/quantile(lat[2], 0.50), "overhead-x")
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
	raw := rawDelivery(b, redistest.StartServer(b).Addr)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		lat = append(lat, raw())
	}
	b.StopTimer()
	reportLatency(b, lat)
}
