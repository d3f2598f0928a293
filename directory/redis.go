package directory

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/internal/redisbatch"
)

// DefaultRedisPrefix starts every key and channel of a Redis store unless
// RedisKeyPrefix says otherwise.
const DefaultRedisPrefix = "foyer:"

// maxRedisPrefixLen bounds the key prefix, which is repeated in every key.
const maxRedisPrefixLen = 64

// The pipelines of hello reads (Redis.hellos): at most helloBatch reads
// each, bounded by helloBatchTimeout (the Redis client's own timeouts bound
// each read further).
const (
	helloBatch        = 256
	helloBatchTimeout = 5 * time.Second
)

// Redis is the shared Store: a directory kept in Redis (a single instance
// or a Redis Cluster) by every node of a foyer cluster. Reads go straight
// to Redis; the call hot path (Ringable, DeviceByToken) is one round trip.
// Writes are serialised cluster-wide and atomic (redis_commit.go); the key
// layout is documented in redis_keys.go.
type Redis struct {
	// Immutable after construction.
	client redis.UniversalClient
	keys   redisKeys
	log    *slog.Logger
	origin string // random ID of this instance in published changes
	// hellos groups the reads of devices saying hello at the same moment
	// into shared pipelines: after a network break every device of a node
	// says hello within seconds, and a round trip each queued thousands on
	// the client's pool.
	hellos *redisbatch.Batcher

	// Guarded by mu.
	mu         sync.Mutex
	subs       map[int]func(Change)
	nextSub    int
	pubsub     *redis.PubSub // nil until the first Subscribe; replaced by the listener
	stopListen func()        // ends the listener
	closed     bool
	ready      chan struct{} // closed when Redis has confirmed the subscription
	done       chan struct{} // closed when the pub/sub loop has returned
}

var _ Store = (*Redis)(nil)

// RedisOption configures NewRedis.
type RedisOption func(*redisConfig) error

type redisConfig struct {
	prefix string
	log    *slog.Logger
}

// RedisKeyPrefix sets the prefix of every key and channel (default
// DefaultRedisPrefix), so that several directories, or tests, can share
// one Redis. It may not contain '{' or '}', which would break the hash
// tags that place keys on Cluster slots.
func RedisKeyPrefix(p string) RedisOption {
	return func(c *redisConfig) error {
		if strings.ContainsAny(p, "{}") || len(p) > maxRedisPrefixLen {
			return fmt.Errorf("directory: redis key prefix %q must have at most %d characters and no '{' or '}': %w",
				p, maxRedisPrefixLen, ErrInvalid)
		}
		c.prefix = p
		return nil
	}
}

// RedisLogger sets the logger of the store's background work (the pub/sub
// subscription, publishing); by default nothing is logged.
func RedisLogger(l *slog.Logger) RedisOption {
	return func(c *redisConfig) error {
		if l == nil {
			return fmt.Errorf("directory: nil logger: %w", ErrInvalid)
		}
		c.log = l
		return nil
	}
}

// NewRedis returns a store kept in Redis through client, which may be a
// *redis.Client or a *redis.ClusterClient. It does no I/O. The caller owns
// client: Close does not close it.
func NewRedis(client redis.UniversalClient, opts ...RedisOption) (*Redis, error) {
	if client == nil {
		return nil, fmt.Errorf("directory: nil redis client: %w", ErrInvalid)
	}
	c := redisConfig{prefix: DefaultRedisPrefix, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if err := o(&c); err != nil {
			return nil, err
		}
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Redis{
		client: client,
		keys:   redisKeys{prefix: c.prefix},
		log:    c.log,
		origin: hex.EncodeToString(id[:]),
		hellos: redisbatch.New(client, helloBatch, helloBatchTimeout),
		subs:   make(map[int]func(Change)),
	}, nil
}

// Close stops the pub/sub subscription, if any, and waits for its
// listener. Later Subscribe calls register callbacks that only local writes
// reach. Close does not close the client.
func (r *Redis) Close() error {
	r.mu.Lock()
	r.closed = true
	ps, stop, done := r.pubsub, r.stopListen, r.done
	r.pubsub = nil
	r.mu.Unlock()
	if ps == nil {
		return nil
	}
	stop()
	_ = ps.Close() // unblocks the listener's receive; it may have closed it already
	<-done
	return nil
}
