package turn

import (
	"testing"

	"github.com/foyer-intercom/foyer/internal/promtest"
)

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
	got := promtest.Samples(t, NewCollector(s))
	promtest.Compare(t, got, want)
}
