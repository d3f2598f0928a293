package main

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// storeErrors is a go-redis hook on the stores' Redis client (the
// directory's and the accounts' records) that counts the commands and
// pipelines Redis failed into foyer_redis_errors_total{op="store"}, beside
// the router's own operations. The counter comes from the router, which
// owns that family and is made after the stores: until then (and in the
// admin commands, which have no metrics) nothing is counted.
type storeErrors struct {
	counter atomic.Pointer[prometheus.Counter]
}

// countInto starts counting into c.
func (h *storeErrors) countInto(c prometheus.Counter) { h.counter.Store(&c) }

func (h *storeErrors) count() {
	if c := h.counter.Load(); c != nil {
		(*c).Inc()
	}
}

// DialHook implements redis.Hook.
func (h *storeErrors) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (h *storeErrors) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if !connectionSetup(cmd) && redisFailed(err) {
			h.count()
		}
		return err
	}
}

// ProcessPipelineHook implements redis.Hook: a pipeline (or transaction)
// is one operation, counted once however many of its commands failed (a
// connection that fails fails each of them).
func (h *storeErrors) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return !connectionSetup(c) && redisFailed(c.Err()) }) {
			h.count()
		}
		return err
	}
}

// connectionSetup reports whether cmd is one go-redis sends as it sets up
// a connection, and whose failure it expects from older servers and
// ignores (HELLO for RESP3, CLIENT SETINFO and the like); the stores send
// neither.
func connectionSetup(cmd redis.Cmder) bool {
	return cmd.Name() == "hello" || cmd.Name() == "client"
}

// redisFailed reports whether err is Redis failing a command rather than
// an answer: not a missing key (redis.Nil), an optimistic transaction that
// lost its race to another write (redis.TxFailedErr: it is run again), a
// script not yet loaded (NOSCRIPT: go-redis loads it and runs it again),
// nor a request that went away (context.Canceled).
func redisFailed(err error) bool {
	switch {
	case err == nil, errors.Is(err, redis.Nil), errors.Is(err, redis.TxFailedErr), errors.Is(err, context.Canceled):
		return false
	case redis.HasErrorPrefix(err, "NOSCRIPT"):
		return false
	}
	return true
}
