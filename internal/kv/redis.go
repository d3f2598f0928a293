package kv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
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
	// redisTablePrefix + table name: a hash of key → value.
	redisTablePrefix = "{kv}:t:"
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
}

var _ Store = (*Redis)(nil)

// NewRedis returns a Store on rdb.
func NewRedis(rdb redis.UniversalClient) *Redis { return &Redis{rdb: rdb} }

// View implements Store: reads go straight to Redis.
func (r *Redis) View(ctx context.Context, fn func(Tx) error) error {
	return fn(&redisTx{ctx: ctx, c: r.rdb})
}

// Update implements Store. Reads are done under WATCH of the version key;
// writes are buffered and committed with MULTI/EXEC together with INCR of
// the version, and fn runs again if another commit came in between.
func (r *Redis) Update(ctx context.Context, fn func(Tx) error) error {
	for attempt := range redisMaxAttempts {
		err := r.rdb.Watch(ctx, func(rtx *redis.Tx) error {
			t := &redisTx{ctx: ctx, c: rtx, writes: make(map[string]map[string][]byte)}
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
					h := redisTablePrefix + table
					for k, v := range kv {
						if v == nil {
							p.HDel(ctx, h, k)
						} else {
							p.HSet(ctx, h, k, v)
						}
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
}

type redisTx struct {
	ctx context.Context // the transaction's; it lives only as long as fn
	c   redisCmds
	// writes buffers an Update's writes (nil value: delete); nil in View.
	writes map[string]map[string][]byte
	// read is set by the first read from Redis.
	read bool
}

func (t *redisTx) Get(table, key string) ([]byte, error) {
	if v, ok := t.writes[table][key]; ok {
		if v == nil {
			return nil, ErrNotFound
		}
		return v, nil
	}
	t.read = true
	v, err := t.c.HGet(t.ctx, redisTablePrefix+table, key).Bytes()
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
	found := make(map[string][]byte)
	var cursor uint64
	for {
		kvs, next, err := t.c.HScan(t.ctx, redisTablePrefix+table, cursor, globEscape(prefix)+"*", redisScanCount).Result()
		if err != nil {
			return fmt.Errorf("kv: scanning %s: %w", table, err)
		}
		for i := 0; i+1 < len(kvs); i += 2 {
			found[kvs[i]] = []byte(kvs[i+1])
		}
		if cursor = next; cursor == 0 {
			break
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
