package signaling

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// holdingHandler is the NodeHandler of a router under test: it records
// the messages and leaves it is handed, in the order it handles them, and
// holds up the handling of the messages about one call until released.
type holdingHandler struct {
	hold    CallID
	release chan struct{}
	handled chan string // each record, as it is made

	mu  sync.Mutex
	got []string // guarded by mu
}

func (h *holdingHandler) record(s string) {
	h.mu.Lock()
	h.got = append(h.got, s)
	h.mu.Unlock()
	h.handled <- s
}

func (h *holdingHandler) RemoteMessage(_ string, _ directory.Device, _ string, frame []byte) {
	msg, err := DecodeInbound(frame)
	if err != nil {
		h.record("malformed")
		return
	}
	if msg.CallID == h.hold {
		<-h.release
	}
	h.record(fmt.Sprintf("%s %s %s", msg.Type, msg.CallID, msg.Ref))
}

func (h *holdingHandler) RemoteLeft(call CallID, _ directory.DeviceID, _ string, _ EndReason) {
	h.record("left " + string(call))
}
func (h *holdingHandler) RemoteJoin(CallID, directory.Device, string)              {}
func (h *holdingHandler) RemoteMoved(directory.Device, []directory.Target, string) {}
func (h *holdingHandler) RemoteForgotten(call CallID, _ directory.DeviceID, _ string) {
	h.record("forgotten " + string(call))
}
func (h *holdingHandler) Unrung(CallID) []directory.Device          { return nil }
func (h *holdingHandler) LiveCallsHere(directory.SiteID) []LiveCall { return nil }

// TestSlowCallHoldsUpNoOther: what other nodes send about one call (an
// SDP whose negotiation takes a while, say) does not hold up what they
// send about another, though one goroutine receives the node's channel;
// about one call, messages and leaves are handled in the order sent.
func TestSlowCallHoldsUpNoOther(t *testing.T) {
	rdb, r1 := leaseRouter(t, "n1", RedisRouterOptions{})
	r2 := routerOn(t, "n2", rdb, RedisRouterOptions{})
	h := &holdingHandler{hold: "c_n1_slow", release: make(chan struct{}), handled: make(chan string, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r1.Run(ctx, h); close(done) }()
	released := false
	t.Cleanup(func() {
		if !released {
			close(h.release)
		}
		cancel()
		<-done
	})
	for deadline := time.Now().Add(readTimeout); !r1.subscribed.Load(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("n1 never subscribed")
		}
	}
	dev := directory.Device{ID: "anna-phone", Kind: directory.KindApp}
	send := func(env envelope) {
		t.Helper()
		if n, err := r2.publishNow(ctx, "n1", env); err != nil || n != 1 {
			t.Fatalf("publishing %s: %d receivers, %v", env.Kind, n, err)
		}
	}
	message := func(call, ref string) envelope {
		return envelope{Kind: "message", Call: CallID(call), Sender: &dev, Conn: "k1",
			Frame: fmt.Appendf(nil, `{"type":"candidate","call_id":%q,"ref":%s,"candidate":{"candidate":""}}`, call, ref)}
	}
	send(message("c_n1_slow", "1"))
	send(message("c_n1_slow", "2"))
	send(envelope{Kind: "left", Call: "c_n1_slow", Devices: []directory.DeviceID{dev.ID}, Conn: "k1", Reason: EndFailed})
	send(message("c_n1_other", "3"))
	select {
	case got := <-h.handled:
		if got != "candidate c_n1_other 3" {
			t.Fatalf("handled %q first; want the other call's message", got)
		}
	case <-time.After(readTimeout):
		t.Fatal("the other call's message waited for the slow call's")
	}
	close(h.release)
	released = true
	for range 3 {
		select {
		case <-h.handled:
		case <-time.After(readTimeout):
			t.Fatal("the slow call's messages were not all handled once released")
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	want := []string{"candidate c_n1_other 3", "candidate c_n1_slow 1", "candidate c_n1_slow 2", "left c_n1_slow"}
	if !slices.Equal(h.got, want) {
		t.Fatalf("handled %q, want %q", h.got, want)
	}
}
