package directory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Apply commits ops atomically under the rules of rules.go, with the same
// outcome as Bolt.Apply; see redis_commit.go for how the batch is made
// all-or-nothing across hash slots. Local subscribers are called before
// Apply returns; other nodes hear of the changes through pub/sub.
func (r *Redis) Apply(ctx context.Context, ops ...Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	l, err := r.lock(ctx)
	if err != nil {
		return fmt.Errorf("directory: taking the redis write lock: %w", err)
	}
	released := false
	defer func() {
		if !released {
			_ = r.release(ctx, l, false) // keeping any journal; else the lease expires
		}
	}()
	if len(l.journal) > 0 {
		if err := r.replay(ctx, l); err != nil {
			return fmt.Errorf("directory: completing an interrupted batch: %w", err)
		}
	}
	w := newRedisWriter(r.client, r.keys)
	if err := w.run(ctx, ops); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	j := redisJournal{Seq: l.seq, Groups: w.writes()}
	if err := r.commit(ctx, l, j); err != nil {
		return err
	}
	// The batch is committed: finish it whatever happens to ctx.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisFinishTimeout)
	defer cancel()
	if err := r.applyJournal(fctx, j); err != nil {
		return fmt.Errorf("directory: batch committed but not fully applied (the next Apply completes it): %w", err)
	}
	released = true
	_ = r.release(fctx, l, true) // else the lease expires; a replay is fenced
	r.publish(fctx, w.changes())
	return nil
}

// redisWriter runs ops against a redisBatch, mirroring boltWriter rule by
// rule, and records what they touched for Subscribe and for the ring
// records to rebuild.
type redisWriter struct {
	*redisBatch
	changeSet
	keys  redisKeys
	rings map[Target]bool // ring records to rebuild
}

func newRedisWriter(c redis.UniversalClient, k redisKeys) *redisWriter {
	return &redisWriter{
		redisBatch: newRedisBatch(c),
		keys:       k,
		rings:      make(map[Target]bool),
	}
}

// run prefetches what ops read, applies them in order and rebuilds the
// ring records they touched.
func (w *redisWriter) run(ctx context.Context, ops []Op) error {
	var f redisFetch
	for _, op := range ops {
		w.plan(&f, op)
	}
	if err := w.prefetch(ctx, &f); err != nil {
		return err
	}
	for i, op := range ops {
		if i%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if err := w.apply(ctx, op); err != nil {
			return &OpError{Index: i, Op: op, Err: err}
		}
	}
	return w.rebuildRings(ctx)
}

// apply dispatches one op.
func (w *redisWriter) apply(ctx context.Context, op Op) error {
	switch op := op.(type) {
	case PutSite:
		if op.Was != nil {
			cur, err := w.site(ctx, op.Site.ID)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if err := checkWas("site "+string(op.Site.ID), op.Was, cur, err == nil, equal); err != nil {
				return err
			}
		}
		return w.putSite(ctx, op.Site)
	case PutEntry:
		return w.putEntry(ctx, op.Entry)
	case DeleteEntry:
		return w.deleteEntry(ctx, op.Site, op.Number)
	case PutUser:
		return w.putUser(ctx, op.User)
	case PutMembership:
		if op.Was != nil {
			cur, found, err := w.membership(ctx, op.Membership.Site, op.Membership.User)
			if err != nil {
				return err
			}
			if err := checkWas(membershipName(op.Membership), op.Was, cur, found, equal); err != nil {
				return err
			}
		}
		return w.putMembership(ctx, op.Membership)
	case DeleteMembership:
		return w.deleteMembership(ctx, op.Site, op.User)
	case PutDevice:
		if op.Was != nil {
			cur, found, err := w.device(ctx, op.Device.ID)
			if err != nil {
				return err
			}
			if err := checkWas("device "+string(op.Device.ID), op.Was, cur, found, sameDevice); err != nil {
				return err
			}
		}
		return w.putDevice(ctx, op.Device)
	case DeleteDevice:
		return w.deleteDevice(ctx, op.ID)
	case SetDeviceToken:
		return w.setDeviceToken(ctx, op.ID, op.Token)
	default:
		return fmt.Errorf("unknown op %T: %w", op, ErrInvalid)
	}
}

// plan lists the keys op reads that are known before it runs.
func (w *redisWriter) plan(f *redisFetch, op Op) {
	k := w.keys
	switch op := op.(type) {
	case PutSite:
		f.get(k.site(op.Site.ID))
		if op.Site.ParentID != "" {
			f.get(k.site(op.Site.ParentID))
		}
		f.hget(k.siteNames(op.Site.ParentID), op.Site.Name)
	case PutEntry:
		f.get(k.site(op.Entry.Site))
		f.hget(k.entries(op.Entry.Site), string(op.Entry.Number))
	case DeleteEntry:
		f.hget(k.entries(op.Site), string(op.Number))
	case PutUser:
		if e, err := NormalizeEmail(op.User.Email); err == nil {
			f.get(k.email(e))
		}
		f.get(k.user(op.User.ID))
	case PutMembership:
		m := op.Membership
		f.get(k.site(m.Site))
		f.get(k.user(m.User))
		f.get(k.count(m.Site))
		f.hget(k.entries(m.Site), string(m.Number))
		f.hget(k.userSites(m.User), string(m.Site))
		f.hgetall(k.members(m.Site, m.Number))
		f.hgetall(k.userApps(m.User))
	case DeleteMembership:
		f.hget(k.userSites(op.User), string(op.Site))
	case PutDevice:
		d := op.Device
		f.get(k.device(d.ID))
		f.get(k.deviceToken(d.ID))
		f.get(k.deviceName(d.Kind, deviceScope(d), d.Name))
		switch d.Kind {
		case KindApp:
			f.get(k.user(d.User))
			f.hgetall(k.userApps(d.User))
			f.hgetall(k.userSites(d.User))
		case KindMonitor:
			f.hget(k.entries(d.Site), string(d.Number))
			f.hgetall(k.monitors(d.Site, d.Number))
		case KindDoorStation:
			f.get(k.site(d.Site))
			for _, s := range d.CallSites {
				f.get(k.site(s))
			}
		}
	case DeleteDevice:
		f.get(k.device(op.ID))
		f.get(k.deviceToken(op.ID))
	case SetDeviceToken:
		f.get(k.device(op.ID))
		f.get(k.deviceToken(op.ID))
		f.get(k.token(op.Token))
	}
}

// getJSON decodes the JSON record under k into out and reports whether it exists.
func (w *redisWriter) getJSON(ctx context.Context, k string, out any) (bool, error) {
	v, ok, err := w.get(ctx, k)
	if err != nil || !ok {
		return false, err
	}
	if err := json.Unmarshal([]byte(v), out); err != nil {
		return true, fmt.Errorf("directory: redis: corrupt record %s: %w", k, err)
	}
	return true, nil
}

// setJSON buffers v as JSON under k.
func (w *redisWriter) setJSON(k string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.set(k, string(data))
	return nil
}
