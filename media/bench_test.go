package media

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

const (
	// benchFanout is the number of devices a benchmark call reaches.
	benchFanout = 6
	// benchPayload is a typical video RTP payload.
	benchPayload = 1000
	// benchWindow is how many packets the door station may send ahead of
	// the forwarder: enough to keep it busy, few enough for the kernel's
	// default socket buffers, so that the benchmark measures forwarding
	// rather than loss and retransmission.
	benchWindow = 64
	// benchPoll is how long the door station waits when it is ahead.
	benchPoll = 50 * time.Microsecond
	// benchSettle ends a measurement once nothing more is forwarded for
	// this long (the rest was lost in a socket buffer).
	benchSettle = 200 * time.Millisecond
)

// BenchmarkForward6 measures a Session forwarding the door station's video
// to six devices on the real loopback path: b.N packets sent by the door
// station as fast as Pion writes them, on each of udpSetups.
func BenchmarkForward6(b *testing.B) {
	for _, setup := range udpSetups {
		b.Run(setup.name, func(b *testing.B) { forward6(b, newEngineWith(b, setup.config(b))) })
	}
}

func forward6(b *testing.B, e *Engine) {
	c := &testCall{e: e, w: newWire()}
	c.s = c.e.NewSession("bench", "door", true, c.w)
	b.Cleanup(c.s.Close)
	door := newClient(b, clientAPI(b, vp8Codec), "door", c.s, c.w)
	track, err := webrtc.NewTrackLocalStaticRTP(vp8Codec.RTPCodecCapability, "video", "door")
	if err != nil {
		b.Fatal(err)
	}
	sender, err := door.pc.AddTrack(track)
	if err != nil {
		b.Fatal(err)
	}
	door.countRTCP(sender)
	var devices []*client
	for i := range benchFanout {
		d := newClient(b, clientAPI(b), fmt.Sprintf("dev%d", i), c.s, c.w)
		d.countOnly.Store(true)
		devices = append(devices, d)
		if err := c.s.AddDevice(d.id); err != nil {
			b.Fatal(err)
		}
	}
	door.offer()
	warmUp(b, track, devices)
	measure(b, track, c.s.counters.forwardedPackets.Load, devices)
}

// BenchmarkForwardBaseline6 is the same traffic through the smallest Pion
// forwarder: one PeerConnection in, six out, a ReadRTP → WriteRTP loop.
func BenchmarkForwardBaseline6(b *testing.B) {
	api := clientAPI(b)
	newPC := func() *webrtc.PeerConnection {
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = pc.GracefulClose() })
		return pc
	}
	var outs []*webrtc.TrackLocalStaticRTP
	var devices []*client
	var forwarded atomic.Uint64
	var wg sync.WaitGroup
	b.Cleanup(wg.Wait) // after the connections close (cleanups run last-in first-out)
	for range benchFanout {
		out, err := webrtc.NewTrackLocalStaticRTP(vp8Codec.RTPCodecCapability, "video", "sfu")
		if err != nil {
			b.Fatal(err)
		}
		outs = append(outs, out)
		sfu := newPC()
		snd, err := sfu.AddTrack(out)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() { drainRTCP(snd) })
		d := &client{tb: b, got: map[webrtc.RTPCodecType][][]byte{}, pc: newPC()}
		d.countOnly.Store(true)
		d.pc.OnTrack(d.record)
		devices = append(devices, d)
		connect(b, sfu, d.pc)
	}
	in := newPC()
	in.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := t.ReadRTP()
			if err != nil {
				return
			}
			for _, o := range outs {
				if err := o.WriteRTP(p); err == nil {
					forwarded.Add(1)
				}
			}
		}
	})
	door := newPC()
	track, err := webrtc.NewTrackLocalStaticRTP(vp8Codec.RTPCodecCapability, "video", "door")
	if err != nil {
		b.Fatal(err)
	}
	snd, err := door.AddTrack(track)
	if err != nil {
		b.Fatal(err)
	}
	wg.Go(func() { drainRTCP(snd) })
	connect(b, door, in)
	warmUp(b, track, devices)
	measure(b, track, forwarded.Load, devices)
}

// connect negotiates offerer with answerer in one exchange, candidates
// included (loopback gathering is immediate).
func connect(tb testing.TB, offerer, answerer *webrtc.PeerConnection) {
	tb.Helper()
	gather := func(pc *webrtc.PeerConnection, d webrtc.SessionDescription) webrtc.SessionDescription {
		done := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(d); err != nil {
			tb.Fatal(err)
		}
		<-done
		return *pc.LocalDescription()
	}
	o, err := offerer.CreateOffer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := answerer.SetRemoteDescription(gather(offerer, o)); err != nil {
		tb.Fatal(err)
	}
	a, err := answerer.CreateAnswer(nil)
	if err != nil {
		tb.Fatal(err)
	}
	if err := offerer.SetRemoteDescription(gather(answerer, a)); err != nil {
		tb.Fatal(err)
	}
}

// drainRTCP reads a sender's RTCP until its connection closes.
func drainRTCP(s *webrtc.RTPSender) {
	for {
		if _, _, err := s.ReadRTCP(); err != nil {
			return
		}
	}
}

// warmUp sends until every device receives, so that the measurement
// starts with all connections up.
func warmUp(b *testing.B, track *webrtc.TrackLocalStaticRTP, devices []*client) {
	b.Helper()
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: payload('V', 0, benchPayload)}
	waitUntil(b, "all devices receiving", func() bool {
		p.SequenceNumber++
		_ = track.WriteRTP(p)
		for _, d := range devices {
			if d.packets.Load() == 0 {
				return false
			}
		}
		return true
	})
}

// measure sends b.N packets, as fast as the forwarder takes them, and reports forwarded packets per
// second of wall time and per second of CPU time of the whole process
// (door station, forwarder and six devices: a pessimistic per-core figure),
// with the share that reached the devices.
func measure(b *testing.B, track *webrtc.TrackLocalStaticRTP, forwarded func() uint64, devices []*client) {
	received := func() (n uint64) {
		for _, d := range devices {
			n += d.packets.Load()
		}
		return n
	}
	settle(forwarded, 0) // warm-up packets drain before counting
	fwd0, rcv0, cpu0 := forwarded(), received(), cpuTime()
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1, SequenceNumber: 1000}, Payload: payload('V', 0, benchPayload)}
	b.ResetTimer()
	start := time.Now()
	fan := uint64(len(devices))
	for i := range uint64(b.N) {
		for i*fan > forwarded()-fwd0+benchWindow*fan {
			time.Sleep(benchPoll) // the forwarder is behind: do not overrun its socket
		}
		p.SequenceNumber++
		p.Timestamp += 300
		_ = track.WriteRTP(p)
	}
	last, lastChange := settle(forwarded, fwd0+uint64(b.N*len(devices)))
	elapsed := lastChange.Sub(start)
	b.StopTimer()
	cpu := cpuTime() - cpu0
	fwd := float64(last - fwd0)
	b.ReportMetric(fwd/elapsed.Seconds(), "fwd-pkts/s")
	b.ReportMetric(fwd/cpu.Seconds(), "fwd-pkts/cpu-s")
	b.ReportMetric(100*fwd/float64(b.N*len(devices)), "fwd-%")
	b.ReportMetric(100*float64(received()-rcv0)/float64(b.N*len(devices)), "recv-%")
}

// settle polls count until it reaches want (0: never) or stops moving for
// benchSettle, and returns its last value and when it last changed.
func settle(count func() uint64, want uint64) (uint64, time.Time) {
	last, lastChange := count(), time.Now()
	for (want == 0 || last < want) && time.Since(lastChange) < benchSettle {
		time.Sleep(time.Millisecond)
		if n := count(); n != last {
			last, lastChange = n, time.Now()
		}
	}
	return last, lastChange
}

// cpuTime is the user and system time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
