package signaling

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/foyer-intercom/foyer/internal/loopback"
	"github.com/foyer-intercom/foyer/media"
)

const (
	// mediaWait bounds each wait for media; loopback ICE+DTLS takes tens of ms.
	mediaWait = 10 * time.Second
	// packetEvery paces the synthetic streams (20 ms audio frames, halved).
	packetEvery = 10 * time.Millisecond
)

// Payload kinds: the first byte of every synthetic packet says what it is,
// the next four its sequence in its stream.
const (
	kindVideo = 'v'
	kindAudio = 'a'
	kindMic   = 'm'
)

// loopbackAPI is a test peer's WebRTC stack: loopback only, no mDNS.
func loopbackAPI(t *testing.T) *webrtc.API {
	t.Helper()
	api, err := loopback.API()
	if err != nil {
		t.Fatal(err)
	}
	return api
}

// peer is a device or door station with a real PeerConnection, speaking
// protocol v1 over its WebSocket: its reader applies sdp and candidate
// messages and passes every other message to msgs.
type peer struct {
	t  *testing.T
	c  *client
	pc *webrtc.PeerConnection
	// trickle sends the candidates; the door station holds them while it
	// applies its offer before sending it (the server must read it first).
	trickle *loopback.Trickle
	msgs    chan map[string]any
	wmu     sync.Mutex // one writer at a time on the socket
	call    string     // set before the first sdp is sent

	mu    sync.Mutex
	got   map[byte][]uint32 // guarded by mu; sequence numbers received, by kind
	ended bool              // guarded by mu; a remote track ended
	cands int               // guarded by mu; the server's candidates received, end of candidates aside
	done  chan struct{}
}

func newPeer(t *testing.T, ts *testServer, name string) *peer {
	t.Helper()
	pc, err := loopbackAPI(t).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, c: ts.connect(t, name), pc: pc, msgs: make(chan map[string]any, 64), got: map[byte][]uint32{}, done: make(chan struct{})}
	p.trickle = loopback.NewTrickle(pc, func(cand webrtc.ICECandidateInit) {
		p.send(map[string]any{"type": "candidate", "call_id": p.callID(), "candidate": cand})
	})
	pc.OnTrack(p.record)
	go p.read()
	t.Cleanup(func() {
		_ = pc.Close()
		_ = p.c.ws.Close()
		<-p.done
	})
	return p
}

func (p *peer) callID() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.call
}

func (p *peer) setCall(id string) {
	p.mu.Lock()
	p.call = id
	p.mu.Unlock()
}

func (p *peer) send(m map[string]any) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.c.ws.WriteJSON(m)
}

// read applies the server's media messages and queues the others.
func (p *peer) read() {
	defer close(p.done)
	defer close(p.msgs)
	for {
		_, data, err := p.c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m["type"] {
		case "sdp":
			var msg SDPMessage
			_ = json.Unmarshal(data, &msg)
			p.onSDP(msg)
		case "candidate":
			var msg CandidateMessage
			_ = json.Unmarshal(data, &msg)
			if msg.Candidate.Candidate != "" {
				p.mu.Lock()
				p.cands++
				p.mu.Unlock()
				if err := p.pc.AddICECandidate(msg.Candidate); err != nil {
					p.t.Errorf("%s: candidate: %v", p.c.name, err)
				}
			}
		case "directory":
		default:
			p.msgs <- m
		}
	}
}

// onSDP answers the server's offer (a device, adding its microphone in the
// offered codec) or applies its answer (the door station).
func (p *peer) onSDP(msg SDPMessage) {
	p.setCall(string(msg.CallID))
	if err := p.pc.SetRemoteDescription(msg.Description); err != nil {
		p.t.Errorf("%s: remote description: %v", p.c.name, err)
		return
	}
	if msg.Description.Type != webrtc.SDPTypeOffer {
		return
	}
	mic, err := loopback.Microphone(p.pc, p.c.name)
	if err != nil {
		p.t.Errorf("%s: microphone: %v", p.c.name, err)
		return
	}
	if mic != nil {
		go publish(mic, kindMic, 160, p.done)
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		p.t.Errorf("%s: answer: %v", p.c.name, err)
		return
	}
	// The description goes out before any candidate: gathering starts
	// with SetLocalDescription.
	p.send(map[string]any{"type": "sdp", "call_id": msg.CallID, "description": answer})
	if err := p.pc.SetLocalDescription(answer); err != nil {
		p.t.Errorf("%s: local description: %v", p.c.name, err)
	}
}

// offer sends the server an offer of p's transceivers for its call. The
// offer is applied before it is sent, so that the server's answer cannot
// find p's connection still stable; the candidates that gathering starts
// meanwhile wait until the offer is out.
func (p *peer) offer(t *testing.T) {
	t.Helper()
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	p.trickle.Hold()
	if err := p.pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	p.send(map[string]any{"type": "sdp", "call_id": p.callID(), "description": offer})
	p.trickle.Release()
}

// waitCandidate waits for a candidate of the server's that is one (not the
// end of candidates): a peer behind NAT, unlike these on loopback, cannot
// be reached by the server's checks alone, and needs them.
func (p *peer) waitCandidate(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(mediaWait); ; time.Sleep(packetEvery) {
		p.mu.Lock()
		n := p.cands
		p.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the server trickled no candidate but the end of candidates", p.c.name)
		}
	}
}

// record keeps the sequence numbers of a remote track's packets.
func (p *peer) record(track *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	closed := loopback.ReadRTP(track, func(pkt *rtp.Packet) {
		if len(pkt.Payload) < 5 {
			return
		}
		p.mu.Lock()
		p.got[pkt.Payload[0]] = append(p.got[pkt.Payload[0]], binary.BigEndian.Uint32(pkt.Payload[1:5]))
		p.mu.Unlock()
	})
	if closed { // one track's end is enough: the server closed the connection
		p.mu.Lock()
		p.ended = true
		p.mu.Unlock()
	}
}

func (p *peer) received(kind byte) []uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]uint32(nil), p.got[kind]...)
}

// next returns the next non-media message.
func (p *peer) next() map[string]any {
	p.t.Helper()
	select {
	case m, ok := <-p.msgs:
		if !ok {
			p.t.Fatalf("%s: connection closed", p.c.name)
		}
		return m
	case <-time.After(readTimeout):
		p.t.Fatalf("%s: no message", p.c.name)
		return nil
	}
}

func (p *peer) expect(typ string) map[string]any {
	p.t.Helper()
	m := p.next()
	if m["type"] != typ {
		p.t.Fatalf("%s: want %s, got %v", p.c.name, typ, m)
	}
	return m
}

// publish writes synthetic RTP: payload kind, sequence, padding.
func publish(track *webrtc.TrackLocalStaticRTP, kind byte, size int, stop <-chan struct{}) {
	t := time.NewTicker(packetEvery)
	defer t.Stop()
	for seq := uint32(0); ; seq++ {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		payload := make([]byte, size)
		payload[0] = kind
		binary.BigEndian.PutUint32(payload[1:5], seq)
		pkt := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(seq), Timestamp: seq * 960, Marker: true}, Payload: payload}
		if kind == kindVideo {
			payload[5] = 0x10 // VP8 payload descriptor: start of partition
			payload[6] = 0x00 // VP8 payload header: key frame
		}
		if err := track.WriteRTP(pkt); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return
		}
	}
}

// waitRun waits until a peer has received at least n packets of kind, and
// checks they are one contiguous, in-order run of what was sent (a prefix
// sent before the peer joined may be missing; nothing else may).
func waitRun(t *testing.T, p *peer, kind byte, n int) {
	t.Helper()
	deadline := time.Now().Add(mediaWait)
	for len(p.received(kind)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d %c packets after %v, want %d", p.c.name, len(p.received(kind)), kind, mediaWait, n)
		}
		time.Sleep(packetEvery) // media arrives on its own schedule
	}
	got := p.received(kind)
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("%s: %c packets out of order or missing: …%d, %d…", p.c.name, kind, got[i-1], got[i])
		}
	}
}

// loopbackEngine is a media engine on loopback only, closed as the test ends.
func loopbackEngine(t *testing.T) *media.Engine {
	t.Helper()
	engine, err := media.NewEngine(media.Config{LoopbackOnly: true}, suiteLogs.logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Close() })
	return engine
}

// TestDeclinedDeviceLeavesMedia: a device that declined is no longer a
// party of the call's media (its peer connection is closed): its
// candidate gets not_found, while a device still ringing is still one
// (bad_request: the server has not offered to it yet, the door station
// not having offered).
func TestDeclinedDeviceLeavesMedia(t *testing.T) {
	ts := newTestServer(t, harborView, Config{Media: loopbackEngine(t)})
	_, devices, callID := ringAll(t, ts)
	cand := map[string]any{"type": "candidate", "call_id": callID, "candidate": map[string]any{"candidate": ""}}
	bram := devices["bram-phone"]
	bram.send(map[string]any{"type": "decline", "call_id": callID})
	bram.send(cand)
	bram.expectError("not_found")
	anna := devices["anna-phone"]
	anna.send(cand)
	if e := anna.expectError("bad_request"); !strings.Contains(fmt.Sprint(e["message"]), "before our offer") {
		t.Fatalf("a ringing device's candidate before any offer: %v", e)
	}
}

// TestLateDeviceJoinsMedia: a device rung late (it connected while the
// call rang) is a party of the call's media like those rung at first: its
// candidate is taken (bad_request: the server has not offered to it yet,
// the door station not having offered), not refused not_found.
func TestLateDeviceJoinsMedia(t *testing.T) {
	ts := newTestServer(t, harborView, Config{Media: loopbackEngine(t)})
	ts.connect(t, "anna-phone")
	door := ts.connect(t, "front-door")
	callID, _ := door.call("101")
	late := ts.connect(t, "bram-phone")
	late.expect("ring")
	late.send(map[string]any{"type": "candidate", "call_id": callID, "candidate": map[string]any{"candidate": ""}})
	if e := late.expectError("bad_request"); !strings.Contains(fmt.Sprint(e["message"]), "before our offer") {
		t.Fatalf("a late-rung device's candidate before any offer: %v", e)
	}
}

// offerAudioTo102 has front-door, a real peer, call 102 (dirk-phone, which
// it connects and which reads its ring) and send its offer of audio before
// its candidates (peer.offer).
func offerAudioTo102(t *testing.T, ts *testServer) (door *peer, dirk *client, callID string) {
	t.Helper()
	dirk = ts.connect(t, "dirk-phone")
	door = newPeer(t, ts, "front-door")
	door.send(map[string]any{"type": "call", "to": "102"})
	callID = door.expect("calling")["call_id"].(string)
	door.setCall(callID)
	dirk.expect("ring")
	if _, err := door.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	door.offer(t)
	return door, dirk, callID
}

// TestRepeatedAnswerGetsOfferAgain: a winner that never answered the
// server's offer (say its connection dropped as the offer came) answers
// again, and gets answered, then the offer again.
func TestRepeatedAnswerGetsOfferAgain(t *testing.T) {
	ts := newTestServer(t, harborView, Config{Media: loopbackEngine(t)})
	_, dirk, callID := offerAudioTo102(t, ts)

	// dirk-phone reads what comes, the server's candidates aside, and
	// answers none of it.
	expect := func(typ string) map[string]any {
		t.Helper()
		for {
			m := dirk.next()
			if m["type"] == typ {
				return m
			}
			if m["type"] != "candidate" && m["type"] != "directory" {
				t.Fatalf("dirk-phone: want %q, got %v", typ, m)
			}
		}
	}
	offered := func() {
		t.Helper()
		if o := expect("sdp"); o["call_id"] != callID || o["description"].(map[string]any)["type"] != "offer" {
			t.Fatalf("dirk-phone: want the server's offer, got %v", o)
		}
	}
	offered()
	dirk.send(map[string]any{"type": "answer", "call_id": callID})
	expect("answered")
	dirk.send(map[string]any{"type": "answer", "call_id": callID, "ref": "again"})
	if a := expect("answered"); a["ref"] != "again" {
		t.Fatalf("dirk-phone: answered again %v", a)
	}
	offered()
}

// TestMediaEndToEnd: a door station publishing VP8 video and Opus audio,
// three devices rung. Before the answer every ringing device gets the
// video (preview) and no audio; after one answers it gets audio and video,
// the door station gets its microphone, and the losers' media ends. The
// server's trickled candidates carry candidates, not only their end.
func TestMediaEndToEnd(t *testing.T) {
	engine := loopbackEngine(t)
	ts := newTestServer(t, harborView, Config{Media: engine})

	devices := []*peer{newPeer(t, ts, "anna-phone"), newPeer(t, ts, "bram-phone"), newPeer(t, ts, "hall-101")}
	door := newPeer(t, ts, "front-door")
	door.send(map[string]any{"type": "call", "to": "101"})
	calling := door.expect("calling")
	callID := calling["call_id"].(string)
	door.setCall(callID)
	for _, d := range devices {
		d.expect("ring")
	}

	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "door")
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "door")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := door.pc.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		t.Fatal(err)
	}
	if _, err := door.pc.AddTransceiverFromTrack(audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		t.Fatal(err)
	}
	door.offer(t)
	go publish(video, kindVideo, 900, door.done)
	go publish(audio, kindAudio, 160, door.done)

	// Preview: every ringing device gets the door's video, and no audio.
	for _, d := range devices {
		waitRun(t, d, kindVideo, 20)
	}
	for _, d := range devices {
		if a := d.received(kindAudio); len(a) != 0 {
			t.Fatalf("%s heard the door before answering (%d packets)", d.c.name, len(a))
		}
	}

	// Malformed media messages get bad_request naming the field (a
	// candidate that is not an object is not taken for the end of
	// candidates), and the call goes on.
	for _, bad := range []struct {
		msg  map[string]any
		says string
	}{
		{map[string]any{"type": "sdp", "call_id": callID, "description": "v=0"}, `"description" must be`},
		{map[string]any{"type": "candidate", "call_id": callID, "candidate": 42}, `"candidate" must be`},
	} {
		door.send(bad.msg)
		if e := door.expect("error"); e["code"] != "bad_request" || !strings.Contains(fmt.Sprint(e["message"]), bad.says) {
			t.Fatalf("%v: got %v, want bad_request saying %s", bad.msg, e, bad.says)
		}
	}

	winner, losers := devices[1], []*peer{devices[0], devices[2]}
	winner.send(map[string]any{"type": "answer", "call_id": callID})
	winner.expect("answered")
	door.expect("answered")
	for _, l := range losers {
		if c := l.expect("cancel"); c["reason"] != "answered_elsewhere" {
			t.Fatalf("%s: %v", l.c.name, c)
		}
	}
	waitRun(t, winner, kindAudio, 20)
	waitRun(t, winner, kindVideo, 60)
	waitRun(t, door, kindMic, 20)
	winner.waitCandidate(t)
	door.waitCandidate(t)

	// The losers' peer connections are closed: their tracks end.
	deadline := time.Now().Add(mediaWait)
	for _, l := range losers {
		for {
			l.mu.Lock()
			ended := l.ended
			l.mu.Unlock()
			if ended {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: media still flowing after the call was answered elsewhere", l.c.name)
			}
			time.Sleep(packetEvery)
		}
		if a := l.received(kindAudio); len(a) != 0 {
			t.Fatalf("%s heard the door without answering", l.c.name)
		}
	}

	during := engine.Stats()
	// New viewers ask for a keyframe; no PLI need go out, as every
	// synthetic video packet is marked a keyframe.
	if during.Active != 1 || during.ForwardedPackets < uint64(len(winner.received(kindVideo))) || during.KeyframeRequests == 0 {
		t.Fatalf("engine stats during the call: %+v", during)
	}
	winner.send(map[string]any{"type": "hangup", "call_id": callID})
	winner.expect("ended")
	door.expect("ended")
	// The session closes off the call's lock; its counts stay in the totals.
	deadline = time.Now().Add(mediaWait)
	for engine.Stats().Active != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the media session was not closed after the call ended")
		}
		time.Sleep(packetEvery)
	}
	if after := engine.Stats(); after.ForwardedPackets < during.ForwardedPackets || after.Started != 1 {
		t.Fatalf("engine totals went down or miscounted after the call: %+v then %+v", during, after)
	}
	if n := testutil.CollectAndCount(media.NewCollector(engine)); n != 14 {
		t.Fatalf("media collector exposes %d metrics, want 14 (the loss counter twice, in and out)", n)
	}
}

// TestRefusedCallClosesItsMedia: a call refused busy (its door station
// has a call going) had a media session made for it; the session is closed
// at once, so that a door station calling again and again leaves no
// sessions (and their ports and goroutines) behind.
func TestRefusedCallClosesItsMedia(t *testing.T) {
	engine, err := media.NewEngine(media.Config{LoopbackOnly: true}, suiteLogs.logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Close() })
	ts := newTestServer(t, harborView, Config{Media: engine})
	ts.connect(t, "dirk-phone")
	door := ts.connect(t, "front-door")
	callID, _ := door.call("102")
	door.send(map[string]any{"type": "call", "to": "102"})
	door.expectError("busy")
	door.send(map[string]any{"type": "hangup", "call_id": callID})
	door.expect("ended")
	deadline := time.Now().Add(mediaWait)
	for engine.Stats().Active != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("media sessions still open after the only call ended: %+v", engine.Stats())
		}
		time.Sleep(packetEvery)
	}
	if s := engine.Stats(); s.Started != 2 {
		t.Fatalf("%d media sessions started, want 2 (the call and the one refused busy)", s.Started)
	}
}

// TestDrainWaitsForMediaClosed: a drain returns once the media sessions
// of the calls that ended during it are closed, their peer connections
// and ports released, not while they are still closing: a process that
// exits as Drain returns leaves no peer connection half closed.
func TestDrainWaitsForMediaClosed(t *testing.T) {
	engine := loopbackEngine(t)
	ts := newTestServer(t, harborView, Config{Media: engine})
	door, dirk, callID := offerAudioTo102(t, ts)
	// The server's offer: dirk-phone has its peer connection.
	for dirk.next()["type"] != "sdp" {
	}

	drained := drain(ts.hubs[ts.nodeOf("front-door")])
	door.send(map[string]any{"type": "hangup", "call_id": callID})
	drained(t, "after the call ended")
	if n := engine.Stats().Active; n != 0 {
		t.Fatalf("the drain returned with %d media sessions still open", n)
	}
}
