package turn

import (
	"maps"
	"sync"
	"sync/atomic"
)

// Stats are the server's counters, plain numbers for the metrics collector
// and for tests.
type Stats struct {
	// Active is the number of live allocations.
	Active int
	// Total is the number of allocations ever made.
	Total uint64
	// Refused counts refused requests and packets by reason: "expired",
	// "bad-username", "bad-password", "quota", "tcp-allocation",
	// "peer-port" (a packet to a port allow_peers does not list), or the
	// refused peer's class ("loopback", "private", "link-local", "cgnat",
	// "multicast", "not-allowed", …).
	Refused map[string]uint64
	// BytesToPeers counts the payload bytes relayed to peers;
	// BytesFromPeers those of peers' packets passed on to clients (in
	// ChannelData messages and Data indications), not those pion drops
	// for want of a permission.
	BytesToPeers, BytesFromPeers uint64
	// DroppedFromPeers counts packets that reached a relay from a peer
	// allow_peers does not list (scanners, stray traffic).
	DroppedFromPeers uint64
}

// ledger holds the counters and the per-device allocation counts,
// shared by the auth handler, the permission handler (pion's read loops)
// and the relay sockets.
type ledger struct {
	bytesToPeers, bytesFromPeers, droppedFromPeers atomic.Uint64

	mu      sync.Mutex
	live    map[string]int    // guarded by mu; live allocations by device (quotaKey)
	active  int               // guarded by mu; the sum of live
	total   uint64            // guarded by mu; allocations ever made
	refused map[string]uint64 // guarded by mu; refusals by reason
}

func newLedger() *ledger {
	return &ledger{live: make(map[string]int), refused: make(map[string]uint64)}
}

// hasRoom reports whether device is below quota live allocations,
// counting a refusal when not.
func (l *ledger) hasRoom(device string, quota int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live[device] >= quota {
		l.refused["quota"]++
		return false
	}
	return true
}

// reserve counts a new allocation for device unless that would exceed
// quota.
func (l *ledger) reserve(device string, quota int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live[device] >= quota {
		l.refused["quota"]++
		return false
	}
	l.live[device]++
	l.active++
	l.total++
	return true
}

// release uncounts one of device's allocations.
func (l *ledger) release(device string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.releaseLocked(device)
}

// unreserve takes back a reservation whose relay socket could not be
// made: it was no allocation, and counts in neither the quota nor Total.
func (l *ledger) unreserve(device string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	l.releaseLocked(device)
}

// releaseLocked uncounts one of device's allocations; with mu held.
func (l *ledger) releaseLocked(device string) {
	if l.live[device] <= 0 {
		return
	}
	l.active--
	if l.live[device]--; l.live[device] == 0 {
		delete(l.live, device)
	}
}

// refuse counts a refusal.
func (l *ledger) refuse(reason string) {
	l.mu.Lock()
	l.refused[reason]++
	l.mu.Unlock()
}

// stats copies the counters.
func (l *ledger) stats() Stats {
	l.mu.Lock()
	st := Stats{Active: l.active, Total: l.total, Refused: maps.Clone(l.refused)}
	l.mu.Unlock()
	st.BytesToPeers = l.bytesToPeers.Load()
	st.BytesFromPeers = l.bytesFromPeers.Load()
	st.DroppedFromPeers = l.droppedFromPeers.Load()
	return st
}
