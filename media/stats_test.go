package media

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// TestByteCountersArePayloadBytes: foyer_media_door_bytes_received_total
// and foyer_media_bytes_forwarded_total count RTP payload bytes, as their
// help and docs/operations.md say: not the RTP header, nor the door
// station's header extensions (which the forwarder strips before writing
// to devices). Every payload here is videoSize bytes.
func TestByteCountersArePayloadBytes(t *testing.T) {
	c := &testCall{e: newTestEngine(t), w: newWire()}
	c.s = c.e.NewSession("call-1", "door", true, c.w)
	t.Cleanup(c.s.Close)
	c.door = newClient(t, clientAPI(t, vp8Codec), "door", c.s, c.w)
	video, err := webrtc.NewTrackLocalStaticRTP(vp8Codec.RTPCodecCapability, "video", "door")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.door.pc.AddTrack(video); err != nil {
		t.Fatal(err)
	}
	dev := c.addDevice(t, "dev1") // gets the preview
	c.door.offer()
	waitUntil(t, "the device connected", func() bool { return dev.pc.ConnectionState() == webrtc.PeerConnectionStateConnected })

	seq := uint16(0)
	write := func() {
		t.Helper()
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 1},
			Payload: payload('V', uint32(seq), videoSize)}
		if err := video.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
		seq++
		time.Sleep(packetEvery)
	}
	for deadline := time.Now().Add(waitFor); len(dev.received(webrtc.RTPCodecTypeVideo)) < 10; {
		if time.Now().After(deadline) {
			t.Fatal("the device got no preview")
		}
		write()
	}
	for range 10 {
		write()
	}
	last := uint32(seq - 1)
	waitUntil(t, "the last packet at the device", func() bool {
		got := dev.received(webrtc.RTPCodecTypeVideo)
		return len(got) > 0 && binary.BigEndian.Uint32(got[len(got)-1][3:7]) == last
	})
	time.Sleep(100 * time.Millisecond) // the forwarder counts just after writing
	st := c.s.Stats()
	if st.DoorPackets == 0 || st.ForwardedPackets == 0 {
		t.Fatalf("nothing counted: %+v", st)
	}
	if want := st.DoorPackets * videoSize; st.DoorBytes != want {
		t.Fatalf("%d door packets of %d payload bytes counted as %d bytes, want %d (%d a packet)",
			st.DoorPackets, videoSize, st.DoorBytes, want, st.DoorBytes/st.DoorPackets)
	}
	if want := st.ForwardedPackets * videoSize; st.ForwardedBytes != want {
		t.Fatalf("%d forwarded packets of %d payload bytes counted as %d bytes, want %d (%d a packet)",
			st.ForwardedPackets, videoSize, st.ForwardedBytes, want, st.ForwardedBytes/st.ForwardedPackets)
	}
}
