package kv

import (
	"bytes"
	"context"
	"fmt"

	"go.etcd.io/bbolt"
)

// rootBucket holds one nested bucket per table, apart from the directory's
// own buckets in the same file.
var rootBucket = []byte("kv")

// Bolt is the embedded Store, sharing the bbolt file of the directory.
type Bolt struct {
	// Immutable after construction.
	db *bbolt.DB
}

var _ Store = (*Bolt)(nil)

// NewBolt returns a Store on db; the caller keeps db open while it is used.
func NewBolt(db *bbolt.DB) (*Bolt, error) {
	err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(rootBucket)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kv: preparing bucket: %w", err)
	}
	return &Bolt{db: db}, nil
}

// View implements Store.
func (b *Bolt) View(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.View(func(tx *bbolt.Tx) error { return fn(boltTx{tx}) })
}

// Update implements Store.
func (b *Bolt) Update(ctx context.Context, fn func(Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.db.Update(func(tx *bbolt.Tx) error { return fn(boltTx{tx}) })
}

type boltTx struct{ tx *bbolt.Tx }

func (t boltTx) table(name string, create bool) (*bbolt.Bucket, error) {
	root := t.tx.Bucket(rootBucket)
	if b := root.Bucket([]byte(name)); b != nil || !create {
		return b, nil
	}
	return root.CreateBucket([]byte(name))
}

func (t boltTx) Get(table, key string) ([]byte, error) {
	b, _ := t.table(table, false)
	if b == nil {
		return nil, ErrNotFound
	}
	v := b.Get([]byte(key))
	if v == nil {
		return nil, ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (t boltTx) Put(table, key string, value []byte) error {
	b, err := t.table(table, true)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), value)
}

func (t boltTx) Delete(table, key string) error {
	b, _ := t.table(table, false)
	if b == nil {
		return nil
	}
	return b.Delete([]byte(key))
}

func (t boltTx) Scan(table, prefix string, fn func(string, []byte) error) error {
	b, _ := t.table(table, false)
	if b == nil {
		return nil
	}
	c := b.Cursor()
	p := []byte(prefix)
	for k, v := c.Seek(p); k != nil && bytes.HasPrefix(k, p); k, v = c.Next() {
		if err := fn(string(k), bytes.Clone(v)); err != nil {
			return err
		}
	}
	return nil
}
