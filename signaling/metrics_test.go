package signaling

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/foyer-intercom/foyer/directory"
)

// waitMetric waits until got() is want: the server counts some things
// just after the frame the test reads, on its own goroutine.
func waitMetric(t *testing.T, name string, got func() float64, want float64) {
	t.Helper()
	for deadline := time.Now().Add(readTimeout); got() != want; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, got(), want)
		}
	}
}

// counter reads a counter or gauge for waitMetric.
func counter(c prometheus.Collector) func() float64 {
	return func() float64 { return testutil.ToFloat64(c) }
}

// histogram returns a histogram's sample count and sum.
func histogram(t *testing.T, h prometheus.Histogram) (uint64, float64) {
	t.Helper()
	var out dto.Metric
	if err := h.Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetHistogram().GetSampleCount(), out.GetHistogram().GetSampleSum()
}

// TestConnectionMetrics: a connection's hello is counted among the
// messages received, the device is counted connected by its kind while its
// connection lasts, and the close is counted by reason: the close code's
// text when the server closed it, peer when the client went away.
func TestConnectionMetrics(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	m := ts.hubs[ts.nodeOf("anna-phone")].metrics
	hellos := m.messagesIn.WithLabelValues(TypeHello)
	apps := m.connected.WithLabelValues(string(directory.KindApp))
	replaced := m.disconnects.WithLabelValues(CloseReplaced.String())
	peer := m.disconnects.WithLabelValues("peer")

	first := ts.connect(t, "anna-phone")
	// Counted before the welcome was written.
	if n := testutil.ToFloat64(hellos); n != 1 {
		t.Errorf("hellos received %v, want 1", n)
	}
	if n := testutil.ToFloat64(apps); n != 1 {
		t.Errorf("apps connected %v, want 1", n)
	}
	second := ts.connect(t, "anna-phone")
	first.expectClose(int(CloseReplaced))
	waitMetric(t, "disconnects (replaced)", counter(replaced), 1)
	waitMetric(t, "apps connected", counter(apps), 1)
	_ = second.ws.Close()
	waitMetric(t, "disconnects (peer)", counter(peer), 1)
	waitMetric(t, "apps connected", counter(apps), 0)
	if n := testutil.ToFloat64(hellos); n != 2 {
		t.Errorf("hellos received %v, want 2", n)
	}
}

// TestCallMetrics follows one call through the metrics of the node that
// owns it: active while it lasts, its fan-out, the time to its answer (3 s
// on the test's clock) and the kind of device that answered, the door it
// opened, and its outcome.
func TestCallMetrics(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, callID := ringAll(t, ts)
	m := ts.hubs[ts.nodeOf("front-door")].metrics
	if n := testutil.ToFloat64(m.activeCalls); n != 1 {
		t.Errorf("active calls while ringing: %v, want 1", n)
	}
	// The fan-out is observed once start has returned.
	waitMetric(t, "fan-outs observed", func() float64 { n, _ := histogram(t, m.fanout); return float64(n) }, 1)
	if _, sum := histogram(t, m.fanout); sum != float64(len(ringers)) {
		t.Errorf("fan-out %v devices, want %d", sum, len(ringers))
	}

	ts.clock.Advance(3 * time.Second)
	bram := devices["bram-phone"]
	bram.send(map[string]any{"type": "answer", "call_id": callID})
	bram.expect("answered")
	door.expect("answered")
	if n, sum := histogram(t, m.answerSeconds); n != 1 || sum != 3 {
		t.Errorf("time to answer: %d observed, sum %v s; want one of 3 s", n, sum)
	}
	if n := testutil.ToFloat64(m.answeredBy.WithLabelValues(string(directory.KindApp))); n != 1 {
		t.Errorf("answered by an app: %v, want 1", n)
	}
	if n := testutil.ToFloat64(m.answeredBy.WithLabelValues(string(directory.KindMonitor))); n != 0 {
		t.Errorf("answered by a monitor: %v, want 0", n)
	}

	bram.send(map[string]any{"type": "open_door", "call_id": callID})
	door.expect("unlock")
	bram.expect("door_opened")
	waitMetric(t, "door openings (call)", counter(m.doorOpenings.WithLabelValues(openedByCall)), 1)
	if n := testutil.ToFloat64(m.doorOpenings.WithLabelValues(openedByKeypad)); n != 0 {
		t.Errorf("door openings (keypad): %v, want 0", n)
	}

	door.send(map[string]any{"type": "hangup", "call_id": callID})
	door.expect("ended")
	waitMetric(t, "active calls", counter(m.activeCalls), 0)
	waitMetric(t, "answered calls", counter(m.outcomes.WithLabelValues("answered")), 1)
}

// TestFailedCallCounted: a door station whose connection breaks while its
// call rings ends the call failed, by outcome and by end reason.
func TestFailedCallCounted(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	door, devices, _ := ringAll(t, ts)
	m := ts.hubs[ts.nodeOf("front-door")].metrics
	_ = door.ws.Close()
	for _, d := range devices {
		d.expect("cancel")
	}
	waitMetric(t, "failed calls", counter(m.outcomes.WithLabelValues("failed")), 1)
	if n := testutil.ToFloat64(m.calls.WithLabelValues(string(EndFailed))); n != 1 {
		t.Errorf("calls ended failed: %v, want 1", n)
	}
	for _, o := range []string{"answered", "no_answer", "declined", "unavailable"} {
		if n := testutil.ToFloat64(m.outcomes.WithLabelValues(o)); n != 0 {
			t.Errorf("calls %s: %v, want 0", o, n)
		}
	}
}

// TestKeypadOpeningCounted: a keypad code that opens the door counts as a
// door opening via the keypad; a wrong one does not count. Every code is
// counted by what became of it: opened, wrong, or refused on a locked
// keypad.
func TestKeypadOpeningCounted(t *testing.T) {
	keypad := func(_ context.Context, _ directory.Device, code string) (KeypadResult, error) {
		if code == "0000" {
			return KeypadResult{LockedFor: 30 * time.Second}, nil
		}
		return KeypadResult{Open: code == "2468"}, nil
	}
	ts := newTestServer(t, harborView, Config{Keypad: keypad})
	door := ts.connect(t, "front-door")
	m := ts.hubs[ts.nodeOf("front-door")].metrics
	door.send(map[string]any{"type": "pin", "code": "1111"})
	door.expectError("not_found")
	door.send(map[string]any{"type": "pin", "code": "1112"})
	door.expectError("not_found")
	door.send(map[string]any{"type": "pin", "code": "0000"})
	door.expectError("rate_limited")
	door.send(map[string]any{"type": "pin", "code": "2468"})
	door.expect("unlock")
	waitMetric(t, "door openings (keypad)", counter(m.doorOpenings.WithLabelValues(openedByKeypad)), 1)
	if n := testutil.ToFloat64(m.doorOpenings.WithLabelValues(openedByCall)); n != 0 {
		t.Errorf("door openings (call): %v, want 0", n)
	}
	for result, want := range map[string]float64{keypadOpened: 1, keypadWrong: 2, keypadLocked: 1} {
		if n := testutil.ToFloat64(m.keypadCodes.WithLabelValues(result)); n != want {
			t.Errorf("keypad codes %s: %v, want %v", result, n, want)
		}
	}
}
