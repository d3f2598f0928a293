package media

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// device is one rung device's part of the session.
type device struct {
	// Immutable after construction.
	id string

	// Set under Session.mu before the device is published in subs, then
	// immutable; nil until the door station's codecs are known.
	peer         *peer
	video, audio *webrtc.TrackLocalStaticRTP // nil when the door sends no such media

	starting bool // guarded by Session.mu; startDevice was called

	sendVideo atomic.Bool // preview, or the winner
	sendAudio atomic.Bool // the winner: door audio to it, its microphone to the door
	connected atomic.Bool // ICE and DTLS are up: writes reach it
	stateMu   sync.Mutex  // orders the updates of connected (onDeviceState)
}

// AddDevice gives a rung device its PeerConnection: the door station's
// video (forwarded at once with preview), its audio (forwarded only once
// this device wins) and a slot for the device's microphone. The offer goes
// out through Events.SDP now, or as soon as the door station's offer is
// answered. Adding a device again (it reconnected and was rung again)
// replaces its connection.
func (s *Session) AddDevice(id string) error {
	if id == "" || id == s.doorID {
		return fmt.Errorf("%w: %q cannot be a rung device", ErrUnknownPeer, id)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.winner != "" {
		s.mu.Unlock()
		return ErrCallTaken
	}
	old := s.devices[id]
	if old == nil && len(s.devices) >= maxDevices {
		s.mu.Unlock()
		return ErrTooManyPeers
	}
	d := &device{id: id}
	d.sendVideo.Store(s.preview)
	s.devices[id] = d
	if old != nil {
		s.dropLocked(old)
	}
	codecs := s.codecs
	d.starting = codecs != nil
	s.mu.Unlock()
	if codecs == nil {
		return nil
	}
	return s.startDevice(d, codecs)
}

// startDevice creates d's PeerConnection with tracks in the door station's
// codecs and sends the offer.
func (s *Session) startDevice(d *device, codecs *doorCodecs) error {
	pc, err := s.e.newPeerConnection()
	if err != nil {
		return err
	}
	p := newPeer(d.id, pc, s.ev, s.log)
	video, videoSender, err := addDeviceTrack(pc, codecs.video, "video", s.callID, webrtc.RTPTransceiverDirectionSendonly)
	audio, audioSender, err2 := addDeviceTrack(pc, codecs.audio, "audio", s.callID, webrtc.RTPTransceiverDirectionSendrecv)
	if err = errors.Join(err, err2); err != nil {
		p.close()
		return err
	}
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { s.onDeviceTrack(d, t) })
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) { s.onDeviceState(d, pc, st) })

	s.mu.Lock()
	if s.closed || s.devices[d.id] != d {
		s.mu.Unlock()
		p.close() // removed, replaced or ended meanwhile
		return ErrClosed
	}
	d.peer, d.video, d.audio = p, video, audio
	for _, snd := range []*webrtc.RTPSender{videoSender, audioSender} {
		if snd != nil {
			s.goLocked(func() { s.readRTCP(d, snd) })
		}
	}
	s.publishLocked()
	s.mu.Unlock()
	return p.offer()
}

// addDeviceTrack adds a transceiver sending a local track in codec, which
// is the only codec offered; nothing when codec is nil.
func addDeviceTrack(pc *webrtc.PeerConnection, codec *webrtc.RTPCodecParameters, kind, callID string, dir webrtc.RTPTransceiverDirection) (*webrtc.TrackLocalStaticRTP, *webrtc.RTPSender, error) {
	if codec == nil {
		return nil, nil, nil
	}
	track, err := webrtc.NewTrackLocalStaticRTP(codec.RTPCodecCapability, kind, "foyer-"+callID)
	if err != nil {
		return nil, nil, fmt.Errorf("media: device %s track: %w", kind, err)
	}
	tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: dir})
	if err != nil {
		return nil, nil, fmt.Errorf("media: device %s transceiver: %w", kind, err)
	}
	if err := tr.SetCodecPreferences([]webrtc.RTPCodecParameters{forDevices(*codec)}); err != nil {
		return nil, nil, fmt.Errorf("media: device %s codec: %w", kind, err)
	}
	return track, tr.Sender(), nil
}

// onDeviceState runs on a Pion goroutine when pc's state changes to st. A
// device that starts receiving video needs a keyframe to decode anything.
//
// Pion runs each state callback on a goroutine of its own, so two changes
// in quick succession (connecting, then connected again, in an ICE
// restart) may run in either order: st may be stale by now. The flag
// follows the connection's current state instead, read under stateMu, so
// whichever callback runs last leaves it right.
func (s *Session) onDeviceState(d *device, pc *webrtc.PeerConnection, st webrtc.PeerConnectionState) {
	d.stateMu.Lock()
	now := pc.ConnectionState()
	up := now == webrtc.PeerConnectionStateConnected
	was := d.connected.Swap(up)
	d.stateMu.Unlock()
	s.log.Debug("device media", "device_id", d.id, "state", st.String(), "now", now.String())
	if up && !was && d.sendVideo.Load() {
		s.requestKeyframe()
	}
}

// Connect switches the call to the device that won: door audio and video
// flow to it, its microphone to the door station, and every other device's
// connection is closed. Connecting the winner again does nothing.
func (s *Session) Connect(id string) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	d := s.devices[id]
	switch {
	case d == nil:
		s.mu.Unlock()
		return ErrUnknownPeer
	case s.winner == id:
		s.mu.Unlock()
		return nil
	case s.winner != "":
		s.mu.Unlock()
		return ErrCallTaken
	}
	s.winner = id
	for oid, o := range s.devices {
		if oid != id {
			s.dropLocked(o)
		}
	}
	d.sendAudio.Store(true)
	newViewer := !d.sendVideo.Swap(true) && d.connected.Load()
	s.mu.Unlock()
	if newViewer {
		s.requestKeyframe()
	}
	return nil
}

// Reoffer sends a device's offer again while it is still unanswered: the
// device has connected again (the winner rejoining the call) and may never
// have received it. The offer carries the candidates gathered so far. A
// device whose negotiation completed gets nothing: it restarts ICE itself.
//
// Signalling calls it on a goroutine of its own, so the call may end
// meanwhile: once Close has begun, Reoffer sends nothing (the device may
// have its ended already), and Close waits for a Reoffer in progress.
func (s *Session) Reoffer(id string) {
	s.mu.Lock()
	var p *peer
	if d := s.devices[id]; d != nil && !s.closed {
		p = d.peer
	}
	if p != nil {
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if p != nil {
		defer s.wg.Done()
		p.resendOffer(s.whileOpen)
	}
}

// RemoveDevice closes a device's connection: it declined, was cancelled or
// disconnected. Unknown devices are ignored.
func (s *Session) RemoveDevice(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[id]; d != nil && !s.closed {
		s.dropLocked(d)
	}
}

// dropLocked forgets d and closes its connection on a goroutine that Close
// waits for; with mu held.
func (s *Session) dropLocked(d *device) {
	if s.devices[d.id] == d {
		delete(s.devices, d.id)
	}
	s.publishLocked()
	d.sendVideo.Store(false)
	d.sendAudio.Store(false)
	if p := d.peer; p != nil {
		s.goLocked(p.close)
	}
}

// publishLocked gives the forwarders a new snapshot of the devices that
// have a connection; with mu held.
func (s *Session) publishLocked() {
	subs := make([]*device, 0, len(s.devices))
	for _, d := range s.devices {
		if d.peer != nil {
			subs = append(subs, d)
		}
	}
	s.subs.Store(&subs)
}
