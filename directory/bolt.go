package directory

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// boltLockTimeout is how long OpenBolt waits for the file lock: long enough
// to ride out a process that is just exiting, short enough that a second
// `foyer` on the same data directory fails at once instead of hanging.
const boltLockTimeout = 200 * time.Millisecond

// Bolt is the embedded Store: one bbolt file, used by a single process (a
// single-node `foyer serve`, or `foyer seed` while no server runs).
type Bolt struct {
	// Immutable after construction.
	db   *bbolt.DB
	path string

	// The answers of the reads a call makes, kept between writes.
	cache *readCache

	// Guarded by mu.
	mu      sync.Mutex
	subs    map[int]func(Change)
	nextSub int
}

var _ Store = (*Bolt)(nil)

// OpenBolt opens (creating if needed) the store file at path. If another
// process holds the file, it fails within boltLockTimeout with an error
// wrapping ErrLocked.
func OpenBolt(path string) (*Bolt, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("directory: creating %s: %w", dir, err)
		}
	}
	if err := checkWhole(path); err != nil {
		return nil, err
	}
	db, err := openCurrent(path)
	if err != nil {
		return nil, openError(path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("directory: preparing store %s: %w", path, err)
	}
	return &Bolt{db: db, path: path, cache: newReadCache(), subs: make(map[int]func(Change))}, nil
}

// openCurrent opens the store file at path with bbolt, and opens it again
// if another file took its name while bbolt waited for the lock: a `foyer
// admin restore` puts a backup in place holding the lock of the store it
// replaces, which a serve starting meanwhile has opened and waits on, and
// would otherwise serve under the name the restore keeps it by (its changes
// lost to the next start, the backup not served). A store file bbolt makes
// (none was there) is taken as it is.
func openCurrent(path string) (*bbolt.DB, error) {
	for range 3 {
		before, _ := os.Stat(path)
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: boltLockTimeout})
		if err != nil {
			return nil, err
		}
		after, err := os.Stat(path)
		if err == nil && (before == nil || os.SameFile(before, after)) {
			return db, nil
		}
		_ = db.Close()
	}
	return nil, errors.New("another file keeps taking its name")
}

// openError is what opening the store file at path failed with: ErrLocked
// when another process holds it.
func openError(path string, err error) error {
	if errors.Is(err, bolterrors.ErrTimeout) {
		return fmt.Errorf("directory: store %s is in use by another process (is a `foyer serve` running on it?): %w", path, ErrLocked)
	}
	return fmt.Errorf("directory: opening store %s: %w", path, err)
}

// Close releases the file (and its lock).
func (b *Bolt) Close() error {
	return b.db.Close()
}

// Subscribe calls fn after every committed Apply, synchronously, before
// Apply returns: once per distinct site (Change.Site) and once per distinct
// device (Change.Device) the batch touched.
func (b *Bolt) Subscribe(fn func(Change)) (cancel func()) {
	b.mu.Lock()
	id := b.nextSub
	b.nextSub++
	b.subs[id] = fn
	b.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			delete(b.subs, id)
			b.mu.Unlock()
		})
	}
}

// notify delivers changes to the subscribers, outside the lock.
func (b *Bolt) notify(changes []Change) {
	if len(changes) == 0 {
		return
	}
	b.mu.Lock()
	fns := make([]func(Change), 0, len(b.subs))
	for _, fn := range b.subs {
		fns = append(fns, fn)
	}
	b.mu.Unlock()
	for _, c := range changes {
		for _, fn := range fns {
			fn(c)
		}
	}
}

// ctxCheckEvery is how many ops Apply runs between checks of ctx, so a
// cancelled bulk import stops promptly without paying for a check per op.
const ctxCheckEvery = 256

// Apply commits ops in one bbolt transaction: all of them or none.
func (b *Bolt) Apply(ctx context.Context, ops ...Op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(ops) == 0 {
		return nil
	}
	var w *boltWriter
	err := b.db.Update(func(tx *bbolt.Tx) error {
		w = newBoltWriter(tx)
		for i, op := range ops {
			if i%ctxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := w.apply(op); err != nil {
				return &OpError{Index: i, Op: op, Err: err}
			}
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return w.flush()
	})
	b.cache.invalidate() // also after a failed commit: a miss costs little
	if err != nil {
		return err
	}
	b.notify(w.changes())
	return nil
}

// view runs fn in a read transaction after checking ctx.
func (b *Bolt) view(ctx context.Context, fn func(r boltReader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(func(tx *bbolt.Tx) error { return fn(newBoltReader(tx)) })
}
