package signaling

// The other nodes' calls in progress, for the admin portal: a query to
// every node heard from, answered with its calls of the site.

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
)

// liveAnswer is one node's answer to a live query: its calls of the
// site, as JSON.
type liveAnswer struct {
	node  string
	calls []byte
}

// LiveElsewhere implements Router: it asks every other node heard from
// within LeaseTTL for its calls of site ("live"), and waits for their
// answers ("live_calls") until ctx ends. A node that nobody receives for
// and whose alive key has gone has stopped, and its calls with it: it is
// not waited for. The others that do not answer in time are unanswered.
func (r *RedisRouter) LiveElsewhere(ctx context.Context, site directory.SiteID) (calls []LiveCall, unanswered []string) {
	nodes := r.nodesHeard(time.Now(), r.node)
	if len(nodes) == 0 {
		return nil, nil
	}
	ask := randomID(9)
	answers := make(chan liveAnswer, len(nodes))
	r.liveMu.Lock()
	r.liveAsks[ask] = answers
	r.liveMu.Unlock()
	defer func() {
		r.liveMu.Lock()
		delete(r.liveAsks, ask)
		r.liveMu.Unlock()
	}()

	query, err := (&envelope{Kind: "live", From: r.node, Site: site, Ask: ask}).marshal()
	if err != nil {
		return nil, nodes
	}
	pipe := r.rdb.Pipeline()
	received := make([]*redis.IntCmd, len(nodes))
	alive := make([]*redis.DurationCmd, len(nodes))
	for i, n := range nodes {
		received[i] = pipe.SPublish(ctx, nodeChannel(n), query)
		alive[i] = pipe.PTTL(ctx, aliveKey(n))
	}
	if _, err := pipe.Exec(ctx); err != nil {
		r.fail("publish", err) // each node's commands say whether they failed
	}
	waiting := make(map[string]bool, len(nodes))
	for i, n := range nodes {
		rcv, err := received[i].Result()
		switch {
		case err == nil && rcv > 0:
			waiting[n] = true
			r.metrics.forwarded.WithLabelValues("live").Inc()
		case err == nil && alive[i].Err() == nil && alive[i].Val() <= 0:
			// Stopped: gone with its calls.
		default:
			unanswered = append(unanswered, n)
		}
	}
	for len(waiting) > 0 {
		select {
		case a := <-answers:
			if !waiting[a.node] {
				continue
			}
			delete(waiting, a.node)
			var got []LiveCall
			if err := json.Unmarshal(a.calls, &got); err != nil {
				r.metrics.dropped.WithLabelValues("malformed").Inc()
				unanswered = append(unanswered, a.node)
				continue
			}
			calls = append(calls, got...)
		case <-ctx.Done():
			for n := range waiting {
				unanswered = append(unanswered, n)
			}
			return calls, unanswered
		}
	}
	return calls, unanswered
}

// answerLive answers another node's live query (env) with this node's
// calls of the site asked about. Queued like any envelope, but not held
// back when it does not get through: the asker has stopped waiting by
// the time it would be sent again.
func (r *RedisRouter) answerLive(env envelope, n NodeHandler) {
	if env.Site == "" || env.Ask == "" {
		r.metrics.dropped.WithLabelValues("malformed").Inc()
		return
	}
	calls, err := json.Marshal(n.LiveCallsHere(env.Site))
	if err != nil {
		return
	}
	r.publish(env.From, envelope{Kind: "live_calls", Ask: env.Ask, Frame: calls})
}

// takeLiveAnswer hands an answer to the LiveElsewhere waiting for it; one
// that has stopped waiting is gone, and the answer with it.
func (r *RedisRouter) takeLiveAnswer(env envelope) {
	r.liveMu.Lock()
	answers := r.liveAsks[env.Ask]
	r.liveMu.Unlock()
	if answers == nil {
		return
	}
	select {
	case answers <- liveAnswer{node: env.From, calls: env.Frame}:
	default: // more answers than nodes asked: a node answered twice, and its first counts
	}
}

// nodesHeard returns the other nodes heard from within LeaseTTL of now,
// but except.
func (r *RedisRouter) nodesHeard(now time.Time, except string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var nodes []string
	for n, seen := range r.nodeSeen {
		if n != except && n != r.node && now.Sub(seen) < r.opts.LeaseTTL {
			nodes = append(nodes, n)
		}
	}
	return nodes
}
