// Package promtest reads what a Prometheus collector exposes, for tests.
package promtest

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Samples collects c through a pedantic registry (which also checks that
// what it collects matches what it describes) and returns what Gathered
// returns for it.
func Samples(t testing.TB, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	return Gathered(t, reg)
}

// Gathered returns every counter and gauge sample g gathers by name and
// labels, as name{label="value",…}, and each histogram's count of
// observations as name_count{label="value",…}.
func Gathered(t testing.TB, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			suffix := ""
			if len(labels) > 0 {
				suffix = "{" + strings.Join(labels, ",") + "}"
			}
			if h := m.GetHistogram(); h != nil {
				out[f.GetName()+"_count"+suffix] = float64(h.GetSampleCount())
				continue
			}
			out[f.GetName()+suffix] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return out
}

// Compare reports each sample of got that differs from want (a value,
// one missing, one not wanted) as a test error.
func Compare(t testing.TB, got, want map[string]float64) {
	t.Helper()
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
