package signaling

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

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
