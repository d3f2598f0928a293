package directory

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/internal/ctxsleep"
)

// How Apply commits a batch, atomically, on a single Redis as on a Cluster.
//
// A batch may touch several sites and the global indexes: many hash slots,
// which no single Redis transaction (MULTI/EXEC, WATCH, a Lua script) may
// span on a Cluster. So Apply is serialised by a write lock and made
// all-or-nothing by a journal:
//
//  1. Take the lock ({w}:lock, SET NX PX with a random token). The same
//     script numbers the batch (INCR {w}:seq) and returns any journal left
//     by a writer that died after its commit point; that batch is applied
//     first (step 4), so every batch starts from a complete state.
//  2. Read what the ops need (fresh: every writer holds the lock), run
//     them through the rules of rules.go in Go, buffering the writes. A
//     broken rule returns here: nothing was written.
//  3. Commit point: the batch's writes, staged under a key of their own
//     (a plain SET with a TTL), become the journal by one script on {w}
//     that checks the lock is still ours and RENAMEs them. From here the
//     batch will be applied, by us or by the next writer.
//  4. Apply the writes, one script per hash tag (pipelined): the script
//     applies them only if the tag's "applied" counter is below the batch
//     number, then sets it. Writes are absolute values (SET, DEL, HSET,
//     HDEL, never increments), so a replay is harmless, and the counter
//     stops a writer that lost its lock (paused past redisLockTTL) from
//     re-applying an old batch over a newer one.
//  5. Delete the journal and the lock (compare-and-delete), then publish.
//     The lock is released early, keeping the journal, when applying fails.
//
// Trade-offs. Writes are serialised cluster-wide: fine at admin rates. They
// never block reads, except that each tag's script runs alone on its shard:
// a 30,000-op provisioning batch (7,500 users of one site) holds the site's
// shard for about 30 ms. Each tag changes atomically (a site's records
// together, a user's together, a device's together), but a reader may, for
// the instant between two tags' scripts, see a batch applied to one tag and
// not yet to another (say a new device's token before its name index); a
// crash in that instant leaves it so until the next Apply replays the
// journal. The lock is a lease: a writer paused longer than redisLockTTL
// before its commit point loses it and fails cleanly; one paused after it
// is fenced by the applied counters (a paused writer also stops renewing
// its lease, which is why renewal alone cannot be trusted). If the reply to
// step 3 is lost, Apply reports an error although the batch will be
// applied: the same ambiguity as any remote commit.

// Limits and timings of the commit protocol.
const (
	// redisLockTTL bounds how long a dead writer blocks the others. A live
	// writer renews its lease every redisLockRenew, so a long batch (a
	// 30,000-op provisioning batch takes about a second, ten under the race
	// detector) keeps it.
	redisLockTTL   = 10 * time.Second
	redisLockRenew = redisLockTTL / 3
	// redisLockRetryMin and redisLockRetryMax bound the wait between two
	// attempts to take a held lock: short at first, since batches take
	// milliseconds, then capped so waiters do not hammer Redis.
	redisLockRetryMin = time.Millisecond
	redisLockRetryMax = 50 * time.Millisecond
	// redisFinishTimeout bounds the steps after the commit point, which
	// run even when the caller's context ends: the batch is committed.
	redisFinishTimeout = 30 * time.Second
)

// redisAcquireScript takes the lock, numbers the batch and returns any
// journal left behind. KEYS: lock, seq, journal. ARGV: token, TTL in ms.
var redisAcquireScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local seq = redis.call('INCR', KEYS[2])
local j = redis.call('GET', KEYS[3])
return {seq, j or ''}
`)

// redisJournalScript is the commit point: if the lock is still ours, it
// renames the staged journal (written beforehand by a plain SET with a
// TTL, since copying megabytes into a script blocked the shard for 60 ms)
// to the journal and keeps it. KEYS: lock, staged journal, journal.
// ARGV: token.
var redisJournalScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('RENAME', KEYS[2], KEYS[3])
redis.call('PERSIST', KEYS[3])
return 1
`)

// redisReleaseScript deletes the journal (ARGV[2] == '1') and then the
// lock, if the lock is still ours. KEYS: lock, journal. ARGV: token, flag.
var redisReleaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '1' then redis.call('DEL', KEYS[2]) end
redis.call('DEL', KEYS[1])
return 1
`)

// redisRenewScript extends the lease if the lock is still ours. KEYS:
// lock. ARGV: token, TTL in ms.
var redisRenewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
`)

// redisClearJournalScript deletes a replayed journal while keeping the
// lock. KEYS: lock, journal. ARGV: token.
var redisClearJournalScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
return 1
`)

// redisApplyScript applies one tag's writes of batch ARGV[1] unless the
// tag has seen it or a newer one. KEYS[1]: the tag's applied counter,
// KEYS[2…]: the keys written. ARGV[2…]: per write an op, a key index,
// then a field for H and X and a value for S and H.
const redisApplyScript = `
local seq = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') >= seq then return 0 end
local i = 2
while i <= #ARGV do
  local op, k = ARGV[i], KEYS[tonumber(ARGV[i+1])]
  if op == 'S' then redis.call('SET', k, ARGV[i+2]); i = i + 3
  elseif op == 'D' then redis.call('DEL', k); i = i + 2
  elseif op == 'H' then redis.call('HSET', k, ARGV[i+2], ARGV[i+3]); i = i + 4
  elseif op == 'X' then redis.call('HDEL', k, ARGV[i+2]); i = i + 3
  else return redis.error_reply('foyer: unknown write ' .. op) end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`

// errRedisLockLost reports that the write lock expired before the commit point.
var errRedisLockLost = errors.New("directory: redis write lock expired before the batch was committed; nothing was written")

// redisJournal is a committed batch: its number and its writes by tag.
type redisJournal struct {
	Seq    int64
	Groups map[string][]redisWrite
}

// redisLock is a held write lock.
type redisLock struct {
	token   string
	seq     int64
	journal []byte // left by a writer that died after its commit point
	stop    func() // stops renewing the lease
}

// lock takes the write lock, waiting for it until ctx ends.
func (r *Redis) lock(ctx context.Context) (redisLock, error) {
	var tok [16]byte
	_, _ = rand.Read(tok[:])
	l := redisLock{token: hex.EncodeToString(tok[:])}
	keys := []string{r.keys.lock(), r.keys.seq(), r.keys.journal()}
	wait := redisLockRetryMin
	for {
		res, err := redisAcquireScript.Run(ctx, r.client, keys, l.token, redisLockTTL.Milliseconds()).Slice()
		if err == nil && len(res) == 2 {
			seq, _ := res[0].(int64)
			j, _ := res[1].(string)
			l.seq, l.journal = seq, []byte(j)
			l.stop = r.renew(l.token)
			return l, nil
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			return l, redisErr(err)
		}
		if err := ctxsleep.Sleep(ctx, wait); err != nil {
			return l, err
		}
		wait = min(2*wait, redisLockRetryMax)
	}
}

// renew extends the lease of the lock every redisLockRenew until stopped.
// A failed renewal is not fatal: the commit point checks the lock anyway.
func (r *Redis) renew(token string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(redisLockRenew)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				err := redisRenewScript.Run(ctx, r.client, []string{r.keys.lock()}, token, redisLockTTL.Milliseconds()).Err()
				if err != nil && ctx.Err() == nil {
					r.log.Warn("directory: renewing the redis write lock", "err", err)
				}
			}
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
}

// release deletes the lock, and the journal when clear is set, if the lock
// is still ours. It runs on its own deadline: it must happen even when the
// caller's context has ended.
func (r *Redis) release(ctx context.Context, l redisLock, clear bool) error {
	l.stop()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisFinishTimeout)
	defer cancel()
	flag := "0"
	if clear {
		flag = "1"
	}
	err := redisReleaseScript.Run(ctx, r.client, []string{r.keys.lock(), r.keys.journal()}, l.token, flag).Err()
	if err != nil {
		return redisErr(err)
	}
	return nil
}

// replay applies the journal a dead writer left behind, then deletes it.
func (r *Redis) replay(ctx context.Context, l redisLock) error {
	j, err := decodeJournal(l.journal)
	if err != nil {
		return err
	}
	if err := r.applyJournal(ctx, j); err != nil {
		return err
	}
	keys := []string{r.keys.lock(), r.keys.journal()}
	if err := redisClearJournalScript.Run(ctx, r.client, keys, l.token).Err(); err != nil {
		return redisErr(err)
	}
	return nil
}

// commit stores the journal of a batch: its commit point.
func (r *Redis) commit(ctx context.Context, l redisLock, j redisJournal) error {
	staged := r.keys.stagedJournal(l.token)
	if err := r.client.Set(ctx, staged, encodeJournal(j), redisLockTTL).Err(); err != nil {
		return redisErr(err)
	}
	keys := []string{r.keys.lock(), staged, r.keys.journal()}
	ok, err := redisJournalScript.Run(ctx, r.client, keys, l.token).Int()
	if err != nil {
		return redisErr(err)
	}
	if ok != 1 {
		return errRedisLockLost
	}
	return nil
}

// applyJournal runs the apply script once per tag of j, in one pipeline.
func (r *Redis) applyJournal(ctx context.Context, j redisJournal) error {
	tags := make([]string, 0, len(j.Groups))
	for tag := range j.Groups {
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	seq := strconv.FormatInt(j.Seq, 10)
	pipe := r.client.Pipeline()
	for _, tag := range tags {
		keys, args := r.applyArgs(tag, seq, j.Groups[tag])
		pipe.Eval(ctx, redisApplyScript, keys, args...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return redisErr(err)
	}
	return nil
}

// applyArgs encodes one tag's writes for redisApplyScript.
func (r *Redis) applyArgs(tag, seq string, ws []redisWrite) ([]string, []any) {
	keys := []string{r.keys.applied(tag)}
	index := make(map[string]string)
	args := make([]any, 0, 1+4*len(ws))
	args = append(args, seq)
	for _, w := range ws {
		i, ok := index[w.Key]
		if !ok {
			keys = append(keys, w.Key)
			i = strconv.Itoa(len(keys))
			index[w.Key] = i
		}
		args = append(args, string(w.Op), i)
		switch w.Op {
		case 'S':
			args = append(args, w.Value)
		case 'H':
			args = append(args, w.Field, w.Value)
		case 'X':
			args = append(args, w.Field)
		}
	}
	return keys, args
}
