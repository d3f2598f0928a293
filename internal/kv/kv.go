// Package kv is the small transactional record store behind foyer's account
// data (admin accounts, sessions, app credentials, access codes, logs): named
// tables of key → bytes, read and written in transactions. Two
// implementations exist, like directory.Store's: Bolt (a bucket tree in the
// embedded store's file) and Redis (a hash per table, and per part of a
// table whose keys are "<part>/<rest>", every key under one hash tag so a
// Redis Cluster can run a transaction over all of them).
//
// Account data is small beside the directory (thousands of records, not
// millions), so a table scan with a key prefix is an acceptable query.
package kv

import (
	"context"
	"errors"
)

// ErrNotFound is returned by Tx.Get for a missing key.
var ErrNotFound = errors.New("kv: not found")

// Store runs transactions.
type Store interface {
	// View runs fn in a read-only transaction.
	View(ctx context.Context, fn func(Tx) error) error
	// Update runs fn in a read-write transaction: its writes are committed
	// atomically when fn returns nil and discarded when it returns an error.
	// Updates are serialised, so a read in fn sees every earlier commit.
	Update(ctx context.Context, fn func(Tx) error) error
}

// Tx reads and writes within one transaction. A Tx is valid only during the
// function it was given to; writes are visible to later reads of the same Tx.
type Tx interface {
	// Get returns the value of key in table, or ErrNotFound.
	Get(table, key string) ([]byte, error)
	// Put stores value under key in table.
	Put(table, key string, value []byte) error
	// Delete removes key from table; a missing key is not an error.
	Delete(table, key string) error
	// Scan calls fn for every key of table starting with prefix, in key
	// order; an error from fn stops the scan and is returned.
	Scan(table, prefix string, fn func(key string, value []byte) error) error
}
