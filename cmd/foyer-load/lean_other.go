//go:build !linux

package main

import (
	"errors"
	"time"
)

// leanAvailable: the lean client needs Linux's epoll; --client auto takes
// the library client here.
const leanAvailable = false

// leanFleet is the lean client of lean_linux.go, which needs Linux's epoll.
type leanFleet struct{}

func newLeanFleet([]*client, int, time.Duration) (*leanFleet, error) {
	return nil, errors.New("the lean client needs Linux: use --client gorilla")
}

func (*leanFleet) connectAll(bool, time.Time) connectResults { return connectResults{} }
func (*leanFleet) dropAll()                                  {}
func (*leanFleet) lostCounts() map[string]int                { return nil }
func (*leanFleet) stop()                                     {}
