package directory

import (
	"slices"

	"go.etcd.io/bbolt"
)

// writeBuffer holds the writes of one Apply until its ops have all passed,
// then hands them to bbolt sorted by key. bbolt splits nodes only at
// commit, so random-order inserts into one transaction move the same
// growing node over and over (a 60,000-user provisioning batch took 17 s);
// sorted inserts append. Reads inside the batch see the buffered writes
// first. The writer only ever reads single keys, never ranges, which is
// what keeps this buffer a plain map.
type writeBuffer struct {
	buckets map[string]map[string]bufferedValue
}

// bufferedValue is a pending Put, or a Delete when deleted is set.
type bufferedValue struct {
	value   []byte
	deleted bool
}

func newWriteBuffer() *writeBuffer {
	return &writeBuffer{buckets: make(map[string]map[string]bufferedValue)}
}

// lookup returns the buffered state of a key, if it has one.
func (b *writeBuffer) lookup(bucket string, k []byte) (bufferedValue, bool) {
	v, ok := b.buckets[bucket][string(k)]
	return v, ok
}

func (b *writeBuffer) set(bucket string, k []byte, v bufferedValue) {
	m := b.buckets[bucket]
	if m == nil {
		m = make(map[string]bufferedValue)
		b.buckets[bucket] = m
	}
	m[string(k)] = v
}

// flush writes the buffer to tx, bucket by bucket, in key order.
func (b *writeBuffer) flush(tx *bbolt.Tx) error {
	for name, m := range b.buckets {
		bk := tx.Bucket([]byte(name))
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := m[k]
			var err error
			if v.deleted {
				err = bk.Delete([]byte(k))
			} else {
				err = bk.Put([]byte(k), v.value)
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}
