package keylimit

import (
	"testing"
	"time"
)

// TestPerKey: each key has its own bucket: one key spent does not hold
// another back, and says how long until it may go again.
func TestPerKey(t *testing.T) {
	l := New[string](1, 2, time.Minute)
	now := time.Now()
	for range 2 {
		if ok, _ := l.Allow("anna", now); !ok {
			t.Fatal("refused within the burst")
		}
	}
	if ok, wait := l.Allow("anna", now); ok || wait <= 0 || wait > time.Second {
		t.Fatalf("past the burst: %v, wait %v; want refused for up to a second", ok, wait)
	}
	if ok, _ := l.Allow("bram", now); !ok {
		t.Fatal("another key held back by the first")
	}
	if ok, _ := l.Allow("anna", now.Add(time.Second)); !ok {
		t.Fatal("refused a second later, with a token back")
	}
}

// TestKeepsRecent: a key seen within its idle time keeps its bucket
// through a sweep; forgotten, it would get a fresh burst at every sweep,
// whatever its rate.
func TestKeepsRecent(t *testing.T) {
	l := New[string](0.01, 1, time.Minute)
	now := time.Now()
	if ok, _ := l.Allow("a", now); !ok {
		t.Fatal("the first was refused")
	}
	if ok, _ := l.Allow("a", now.Add(sweepEvery+time.Second)); ok {
		t.Fatal("a key seen within its idle time was forgotten at a sweep, and let in with a fresh burst")
	}
}

// TestForgetsIdle: idle keys are dropped, so many keys seen once do not
// grow memory without end.
func TestForgetsIdle(t *testing.T) {
	l := New[int](1, 1, time.Minute)
	now := time.Now()
	for i := range 1000 {
		l.Allow(i, now)
	}
	if n := l.Len(); n != 1000 {
		t.Fatalf("%d keys, want 1000", n)
	}
	l.Allow(-1, now.Add(2*time.Minute))
	if n := l.Len(); n != 1 {
		t.Fatalf("%d keys after the idle ones expired, want 1", n)
	}
}
