package media

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

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
	promtest.Compare(t, got, want)
}

// TestForwardedCountedPerDevice: foyer_media_packets_forwarded_total and
// foyer_media_bytes_forwarded_total count one packet, and its payload, for
// every device it is written to: two devices watching the preview take
// twice the door station's video.
func TestForwardedCountedPerDevice(t *testing.T) {
	c := startCall(t, true, opusCodec, 2)
	for _, d := range c.devices {
		waitUntil(t, d.id+" preview video", func() bool { return len(d.received(webrtc.RTPCodecTypeVideo)) >= 20 })
	}
	c.s.Close() // its forwarders have returned: the counts stand still
	st := c.s.Stats()
	if st.ForwardedPackets < 40 {
		t.Fatalf("%d packets forwarded to two devices that got 20 or more each", st.ForwardedPackets)
	}
	// While the devices ring, only the door station's video reaches them.
	if want := st.ForwardedPackets * videoSize; st.ForwardedBytes != want {
		t.Fatalf("%d packets of %d payload bytes forwarded, counted as %d bytes, want %d",
			st.ForwardedPackets, videoSize, st.ForwardedBytes, want)
	}
}

// TestMicrophoneLossCounted: packets missing from the winner's microphone
// count as lost in, as those from the door station do (the packet loss
// alert divides lost in by both).
func TestMicrophoneLossCounted(t *testing.T) {
	c := &testCall{e: newTestEngine(t), w: newWire()}
	c.s = c.e.NewSession("call-1", "door", true, c.w)
	t.Cleanup(c.s.Close)
	c.door = newDoor(t, c.s, c.w, opusCodec) // streams without gaps
	dev := newClient(t, clientAPI(t), "dev1", c.s, c.w)
	if err := c.s.AddDevice("dev1"); err != nil {
		t.Fatal(err)
	}
	c.door.offer()
	waitUntil(t, "the device's microphone", func() bool { return dev.micTrack() != nil })
	waitUntil(t, "the device connected", func() bool { return dev.pc.ConnectionState() == webrtc.PeerConnectionStateConnected })
	if err := c.s.Connect("dev1"); err != nil {
		t.Fatal(err)
	}

	const gap, after = 4, 30
	seq := uint16(2000)
	write := func() {
		t.Helper()
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 0x4d000002},
			Payload: payload('M', uint32(seq), audioSize)}
		if err := dev.micTrack().WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
		seq++
		time.Sleep(packetEvery)
	}
	for deadline := time.Now().Add(waitFor); len(c.door.received(webrtc.RTPCodecTypeAudio)) < 5; {
		if time.Now().After(deadline) {
			t.Fatal("the door station got no microphone audio")
		}
		write()
	}
	seq += gap
	for range after {
		write()
	}
	last := uint32(seq - 1)
	waitUntil(t, "the last microphone packet at the door station", func() bool {
		got := c.door.received(webrtc.RTPCodecTypeAudio)
		return len(got) > 0 && binary.BigEndian.Uint32(got[len(got)-1][3:7]) == last
	})
	if got := c.s.Stats().LostIn; got != gap {
		t.Fatalf("lost in %d, want the microphone's %d", got, gap)
	}
}

// TestEngineForgetsClosedSessions: a closed session leaves the engine (its
// counts stay in the totals: Prometheus counters never fall), and closing
// the engine closes the sessions still open, so a node's shutdown ends
// every call's media.
func TestEngineForgetsClosedSessions(t *testing.T) {
	e := newTestEngine(t)
	ended := startCallOn(t, e, true, opusCodec, 1)
	open := startCallOn(t, e, true, opusCodec, 1)
	for _, c := range []*testCall{ended, open} {
		d := c.devices[0]
		waitUntil(t, "preview video", func() bool { return len(d.received(webrtc.RTPCodecTypeVideo)) >= 10 })
	}
	ended.s.Close()
	counted := ended.s.Stats().DoorPackets
	if st := e.Stats(); st.Active != 1 || st.Started != 2 || st.DoorPackets < counted {
		t.Fatalf("with one of two sessions closed: engine stats %+v; want 1 active, 2 started, at least the closed one's %d door packets",
			st, counted)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := open.s.AddDevice("late"); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddDevice on a session of a closed engine: %v, want ErrClosed", err)
	}
	waitUntil(t, "the open call's device closed", func() bool { return gone(open.devices[0]) })
	if st := e.Stats(); st.Active != 0 {
		t.Fatalf("%d sessions active after the engine closed", st.Active)
	}
}
