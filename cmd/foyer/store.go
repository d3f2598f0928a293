package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/ctxsleep"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// storeFile is the embedded store's file inside data_dir.
const storeFile = "foyer.db"

// Redis client timeouts: a node must answer a call with a retryable error
// within a second when Redis is away, so no single Redis operation may wait
// longer than this, and one retry at most. A caller's earlier deadline
// bounds its operation too: the clients honour their contexts' deadlines
// (ContextTimeoutEnabled; go-redis ignores them otherwise), which the
// signalling and store code sets for each request and pipeline.
const (
	redisDialTimeout = 500 * time.Millisecond
	redisIOTimeout   = 500 * time.Millisecond
	redisMaxRetries  = 1
)

// backend is the store the configuration names, and the Redis client it
// runs on (nil for the embedded store).
type backend struct {
	store directory.Store
	rdb   redis.UniversalClient // the router's
	// storeRdb is the stores' own client (directory and records), so that
	// storeErrs counts their failures apart from the router's.
	storeRdb  redis.UniversalClient
	storeErrs *storeErrors
	// records holds the account data beside the directory.
	records kv.Store
	// bolt is the embedded store (store and records are in its file); nil
	// with Redis.
	bolt *directory.Bolt
}

// close releases the store and the Redis client.
func (b *backend) close() {
	_ = b.store.Close()
	if b.rdb != nil {
		_ = b.rdb.Close()
		_ = b.storeRdb.Close()
	}
}

// ping reports whether the shared store answers.
func (b *backend) ping(ctx context.Context) error {
	if b.rdb == nil {
		return nil // the embedded store is a local file held open
	}
	return b.rdb.Ping(ctx).Err()
}

// partMover is a Redis store of account data, which moves data of its
// earlier layout into the per-site hashes (kv.Redis.MoveToParts).
type partMover interface {
	MoveToParts(ctx context.Context, tables ...string) error
}

// moveToParts moves the account data of the earlier layout once, trying
// again every partsRetry while Redis does not answer; meanwhile reads find
// it where it is (kv.Redis).
func moveToParts(ctx context.Context, m partMover, log *slog.Logger) {
	for {
		err := m.MoveToParts(ctx, accounts.Tables()...)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn("moving account data into per-site hashes failed; trying again", "err", err, "in", partsRetry)
		if ctxsleep.Sleep(ctx, partsRetry) != nil {
			return
		}
	}
}

// partsRetry is how long moveToParts waits after a failure.
const partsRetry = 5 * time.Second

// openForCommand opens the directory for a one-off command (seed, admin):
// the configuration its flags load, and a warning on stderr for each
// FOYER_ variable that names no key.
func openForCommand(flags *configFlags, stderr io.Writer) (*backend, error) {
	cfg, err := flags.loadWarning(stderr)
	if err != nil {
		return nil, err
	}
	return openBackend(cfg)
}

// openBackend opens the directory the configuration names. The backend is
// chosen here, once.
func openBackend(cfg Config) (*backend, error) {
	if cfg.Redis.URL != "" || len(cfg.Redis.ClusterAddrs) > 0 {
		rdb, err := redisClient(cfg.Redis)
		if err != nil {
			return nil, err
		}
		srdb, _ := redisClient(cfg.Redis) // the same configuration: no error this time
		errs := &storeErrors{}
		srdb.AddHook(errs)
		s, err := directory.NewRedis(srdb)
		if err != nil {
			_ = rdb.Close()
			_ = srdb.Close()
			return nil, err
		}
		return &backend{store: s, rdb: rdb, storeRdb: srdb, storeErrs: errs, records: kv.NewRedis(srdb)}, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating data_dir: %w", err)
	}
	path := filepath.Join(cfg.DataDir, storeFile)
	s, err := directory.OpenBolt(path)
	if errors.Is(err, directory.ErrLocked) {
		return nil, fmt.Errorf("%w; stop it first, or use its admin API", err) // the error names the file and the process
	}
	if err != nil {
		return nil, err
	}
	records, err := kv.NewBolt(s.DB())
	if err != nil {
		_ = s.Close()
		return nil, err
	}
	return &backend{store: s, bolt: s, records: records}, nil
}

// redisClient builds the client for a single Redis (url) or a Cluster.
func redisClient(c RedisConfig) (redis.UniversalClient, error) {
	if len(c.ClusterAddrs) > 0 {
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs:       c.ClusterAddrs,
			DialTimeout: redisDialTimeout, ReadTimeout: redisIOTimeout, WriteTimeout: redisIOTimeout,
			MaxRetries: redisMaxRetries, ContextTimeoutEnabled: true,
		}), nil
	}
	opts, err := redis.ParseURL(c.URL)
	if err != nil {
		return nil, fmt.Errorf("redis.url: %w", err)
	}
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = redisDialTimeout, redisIOTimeout, redisIOTimeout
	opts.MaxRetries, opts.ContextTimeoutEnabled = redisMaxRetries, true
	return redis.NewClient(opts), nil
}
