package signaling

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestCallQueues: work about one call runs in the order given, one at a
// time; work about another call runs while the first call's is held up;
// wait returns once everything has run, and a call's queue is gone then.
func TestCallQueues(t *testing.T) {
	var q callQueues
	var mu sync.Mutex
	var order []string
	note := func(s string) func() {
		return func() {
			mu.Lock()
			order = append(order, s)
			mu.Unlock()
		}
	}
	release := make(chan struct{})
	q.run("a", func() { <-release; note("a1")() })
	for i := 2; i <= 50; i++ {
		q.run("a", note(fmt.Sprintf("a%d", i)))
	}
	otherDone := make(chan struct{})
	q.run("b", func() { note("b1")(); close(otherDone) })
	select {
	case <-otherDone:
	case <-time.After(readTimeout):
		t.Fatal("call b's work waited for call a's")
	}
	close(release)
	q.wait()
	want := []string{"b1"}
	for i := 1; i <= 50; i++ {
		want = append(want, fmt.Sprintf("a%d", i))
	}
	if !slices.Equal(order, want) {
		t.Fatalf("ran %v, want %v", order, want)
	}
	if len(q.waiting) != 0 {
		t.Fatalf("queues left behind: %v", q.waiting)
	}
	// A call's queue is made again for later work.
	q.run("a", note("a51"))
	q.wait()
	if order[len(order)-1] != "a51" {
		t.Fatalf("later work on a: %v", order)
	}
}
