package directory

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Timings of the change subscription.
const (
	// redisPubSubHealthCheck is how long the subscription may stay silent
	// before go-redis PINGs on it; a PING unanswered within
	// redisPubSubPingTimeout, or any read error, makes go-redis dial a new
	// connection and subscribe again, so a dead subscription (a half-open
	// TCP connection, a failed-over node) is replaced within seconds.
	redisPubSubHealthCheck = 3 * time.Second
	redisPubSubPingTimeout = 2 * time.Second
	// redisSubscribeWait bounds how long the first Subscribe waits for Redis
	// to confirm the subscription, so that changes committed after
	// Subscribe returns reach it; Subscribe has no context to wait on.
	redisSubscribeWait = 5 * time.Second
	// redisPubSubBuffer is how many messages may queue between the Redis
	// connection and the callbacks, which must not block anyway.
	redisPubSubBuffer = 1024
	// redisPublishTimeout bounds publishing the changes of a committed batch.
	redisPublishTimeout = 5 * time.Second
)

// redisMessage is what Apply publishes on the changes channel: the
// changes of one batch and the instance that made them, which skips its
// own messages (it has called its subscribers already).
type redisMessage struct {
	Origin  string   `json:"o"`
	Changes []Change `json:"c"`
}

// Subscribe calls fn after every committed change, made by this instance
// (synchronously, before Apply returns, as Bolt does) or by any other
// instance sharing the Redis (from the subscription's goroutine: once per
// distinct site and once per distinct device a batch touched). The first
// call subscribes this instance to the changes channel and waits, at most
// redisSubscribeWait, for Redis to confirm. Changes published while the
// subscription is being replaced are lost: pub/sub does not queue.
func (r *Redis) Subscribe(fn func(Change)) (cancel func()) {
	r.mu.Lock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	var ps *redis.PubSub
	if r.pubsub == nil && !r.closed {
		ps = r.client.Subscribe(context.Background()) // no channel yet: no I/O under mu
		r.pubsub = ps
		r.done = make(chan struct{})
		r.ready = make(chan struct{})
		ch := ps.ChannelWithSubscriptions(
			redis.WithChannelSize(redisPubSubBuffer),
			redis.WithChannelHealthCheckInterval(redisPubSubHealthCheck),
			redis.WithChannelPingTimeout(redisPubSubPingTimeout))
		go r.listen(ch, r.ready, r.done)
	}
	ready := r.ready
	r.mu.Unlock()

	if ps != nil {
		ctx, stop := context.WithTimeout(context.Background(), redisSubscribeWait)
		if err := ps.Subscribe(ctx, r.keys.channel()); err != nil {
			// go-redis retries on its next reconnect.
			r.log.Warn("directory: subscribing to redis changes", "channel", r.keys.channel(), "err", err)
		}
		stop()
	}
	if ready != nil {
		t := time.NewTimer(redisSubscribeWait)
		select {
		case <-ready:
		case <-t.C:
			r.log.Warn("directory: redis has not confirmed the changes subscription yet", "wait", redisSubscribeWait)
		}
		t.Stop()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			delete(r.subs, id)
			r.mu.Unlock()
		})
	}
}

// listen delivers the messages of the subscription until it is closed.
func (r *Redis) listen(ch <-chan any, ready, done chan struct{}) {
	defer close(done)
	subscribed := false
	for m := range ch {
		switch m := m.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if !subscribed {
				subscribed = true
				close(ready)
				continue
			}
			r.log.Warn("directory: redis changes subscription replaced; changes published meanwhile were missed",
				"channel", m.Channel)
		case *redis.Message:
			var msg redisMessage
			if err := json.Unmarshal([]byte(m.Payload), &msg); err != nil {
				r.log.Warn("directory: undecodable message on the redis changes channel", "err", err)
				continue
			}
			if msg.Origin != r.origin {
				r.notify(msg.Changes)
			}
		}
	}
}

// publish tells the local subscribers, then every other instance, about
// the changes of a committed batch. A failure to publish is logged: the
// batch is committed, and other nodes catch up on their next read.
func (r *Redis) publish(ctx context.Context, changes []Change) {
	if len(changes) == 0 {
		return
	}
	r.notify(changes)
	data, err := json.Marshal(redisMessage{Origin: r.origin, Changes: changes})
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, redisPublishTimeout)
		err = r.client.Publish(ctx, r.keys.channel(), data).Err()
		cancel()
	}
	if err != nil {
		r.log.Warn("directory: publishing committed changes", "changes", len(changes), "err", err)
	}
}

// notify calls the local subscribers, outside the lock.
func (r *Redis) notify(changes []Change) {
	r.mu.Lock()
	fns := make([]func(Change), 0, len(r.subs))
	for _, fn := range r.subs {
		fns = append(fns, fn)
	}
	r.mu.Unlock()
	for _, c := range changes {
		for _, fn := range fns {
			fn(c)
		}
	}
}
