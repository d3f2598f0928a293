package media

import (
	"errors"
	"fmt"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
)

// handleDoorOffer answers the door station's offer. The first offer fixes
// the call's codecs: for each kind, the first codec of the door station's
// list that we support, and only that one, so that every device can be
// offered exactly what the door station will send. The answer's audio is
// sendrecv with a local track carrying the winner's microphone, so that
// answering the call needs no renegotiation. Later offers (ICE restarts)
// are answered on the same connection and keep the codecs.
func (s *Session) handleDoorOffer(o webrtc.SessionDescription) error {
	s.doorNeg.Lock()
	defer s.doorNeg.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if p := s.door.Load(); p != nil {
		return p.answer(o, nil)
	}
	pc, err := s.e.newPeerConnection()
	if err != nil {
		return err
	}
	p := newPeer(s.doorID, pc, s.ev, s.log)
	pc.OnTrack(s.onDoorTrack)
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		s.log.Debug("door station media", "state", st.String())
	})
	s.door.Store(p) // candidates trickled meanwhile queue on it
	var codecs doorCodecs
	if err := p.answer(o, func() error { return s.prepareDoor(pc, &codecs) }); err != nil {
		s.door.Store(nil)
		p.close()
		return err
	}
	s.mu.Lock()
	s.codecs = &codecs
	var waiting []*device
	for _, d := range s.devices {
		if !d.starting {
			d.starting = true
			waiting = append(waiting, d)
		}
	}
	s.mu.Unlock()
	for _, d := range waiting {
		if err := s.startDevice(d, &codecs); err != nil && !errors.Is(err, ErrClosed) {
			s.log.Warn("offer to device failed", "device_id", d.id, "err", err)
		}
	}
	return nil
}

// prepareDoor runs between the door station's offer and our answer: it
// picks the codecs and adds the track that carries the winner's microphone.
func (s *Session) prepareDoor(pc *webrtc.PeerConnection, codecs *doorCodecs) error {
	for _, t := range pc.GetTransceivers() {
		offered := t.Receiver().GetParameters().Codecs
		if len(offered) == 0 {
			continue
		}
		chosen := offered[0]
		if err := t.SetCodecPreferences([]webrtc.RTPCodecParameters{chosen}); err != nil {
			return fmt.Errorf("media: door codec: %w", err)
		}
		switch {
		case t.Kind() == webrtc.RTPCodecTypeVideo && codecs.video == nil:
			codecs.video = &chosen
		case t.Kind() == webrtc.RTPCodecTypeAudio && codecs.audio == nil:
			codecs.audio = &chosen
		}
	}
	if codecs.video == nil && codecs.audio == nil {
		return fmt.Errorf("%w: no codec we support (VP8, H.264, Opus, PCMU, PCMA)", ErrBadSDP)
	}
	if codecs.audio == nil {
		return nil
	}
	mic, err := webrtc.NewTrackLocalStaticRTP(codecs.audio.RTPCodecCapability, "audio", "foyer-"+s.callID)
	if err != nil {
		return fmt.Errorf("media: door audio track: %w", err)
	}
	// AddTrack reuses the offer's audio transceiver; if the door station
	// offered sendonly audio, Pion answers recvonly and the track stays unbound.
	sender, err := pc.AddTrack(mic)
	if err != nil {
		return fmt.Errorf("media: door audio track: %w", err)
	}
	s.mu.Lock()
	s.goLocked(func() { s.readRTCP(nil, sender) })
	s.mu.Unlock()
	s.toDoor.Store(mic)
	return nil
}

// onDoorTrack runs on a Pion goroutine for each of the door station's
// tracks and forwards its RTP until the connection closes.
func (s *Session) onDoorTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	if !s.join() {
		return
	}
	defer s.wg.Done()
	video := t.Kind() == webrtc.RTPCodecTypeVideo
	if video {
		s.doorVideoSSRC.Store(uint32(t.SSRC()))
	}
	s.forward(t, video)
}

// requestKeyframe asks the door station for a keyframe, rate-limited.
func (s *Session) requestKeyframe() {
	s.counters.keyframeRequests.Add(1)
	s.kf.request()
}

// sendPLI sends a picture loss indication for the door station's video.
func (s *Session) sendPLI() bool {
	p, ssrc := s.door.Load(), s.doorVideoSSRC.Load()
	if p == nil || ssrc == 0 {
		return false
	}
	if err := p.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
		s.log.Debug("PLI to door station failed", "err", err)
		return false
	}
	s.counters.plisSent.Add(1)
	return true
}
