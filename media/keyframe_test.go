package media

import (
	"sync"
	"testing"
	"time"
)

// fakePLI counts the PLIs a keyframer sends, on a clock the test moves.
type fakePLI struct {
	mu   sync.Mutex
	now  time.Time
	sent int
	done chan struct{} // signalled on each send
}

func newFakePLI() (*fakePLI, *keyframer) {
	f := &fakePLI{now: time.Unix(1000, 0), done: make(chan struct{}, 8)}
	k := newKeyframer(func() bool {
		f.mu.Lock()
		f.sent++
		f.mu.Unlock()
		f.done <- struct{}{}
		return true
	})
	k.now = func() time.Time {
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.now
	}
	return f, k
}

func (f *fakePLI) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fakePLI) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sent
}

func TestKeyframerOnePLIServesViewersUntilTheKeyframe(t *testing.T) {
	f, k := newFakePLI()
	defer k.close()
	k.request()
	f.advance(100 * time.Millisecond)
	k.request()
	f.advance(700 * time.Millisecond) // past the interval, still awaiting
	k.request()
	if n := f.count(); n != 1 {
		t.Fatalf("%d PLIs while the first keyframe is awaited, want 1", n)
	}
	f.advance(keyframeWait) // the keyframe never came: ask again
	k.request()
	if n := f.count(); n != 2 {
		t.Fatalf("%d PLIs after the wait, want 2", n)
	}
}

func TestKeyframerDefersARequestInsideTheInterval(t *testing.T) {
	f, k := newFakePLI()
	defer k.close()
	k.request()
	<-f.done
	k.seen() // the keyframe arrived
	f.advance(100 * time.Millisecond)
	k.request() // a new viewer right after: sent at the interval's end
	k.request() // coalesced with it
	if n := f.count(); n != 1 {
		t.Fatalf("%d PLIs inside the interval, want 1", n)
	}
	select {
	case <-f.done:
	case <-time.After(waitFor):
		t.Fatal("the deferred PLI was never sent")
	}
	if n := f.count(); n != 2 {
		t.Fatalf("%d PLIs, want 2", n)
	}
}

func TestKeyframerCloseStopsDeferredPLI(t *testing.T) {
	f, k := newFakePLI()
	k.request()
	k.seen()
	k.request() // deferred by ~minPLIInterval
	k.close()
	time.Sleep(minPLIInterval + 100*time.Millisecond) // proving absence needs the time to pass
	if n := f.count(); n != 1 {
		t.Fatalf("%d PLIs after close, want 1", n)
	}
}

func TestIsKeyframe(t *testing.T) {
	tests := []struct {
		name string
		mime string
		p    []byte
		want bool
	}{
		{"vp8 key", "video/VP8", []byte{0x10, 0x00, 0x9d}, true},
		{"vp8 inter", "video/VP8", []byte{0x10, 0x01}, false},
		{"vp8 not start", "video/VP8", []byte{0x00, 0x00}, false},
		{"vp8 ext picture id 15 bit", "video/vp8", []byte{0x90, 0x80, 0x81, 0x02, 0x00}, true},
		{"vp8 ext pid tl0 tid", "video/VP8", []byte{0x90, 0xe0, 0x05, 0x01, 0x02, 0x01}, false},
		{"vp8 truncated", "video/VP8", []byte{0x90, 0x80}, false},
		{"h264 idr", "video/H264", []byte{0x65}, true},
		{"h264 sps", "video/H264", []byte{0x67}, true},
		{"h264 slice", "video/H264", []byte{0x41}, false},
		{"h264 stap-a sps", "video/H264", []byte{0x78, 0x00, 0x02, 0x67, 0x42}, true},
		{"h264 stap-a truncated", "video/H264", []byte{0x78, 0x00}, false},
		{"h264 fu-a idr start", "video/H264", []byte{0x7c, 0x85}, true},
		{"h264 fu-a idr middle", "video/H264", []byte{0x7c, 0x05}, false},
		{"opus", "audio/opus", []byte{0x00}, false},
		{"empty", "video/VP8", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isKeyframe(tt.mime, tt.p); got != tt.want {
				t.Fatalf("isKeyframe(%s, %x) = %v", tt.mime, tt.p, got)
			}
		})
	}
}
