package kv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/internal/ctxsleep"
)

// Key layout. Every key carries the hash tag {kv}, so one Redis Cluster
// shard holds them all and MULTI/EXEC covers any set of them.
const (
	// redisVersionKey counts commits (INCR in every write transaction). An
	// Update that read anything WATCHes it, so a commit by another node
	// between its reads and its EXEC makes it run again.
	redisVersionKey = "{kv}:version"
	// redisTablePrefix + table name: a hash of key → value, for the keys
	// with no "/". A key "<part>/<rest>" lives in the hash of its part,
	// redisTablePrefix + table + "/" + part (tableHash), so that a scan of
	// one part (one site's log entries, one site's codes) reads that part
	// only, not every part's records.
	redisTablePrefix = "{kv}:t:"
	// redisPartsPrefix + table name: the set of the table's parts.
	redisPartsPrefix = "{kv}:parts:"
	// redisScanCount is the HSCAN batch size.
	redisScanCount = 512
	// redisMaxAttempts bounds how often an Update is retried when other
	// writers keep committing between its reads and its commit.
	redisMaxAttempts = 50
)

// ErrContention is returned when an Update kept losing to other writers.
var ErrContention = errors.New("kv: too much write contention; try again")

// Redis is the shared Store: one hash per table in a single Redis or a Cluster.
type Redis struct {
	// Immutable after construction.
	rdb redis.UniversalClient

	// moved: MoveToParts has finished here, so no key with a part is left
	// in a table's single hash (nothing writes one there since), and reads
	// look in the parts only.
	moved atomic.Bool
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store on rdb.
func NewRedis(rdb redis.UniversalClient) *Redis { return &Redis{rdb: rdb} }

// moveToPart moves keys (ARGV: key, part, key, part, …) of a table's
// single hash (KEYS[1]) into their parts' hashes (KEYS[4], KEYS[5], …),
// noting the parts in the table's set (KEYS[2]), each only if the single
// hash still holds it: the value moved is the one there now, never an
// older one read before another node moved it, and then changed or
// deleted it. A commit of a move counts as one (KEYS[3], the version).
var moveToPart = redis.NewScript(`
local n = 0
for i = 1, #ARGV, 2 do
  local v = redis.call("HGET", KEYS[1], ARGV[i])
  if v then
    redis.call("HSET", KEYS[3 + (i + 1) / 2], ARGV[i], v)
    redis.call("SADD", KEYS[2], ARGV[i + 1])
    redis.call("HDEL", KEYS[1], ARGV[i])
    n = n + 1
  end
end
if n > 0 then redis.call("INCR", KEYS[3]) end
return n`)

// MoveToParts moves the keys with a part ("<part>/<rest>") that a foyer of
// before the parts kept in the single hash of each of tables into the
// hashes of their parts. Until it has finished, reads look in both (and
// writes take a key's old copy out of the single hash), so it runs while
// the store is in use (`foyer serve` starts it once Redis answers); it is
// safe on several nodes at once and to run again. Once it has returned,
// reads on this node look in the parts only.
func (r *Redis) MoveToParts(ctx context.Context, tables ...string) error {
	for _, table := range tables {
		single := redisTablePrefix + table
		for moved := int64(1); moved > 0; { // until a whole pass moves nothing
			moved = 0
			err := hscan(ctx, r.rdb, single, "*/*", func(kvs []string) error {
				if len(kvs) == 0 {
					return nil
				}
				keys := []string{single, redisPartsPrefix + table, redisVersionKey}
				var args []any
				for i := 0; i+1 < len(kvs); i += 2 {
					part, _ := partOf(kvs[i])
					keys = append(keys, tableHash(table, kvs[i]))
					args = append(args, kvs[i], part)
				}
				n, err := moveToPart.Run(ctx, r.rdb, keys, args...).Int64()
				moved += n
				return err
			})
			if err != nil {
				return fmt.Errorf("kv: moving %s into its parts: %w", table, err)
			}
		}
	}
	r.moved.Store(true)
	return nil
}

// hscan calls fn with each batch of field, value pairs that HSCAN returns
// of hash's fields matching match, until the scan is done.
func hscan(ctx context.Context, c redisCmds, hash, match string, fn func(kvs []string) error) error {
	var cursor uint64
	for {
		kvs, next, err := c.HScan(ctx, hash, cursor, match, redisScanCount).Result()
		if err != nil {
			return err
		}
		if err := fn(kvs); err != nil {
			return err
		}
		if cursor = next; cursor == 0 {
			return nil
		}
	}
}

// View implements Store: reads go straight to Redis.
func (r *Redis) View(ctx context.Context, fn func(Tx) error) error {
	return fn(&redisTx{ctx: ctx, c: r.rdb, single: !r.moved.Load()})
}

// Update implements Store. Reads are done under WATCH of the version key;
// writes are buffered and committed with MULTI/EXEC together with INCR of
// the version, and fn runs again if another commit came in between.
func (r *Redis) Update(ctx context.Context, fn func(Tx) error) error {
	for attempt := range redisMaxAttempts {
		err := r.rdb.Watch(ctx, func(rtx *redis.Tx) error {
			t := &redisTx{ctx: ctx, c: rtx, writes: make(map[string]map[string][]byte), single: !r.moved.Load()}
			if err := fn(t); err != nil {
				return err
			}
			if len(t.writes) == 0 {
				return nil
			}
			if !t.read {
				// Blind writes conflict with nothing: no need to retry them.
				if err := rtx.Unwatch(ctx).Err(); err != nil {
					return err
				}
			}
			_, err := rtx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				for table, kv := range t.writes {
					parts := make(map[string]struct{})
					for k, v := range kv {
						h := tableHash(table, k)
						part, ok := partOf(k)
						if ok && t.single {
							// A copy of before the parts goes: it would
							// come back as the key's value (Get, Scan).
							p.HDel(ctx, redisTablePrefix+table, k)
						}
						if v == nil {
							p.HDel(ctx, h, k)
							continue
						}
						p.HSet(ctx, h, k, v)
						if ok {
							parts[part] = struct{}{}
						}
					}
					if len(parts) > 0 {
						members := make([]any, 0, len(parts))
						for part := range parts {
							members = append(members, part)
						}
						p.SAdd(ctx, redisPartsPrefix+table, members...)
					}
				}
				p.Incr(ctx, redisVersionKey)
				return nil
			})
			return err
		}, redisVersionKey)
		if errors.Is(err, redis.TxFailedErr) {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
			continue
		}
		return err
	}
	return ErrContention
}

// backoff waits a random time before the next attempt of a transaction
// that lost: up to 1 ms after the first loss, doubling to at most 32 ms.
// Retrying at once lets the same fast writers win again and again, so that
// under load one writer could lose all its attempts.
func backoff(ctx context.Context, attempt int) error {
	ceiling := time.Millisecond << min(attempt, 5)
	return ctxsleep.Sleep(ctx, rand.N(ceiling)+1)
}

// redisCmds is what a transaction reads through: the client (View) or the
// WATCHing connection (Update).
type redisCmds interface {
	HGet(ctx context.Context, key, field string) *redis.StringCmd
	HScan(ctx context.Context, key string, cursor uint64, match string, count int64) *redis.ScanCmd
	SMembers(ctx context.Context, key string) *redis.StringSliceCmd
}

// partOf returns the part of a key "<part>/<rest>", and whether it has one.
func partOf(key string) (string, bool) {
	part, _, ok := strings.Cut(key, "/")
	return part, ok
}

// tableHash is the hash that holds key of table.
func tableHash(table, key string) string {
	if part, ok := partOf(key); ok {
		return redisTablePrefix + table + "/" + part
	}
	return redisTablePrefix + table
}

// scanHashes returns the hashes that may hold keys of table starting with
// prefix: the one part a prefix with a "/" names, else the hash of the
// keys with no part and those of the parts that start with prefix.
func (t *redisTx) scanHashes(table, prefix string) ([]string, error) {
	if _, ok := partOf(prefix); ok {
		if t.single {
			return []string{redisTablePrefix + table, tableHash(table, prefix)}, nil // the part last: its values win
		}
		return []string{tableHash(table, prefix)}, nil
	}
	parts, err := t.c.SMembers(t.ctx, redisPartsPrefix+table).Result()
	if err != nil {
		return nil, fmt.Errorf("kv: listing the parts of %s: %w", table, err)
	}
	hashes := []string{redisTablePrefix + table}
	for _, part := range parts {
		if strings.HasPrefix(part, prefix) {
			hashes = append(hashes, redisTablePrefix+table+"/"+part)
		}
	}
	return hashes, nil
}

type redisTx struct {
	ctx context.Context // the transaction's; it lives only as long as fn
	c   redisCmds
	// writes buffers an Update's writes (nil value: delete); nil in View.
	writes map[string]map[string][]byte
	// read is set by the first read from Redis.
	read bool
	// single: keys with a part may still be in their table's single hash,
	// where a foyer of before the parts wrote them (MoveToParts has not
	// finished here): read there too when the part has no such key.
	single bool
}

func (t *redisTx) Get(table, key string) ([]byte, error) {
	if v, ok := t.writes[table][key]; ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return v, nil
	}
	t.read = true
	h := tableHash(table, key)
	v, err := t.c.HGet(t.ctx, h, key).Bytes()
	if errors.Is(err, redis.Nil) && t.single && h != redisTablePrefix+table {
		v, err = t.c.HGet(t.ctx, redisTablePrefix+table, key).Bytes()
	}
	if errors.Is(err, redis.Nil) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("kv: reading %s: %w", table, err)
	}
	return v, nil
}

func (t *redisTx) put(table, key string, v []byte) error {
	if t.writes == nil {
		return errors.New("kv: write in a read-only transaction")
	}
	if t.writes[table] == nil {
		t.writes[table] = make(map[string][]byte)
	}
	t.writes[table][key] = v
	return nil
}

func (t *redisTx) Put(table, key string, value []byte) error {
	if value == nil {
		value = []byte{}
	}
	return t.put(table, key, value)
}

func (t *redisTx) Delete(table, key string) error { return t.put(table, key, nil) }

func (t *redisTx) Scan(table, prefix string, fn func(string, []byte) error) error {
	t.read = true
	hashes, err := t.scanHashes(table, prefix)
	if err != nil {
		return err
	}
	found := make(map[string][]byte)
	for _, h := range hashes {
		err := hscan(t.ctx, t.c, h, globEscape(prefix)+"*", func(kvs []string) error {
			for i := 0; i+1 < len(kvs); i += 2 {
				found[kvs[i]] = []byte(kvs[i+1])
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("kv: scanning %s: %w", table, err)
		}
	}
	for k, v := range t.writes[table] {
		if strings.HasPrefix(k, prefix) {
			found[k] = v
		}
	}
	keys := make([]string, 0, len(found))
	for k, v := range found {
		if v != nil {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn(k, found[k]); err != nil {
			return err
		}
	}
	return nil
}

// globEscape quotes the characters HSCAN MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\^`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
