package media

import "sync/atomic"

// SessionStats counts one session's media since it started. Plain numbers,
// for tests and for the Prometheus collectors of signalling.
type SessionStats struct {
	// DoorPackets and DoorBytes are the RTP received from the door station
	// (bytes: RTP payload, without headers).
	DoorPackets uint64
	DoorBytes   uint64
	// ForwardedPackets and ForwardedBytes count RTP written to devices
	// (one per packet and device; bytes: RTP payload).
	ForwardedPackets uint64
	ForwardedBytes   uint64
	// DevicePackets counts RTP from the connected device to the door station.
	DevicePackets uint64
	// WriteErrors counts RTP writes Pion refused (a closing connection).
	WriteErrors uint64
	// Malformed counts received packets that did not parse as RTP.
	Malformed uint64
	// PLIsSent counts keyframe requests sent to the door station.
	PLIsSent uint64
	// KeyframeRequests counts requests for a keyframe (new viewers, PLI
	// or FIR from devices), sent or not.
	KeyframeRequests uint64
	// LostIn counts RTP packets missing from what reached the server: gaps
	// in the sequence numbers of the door station's tracks and the winner's
	// microphone, counted when a later packet arrives (see seqGap).
	LostIn uint64
	// LostOut counts RTP packets the server sent that its receivers (the
	// devices, the door station) report lost in their RTCP reports: the
	// increases of each stream's cumulative loss.
	LostOut uint64
	// Devices is the number of rung devices the session holds (those waiting
	// for the door station's offer included).
	Devices int
}

// counters are the session's live statistics, updated without locks from
// the forwarding goroutines.
type counters struct {
	doorPackets      atomic.Uint64
	doorBytes        atomic.Uint64
	forwardedPackets atomic.Uint64
	forwardedBytes   atomic.Uint64
	devicePackets    atomic.Uint64
	writeErrors      atomic.Uint64
	malformed        atomic.Uint64
	plisSent         atomic.Uint64
	keyframeRequests atomic.Uint64
	lostIn           atomic.Uint64
	lostOut          atomic.Uint64
}

// Stats returns the session's counters.
func (s *Session) Stats() SessionStats {
	s.mu.Lock()
	n := len(s.devices)
	s.mu.Unlock()
	c := &s.counters
	return SessionStats{
		DoorPackets:      c.doorPackets.Load(),
		DoorBytes:        c.doorBytes.Load(),
		ForwardedPackets: c.forwardedPackets.Load(),
		ForwardedBytes:   c.forwardedBytes.Load(),
		DevicePackets:    c.devicePackets.Load(),
		WriteErrors:      c.writeErrors.Load(),
		Malformed:        c.malformed.Load(),
		PLIsSent:         c.plisSent.Load(),
		KeyframeRequests: c.keyframeRequests.Load(),
		LostIn:           c.lostIn.Load(),
		LostOut:          c.lostOut.Load(),
		Devices:          n,
	}
}

// add sums o into st.
func (st *SessionStats) add(o SessionStats) {
	st.DoorPackets += o.DoorPackets
	st.DoorBytes += o.DoorBytes
	st.ForwardedPackets += o.ForwardedPackets
	st.ForwardedBytes += o.ForwardedBytes
	st.DevicePackets += o.DevicePackets
	st.WriteErrors += o.WriteErrors
	st.Malformed += o.Malformed
	st.PLIsSent += o.PLIsSent
	st.KeyframeRequests += o.KeyframeRequests
	st.LostIn += o.LostIn
	st.LostOut += o.LostOut
	st.Devices += o.Devices
}
