package media

import (
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// readBufferSize holds one RTP packet: WebRTC keeps packets under the
// path MTU (about 1200 bytes in browsers) and Pion's receive MTU is 1460.
const readBufferSize = 1500

// forward fans one door station track out to the devices, until the door
// station's connection closes. It runs on the track's own goroutine and
// reads only the subs snapshot and atomics. Pion's WriteRTP does not wait
// for the device (SRTP, then a UDP send that the kernel queues or drops), so
// a slow or dead device costs its own packets and never delays the others.
func (s *Session) forward(t *webrtc.TrackRemote, video bool) {
	mime := t.Codec().MimeType
	buf := make([]byte, readBufferSize)
	var pkt rtp.Packet
	var seqs seqGap
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return // the door station's connection closed
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			s.counters.malformed.Add(1)
			continue
		}
		if lost := seqs.next(pkt.SequenceNumber); lost > 0 {
			s.counters.lostIn.Add(lost)
		}
		size := uint64(len(pkt.Payload)) // payload bytes: not the header, which we rewrite
		s.counters.doorPackets.Add(1)
		s.counters.doorBytes.Add(size)
		if video && s.kf.awaiting.Load() && isKeyframe(mime, pkt.Payload) {
			s.kf.seen()
		}
		// Header extension IDs are negotiated per connection: the door
		// station's mean nothing to a device.
		stripExtensions(&pkt.Header)
		var sent, failed uint64
		for _, d := range *s.subs.Load() {
			out := d.audio
			open := d.sendAudio.Load()
			if video {
				out, open = d.video, d.sendVideo.Load()
			}
			if !open || out == nil || !d.connected.Load() {
				continue
			}
			if err := out.WriteRTP(&pkt); err != nil {
				failed++
			} else {
				sent++
			}
		}
		if sent > 0 {
			s.counters.forwardedPackets.Add(sent)
			s.counters.forwardedBytes.Add(sent * size)
		}
		if failed > 0 {
			s.counters.writeErrors.Add(failed)
		}
	}
}

// onDeviceTrack runs on a Pion goroutine for a device's track: the winner's
// microphone goes to the door station; a ringing device's is read and
// dropped (reading keeps the receive buffers and reports flowing).
func (s *Session) onDeviceTrack(d *device, t *webrtc.TrackRemote) {
	if !s.join() {
		return
	}
	defer s.wg.Done()
	audio := t.Kind() == webrtc.RTPCodecTypeAudio
	buf := make([]byte, readBufferSize)
	var pkt rtp.Packet
	var seqs seqGap
	for {
		n, _, err := t.Read(buf)
		if err != nil {
			return
		}
		out := s.toDoor.Load()
		if !audio || out == nil || !d.sendAudio.Load() {
			continue
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			s.counters.malformed.Add(1)
			continue
		}
		if lost := seqs.next(pkt.SequenceNumber); lost > 0 {
			s.counters.lostIn.Add(lost)
		}
		stripExtensions(&pkt.Header)
		if err := out.WriteRTP(&pkt); err != nil {
			s.counters.writeErrors.Add(1)
			continue
		}
		s.counters.devicePackets.Add(1)
	}
}

// onRTCP handles one RTCP packet from the receiver of one of our senders
// (d; nil for the door station), whose stream is own: the report block
// about own counts towards lostOut, and a PLI or FIR from a device that
// gets the video asks the door station for a keyframe. reported is the
// highest cumulative loss reported for own so far.
func (s *Session) onRTCP(p rtcp.Packet, d *device, own uint32, reported *uint32) {
	switch p := p.(type) {
	case *rtcp.ReceiverReport:
		s.countReportedLoss(p.Reports, own, reported)
	case *rtcp.SenderReport:
		s.countReportedLoss(p.Reports, own, reported)
	case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
		if d != nil && d.sendVideo.Load() {
			s.requestKeyframe()
		}
	}
}

// countReportedLoss adds to lostOut what a receiver's block about stream
// own says it lost beyond its earlier reports: a block's cumulative loss
// (RFC 3550 §6.4.1) can only be compared with the same stream's last one,
// and may fall when duplicates arrive; only new highs count. Blocks about
// other streams are skipped: one report may name several of our streams
// (a device's video and audio), and Pion hands it to the reader of each
// of them, which counts its own.
func (s *Session) countReportedLoss(blocks []rtcp.ReceptionReport, own uint32, reported *uint32) {
	for _, b := range blocks {
		if b.SSRC == own && b.TotalLost > *reported {
			s.counters.lostOut.Add(uint64(b.TotalLost - *reported))
			*reported = b.TotalLost
		}
	}
}

// seqGap finds the packets missing from one RTP stream: when a packet
// arrives, those between the highest sequence number so far and it. A
// packet arriving late (reordered, or retransmitted after a NACK) was
// already counted and stays counted. A jump of more than maxDropout is taken
// for a restarted stream, not a loss (RFC 3550 appendix A.1).
type seqGap struct {
	started bool
	highest uint16
}

// maxDropout is RFC 3550's MAX_DROPOUT.
const maxDropout = 3000

// next records sequence number seq and returns how many packets it shows
// to be missing.
func (g *seqGap) next(seq uint16) uint64 {
	if !g.started {
		g.started, g.highest = true, seq
		return 0
	}
	d := seq - g.highest // modulo 2^16: wraps are ordinary steps
	if d == 0 || d >= 1<<15 {
		return 0 // a repeat, or older than the highest
	}
	g.highest = seq
	if d > maxDropout {
		return 0
	}
	return uint64(d - 1)
}

func stripExtensions(h *rtp.Header) {
	h.Extension = false
	h.ExtensionProfile = 0
	h.Extensions = h.Extensions[:0]
}

// readRTCP drains the RTCP of one of our senders until its connection
// closes; Pion's interceptors (NACK responder, reports) act on it as it is
// read. A device's PLI or FIR becomes a keyframe request to the door
// station. d is nil for the sender towards the door station.
func (s *Session) readRTCP(d *device, sender *webrtc.RTPSender) {
	var own uint32 // the sender's stream, fixed when its track was added
	if enc := sender.GetParameters().Encodings; len(enc) > 0 {
		own = uint32(enc[0].SSRC)
	}
	var reported uint32 // the highest cumulative loss reported for it
	for {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			s.onRTCP(p, d, own, &reported)
		}
	}
}
