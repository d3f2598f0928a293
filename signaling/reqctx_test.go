package signaling

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestRequestContext: a message's context behaves as
// context.WithTimeout(context.Background(), timeout) would, done at its
// deadline or when the request ends, and starts no timer until something
// asks for Done.
func TestRequestContext(t *testing.T) {
	t.Run("deadline", func(t *testing.T) {
		before := time.Now()
		r := newRequestContext(time.Now().Add(50 * time.Millisecond))
		defer r.stop()
		if d, ok := r.Deadline(); !ok || d.Before(before.Add(50*time.Millisecond)) || d.After(time.Now().Add(50*time.Millisecond)) {
			t.Fatalf("Deadline() = %v, %v; want about now+50ms, true", d, ok)
		}
		if err := r.Err(); err != nil {
			t.Fatalf("Err() before the deadline = %v", err)
		}
		if r.made.Load() {
			t.Fatal("Err started a timer")
		}
		select {
		case <-r.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed at the deadline")
		}
		wantDone(t, r, context.DeadlineExceeded)
	})
	t.Run("deadline passed, Done never asked", func(t *testing.T) {
		r := newRequestContext(time.Now().Add(time.Millisecond))
		defer r.stop()
		time.Sleep(5 * time.Millisecond)
		wantDone(t, r, context.DeadlineExceeded)
	})
	t.Run("stopped before Done", func(t *testing.T) {
		r := newRequestContext(time.Now().Add(time.Hour))
		r.stop()
		wantDone(t, r, context.Canceled)
	})
	t.Run("stopped after Done", func(t *testing.T) {
		r := newRequestContext(time.Now().Add(time.Hour))
		done := r.Done()
		r.stop()
		if r.Done() != done {
			t.Fatal("Done changed")
		}
		wantDone(t, r, context.Canceled)
	})
	t.Run("children", func(t *testing.T) {
		r := newRequestContext(time.Now().Add(time.Hour))
		child, cancel := context.WithCancel(context.WithValue(r, ctxKey{}, 1))
		defer cancel()
		if child.Value(ctxKey{}) != 1 || r.Value(ctxKey{}) != nil {
			t.Fatal("values")
		}
		r.stop()
		select {
		case <-child.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("a child is not done when the request ends")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		r := newRequestContext(time.Now().Add(20 * time.Millisecond))
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				if i%2 == 0 {
					<-r.Done()
				} else {
					for r.Err() == nil {
						time.Sleep(time.Millisecond)
					}
				}
			})
		}
		wg.Wait()
		r.stop()
		wantDone(t, r, context.DeadlineExceeded) // it passed before stop
	})
}

// wantDone checks that r ended with want: Err says so, and Done is closed
// already (a context whose Err is not nil is done).
func wantDone(t *testing.T, r *requestContext, want error) {
	t.Helper()
	if err := r.Err(); !errors.Is(err, want) {
		t.Fatalf("Err() = %v, want %v", err, want)
	}
	select {
	case <-r.Done():
	default:
		t.Fatalf("Err() = %v but Done is open", want)
	}
}

type ctxKey struct{}

// BenchmarkRequestContext: a message's context made and ended, as dispatch
// does, with the timer heaps holding 10,000 other timers (a node's idle
// connections' heartbeats): context.WithTimeout (the baseline) against
// requestContext, which starts no timer when nothing waits on Done.
func BenchmarkRequestContext(b *testing.B) {
	for i := range 10_000 {
		t := time.AfterFunc(time.Hour+time.Duration(i)*time.Millisecond, func() {})
		b.Cleanup(func() { t.Stop() })
	}
	b.Run("WithTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if ctx.Err() != nil {
				b.Fatal("done early")
			}
			cancel()
		}
	})
	b.Run("requestContext", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			r := newRequestContext(time.Now().Add(5 * time.Second))
			if r.Err() != nil {
				b.Fatal("done early")
			}
			r.stop()
		}
	})
}
