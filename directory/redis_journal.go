package directory

import (
	"encoding/binary"
	"errors"
	"sort"
)

// The journal (redisJournalKey) in binary: the batch number, then per tag
// its name and writes, every string prefixed by its length, all integers
// unsigned varints. A full provisioning batch journals about 100,000
// writes; a general-purpose encoder (gob) spent seconds growing buffers on
// it.

// errCorruptJournal reports a journal that does not decode.
var errCorruptJournal = errors.New("directory: redis: corrupt journal")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeJournal encodes j, tags in order.
func encodeJournal(j redisJournal) []byte {
	size := 16
	tags := make([]string, 0, len(j.Groups))
	for tag, ws := range j.Groups {
		tags = append(tags, tag)
		size += len(tag) + 8
		for _, w := range ws {
			size += len(w.Key) + len(w.Field) + len(w.Value) + 16
		}
	}
	sort.Strings(tags)
	b := make([]byte, 0, size)
	b = binary.AppendUvarint(b, uint64(j.Seq))
	b = binary.AppendUvarint(b, uint64(len(tags)))
	for _, tag := range tags {
		ws := j.Groups[tag]
		b = appendString(b, tag)
		b = binary.AppendUvarint(b, uint64(len(ws)))
		for _, w := range ws {
			b = append(b, w.Op)
			b = appendString(b, w.Key)
			b = appendString(b, w.Field)
			b = appendString(b, w.Value)
		}
	}
	return b
}

// journalReader decodes what encodeJournal wrote; the first error sticks.
type journalReader struct {
	b   []byte
	err error
}

func (r *journalReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errCorruptJournal
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *journalReader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errCorruptJournal
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *journalReader) string() string {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.err = errCorruptJournal
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// count reads a length, refusing one larger than the bytes left could hold.
func (r *journalReader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.err = errCorruptJournal
		return 0
	}
	return int(n)
}

// decodeJournal decodes a journal.
func decodeJournal(b []byte) (redisJournal, error) {
	r := &journalReader{b: b}
	j := redisJournal{Seq: int64(r.uvarint()), Groups: make(map[string][]redisWrite)}
	tags := r.count()
	for range tags {
		tag := r.string()
		n := r.count()
		ws := make([]redisWrite, 0, n)
		for range n {
			ws = append(ws, redisWrite{Op: r.byte(), Key: r.string(), Field: r.string(), Value: r.string()})
		}
		if r.err != nil {
			return j, r.err
		}
		j.Groups[tag] = ws
	}
	if r.err == nil && len(r.b) > 0 {
		r.err = errCorruptJournal
	}
	return j, r.err
}
