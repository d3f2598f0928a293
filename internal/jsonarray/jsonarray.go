// Package jsonarray keeps lists in JSON responses arrays: a nil slice
// encodes as null, which a client iterating over the list would have to
// check for first.
package jsonarray

// Of returns s, or an empty slice for nil, so that s encodes as [] rather
// than null.
func Of[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
