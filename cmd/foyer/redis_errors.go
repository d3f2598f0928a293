package main

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/directory"
)

// storeErrors is a go-redis hook on the stores' Redis client (the
// directory's and the accounts' records) that counts the commands and
// pipelines Redis failed into foyer_redis_errors_total{op="store"}, beside
// the router's own operations, and marks them for the API (markFailure:
// 503 for a Redis out of reach or not serving, 507 for one full). The
// counter comes from the router, which
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
		if connectionSetup(cmd) || !redisFailed(err) {
			return err
		}
		h.count()
		return markFailure(err) // Process sets it on cmd
	}
}

// ProcessPipelineHook implements redis.Hook: a pipeline (or transaction)
// is one operation, counted once however many of its commands failed (a
// connection that fails fails each of them).
func (h *storeErrors) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		failed := false
		for _, c := range cmds {
			if !connectionSetup(c) && redisFailed(c.Err()) {
				failed = true
				c.SetErr(markFailure(c.Err()))
			}
		}
		if failed {
			h.count()
		}
		return markFailure(err)
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

// markFailure marks the Redis failures the API answers apart:
// directory.ErrFull for a write refused for want of memory (OOM), and
// directory.ErrUnavailable for a Redis out of reach (any failure that is
// not a reply of Redis's: no connection, no answer in time) or not serving
// for now (notServing). Other replies (a wrong type, a missing permission)
// are faults, left as they are; so is any answer.
func markFailure(err error) error {
	var reply redis.Error
	switch {
	case !redisFailed(err), errors.Is(err, directory.ErrUnavailable), errors.Is(err, directory.ErrFull):
		return err
	case redis.IsOOMError(err):
		return fmt.Errorf("%w: %w", directory.ErrFull, err)
	case errors.As(err, &reply) && !notServing(err):
		return err
	}
	return fmt.Errorf("%w: %w", directory.ErrUnavailable, err)
}

// notServing reports a reply of a Redis that does not serve for now: it
// is loading its data, read-only or has lost its primary (failing over),
// its cluster is down or resharding, or it refuses more clients.
func notServing(err error) bool {
	return redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) ||
		redis.IsClusterDownError(err) || redis.IsTryAgainError(err) || redis.IsMaxClientsError(err) ||
		redis.IsNoReplicasError(err)
}
