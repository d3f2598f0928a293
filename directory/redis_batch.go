package directory

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"
)

// redisBatch is the state one Apply works on: a read-through cache of the
// keys its ops read, with their writes buffered on top. Reads see the
// batch's own writes first; nothing reaches Redis until the whole batch has
// passed every rule (see redis_commit.go). Ops name most of the keys they
// read, so Apply fetches those in one pipeline first (prefetch); the rest
// are read one by one on a miss.
type redisBatch struct {
	client redis.UniversalClient
	strs   map[string]*redisStr
	hashes map[string]*redisHash
}

// redisStr is the known state of a string key or of one hash field: a
// value, or absent (ok false); dirty when the batch wrote it.
type redisStr struct {
	val       string
	ok, dirty bool
}

// redisHash is the known part of a hash: some fields, or all of them.
type redisHash struct {
	fields map[string]*redisStr
	all    bool // every field of the hash is in fields
}

func newRedisBatch(c redis.UniversalClient) *redisBatch {
	return &redisBatch{client: c, strs: make(map[string]*redisStr), hashes: make(map[string]*redisHash)}
}

func (b *redisBatch) hash(k string) *redisHash {
	h := b.hashes[k]
	if h == nil {
		h = &redisHash{fields: make(map[string]*redisStr)}
		b.hashes[k] = h
	}
	return h
}

// get reads a string key.
func (b *redisBatch) get(ctx context.Context, k string) (string, bool, error) {
	if s, ok := b.strs[k]; ok {
		return s.val, s.ok, nil
	}
	v, err := b.client.Get(ctx, k).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", false, redisErr(err)
	}
	b.strs[k] = &redisStr{val: v, ok: err == nil}
	return v, err == nil, nil
}

// hget reads one field of a hash.
func (b *redisBatch) hget(ctx context.Context, k, f string) (string, bool, error) {
	h := b.hash(k)
	if s, ok := h.fields[f]; ok {
		return s.val, s.ok, nil
	}
	if h.all {
		return "", false, nil
	}
	v, err := b.client.HGet(ctx, k, f).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", false, redisErr(err)
	}
	h.fields[f] = &redisStr{val: v, ok: err == nil}
	return v, err == nil, nil
}

// hgetall reads every field of a hash, in field order.
func (b *redisBatch) hgetall(ctx context.Context, k string) ([]string, map[string]string, error) {
	h := b.hash(k)
	if !h.all {
		m, err := b.client.HGetAll(ctx, k).Result()
		if err != nil {
			return nil, nil, redisErr(err)
		}
		h.merge(m)
	}
	out := make(map[string]string, len(h.fields))
	names := make([]string, 0, len(h.fields))
	for f, s := range h.fields {
		if s.ok {
			out[f] = s.val
			names = append(names, f)
		}
	}
	sort.Strings(names)
	return names, out, nil
}

// merge adds the fields read from Redis under those the batch already knows.
func (h *redisHash) merge(m map[string]string) {
	for f, v := range m {
		if _, known := h.fields[f]; !known {
			h.fields[f] = &redisStr{val: v, ok: true}
		}
	}
	h.all = true
}

func (b *redisBatch) set(k, v string) { b.strs[k] = &redisStr{val: v, ok: true, dirty: true} }
func (b *redisBatch) del(k string)    { b.strs[k] = &redisStr{dirty: true} }
func (b *redisBatch) hset(k, f, v string) {
	b.hash(k).fields[f] = &redisStr{val: v, ok: true, dirty: true}
}
func (b *redisBatch) hdel(k, f string) { b.hash(k).fields[f] = &redisStr{dirty: true} }

// redisFetch lists keys to read in one pipeline.
type redisFetch struct {
	strs    []string
	fields  [][2]string // key, field
	hashAll []string
}

func (f *redisFetch) get(k string)      { f.strs = append(f.strs, k) }
func (f *redisFetch) hget(k, fl string) { f.fields = append(f.fields, [2]string{k, fl}) }
func (f *redisFetch) hgetall(k string)  { f.hashAll = append(f.hashAll, k) }

// prefetch reads, in one pipeline, what f lists and the batch does not know
// yet. On a cluster the pipeline is split by node.
func (b *redisBatch) prefetch(ctx context.Context, f *redisFetch) error {
	pipe := b.client.Pipeline()
	var gets []*redis.StringCmd
	var getKeys []string
	for _, k := range f.strs {
		if _, known := b.strs[k]; !known {
			b.strs[k] = &redisStr{} // placeholder: not queued twice
			gets = append(gets, pipe.Get(ctx, k))
			getKeys = append(getKeys, k)
		}
	}
	var hgets []*redis.StringCmd
	var hgetKeys [][2]string
	for _, kf := range f.fields {
		h := b.hash(kf[0])
		if _, known := h.fields[kf[1]]; !known && !h.all {
			h.fields[kf[1]] = &redisStr{}
			hgets = append(hgets, pipe.HGet(ctx, kf[0], kf[1]))
			hgetKeys = append(hgetKeys, kf)
		}
	}
	alls := make(map[string]*redis.MapStringStringCmd)
	for _, k := range f.hashAll {
		if _, queued := alls[k]; !queued && !b.hash(k).all {
			alls[k] = pipe.HGetAll(ctx, k)
		}
	}
	if pipe.Len() == 0 {
		return nil
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		// Forget the placeholders: this batch is abandoned anyway.
		return redisErr(err)
	}
	for i, c := range gets {
		v, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return redisErr(err)
		}
		*b.strs[getKeys[i]] = redisStr{val: v, ok: err == nil}
	}
	for i, c := range hgets {
		v, err := c.Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return redisErr(err)
		}
		*b.hash(hgetKeys[i][0]).fields[hgetKeys[i][1]] = redisStr{val: v, ok: err == nil}
	}
	for k, c := range alls {
		m, err := c.Result()
		if err != nil {
			return redisErr(err)
		}
		b.hash(k).merge(m)
	}
	return nil
}

// redisWrite is one buffered write, in the form the commit script takes.
type redisWrite struct {
	Op                byte // 'S' set, 'D' delete, 'H' hash set, 'X' hash delete
	Key, Field, Value string
}

// writes lists the batch's writes grouped by hash tag, in a stable order.
func (b *redisBatch) writes() map[string][]redisWrite {
	out := make(map[string][]redisWrite)
	add := func(w redisWrite) {
		tag := redisTag(w.Key)
		out[tag] = append(out[tag], w)
	}
	keys := make([]string, 0, len(b.strs))
	for k, s := range b.strs {
		if s.dirty {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if s := b.strs[k]; s.ok {
			add(redisWrite{Op: 'S', Key: k, Value: s.val})
		} else {
			add(redisWrite{Op: 'D', Key: k})
		}
	}
	keys = keys[:0]
	for k := range b.hashes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h := b.hashes[k]
		fields := make([]string, 0, len(h.fields))
		for f, s := range h.fields {
			if s.dirty {
				fields = append(fields, f)
			}
		}
		sort.Strings(fields)
		for _, f := range fields {
			if s := h.fields[f]; s.ok {
				add(redisWrite{Op: 'H', Key: k, Field: f, Value: s.val})
			} else {
				add(redisWrite{Op: 'X', Key: k, Field: f})
			}
		}
	}
	return out
}

// redisErr wraps an error of the Redis client; context errors stay
// recognisable with errors.Is.
func redisErr(err error) error {
	return fmt.Errorf("directory: redis: %w", err)
}
