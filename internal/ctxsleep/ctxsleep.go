// Package ctxsleep waits for a while unless a context ends first: the
// pause between retries and between load steps, which must not outlive a
// shutdown.
package ctxsleep

import (
	"context"
	"time"
)

// Sleep waits d, or less if ctx ends first; it then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
