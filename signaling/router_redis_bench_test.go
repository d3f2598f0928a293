package signaling

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/internal/redistest"
)

// BenchmarkCrossNodeRing measures door station `call` on node A → the last
// of 7 `ring` frames read, with the devices on node B (cross-node) and, as
// the same-run reference, on node A itself (same-node) of the same two-node
// cluster on a real redis-server. Cross minus same is what crossing nodes
// costs, to compare with BenchmarkRedisPubSubRaw. Between iterations (timer
// stopped) the door station hangs up and the devices read their cancels.
func BenchmarkCrossNodeRing(b *testing.B) {
	for _, tc := range []struct {
		name       string
		deviceNode int
	}{{"same-node", 0}, {"cross-node", 1}} {
		b.Run(tc.name, func(b *testing.B) {
			yaml, names := sevenDevices()
			ts := newNodes(b, yaml, unlimited(), 2, RedisRouterOptions{})
			door := ts.connectTo(b, 0, "door")
			frames := make([]chan map[string]any, len(names))
			for i, n := range names {
				frames[i] = make(chan map[string]any, 16)
				go pump(ts.connectTo(b, tc.deviceNode, n), frames[i])
			}
			measureRings(b, door, frames)
		})
	}
}

// BenchmarkRedisPubSubRaw is the floor for cross-node delivery: go-redis
// SPUBLISH of a ring-sized envelope → received by an SSUBSCRIBEd client
// (the router's own path), on a fresh redis-server like the one above.
func BenchmarkRedisPubSubRaw(b *testing.B) {
	srv := redistest.StartServer(b)
	pub := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer pub.Close()
	subc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer subc.Close()
	ctx := context.Background()
	sub := subc.SSubscribe(ctx, "bench")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		b.Fatal(err)
	}
	msgs := sub.Channel()
	frame := []byte(`{"k":"deliver","f":"node0","d":"d_0123456789abcdef","m":{"type":"ring","call_id":"c_node0_abcdefghijklmnop","from":{"door_station_id":"d","name":"door","site_id":"s","site_name":"Race"},"to":"1","lifetime_ms":30000,"preview":true}}`)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := pub.SPublish(ctx, "bench", frame).Err(); err != nil {
			b.Fatal(err)
		}
		<-msgs
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportLatency(b, lat)
}
