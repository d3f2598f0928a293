package directory

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"
)

// encodeRing is the value of a ring record (redisRingKey).
func encodeRing(ds []Device) string {
	var b strings.Builder
	for i, d := range ds {
		if i > 0 {
			b.WriteByte('\n')
		}
		switch d.Kind {
		case KindApp:
			b.WriteString("a\t" + string(d.ID) + "\t" + string(d.User) + "\t" + d.Name)
		case KindMonitor:
			b.WriteString("m\t" + string(d.ID) + "\t" + d.Name)
		}
	}
	return b.String()
}

// decodeRing parses a ring record of (site, n).
func decodeRing(v string, site SiteID, n Number) ([]Device, error) {
	out := make([]Device, 0, MaxUsersPerNumber+1)
	for line := range strings.SplitSeq(v, "\n") {
		if line == "" {
			continue
		}
		f := strings.SplitN(line, "\t", 4)
		switch {
		case f[0] == "a" && len(f) == 4:
			out = append(out, Device{ID: DeviceID(f[1]), Kind: KindApp, Name: f[3], User: UserID(f[2])})
		case f[0] == "m" && len(f) == 3:
			out = append(out, Device{ID: DeviceID(f[1]), Kind: KindMonitor, Name: f[2], Site: site, Number: n})
		default:
			return nil, fmt.Errorf("directory: redis: corrupt ring record of call ID %s of site %s", n, site)
		}
	}
	return out, nil
}

// rebuildRings rewrites the ring record of every number the batch touched
// from the batch's state, in three pipelined rounds of reads at most: the
// numbers' members and monitors, then the app devices of ringable members.
func (w *redisWriter) rebuildRings(ctx context.Context) error {
	targets := make([]Target, 0, len(w.rings))
	var f redisFetch
	for t := range w.rings {
		targets = append(targets, t)
		f.hget(w.keys.entries(t.Site), string(t.Number))
		f.hgetall(w.keys.members(t.Site, t.Number))
		f.hgetall(w.keys.monitors(t.Site, t.Number))
	}
	if err := w.prefetch(ctx, &f); err != nil {
		return err
	}
	f = redisFetch{}
	for _, t := range targets {
		_, ms, err := w.hgetall(ctx, w.keys.members(t.Site, t.Number))
		if err != nil {
			return err
		}
		for u, v := range ms {
			if ringBit([]byte(v)) == 1 {
				f.hgetall(w.keys.userApps(UserID(u)))
			}
		}
	}
	if err := w.prefetch(ctx, &f); err != nil {
		return err
	}
	for _, t := range targets {
		if err := w.rebuildRing(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// rebuildRing rewrites one ring record: app devices of ringable members by
// user then device ID, then monitors by ID. A deleted entry loses it.
func (w *redisWriter) rebuildRing(ctx context.Context, t Target) error {
	key := w.keys.ring(t.Site, t.Number)
	_, _, ok, err := w.entry(ctx, t.Site, t.Number)
	if err != nil {
		return err
	}
	if !ok {
		w.del(key)
		return nil
	}
	var ds []Device
	users, ms, err := w.hgetall(ctx, w.keys.members(t.Site, t.Number))
	if err != nil {
		return err
	}
	for _, u := range users {
		if ringBit([]byte(ms[u])) == 0 {
			continue
		}
		ids, apps, err := w.hgetall(ctx, w.keys.userApps(UserID(u)))
		if err != nil {
			return err
		}
		for _, id := range ids {
			ds = append(ds, Device{ID: DeviceID(id), Kind: KindApp, Name: apps[id], User: UserID(u)})
		}
	}
	ids, mons, err := w.hgetall(ctx, w.keys.monitors(t.Site, t.Number))
	if err != nil {
		return err
	}
	for _, id := range ids {
		ds = append(ds, Device{ID: DeviceID(id), Kind: KindMonitor, Name: mons[id]})
	}
	w.set(key, encodeRing(ds))
	return nil
}

// Ringable returns the app devices of the ringable members of (site,
// number) and its monitors: one GET of the number's ring record, which
// Apply keeps up to date.
func (r *Redis) Ringable(ctx context.Context, site SiteID, number Number) ([]Device, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, err := r.client.Get(ctx, r.keys.ring(site, number)).Result()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("call ID %s of site %s: %w", number, site, ErrNotFound)
	}
	if err != nil {
		return nil, redisErr(err)
	}
	return decodeRing(v, site, number)
}

// Targets returns the (site, number) pairs d rings for: a monitor its own;
// an app device every ringable membership of its user, ordered by site ID
// (one HGETALL); a door station none.
func (r *Redis) Targets(ctx context.Context, d Device) ([]Target, error) {
	return targetsOf(ctx, d, func(user UserID) ([]Target, error) { return r.userTargets(ctx, user) })
}

// userTargets is what an app device of user rings for: read in a pipeline
// shared with the other hellos of the moment (Targets is a hello's read).
func (r *Redis) userTargets(ctx context.Context, user UserID) ([]Target, error) {
	var all *redis.MapStringStringCmd
	if err := r.helloRead(ctx, func(p redis.Pipeliner) { all = p.HGetAll(ctx, r.keys.userSites(user)) }); err != nil {
		return nil, err
	}
	sites, err := all.Result()
	if err != nil {
		return nil, redisErr(err)
	}
	var out []Target
	for s, v := range sites {
		if n, ringable := decodeUserSite(v); ringable {
			out = append(out, Target{Site: SiteID(s), Number: n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Site < out[j].Site })
	return out, nil
}
