package directory

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/internal/ctxsleep"
)

// Timings of the change subscription.
const (
	// redisPubSubHealthCheck is how long the subscription may stay silent
	// before the store PINGs on it, and then how long the PONG may take:
	// a subscription silent for two intervals is dead (a half-open TCP
	// connection, a node that failed over, a network path that drops
	// packets) and is replaced by a new one. go-redis's own channel health
	// check is not enough: it only notices PINGs that fail to be written,
	// which on a half-open connection takes the kernel's retransmission
	// timeout, many minutes.
	redisPubSubHealthCheck = 3 * time.Second
	// redisResubscribeMin and redisResubscribeMax bound the wait between
	// attempts to subscribe again while Redis cannot be reached.
	redisResubscribeMin = 100 * time.Millisecond
	redisResubscribeMax = 5 * time.Second
	// redisSubscribeWait bounds how long the first Subscribe waits for Redis
	// to confirm the subscription, so that changes committed after
	// Subscribe returns reach it; Subscribe has no context to wait on.
	redisSubscribeWait = 5 * time.Second
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
// redisSubscribeWait, for Redis to confirm. Changes published while a dead
// subscription is being replaced are lost: pub/sub does not queue.
func (r *Redis) Subscribe(fn func(Change)) (cancel func()) {
	r.mu.Lock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	var ps *redis.PubSub
	if r.pubsub == nil && !r.closed {
		ps = r.client.Subscribe(context.Background()) // no channel yet: no I/O under mu
		ctx, stop := context.WithCancel(context.Background())
		r.pubsub, r.stopListen = ps, stop
		r.ready, r.done = make(chan struct{}), make(chan struct{})
		go r.listen(ctx, ps, r.ready, r.done)
	}
	ready := r.ready
	r.mu.Unlock()

	if ps != nil {
		ctx, stop := context.WithTimeout(context.Background(), redisSubscribeWait)
		if err := ps.Subscribe(ctx, r.keys.channel()); err != nil {
			// The listener subscribes again when the connection fails.
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

// listen owns the subscription: it delivers its messages, PINGs it when it
// is silent and replaces it when it is dead, until ctx ends (Close).
func (r *Redis) listen(ctx context.Context, ps *redis.PubSub, ready, done chan struct{}) {
	defer close(done)
	pinged, confirmed := false, false
	wait := redisResubscribeMin
	for {
		msg, err := ps.ReceiveTimeout(ctx, redisPubSubHealthCheck)
		if ctx.Err() != nil {
			return
		}
		var ne net.Error
		switch {
		case err == nil:
			pinged, wait = false, redisResubscribeMin
		case errors.As(err, &ne) && ne.Timeout() && !pinged:
			pinged = true
			pctx, cancel := context.WithTimeout(ctx, redisPubSubHealthCheck)
			_ = ps.Ping(pctx) // any reply, or a message, proves the subscription alive
			cancel()
			continue
		default:
			r.log.Warn("directory: redis changes subscription is dead; subscribing again (changes published meanwhile are lost)", "err", err)
			if ps = r.resubscribe(ctx, ps, wait); ps == nil {
				return
			}
			pinged, wait = false, min(2*wait, redisResubscribeMax)
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && !confirmed {
				confirmed = true
				close(ready)
			}
		case *redis.Message:
			var rm redisMessage
			if err := json.Unmarshal([]byte(m.Payload), &rm); err != nil {
				r.log.Warn("directory: undecodable message on the redis changes channel", "err", err)
				continue
			}
			if rm.Origin != r.origin {
				r.notify(rm.Changes)
			}
		}
	}
}

// resubscribe closes a dead subscription and, after wait, opens a new one
// in its place; it returns nil when ctx ends first.
func (r *Redis) resubscribe(ctx context.Context, old *redis.PubSub, wait time.Duration) *redis.PubSub {
	_ = old.Close()
	if ctxsleep.Sleep(ctx, wait) != nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, redisSubscribeWait)
	ps := r.client.Subscribe(sctx, r.keys.channel()) // an error is retried by the next receive
	cancel()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		_ = ps.Close()
		return nil
	}
	r.pubsub = ps
	return ps
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
