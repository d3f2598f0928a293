// Package redisbatch sends the Redis commands that many goroutines issue at
// the same moment in shared pipelines: a group commit. While one pipeline
// is in flight, the commands queued meanwhile wait and go out together in
// the next one, so a burst of N callers costs a few round trips instead of
// N, and does not queue N callers on the client's connection pool. A lone
// caller costs one round trip, as a plain command does.
//
// No goroutine of its own: the caller that finds nothing in flight sends
// the pipeline, and hands the next one to the first caller queued behind
// it, so that no caller sends more than one.
package redisbatch

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Pipeliner is the part of a go-redis client a Batcher uses.
type Pipeliner interface {
	Pipeline() redis.Pipeliner
}

// Batcher groups the commands of concurrent callers into pipelines.
type Batcher struct {
	rdb     Pipeliner
	max     int           // callers per pipeline
	timeout time.Duration // bounds one pipeline's round trip

	mu    sync.Mutex
	busy  bool    // guarded by mu; a pipeline is in flight
	queue []*call // guarded by mu; callers waiting for the next one
}

// call is one caller's place in the queue.
type call struct {
	add  func(redis.Pipeliner)
	err  error
	wake chan bool // gets one word: true, lead the next pipeline; false, sent
}

// New returns a Batcher sending at most size callers' commands per
// pipeline (at least one), each pipeline bounded by timeout (a go-redis
// client honours that only with ContextTimeoutEnabled, as foyer's are).
func New(rdb Pipeliner, size int, timeout time.Duration) *Batcher {
	return &Batcher{rdb: rdb, max: max(1, size), timeout: timeout}
}

// Do has add put its commands in the next pipeline, and returns once that
// pipeline ran. The commands' own results are in the commands add queued;
// the error is the pipeline's (a missing key, redis.Nil, is not one).
func (b *Batcher) Do(add func(p redis.Pipeliner)) error {
	c := &call{add: add, wake: make(chan bool, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	if b.busy {
		b.mu.Unlock()
		if lead := <-c.wake; !lead { // sent in a pipeline another caller led
			return c.err
		}
		b.mu.Lock() // first in the queue when the last one finished
	}
	b.busy = true
	n := min(len(b.queue), b.max)
	batch := b.queue[:n:n]
	b.queue = b.queue[n:]
	if len(b.queue) == 0 {
		b.queue = nil // let the backing array go once drained
	}
	b.mu.Unlock()

	b.send(batch)

	b.mu.Lock()
	if len(b.queue) == 0 {
		b.busy = false
	} else {
		b.queue[0].wake <- true
	}
	b.mu.Unlock()
	return c.err
}

// send runs the batch's commands in one pipeline and releases its callers.
func (b *Batcher) send(batch []*call) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	pipe := b.rdb.Pipeline()
	for _, c := range batch {
		c.add(pipe)
	}
	_, err := pipe.Exec(ctx)
	if errors.Is(err, redis.Nil) {
		err = nil
	}
	for _, c := range batch {
		c.err = err
		c.wake <- false // the leader's own goes unread
	}
}
