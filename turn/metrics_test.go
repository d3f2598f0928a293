package turn

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// gather collects c through a pedantic registry (which also checks that
// what it collects matches what it describes) and returns every sample by
// name and labels, as name{label="value"}.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			out[key] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

// TestCollectorNamesEachStat: every count of the server reaches Prometheus
// under the name and labels docs/operations.md gives it, and no other.
func TestCollectorNamesEachStat(t *testing.T) {
	s := newTestServer(t, nil)
	s.led.mu.Lock()
	s.led.active, s.led.total = 1, 2
	s.led.refused["expired"], s.led.refused["private"] = 3, 4
	s.led.mu.Unlock()
	s.led.bytesToPeers.Store(5)
	s.led.bytesFromPeers.Store(6)
	s.led.droppedFromPeers.Store(7)
	want := map[string]float64{
		"foyer_turn_allocations_active":                         1,
		"foyer_turn_allocations_total":                          2,
		`foyer_turn_refused_total{reason="expired"}`:            3,
		`foyer_turn_refused_total{reason="private"}`:            4,
		`foyer_turn_relayed_bytes_total{direction="to_peer"}`:   5,
		`foyer_turn_relayed_bytes_total{direction="from_peer"}`: 6,
		"foyer_turn_peer_packets_dropped_total":                 7,
	}
	got := gather(t, NewCollector(s))
	if !maps.Equal(got, want) {
		for _, k := range slices.Sorted(maps.Keys(want)) {
			if v, ok := got[k]; !ok || v != want[k] {
				t.Errorf("%s = %v (exposed: %v), want %v", k, v, ok, want[k])
			}
		}
		for _, k := range slices.Sorted(maps.Keys(got)) {
			if _, ok := want[k]; !ok {
				t.Errorf("unexpected %s = %v", k, got[k])
			}
		}
	}
}
