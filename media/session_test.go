package media

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testCall is a session with a door station client publishing numbered
// video and audio, and device clients publishing numbered microphone audio.
type testCall struct {
	e       *Engine
	s       *Session
	w       *wire
	door    *client
	devices []*client
}

// startCall rings n devices before the door station's offer arrives (so
// their offers wait for the door's codecs), then lets the door offer.
func startCall(tb testing.TB, preview bool, audio webrtc.RTPCodecParameters, n int) *testCall {
	tb.Helper()
	return startCallOn(tb, newTestEngine(tb), preview, audio, n)
}

// startCallOn is startCall on a given engine.
func startCallOn(tb testing.TB, e *Engine, preview bool, audio webrtc.RTPCodecParameters, n int) *testCall {
	tb.Helper()
	c := &testCall{e: e, w: newWire()}
	c.s = c.e.NewSession("call-1", "door", preview, c.w)
	tb.Cleanup(c.s.Close)
	c.door = newDoor(tb, c.s, c.w, audio)
	for i := 1; i <= n; i++ {
		c.addDevice(tb, fmt.Sprintf("dev%d", i))
	}
	c.door.offer()
	return c
}

// newDoor is a door station client sending VP8 and the given audio codec,
// the only codecs it supports.
func newDoor(tb testing.TB, s *Session, w *wire, audio webrtc.RTPCodecParameters) *client {
	tb.Helper()
	door := newClient(tb, clientAPI(tb, vp8Codec, audio), "door", s, w)
	video, err := webrtc.NewTrackLocalStaticRTP(vp8Codec.RTPCodecCapability, "video", "door")
	if err != nil {
		tb.Fatal(err)
	}
	sound, err := webrtc.NewTrackLocalStaticRTP(audio.RTPCodecCapability, "audio", "door")
	if err != nil {
		tb.Fatal(err)
	}
	for _, t := range []*webrtc.TrackLocalStaticRTP{video, sound} {
		sender, err := door.pc.AddTrack(t)
		if err != nil {
			tb.Fatal(err)
		}
		door.countRTCP(sender)
	}
	door.publish('V', videoSize, func() *webrtc.TrackLocalStaticRTP { return video })
	door.publish('A', audioSize, func() *webrtc.TrackLocalStaticRTP { return sound })
	return door
}

// addDevice rings a device client that speaks into its microphone.
func (c *testCall) addDevice(tb testing.TB, id string) *client {
	tb.Helper()
	d := newClient(tb, clientAPI(tb), id, c.s, c.w)
	d.publish('M', audioSize, d.micTrack)
	c.devices = append(c.devices, d)
	if err := c.s.AddDevice(id); err != nil {
		tb.Fatal(err)
	}
	return d
}

// gone reports whether the server closed a device's connection.
func gone(d *client) bool {
	switch d.pc.ConnectionState() {
	case webrtc.PeerConnectionStateClosed, webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateDisconnected:
		return true
	}
	return d.hasEnded()
}

// TestSessionPreviewThenConnect runs the whole call on each of udpSetups
// (batched packets, too, must arrive whole and in order).
func TestSessionPreviewThenConnect(t *testing.T) {
	for _, setup := range udpSetups {
		t.Run(setup.name, func(t *testing.T) {
			previewThenConnect(t, startCallOn(t, newEngineWith(t, setup.config(t)), true, opusCodec, 3))
		})
	}
}

func previewThenConnect(t *testing.T, c *testCall) {
	for _, d := range c.devices {
		waitUntil(t, d.id+" preview video", func() bool { return len(d.received(webrtc.RTPCodecTypeVideo)) >= 20 })
	}
	for _, d := range c.devices {
		checkRun(t, d.id+" preview", d.received(webrtc.RTPCodecTypeVideo), 'V', videoSize, 20)
		if a := d.received(webrtc.RTPCodecTypeAudio); len(a) != 0 {
			t.Fatalf("%s got %d audio packets while ringing", d.id, len(a))
		}
	}
	if a := c.door.received(webrtc.RTPCodecTypeAudio); len(a) != 0 {
		t.Fatalf("door got %d microphone packets before the answer", len(a))
	}

	if err := c.s.Connect("dev1"); err != nil {
		t.Fatal(err)
	}
	if err := c.s.Connect("dev1"); err != nil {
		t.Fatalf("connecting the winner again: %v", err)
	}
	if err := c.s.Connect("dev2"); err == nil {
		t.Fatal("a second device could connect")
	}
	win := c.devices[0]
	before := len(win.received(webrtc.RTPCodecTypeVideo))
	waitUntil(t, "winner audio", func() bool { return len(win.received(webrtc.RTPCodecTypeAudio)) >= 20 })
	waitUntil(t, "door microphone", func() bool { return len(c.door.received(webrtc.RTPCodecTypeAudio)) >= 20 })
	waitUntil(t, "winner video", func() bool { return len(win.received(webrtc.RTPCodecTypeVideo)) >= before+20 })
	checkRun(t, "winner", win.received(webrtc.RTPCodecTypeAudio), 'A', audioSize, 20)
	checkRun(t, "winner", win.received(webrtc.RTPCodecTypeVideo), 'V', videoSize, before+20)
	checkRun(t, "door", c.door.received(webrtc.RTPCodecTypeAudio), 'M', audioSize, 20)
	for _, r := range append([]*client{c.door}, c.devices...) {
		if n := r.markedCount(); n != 0 {
			t.Fatalf("%s got %d packets with their sender's header extension", r.id, n)
		}
	}
	for _, d := range c.devices[1:] {
		waitUntil(t, d.id+" closed", func() bool { return gone(d) })
	}
	st := c.s.Stats()
	if st.Devices != 1 || st.DevicePackets < 20 || st.ForwardedPackets < 100 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSessionWithoutPreview(t *testing.T) {
	c := startCall(t, false, opusCodec, 2)
	for _, d := range c.devices {
		waitUntil(t, d.id+" connected", func() bool { return d.pc.ConnectionState() == webrtc.PeerConnectionStateConnected })
	}
	// Let the door station send 30 more packets while the devices ring.
	base := c.s.Stats().DoorPackets
	waitUntil(t, "door media", func() bool { return c.s.Stats().DoorPackets >= base+30 })
	for _, d := range c.devices {
		if v := d.received(webrtc.RTPCodecTypeVideo); len(v) != 0 {
			t.Fatalf("%s got %d video packets without preview", d.id, len(v))
		}
	}
	// A device that gets no video asks in vain for a keyframe. The report
	// after its PLI, in the same packet, shows when both were read.
	ringing := c.devices[1]
	p, err := c.s.devicePeer(ringing.id)
	if err != nil {
		t.Fatal(err)
	}
	video := videoSSRC(t, p)
	const reported = 1000 // more than a real report of this test could count
	lost := c.s.Stats().LostOut
	if err := ringing.pc.WriteRTCP([]rtcp.Packet{
		&rtcp.PictureLossIndication{MediaSSRC: video},
		&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: video, TotalLost: reported}}},
	}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the PLI read", func() bool { return c.s.Stats().LostOut >= lost+reported })
	if st := c.s.Stats(); st.KeyframeRequests != 0 || c.door.pliCount() != 0 {
		t.Fatalf("a device without video asked for a keyframe: %d requests, %d PLIs at the door", st.KeyframeRequests, c.door.pliCount())
	}
	if err := c.s.Connect("dev1"); err != nil {
		t.Fatal(err)
	}
	win := c.devices[0]
	waitUntil(t, "winner video", func() bool { return len(win.received(webrtc.RTPCodecTypeVideo)) >= 20 })
	checkRun(t, "winner", win.received(webrtc.RTPCodecTypeVideo), 'V', videoSize, 20)
	waitUntil(t, "dev2 closed", func() bool { return gone(c.devices[1]) })
	if v := c.devices[1].received(webrtc.RTPCodecTypeVideo); len(v) != 0 {
		t.Fatalf("the loser got %d video packets", len(v))
	}
}

func TestSessionDoorPCMU(t *testing.T) {
	c := startCall(t, true, pcmuCodec, 1)
	if err := c.s.Connect("dev1"); err != nil {
		t.Fatal(err)
	}
	d := c.devices[0]
	waitUntil(t, "PCMU audio", func() bool { return len(d.received(webrtc.RTPCodecTypeAudio)) >= 20 })
	waitUntil(t, "door microphone", func() bool { return len(c.door.received(webrtc.RTPCodecTypeAudio)) >= 20 })
	checkRun(t, "device", d.received(webrtc.RTPCodecTypeAudio), 'A', audioSize, 20)
	checkRun(t, "door", c.door.received(webrtc.RTPCodecTypeAudio), 'M', audioSize, 20)
	if mic := d.micTrack(); mic == nil || !strings.EqualFold(mic.Codec().MimeType, webrtc.MimeTypePCMU) {
		t.Fatalf("device was offered %v, want the door station's PCMU", mic.Codec())
	}
	if got := c.s.codecs.audio.MimeType; !strings.EqualFold(got, webrtc.MimeTypePCMU) {
		t.Fatalf("session audio codec %s", got)
	}
}

func TestSessionDeviceAddedAfterDoor(t *testing.T) {
	c := startCall(t, true, opusCodec, 0)
	waitUntil(t, "door video", func() bool { return c.s.Stats().DoorPackets > 10 })
	d := c.addDevice(t, "late")
	waitUntil(t, "late video", func() bool { return len(d.received(webrtc.RTPCodecTypeVideo)) >= 20 })
	checkRun(t, "late", d.received(webrtc.RTPCodecTypeVideo), 'V', videoSize, 20)
	c.s.RemoveDevice("late")
	waitUntil(t, "removed device closed", func() bool { return gone(d) })
	if n := c.s.Stats().Devices; n != 0 {
		t.Fatalf("%d devices after RemoveDevice", n)
	}
}

func TestSessionPLIRateLimited(t *testing.T) {
	c := startCall(t, true, opusCodec, 0)
	waitUntil(t, "door video", func() bool { return c.s.doorVideoSSRC.Load() != 0 })
	a := c.addDevice(t, "a") // the two are added well within 100 ms
	b := c.addDevice(t, "b")
	for _, d := range []*client{a, b} {
		waitUntil(t, d.id+" video", func() bool { return len(d.received(webrtc.RTPCodecTypeVideo)) >= 10 })
	}
	waitUntil(t, "PLI at the door", func() bool { return c.door.pliCount() >= 1 })
	if n := c.door.pliCount(); n != 1 {
		t.Fatalf("door got %d PLIs for two new viewers, want 1", n)
	}
	if st := c.s.Stats(); st.KeyframeRequests < 2 || st.PLIsSent != 1 {
		t.Fatalf("stats %+v: want 2 requests served by 1 PLI", st)
	}
}

// TestSessionKeyframeEndsTheWait: a new viewer's PLI makes the door
// station send a keyframe; the forwarder sees it go by, so the next
// viewer's request is not taken as served by a keyframe still to come.
func TestSessionKeyframeEndsTheWait(t *testing.T) {
	c := startCall(t, true, opusCodec, 0)
	c.door.encoder.Store(true)
	waitUntil(t, "door video", func() bool { return c.s.doorVideoSSRC.Load() != 0 })
	d := c.addDevice(t, "viewer")
	waitUntil(t, "PLI at the door", func() bool { return c.door.pliCount() >= 1 })
	waitUntil(t, "the keyframe forwarded", func() bool {
		return slices.ContainsFunc(d.received(webrtc.RTPCodecTypeVideo), func(p []byte) bool { return vp8Keyframe(p) })
	})
	if c.s.kf.awaiting.Load() {
		t.Fatal("the session still awaits the keyframe it forwarded")
	}
}

// TestSessionViewerAsksForKeyframe: a device that gets the video and loses
// a frame asks for a keyframe with a PLI or a FIR; both reach the door
// station's keyframer. (That a device without video asks in vain is
// TestSessionWithoutPreview's.)
func TestSessionViewerAsksForKeyframe(t *testing.T) {
	c, d, p := viewingDevice(t)
	video := videoSSRC(t, p)
	for _, ask := range []rtcp.Packet{
		&rtcp.PictureLossIndication{MediaSSRC: video},
		&rtcp.FullIntraRequest{MediaSSRC: video, FIR: []rtcp.FIREntry{{SSRC: video, SequenceNumber: 1}}},
	} {
		before := c.s.Stats().KeyframeRequests
		if err := d.pc.WriteRTCP([]rtcp.Packet{ask}); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, fmt.Sprintf("the keyframe request of a %T", ask), func() bool { return c.s.Stats().KeyframeRequests > before })
	}
}

// videoSSRC is the stream of the video p sends its device.
func videoSSRC(t *testing.T, p *peer) uint32 {
	t.Helper()
	for _, snd := range p.pc.GetSenders() {
		if tr := snd.Track(); tr != nil && tr.Kind() == webrtc.RTPCodecTypeVideo {
			return uint32(snd.GetParameters().Encodings[0].SSRC)
		}
	}
	t.Fatal("no video sender")
	return 0
}

func TestSessionClosedLeavesNothing(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // runs last, after every cleanup below
	c := startCall(t, true, opusCodec, 2)
	waitUntil(t, "video", func() bool { return len(c.devices[1].received(webrtc.RTPCodecTypeVideo)) >= 5 })
	if err := c.s.Connect("dev1"); err != nil {
		t.Fatal(err)
	}
	c.s.Close()
	if err := c.s.AddDevice("dev9"); err != ErrClosed {
		t.Fatalf("AddDevice after Close: %v", err)
	}
	if err := c.e.Close(); err != nil {
		t.Fatal(err)
	}
	if s := c.e.NewSession("call-2", "door", true, c.w); s.AddDevice("x") != ErrClosed {
		t.Fatal("a closed engine started a session")
	}
}

// viewingDevice starts a call ringing one device with preview and waits
// for its video: the call, the device and the server's peer for it.
func viewingDevice(t *testing.T) (*testCall, *client, *peer) {
	t.Helper()
	c := startCall(t, true, opusCodec, 1)
	d := c.devices[0]
	waitUntil(t, "video", func() bool { return len(d.received(webrtc.RTPCodecTypeVideo)) >= 10 })
	p, err := c.s.devicePeer(d.id)
	if err != nil {
		t.Fatal(err)
	}
	return c, d, p
}

func TestSessionDeviceICERestart(t *testing.T) {
	c, d, p := viewingDevice(t)
	d.negMu.Lock()
	d.offerLocked(&webrtc.OfferOptions{ICERestart: true})
	d.negMu.Unlock()
	waitUntil(t, "negotiation settles", func() bool {
		return d.pc.SignalingState() == webrtc.SignalingStateStable && p.pc.SignalingState() == webrtc.SignalingStateStable
	})
	// The device answered the server's first offer as the DTLS client; the
	// server's answer to its offer keeps the server the DTLS server, or
	// browsers refuse it.
	if sdp := p.pc.LocalDescription().SDP; !strings.Contains(sdp, "a=setup:passive") || strings.Contains(sdp, "a=setup:active") {
		t.Fatalf("the server's answer to the device's ICE restart changes its DTLS role:\n%s", sdp)
	}
	before := len(d.received(webrtc.RTPCodecTypeVideo))
	waitUntil(t, "video after the restart", func() bool { return len(d.received(webrtc.RTPCodecTypeVideo)) >= before+20 })
	if err := c.s.Connect(d.id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "door microphone after the restart", func() bool { return len(c.door.received(webrtc.RTPCodecTypeAudio)) >= 10 })
}

// Pion runs each connection state callback on a goroutine of its own, so
// the "connecting" of an ICE restart may be handled after the "connected"
// that followed it. That late callback must not stop the device's media.
func TestSessionDeviceStateCallbackOutOfOrder(t *testing.T) {
	c, d, p := viewingDevice(t)
	c.s.mu.Lock()
	dev := c.s.devices[d.id]
	c.s.mu.Unlock()
	if st := p.pc.ConnectionState(); st != webrtc.PeerConnectionStateConnected {
		t.Fatalf("device connection %s", st)
	}
	c.s.onDeviceState(dev, p.pc, webrtc.PeerConnectionStateConnecting) // the late one
	if !dev.connected.Load() {
		t.Fatal("a stale connecting callback marked a connected device down")
	}
	before := len(d.received(webrtc.RTPCodecTypeVideo))
	waitUntil(t, "video after the late callback", func() bool { return len(d.received(webrtc.RTPCodecTypeVideo)) >= before+20 })
}

func TestSessionRefusesGlare(t *testing.T) {
	c, d, p := viewingDevice(t)
	d.negMu.Lock() // the device is busy: our offer waits in its inbox
	if err := p.offer(); err != nil {
		t.Fatal(err)
	}
	o, err := d.pc.CreateOffer(nil)
	if err == nil {
		err = c.s.HandleSDP(d.id, o)
	}
	d.negMu.Unlock()
	if !errors.Is(err, ErrUnexpectedSDP) {
		t.Fatalf("device offer in glare: %v", err)
	}
	waitUntil(t, "our offer answered", func() bool { return p.pc.SignalingState() == webrtc.SignalingStateStable })
	before := len(d.received(webrtc.RTPCodecTypeVideo))
	waitUntil(t, "video after glare", func() bool { return len(d.received(webrtc.RTPCodecTypeVideo)) >= before+10 })
}

// sdpCounter is a wire that counts the descriptions sent to each client.
type sdpCounter struct {
	*wire
	mu sync.Mutex
	n  map[string]int // guarded by mu
}

func (w *sdpCounter) SDP(to string, desc webrtc.SessionDescription) {
	w.mu.Lock()
	w.n[to]++
	w.mu.Unlock()
	w.wire.SDP(to, desc)
}

func (w *sdpCounter) count(id string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n[id]
}

// TestSessionReoffer: a device that never received its offer (its
// connection closed; here it is not on the wire yet) gets it again, with
// the server's candidates in it, and the media flows; once it has
// answered, Reoffer sends nothing.
func TestSessionReoffer(t *testing.T) {
	s, w, door, d, p := offeredDevice(t, func(d *client) { d.publish('M', audioSize, d.micTrack) })
	waitUntil(t, "the server's candidates gathered", func() bool { return p.pc.ICEGatheringState() == webrtc.ICEGatheringStateComplete })

	w.add(d) // connected again
	s.Reoffer(d.id)
	waitUntil(t, "video", func() bool { return len(d.received(webrtc.RTPCodecTypeVideo)) >= 10 })
	if err := s.Connect(d.id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the door hears the device", func() bool { return len(door.received(webrtc.RTPCodecTypeAudio)) >= 10 })
	s.Reoffer(d.id)
	if n := w.count(d.id); n != 2 {
		t.Fatalf("%d offers sent to the device, want 2: none again once it answered", n)
	}
}

// offeredDevice sets up a session whose door has made its offer and one
// device, dev1 (prepared by prepare, if given, before it is added), that
// was sent the server's offer (w counts the offers sent; what is sent to
// the device is lost), and returns its peer.
func offeredDevice(t *testing.T, prepare func(*client)) (*Session, *sdpCounter, *client, *client, *peer) {
	t.Helper()
	w := &sdpCounter{wire: newWire(), n: map[string]int{}}
	s := newTestEngine(t).NewSession("call-1", "door", true, w)
	t.Cleanup(s.Close)
	door := newDoor(t, s, w.wire, opusCodec)
	d := newClient(t, clientAPI(t), "dev1", s, newWire()) // what is sent to it is lost
	if prepare != nil {
		prepare(d)
	}
	if err := s.AddDevice(d.id); err != nil {
		t.Fatal(err)
	}
	door.offer()
	waitUntil(t, "the device's offer sent", func() bool { return w.count(d.id) == 1 })
	p, err := s.devicePeer(d.id)
	if err != nil {
		t.Fatal(err)
	}
	return s, w, door, d, p
}

// startReoffer starts a Reoffer to device id and gives it 100 ms to reach
// the device's negotiation lock (which the test holds); the channel closes
// when it returns.
func startReoffer(s *Session, id string) chan struct{} {
	reoffered := make(chan struct{})
	go func() {
		defer close(reoffered)
		s.Reoffer(id)
	}()
	time.Sleep(100 * time.Millisecond)
	return reoffered
}

// reofferThenClose starts a Reoffer to device id, and 100 ms later (the
// test holds the device's negotiation lock, so the re-offer waits there)
// a Close; each channel closes when its call returns.
func reofferThenClose(s *Session, id string) (reoffered, closed chan struct{}) {
	reoffered, closed = startReoffer(s, id), make(chan struct{})
	go func() {
		defer close(closed)
		s.Close()
	}()
	return reoffered, closed
}

// TestReofferSendsNothingOnceClosing: signalling runs Reoffer on a
// goroutine of its own (an answer from a winner that rejoined), so the
// call can end and its session start closing while the re-offer waits for
// the device's negotiation. Once Close has begun, the re-offer sends
// nothing: the parties may already have their ended. The test holds the
// device's negotiation lock, so the re-offer waits there, and the door's,
// so that Close waits after marking the session closed and before closing
// the connections.
func TestReofferSendsNothingOnceClosing(t *testing.T) {
	s, w, _, d, p := offeredDevice(t, nil)

	p.negMu.Lock()
	s.doorNeg.Lock()
	reoffered, closed := reofferThenClose(s, d.id)
	waitUntil(t, "the session closing", func() bool { return s.check() != nil })
	p.negMu.Unlock()
	select {
	case <-reoffered:
	case <-time.After(waitFor):
		t.Fatal("the re-offer did not return")
	}
	s.doorNeg.Unlock()
	<-closed
	if n := w.count(d.id); n != 1 {
		t.Fatalf("%d offers sent to the device: the re-offer went out after the session began closing", n)
	}
}

// TestReofferSendsNothingOnceEnding: once Ending has returned (signalling
// calls it before it sends the parties their ended), a re-offer waiting on
// the device's negotiation lock sends nothing.
func TestReofferSendsNothingOnceEnding(t *testing.T) {
	s, w, _, d, p := offeredDevice(t, nil)
	p.negMu.Lock()
	reoffered := startReoffer(s, d.id)
	s.Ending()
	p.negMu.Unlock()
	select {
	case <-reoffered:
	case <-time.After(waitFor):
		t.Fatal("the re-offer did not return")
	}
	if n := w.count(d.id); n != 1 {
		t.Fatalf("%d offers sent to the device: the re-offer went out after Ending", n)
	}
}

// TestCloseWaitsForReoffer: Close returns only once a Reoffer in progress
// has: signalling's drain waits for the sessions' Close, and so for the
// re-offers it started. The test holds the device's negotiation lock, so
// the re-offer waits there.
func TestCloseWaitsForReoffer(t *testing.T) {
	s, w, _, d, p := offeredDevice(t, nil)

	p.negMu.Lock()
	reoffered, closed := reofferThenClose(s, d.id)
	select {
	case <-closed:
		p.negMu.Unlock()
		t.Fatal("Close returned while a Reoffer was still in progress")
	case <-time.After(time.Second):
	}
	p.negMu.Unlock()
	for _, ch := range []chan struct{}{reoffered, closed} {
		select {
		case <-ch:
		case <-time.After(waitFor):
			t.Fatal("the re-offer or Close did not return")
		}
	}
	if n := w.count(d.id); n != 1 {
		t.Fatalf("%d offers sent to the device, want 1", n)
	}
}

// TestSessionDeviceRungAgain: a device rung again (it reconnected while the
// call rang) gets a new connection, and its first one is closed at once,
// not left open for as long as the node runs: Close knows only the
// devices' current connections.
func TestSessionDeviceRungAgain(t *testing.T) {
	c, first, p := viewingDevice(t)
	again := c.addDevice(t, first.id) // the wire now carries dev1's messages to the new client
	waitUntil(t, "the first connection closed", func() bool {
		return p.pc.ConnectionState() == webrtc.PeerConnectionStateClosed && gone(first)
	})
	waitUntil(t, "video on the new connection", func() bool { return len(again.received(webrtc.RTPCodecTypeVideo)) >= 20 })
	checkRun(t, "dev1 again", again.received(webrtc.RTPCodecTypeVideo), 'V', videoSize, 20)
	if err := c.s.Connect(again.id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the door hears the new connection", func() bool { return len(c.door.received(webrtc.RTPCodecTypeAudio)) >= 20 })
	checkRun(t, "door", c.door.received(webrtc.RTPCodecTypeAudio), 'M', audioSize, 20)
	if n := c.s.Stats().Devices; n != 1 {
		t.Fatalf("%d devices, want dev1 once", n)
	}
}

// TestSessionWinnerWithoutPreviewAsksForKeyframe: without preview, the
// winner's video starts at the answer, and a decoder can start only at a
// keyframe: the answer asks the door station for one, which reaches the
// winner.
func TestSessionWinnerWithoutPreviewAsksForKeyframe(t *testing.T) {
	c := startCall(t, false, opusCodec, 1)
	c.door.encoder.Store(true)
	win := c.devices[0]
	waitUntil(t, "door video", func() bool { return c.s.doorVideoSSRC.Load() != 0 })
	c.s.mu.Lock()
	dev := c.s.devices[win.id]
	c.s.mu.Unlock()
	waitUntil(t, "the device connected", func() bool { return dev.connected.Load() })
	if n := c.door.pliCount(); n != 0 {
		t.Fatalf("door got %d PLIs while no device got the video", n)
	}
	if err := c.s.Connect(win.id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "PLI at the door", func() bool { return c.door.pliCount() >= 1 })
	waitUntil(t, "the keyframe forwarded to the winner", func() bool {
		return slices.ContainsFunc(win.received(webrtc.RTPCodecTypeVideo), func(p []byte) bool { return vp8Keyframe(p) })
	})
}

// TestSessionDoorGetsOneCodecPerKind: a door station that supports
// several codecs of each kind (VP8 and H.264; PCMU and Opus) gets an
// answer naming one of each, the first it offered, the one every device is
// offered: answered with more, it may send in another, which no device
// could decode. Its PCMU reaches the winner.
func TestSessionDoorGetsOneCodecPerKind(t *testing.T) {
	h264 := webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: h264Fmtp[0], RTCPFeedback: videoFeedback}, PayloadType: 102}
	w := newWire()
	s := newTestEngine(t).NewSession("call-1", "door", true, w)
	t.Cleanup(s.Close)
	door := newClient(t, clientAPI(t, vp8Codec, h264, pcmuCodec, opusCodec), "door", s, w)
	video, err := webrtc.NewTrackLocalStaticRTP(vp8Codec.RTPCodecCapability, "video", "door")
	if err != nil {
		t.Fatal(err)
	}
	sound, err := webrtc.NewTrackLocalStaticRTP(pcmuCodec.RTPCodecCapability, "audio", "door")
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*webrtc.TrackLocalStaticRTP{video, sound} {
		if _, err := door.pc.AddTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	door.publish('A', audioSize, func() *webrtc.TrackLocalStaticRTP { return sound })
	d := newClient(t, clientAPI(t), "dev1", s, w)
	d.publish('M', audioSize, d.micTrack)
	if err := s.AddDevice(d.id); err != nil {
		t.Fatal(err)
	}
	door.offer()
	waitUntil(t, "the door station's answer", func() bool { return door.pc.SignalingState() == webrtc.SignalingStateStable })
	var answer sdp.SessionDescription
	if err := answer.UnmarshalString(door.pc.RemoteDescription().SDP); err != nil {
		t.Fatal(err)
	}
	for _, m := range answer.MediaDescriptions {
		if len(m.MediaName.Formats) != 1 {
			t.Errorf("the answer's %s section names payload types %v, want one", m.MediaName.Media, m.MediaName.Formats)
		}
	}
	s.mu.Lock()
	audio := s.codecs.audio
	s.mu.Unlock()
	if got := audio.MimeType; !strings.EqualFold(got, webrtc.MimeTypePCMU) {
		t.Fatalf("session audio codec %s, want the door station's first, PCMU", got)
	}
	if err := s.Connect(d.id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "PCMU at the winner", func() bool { return len(d.received(webrtc.RTPCodecTypeAudio)) >= 20 })
	checkRun(t, "dev1", d.received(webrtc.RTPCodecTypeAudio), 'A', audioSize, 20)
}

// TestSessionDeviceVideoNotForwarded: only the winner's microphone goes to
// the door station. A device that adds a video track of its own (its offer
// is answered, receiving it) does not have it written into the door
// station's audio.
func TestSessionDeviceVideoNotForwarded(t *testing.T) {
	c, d, p := viewingDevice(t)
	if err := c.s.Connect(d.id); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "door microphone", func() bool { return len(c.door.received(webrtc.RTPCodecTypeAudio)) >= 10 })
	camera, err := webrtc.NewTrackLocalStaticRTP(vp8Codec.RTPCodecCapability, "camera", d.id)
	if err != nil {
		t.Fatal(err)
	}
	d.negMu.Lock()
	if _, err := d.pc.AddTrack(camera); err != nil {
		d.negMu.Unlock()
		t.Fatal(err)
	}
	d.offerLocked(nil)
	d.negMu.Unlock()
	d.publish('W', videoSize, func() *webrtc.TrackLocalStaticRTP { return camera })
	waitUntil(t, "the server reading the device's video", func() bool {
		return slices.ContainsFunc(p.pc.GetReceivers(), func(r *webrtc.RTPReceiver) bool {
			return r.Track() != nil && r.Track().Kind() == webrtc.RTPCodecTypeVideo
		})
	})
	before := len(c.door.received(webrtc.RTPCodecTypeAudio))
	waitUntil(t, "more door microphone", func() bool { return len(c.door.received(webrtc.RTPCodecTypeAudio)) >= before+50 })
	checkRun(t, "door", c.door.received(webrtc.RTPCodecTypeAudio), 'M', audioSize, before+50)
	if v := c.door.received(webrtc.RTPCodecTypeVideo); len(v) != 0 {
		t.Fatalf("the door station got %d video packets", len(v))
	}
}
