package redistest

import (
	"context"
	"slices"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// Pipelines is a go-redis hook (AddHook) that counts the pipelines a client
// sends that hold one of the named commands (lower case), and so not those
// that set up its connections.
type Pipelines struct {
	names []string
	n     atomic.Int64
}

// CountPipelines returns a hook counting the pipelines holding names.
func CountPipelines(names ...string) *Pipelines { return &Pipelines{names: names} }

// Count is how many such pipelines went out so far.
func (p *Pipelines) Count() int64 { return p.n.Load() }

// DialHook implements redis.Hook.
func (p *Pipelines) DialHook(next redis.DialHook) redis.DialHook { return next }

// ProcessHook implements redis.Hook.
func (p *Pipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

// ProcessPipelineHook implements redis.Hook.
func (p *Pipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return slices.Contains(p.names, c.Name()) }) {
			p.n.Add(1)
		}
		return next(ctx, cmds)
	}
}
