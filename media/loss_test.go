package media

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

func TestSeqGap(t *testing.T) {
	for _, tc := range []struct {
		name string
		seqs []uint16
		lost uint64
	}{
		{"in order", []uint16{1, 2, 3, 4}, 0},
		{"a gap of 3", []uint16{1, 2, 6, 7}, 3},
		{"a late packet counts once", []uint16{1, 3, 2, 4}, 1},
		{"repeats", []uint16{5, 5, 6, 6}, 0},
		{"across the wrap", []uint16{65534, 65535, 0, 2}, 1},
		{"older than the highest", []uint16{100, 90, 101}, 0},
		{"a restarted stream is not a loss", []uint16{10, 11, 20000, 20001}, 0},
		{"just within the dropout", []uint16{0, maxDropout}, maxDropout - 1},
	} {
		var g seqGap
		var lost uint64
		for _, s := range tc.seqs {
			lost += g.next(s)
		}
		if lost != tc.lost {
			t.Errorf("%s: %v lost %d, want %d", tc.name, tc.seqs, lost, tc.lost)
		}
	}
}

// TestReportedLossCountsNewHighs: the reader of the sender of stream 1
// counts the increases of its stream's cumulative loss, from receiver and
// sender reports, and nothing of another stream's blocks (stream 2's
// sender has a reader of its own).
func TestReportedLossCountsNewHighs(t *testing.T) {
	s := &Session{}
	const own = 1
	var reported uint32
	rr := func(ssrc, lost uint32) rtcp.Packet {
		return &rtcp.ReceiverReport{SSRC: 9, Reports: []rtcp.ReceptionReport{{SSRC: ssrc, TotalLost: lost}}}
	}
	for _, p := range []rtcp.Packet{
		rr(own, 0), rr(own, 7), rr(own, 7), rr(own, 5), // a fall (duplicates) is not a gain
		rr(own, 9),
		rr(2, 50), // another stream
		&rtcp.SenderReport{SSRC: 9, Reports: []rtcp.ReceptionReport{{SSRC: 2, TotalLost: 60}, {SSRC: own, TotalLost: 13}}},
		&rtcp.PictureLossIndication{MediaSSRC: own},
	} {
		s.onRTCP(p, nil, own, &reported)
	}
	if got := s.counters.lostOut.Load(); got != 9+4 {
		t.Fatalf("lost out %d, want 13", got)
	}
}

// TestPacketLossCounted: a door station whose video skips 5 sequence
// numbers. The server counts them lost on the way in; the ringing device,
// receiving the preview with the same gap, reports them in its RTCP
// receiver reports, and the server counts them lost on the way out.
// Nothing else is lost on loopback.
func TestPacketLossCounted(t *testing.T) {
	c := &testCall{e: newTestEngine(t), w: newWire()}
	c.s = c.e.NewSession("call-1", "door", true, c.w)
	t.Cleanup(c.s.Close)
	c.door = newClient(t, clientAPI(t, vp8Codec, opusCodec), "door", c.s, c.w)
	video, err := webrtc.NewTrackLocalStaticRTP(vp8Codec.RTPCodecCapability, "video", "door")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := c.door.pc.AddTrack(video)
	if err != nil {
		t.Fatal(err)
	}
	c.door.countRTCP(sender)
	dev := c.addDevice(t, "dev1")
	c.door.offer()
	for _, p := range []*client{c.door, dev} {
		waitUntil(t, p.id+" connected", func() bool { return p.pc.ConnectionState() == webrtc.PeerConnectionStateConnected })
	}

	// The device's connection being up on its side does not mean the
	// server forwards to it yet: the stream runs until the device has its
	// first packets, then skips gap sequence numbers, then runs 40 more.
	const gap, after = 5, 40
	seq := uint16(1000)
	write := func() {
		t.Helper()
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 0x56000001},
			Payload: payload('V', uint32(seq), videoSize)}
		if err := video.WriteRTP(pkt); err != nil {
			t.Fatal(err)
		}
		seq++
		time.Sleep(packetEvery) // paced like a camera
	}
	for deadline := time.Now().Add(waitFor); len(dev.received(webrtc.RTPCodecTypeVideo)) < 5; {
		if time.Now().After(deadline) {
			t.Fatal("the device got no preview")
		}
		write()
	}
	seq += gap
	for range after {
		write()
	}
	last := uint32(seq - 1)
	waitUntil(t, "the last packet at the device", func() bool {
		got := dev.received(webrtc.RTPCodecTypeVideo)
		return len(got) > 0 && binary.BigEndian.Uint32(got[len(got)-1][3:7]) == last
	})
	if got := c.s.Stats().LostIn; got != gap {
		t.Fatalf("lost in %d, want %d", got, gap)
	}
	// Receiver reports go out about once a second.
	waitUntil(t, "the device's report of the gap", func() bool { return c.s.Stats().LostOut >= gap })
	time.Sleep(1500 * time.Millisecond) // another report: it must not count the same loss again
	if got := c.s.Stats().LostOut; got != gap {
		t.Fatalf("lost out %d, want %d", got, gap)
	}
}

// TestLostOutCountedOncePerReport: a device receiving the door station's
// video and audio may send one receiver report with a block for each
// stream (RFC 3550 §6.4.2; GStreamer and other non-browser stacks do).
// Pion hands that packet to the RTCP reader of every sender it names, so
// each sender must count only its own stream's block: the loss reported
// is counted once.
func TestLostOutCountedOncePerReport(t *testing.T) {
	c := startCall(t, true, opusCodec, 1)
	dev := c.devices[0]
	waitUntil(t, "connected", func() bool { return dev.pc.ConnectionState() == webrtc.PeerConnectionStateConnected })
	p, err := c.s.devicePeer(dev.id)
	if err != nil || p == nil {
		t.Fatal(p, err)
	}
	var ssrcs []uint32
	for _, snd := range p.pc.GetSenders() {
		if enc := snd.GetParameters().Encodings; len(enc) > 0 && snd.Track() != nil {
			ssrcs = append(ssrcs, uint32(enc[0].SSRC))
		}
	}
	if len(ssrcs) != 2 {
		t.Fatalf("want a video and an audio sender, got %v", ssrcs)
	}
	before := c.s.Stats().LostOut
	const lost = 7
	rr := &rtcp.ReceiverReport{SSRC: 0x11223344, Reports: []rtcp.ReceptionReport{
		{SSRC: ssrcs[0], TotalLost: lost}, // the only loss reported
		{SSRC: ssrcs[1], TotalLost: 0},
	}}
	if err := dev.pc.WriteRTCP([]rtcp.Packet{rr}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the report counted", func() bool { return c.s.Stats().LostOut > before })
	time.Sleep(500 * time.Millisecond) // the other sender's reader has it too
	if got := c.s.Stats().LostOut - before; got != lost {
		t.Fatalf("one report of %d lost packets counted as %d lost", lost, got)
	}
}
