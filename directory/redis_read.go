package directory

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// Reads go straight to Redis, one round trip each where the records share
// a hash tag (pipelined), two where an index in one tag points to a record
// in another. Between the tags of one batch being applied a reader may see
// an index before its record (redis_commit.go); such a dangling index
// reads as not found.

// getJSON reads the JSON record under key into out; missing is ErrNotFound
// wrapped with what.
func (r *Redis) getJSON(ctx context.Context, key, what string, out any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return decodeJSON(r.client.Get(ctx, key), key, what, out)
}

// decodeJSON decodes the JSON record a GET of key read into out; missing is
// ErrNotFound wrapped with what.
func decodeJSON(get *redis.StringCmd, key, what string, out any) error {
	v, err := record(get, what)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(v), out); err != nil {
		return fmt.Errorf("directory: redis: corrupt record %s: %w", key, err)
	}
	return nil
}

// helloRead runs the commands read queues in the next of the pipelines
// that the reads of a device's hello share (r.hellos).
func (r *Redis) helloRead(ctx context.Context, read func(p redis.Pipeliner)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_ = r.hellos.Do(read) // each command holds its own result or error
	return nil
}

// record is what get read (a record, or an index's ID): ErrNotFound
// wrapped with what when there was nothing, a Redis error as such.
func record(get *redis.StringCmd, what string) (string, error) {
	v, err := get.Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	if err != nil {
		return "", redisErr(err)
	}
	return v, nil
}

// Site returns one site.
func (r *Redis) Site(ctx context.Context, id SiteID) (s Site, err error) {
	err = r.getJSON(ctx, r.keys.site(id), "site "+string(id), &s)
	return s, err
}

// SiteByName finds a site by parent ("" for a top-level site) and name.
func (r *Redis) SiteByName(ctx context.Context, parent SiteID, name string) (Site, error) {
	if err := ctx.Err(); err != nil {
		return Site{}, err
	}
	id, err := record(r.client.HGet(ctx, r.keys.siteNames(parent), name), fmt.Sprintf("site named %q", name))
	if err != nil {
		return Site{}, err
	}
	return r.Site(ctx, SiteID(id))
}

// Sites lists every site, ordered by ID.
func (r *Redis) Sites(ctx context.Context) ([]Site, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ids, err := r.client.HKeys(ctx, r.keys.sites()).Result()
	if err != nil {
		return nil, redisErr(err)
	}
	return jsonRecords[Site](ctx, r, ids, func(id string) string { return r.keys.site(SiteID(id)) }, "site")
}

// jsonRecords is records for JSON documents, each of ids's under key(id).
func jsonRecords[T any](ctx context.Context, r *Redis, ids []string, key func(id string) string, what string) ([]T, error) {
	return records(ctx, r, ids, func(p redis.Pipeliner, id string) *redis.StringCmd {
		return p.Get(ctx, key(id))
	}, func(c *redis.StringCmd, id string) (v T, err error) {
		err = decodeJSON(c, key(id), what+" "+id, &v)
		return v, err
	})
}

// records reads one record for each of ids in one round trip (get queues
// its read) and decodes those found, in ID order (it sorts ids). A record
// not found (decode's ErrNotFound) is left out: deleted since its index
// was read, or listed by a batch not yet fully applied.
func records[T any](ctx context.Context, r *Redis, ids []string, get func(p redis.Pipeliner, id string) *redis.StringCmd, decode func(c *redis.StringCmd, id string) (T, error)) ([]T, error) {
	out := make([]T, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	sort.Strings(ids)
	pipe := r.client.Pipeline()
	cmds := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		cmds[i] = get(pipe, id)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, redisErr(err)
	}
	for i, c := range cmds {
		t, err := decode(c, ids[i])
		switch {
		case errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// ifExists runs read in one round trip with a check that key (the record
// named what) exists, and returns read's command, or ErrNotFound when the
// record does not exist. A read that finds its own key absent (redis.Nil)
// is no error here: the command's Err says so.
func ifExists[C redis.Cmder](ctx context.Context, r *Redis, key, what string, read func(redis.Pipeliner) C) (C, error) {
	var none C
	if err := ctx.Err(); err != nil {
		return none, err
	}
	pipe := r.client.Pipeline()
	exists := pipe.Exists(ctx, key)
	cmd := read(pipe)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return none, redisErr(err)
	}
	if exists.Val() == 0 {
		return none, fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return cmd, nil
}

// listEntries lists the entries of a site in CompareNumbers order, keeping
// those for which keep returns true: one round trip.
func (r *Redis) listEntries(ctx context.Context, site SiteID, keep func(entryHeader) bool) ([]Entry, error) {
	all, err := ifExists(ctx, r, r.keys.site(site), "site "+string(site), func(p redis.Pipeliner) *redis.MapStringStringCmd {
		return p.HGetAll(ctx, r.keys.entries(site))
	})
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(all.Val()))
	for n, v := range all.Val() {
		h, name, err := decodeRedisEntry(v)
		if err != nil {
			return nil, err
		}
		if keep(h) {
			out = append(out, Entry{Site: site, Number: Number(n), Name: name})
		}
	}
	slices.SortFunc(out, func(a, b Entry) int { return CompareNumbers(a.Number, b.Number) })
	return out, nil
}

// Entries lists every call ID of a site, in CompareNumbers order.
func (r *Redis) Entries(ctx context.Context, site SiteID) ([]Entry, error) {
	return r.listEntries(ctx, site, func(entryHeader) bool { return true })
}

// DoorDirectory lists the entries with a ringable member or a monitor, from
// the counters kept on each entry (no scan of members).
func (r *Redis) DoorDirectory(ctx context.Context, site SiteID) ([]Entry, error) {
	return r.listEntries(ctx, site, entryHeader.shown)
}

// UserByEmail finds an app user by e-mail, ignoring case.
func (r *Redis) UserByEmail(ctx context.Context, email string) (User, error) {
	if err := ctx.Err(); err != nil {
		return User{}, err
	}
	e, err := NormalizeEmail(email)
	if err != nil {
		return User{}, fmt.Errorf("user with e-mail %q: %w", email, ErrNotFound)
	}
	id, err := record(r.client.Get(ctx, r.keys.email(e)), "user with e-mail "+e)
	if err != nil {
		return User{}, err
	}
	var u User
	err = r.getJSON(ctx, r.keys.user(UserID(id)), "user with e-mail "+e, &u)
	return u, err
}

// Members lists the memberships of one call ID, ordered by user ID: one round trip.
func (r *Redis) Members(ctx context.Context, site SiteID, number Number) ([]Membership, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pipe := r.client.Pipeline()
	entry := pipe.HExists(ctx, r.keys.entries(site), string(number))
	all := pipe.HGetAll(ctx, r.keys.members(site, number))
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, redisErr(err)
	}
	if !entry.Val() {
		return nil, fmt.Errorf("call ID %s of site %s: %w", number, site, ErrNotFound)
	}
	out := make([]Membership, 0, len(all.Val()))
	for _, v := range all.Val() {
		m, err := decodeMember([]byte(v))
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b Membership) int { return cmp.Compare(a.User, b.User) })
	return out, nil
}

// Memberships lists every membership of a user, ordered by site ID: two
// round trips (the user's index, then the records in their sites).
func (r *Redis) Memberships(ctx context.Context, user UserID) ([]Membership, error) {
	sites, err := ifExists(ctx, r, r.keys.user(user), "user "+string(user), func(p redis.Pipeliner) *redis.MapStringStringCmd {
		return p.HGetAll(ctx, r.keys.userSites(user))
	})
	if err != nil {
		return nil, err
	}
	return records(ctx, r, slices.Collect(maps.Keys(sites.Val())), func(p redis.Pipeliner, s string) *redis.StringCmd {
		n, _ := decodeUserSite(sites.Val()[s])
		return p.HGet(ctx, r.keys.members(SiteID(s), n), string(user))
	}, func(c *redis.StringCmd, s string) (Membership, error) {
		v, err := record(c, "membership in site "+s)
		if err != nil {
			return Membership{}, err
		}
		return decodeMember([]byte(v))
	})
}

// CountMembers returns the number of app users of a site, from a counter:
// one round trip.
func (r *Redis) CountMembers(ctx context.Context, site SiteID) (int, error) {
	count, err := ifExists(ctx, r, r.keys.site(site), "site "+string(site), func(p redis.Pipeliner) *redis.StringCmd {
		return p.Get(ctx, r.keys.count(site))
	})
	if err != nil {
		return 0, err
	}
	if count.Err() != nil {
		return 0, nil
	}
	n, err := strconv.Atoi(count.Val())
	if err != nil {
		return 0, fmt.Errorf("directory: redis: corrupt member count of site %s", site)
	}
	return n, nil
}

// User returns one app user.
func (r *Redis) User(ctx context.Context, id UserID) (u User, err error) {
	err = r.getJSON(ctx, r.keys.user(id), "user "+string(id), &u)
	return u, err
}

// SiteMembers lists every membership of a site: two round trips (the
// site's entries, then every entry's members, pipelined).
func (r *Redis) SiteMembers(ctx context.Context, site SiteID) ([]Membership, error) {
	entries, err := r.Entries(ctx, site)
	if err != nil {
		return nil, err
	}
	pipe := r.client.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(entries))
	for i, e := range entries {
		cmds[i] = pipe.HGetAll(ctx, r.keys.members(site, e.Number))
	}
	if len(cmds) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, redisErr(err)
		}
	}
	var out []Membership
	for _, c := range cmds {
		start := len(out)
		for _, v := range c.Val() {
			m, err := decodeMember([]byte(v))
			if err != nil {
				return nil, err
			}
			out = append(out, m)
		}
		slices.SortFunc(out[start:], func(a, b Membership) int { return cmp.Compare(a.User, b.User) })
	}
	return out, nil
}
