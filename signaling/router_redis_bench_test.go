package signaling

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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
	yaml.WriteString("sites:\n  - name: Race\n    door_stations: [door]\n    ids:\n")
	names := map[string][]string{}
	for _, id := range []string{"1", "2"} {
		fmt.Fprintf(&yaml, "      - id: %q\n        name: Seven %s\n        monitors: [monitor-%s]\n        app_users:\n", id, id, id)
		names[id] = []string{"monitor-" + id}
		for i := range 6 {
			fmt.Fprintf(&yaml, "          - email: u%s-%d@example.com\n            devices: [phone-%s-%d]\n", id, i, id, i)
			names[id] = append(names[id], fmt.Sprintf("phone-%s-%d", id, i))
		}
	}
	ts := newNodes(b, yaml.String(), unlimited(), 2, RedisRouterOptions{})
	door := ts.connectTo(b, 0, "door")
	frames := map[string][]chan map[string]any{}
	for id, node := range map[string]int{"1": 0, "2": 1} { // "1": same-node, "2": cross-node
		for _, n := range names[id] {
			ch := make(chan map[string]any, 16)
			frames[id] = append(frames[id], ch)
			go pump(ts.connectTo(b, node, n), ch)
		}
	}
	ring := func(id string) time.Duration {
		start := time.Now()
		door.send(map[string]any{"type": "call", "to": id})
		for _, ch := range frames[id] {
			if m, ok := <-ch; !ok || m["type"] != "ring" {
				b.Fatalf("got %v", m)
			}
		}
		took := time.Since(start)
		b.StopTimer()
		m := door.expect("calling")
		door.send(map[string]any{"type": "hangup", "call_id": m["call_id"]})
		door.expect("ended")
		for _, ch := range frames[id] {
			<-ch // cancel caller_hangup
		}
		b.StartTimer()
		return took
	}
	raw := rawDelivery(b, ts.redis.Addr)
	measure := []func() time.Duration{func() time.Duration { return ring("1") }, func() time.Duration { return ring("2") }, raw}
	lat := make([][]time.Duration, 3) // same, cross, raw
	over := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		var got [3]time.Duration
		for k := range 3 {
			j := (i + k) % 3
			got[j] = measure[j]()
		}
		for j := range 3 {
			lat[j] = append(lat[j], got[j])
		}
		over = append(over, got[1]-got[0])
	}
	b.StopTimer()
	for j, name := range []string{"same", "cross", "raw"} {
		slices.Sort(lat[j])
		b.ReportMetric(float64(lat[j][len(lat[j])/2].Nanoseconds()), name+"-p50-ns")
		b.ReportMetric(float64(lat[j][len(lat[j])*99/100].Nanoseconds()), name+"-p99-ns")
	}
	slices.Sort(over)
	b.ReportMetric(float64(over[len(over)/2].Nanoseconds()), "overhead-p50-ns")
	b.ReportMetric(float64(over[len(over)/2])/float64(lat[2][len(lat[2])/2]), "overhead-x")
}

// rawDelivery returns a func timing one go-redis SPUBLISH of a ring-sized
// envelope → its receipt by an SSUBSCRIBEd client, on the Redis at addr.
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
	frame := []byte(`D node0 d_0123456789abcdef,d_0123456789abcdeg,d_0123456789abcdeh,d_0123456789abcdei,d_0123456789abcdej,d_0123456789abcdek,d_0123456789abcdel` + "\n" +
		`{"type":"ring","call_id":"c_node0_abcdefghijklmnop","from":{"door_station_id":"d","name":"door","site_id":"s","site_name":"Race"},"to":"1","lifetime_ms":30000,"preview":true}`)
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
