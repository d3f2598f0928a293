package signaling

import (
	"context"
	"testing"
	"time"

	"github.com/gorilla/websocket"
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
	// Relay 1 for the site's door-open duration (Harbour View's default 5 s); no call.
	if u := door.expect("unlock"); u["relay"].(float64) != 1 || u["duration_ms"].(float64) != 5000 || u["call_id"] != nil {
		t.Fatalf("unlock for a keypad code: %v, want relay 1 for 5000 ms and no call_id", u)
	}
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

// TestRingAndAnswerMetricsCountWhatHappened: of 101's four ringers only the
// monitor and one app are connected. The fan-out is the two devices rung,
// not the four the directory lists; the first ring and the last ring are
// each timed once for the call, not once a device; the monitor's answer
// counts as answered by a monitor, and only the winning answer times the
// cancels (a losing answer, refused call_taken, does not).
func TestRingAndAnswerMetricsCountWhatHappened(t *testing.T) {
	ts := newTestServer(t, harborView, Config{})
	hall := ts.connect(t, "hall-101")
	anna := ts.connect(t, "anna-phone")
	door := ts.connect(t, "front-door")
	m := ts.hubs[ts.nodeOf("front-door")].metrics
	callID, ringing := door.call("101")
	if ringing != 2 {
		t.Fatalf("ringing %d, want 2 (hall-101, anna-phone)", ringing)
	}
	hall.expect("ring")
	anna.expect("ring")
	waitMetric(t, "fan-outs observed", func() float64 { n, _ := histogram(t, m.fanout); return float64(n) }, 1)
	if _, sum := histogram(t, m.fanout); sum != 2 {
		t.Errorf("fan-out %v devices, want the 2 rung", sum)
	}
	waitMetric(t, "ring latencies observed", func() float64 { n, _ := histogram(t, m.ringSeconds); return float64(n) }, 1)
	if n, _ := histogram(t, m.firstRingSeconds); n != 1 {
		t.Errorf("first ring latency observed %d times for one call, want 1", n)
	}

	hall.send(map[string]any{"type": "answer", "call_id": callID})
	hall.expect("answered")
	anna.expect("cancel")
	waitMetric(t, "cancel latencies observed", func() float64 { n, _ := histogram(t, m.cancelSeconds); return float64(n) }, 1)
	anna.send(map[string]any{"type": "answer", "call_id": callID})
	anna.expectError("call_taken")
	if n, _ := histogram(t, m.cancelSeconds); n != 1 {
		t.Errorf("cancel latency observed %d times, want 1 (the winning answer's)", n)
	}
	for kind, want := range map[directory.DeviceKind]float64{directory.KindMonitor: 1, directory.KindApp: 0} {
		if n := testutil.ToFloat64(m.answeredBy.WithLabelValues(string(kind))); n != want {
			t.Errorf("answered by %s: %v, want %v", kind, n, want)
		}
	}
}

// TestConnectedDevicesByKind: each kind's gauge goes up as a device of
// that kind connects and down as it goes, whatever the other kinds do.
func TestConnectedDevicesByKind(t *testing.T) {
	ts := newNodes(t, harborView, Config{}, 1, RedisRouterOptions{})
	m := ts.hub.metrics
	connected := func(k directory.DeviceKind) func() float64 {
		return counter(m.connected.WithLabelValues(string(k)))
	}
	door := ts.connect(t, "front-door")
	hall := ts.connect(t, "hall-101")
	anna := ts.connect(t, "anna-phone")
	for _, k := range []directory.DeviceKind{directory.KindDoorStation, directory.KindMonitor, directory.KindApp} {
		waitMetric(t, string(k)+" connected", connected(k), 1)
	}
	_ = door.ws.Close()
	waitMetric(t, "door stations connected", connected(directory.KindDoorStation), 0)
	_ = hall.ws.Close()
	waitMetric(t, "monitors connected", connected(directory.KindMonitor), 0)
	if n := connected(directory.KindApp)(); n != 1 {
		t.Errorf("apps connected %v, want 1", n)
	}
	_ = anna.ws.Close()
	waitMetric(t, "apps connected", connected(directory.KindApp), 0)
}

// TestMessagesCountedByType: messages from devices are counted by their
// type (invalid JSON as invalid, a type the protocol lacks as unknown),
// and messages written to devices by theirs: a welcome, written before the
// connection's writer first runs, and the replies written straight to the
// socket of an idle connection.
func TestMessagesCountedByType(t *testing.T) {
	ts := newNodes(t, harborView, unlimited(), 1, RedisRouterOptions{})
	m := ts.hub.metrics
	anna := ts.connect(t, "anna-phone")
	anna.pingPong()
	if err := anna.ws.WriteMessage(websocket.TextMessage, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	anna.expectError("bad_request")
	anna.send(map[string]any{"type": "no_such_type"})
	anna.expectError("unknown_type")
	anna.pingPong()
	// A message is counted once handled, and its reply (the last pong) may
	// be read first; a message sent is counted once written.
	for typ, want := range map[string]float64{TypeHello: 1, TypePing: 2, "invalid": 1, "unknown": 1} {
		waitMetric(t, "messages received of type "+typ, counter(m.messagesIn.WithLabelValues(typ)), want)
	}
	for typ, want := range map[string]float64{TypeWelcome: 1, TypePong: 2, TypeError: 2} {
		waitMetric(t, "messages sent of type "+typ, counter(m.messagesOut.WithLabelValues(typ)), want)
	}
	if n := testutil.ToFloat64(m.messagesOut.WithLabelValues("other")); n != 0 {
		t.Errorf("messages sent of type other: %v, want 0", n)
	}
}

// TestSlowConsumerDisconnectCounted: a connection closed because its queue
// overflowed counts among the disconnects as a slow consumer, not as the
// device going away, though its close frame may never reach it.
func TestSlowConsumerDisconnectCounted(t *testing.T) {
	cfg := unlimited() // the message rate limit must not answer first
	cfg.SendQueue = 8
	ts := newNodesWith(t, harborView, cfg, 1, nodeOptions{sendBuffer: 8 << 10})
	m := ts.hub.metrics
	slow := ts.connect(t, "anna-phone")
	ping := []byte(`{"type":"ping","ref":"0123456789012345678901234567890123456789012345678901234567890123456789"}`)
	for deadline := time.Now().Add(readTimeout); time.Now().Before(deadline); {
		_ = slow.ws.SetWriteDeadline(time.Now().Add(time.Second))
		if err := slow.ws.WriteMessage(websocket.TextMessage, ping); err != nil {
			break // the server closed us
		}
	}
	waitMetric(t, "disconnects (slow consumer)", counter(m.disconnects.WithLabelValues(CloseSlow.String())), 1)
	if n := testutil.ToFloat64(m.disconnects.WithLabelValues("peer")); n != 0 {
		t.Errorf("disconnects (peer): %v, want 0", n)
	}
}

// TestSeriesFromStart: the series the alerts and dashboards sum or divide
// by are exposed at 0 by a node that has seen nothing yet. An absent series
// makes a sum empty and an alert silent, and a series that appears at its
// first increment loses that increment to rate().
func TestSeriesFromStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg, nil); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	exposed := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				exposed[f.GetName()+"{"+l.GetName()+"="+l.GetValue()+"}"] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	want := []string{
		"foyer_signaling_connected_devices{kind=door_station}", "foyer_signaling_connected_devices{kind=monitor}", "foyer_signaling_connected_devices{kind=app}",
		"foyer_calls_answered_total{kind=monitor}", "foyer_calls_answered_total{kind=app}",
		"foyer_calls_total{outcome=answered}", "foyer_calls_total{outcome=no_answer}", "foyer_calls_total{outcome=declined}",
		"foyer_calls_total{outcome=unavailable}", "foyer_calls_total{outcome=failed}",
		"foyer_door_openings_total{via=call}", "foyer_door_openings_total{via=keypad}", "foyer_door_openings_total{via=app}",
		"foyer_keypad_codes_total{result=opened}", "foyer_keypad_codes_total{result=wrong}", "foyer_keypad_codes_total{result=locked}",
	}
	for _, r := range []EndReason{EndHangup, EndTimeout, EndNoAnswer, EndDeclined, EndUnavailable, EndFailed, EndTimeLimit} {
		want = append(want, "foyer_calls_ended_total{reason="+string(r)+"}")
	}
	for _, s := range want {
		if v, ok := exposed[s]; !ok || v != 0 {
			t.Errorf("%s: exposed %v, value %v; want exposed at 0", s, ok, v)
		}
	}
}
