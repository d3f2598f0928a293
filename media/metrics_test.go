package media

import (
	"maps"
	"slices"
	"testing"

	"github.com/foyer-intercom/foyer/internal/promtest"
)

// TestCollectorNamesEachStat: every engine total reaches Prometheus under
// the name docs/operations.md gives it, and no other.
func TestCollectorNamesEachStat(t *testing.T) {
	e := newTestEngine(t)
	e.mu.Lock()
	e.ended = SessionStats{DoorPackets: 1, DoorBytes: 2, ForwardedPackets: 3, ForwardedBytes: 4, DevicePackets: 5,
		WriteErrors: 6, Malformed: 7, PLIsSent: 8, KeyframeRequests: 9, LostIn: 10, LostOut: 11}
	e.started = 12
	e.mu.Unlock()
	s := e.NewSession("call-1", "door", true, newWire())
	t.Cleanup(s.Close)
	want := map[string]float64{
		"foyer_media_door_packets_received_total":         1,
		"foyer_media_door_bytes_received_total":           2,
		"foyer_media_packets_forwarded_total":             3,
		"foyer_media_bytes_forwarded_total":               4,
		"foyer_media_device_packets_received_total":       5,
		"foyer_media_write_errors_total":                  6,
		"foyer_media_malformed_packets_total":             7,
		"foyer_media_pli_total":                           8,
		"foyer_media_keyframe_requests_total":             9,
		`foyer_media_packets_lost_total{direction="in"}`:  10,
		`foyer_media_packets_lost_total{direction="out"}`: 11,
		"foyer_media_sessions_total":                      13, // 12 before, and s
		"foyer_media_sessions_active":                     1,
		"foyer_media_devices":                             0,
	}
	got := promtest.Samples(t, NewCollector(e))
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
