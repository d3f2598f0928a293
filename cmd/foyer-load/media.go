package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/foyer-intercom/foyer/internal/ctxsleep"
	"github.com/foyer-intercom/foyer/internal/loopback"
)

const (
	// mediaWait bounds each step of a media call: the call's calling, every
	// device's first preview packet, the answer's messages, the first
	// audio each way, the losers' media ending, ended.
	mediaWait = 10 * time.Second
	// mediaPoll is how often a call checks its peers' packet counts while
	// it waits; the times reported are the packets' own arrival times.
	mediaPoll = 10 * time.Millisecond
	// Audio both ways: Opus-sized frames of 20 ms.
	audioPPS   = 50
	audioBytes = 160
	// payloadHeader: a VP8 payload descriptor and header (2 bytes), the
	// stream's kind (1) and the packet's sequence in its stream (4).
	payloadHeader = 7
)

// mediaEngine runs a worker's media calls.
type mediaEngine struct {
	// Immutable after construction.
	job      mediaJob
	api      *webrtc.API
	byClient map[*client]*mediaCall

	mu  sync.Mutex
	res mediaResult // guarded by mu
}

// clientMsg is a message one of a call's parties read.
type clientMsg struct {
	c  *client
	m  *inbound
	at time.Time
}

// mediaCall is one call from a door station to an ID's 7 devices with
// real PeerConnections: preview on every ringing device, one answer,
// talk both ways, hangup.
type mediaCall struct {
	// Immutable after construction.
	e    *mediaEngine
	seq  int64
	door *client
	id   *idGroup
	msgs chan clientMsg // the parties' messages other than sdp and candidate
	// Packets written by the door (video, audio) and the winner (microphone).
	sentVideo, sentAudio, sentMic atomic.Int64

	mu     sync.Mutex
	callID string                 // guarded by mu
	peers  map[*client]*mediaPeer // guarded by mu
}

// runMedia runs a worker's part of the media scenario.
func runMedia(ctx context.Context, w *worker, job mediaJob) (*mediaResult, error) {
	api, err := loopback.API()
	if err != nil {
		return nil, err
	}
	e := &mediaEngine{job: job, api: api, byClient: map[*client]*mediaCall{},
		res: mediaResult{mediaCounts: mediaCounts{Planned: job.Calls, Errors: map[string]int{}}}}
	calls := e.pair(w)
	if len(calls) < job.Calls {
		return nil, fmt.Errorf("media: %d calls asked of this worker, but its sites pair only %d door stations with free IDs", job.Calls, len(calls))
	}
	h := handler(e.onMessage)
	for _, c := range w.clients {
		c.h.Store(&h)
	}
	defer func() {
		for _, c := range w.clients {
			c.h.Store(nil)
		}
	}()
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / job.Rate)
	for i, mc := range calls {
		if i > 0 {
			if err := ctxsleep.Sleep(ctx, interval); err != nil {
				break
			}
		}
		e.mu.Lock()
		e.res.Placed++
		e.mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			mc.run(ctx)
		}()
	}
	wg.Wait()
	e.mu.Lock()
	defer e.mu.Unlock()
	return &e.res, nil
}

// pair matches job.Calls door stations with IDs of their own site, each
// used once.
func (e *mediaEngine) pair(w *worker) []*mediaCall {
	doors := map[int][]*client{}
	ids := map[int][]*idGroup{}
	seen := map[*idGroup]bool{}
	listed := map[int]bool{}
	var sites []int // in the order the worker holds them
	for _, c := range w.clients {
		switch {
		case c.dev.Kind == kindDoor:
			doors[c.site] = append(doors[c.site], c)
		case c.id != nil && !seen[c.id]:
			seen[c.id] = true
			ids[c.site] = append(ids[c.site], c.id)
		default:
			continue
		}
		if !listed[c.site] {
			listed[c.site] = true
			sites = append(sites, c.site)
		}
	}
	var calls []*mediaCall
	for round := 0; len(calls) < e.job.Calls; round++ { // a site at a time, in turn
		added := false
		for _, s := range sites {
			if round < len(doors[s]) && round < len(ids[s]) && len(calls) < e.job.Calls {
				mc := &mediaCall{e: e, seq: int64(len(calls)), door: doors[s][round], id: ids[s][round],
					msgs: make(chan clientMsg, 64), peers: map[*client]*mediaPeer{}}
				e.byClient[mc.door] = mc
				for _, d := range mc.id.devices {
					e.byClient[d] = mc
				}
				calls = append(calls, mc)
				added = true
			}
		}
		if !added {
			break
		}
	}
	return calls
}

// onMessage applies a party's sdp and candidate messages on its read loop
// and queues the rest for its call.
func (e *mediaEngine) onMessage(c *client, m *inbound, at time.Time) {
	mc := e.byClient[c]
	if mc == nil {
		return
	}
	switch m.Type {
	case "sdp":
		if err := mc.onSDP(c, m); err != nil {
			e.countErr("sdp: " + err.Error())
		}
	case "candidate":
		if p := mc.peer(c); p != nil && m.Candidate != nil && m.Candidate.Candidate != "" {
			if err := p.pc.AddICECandidate(*m.Candidate); err != nil {
				e.countErr("candidate: " + err.Error())
			}
		}
	case "directory":
	default:
		select {
		case mc.msgs <- clientMsg{c, m, at}:
		default:
			e.countErr("messages: a call's queue overflowed")
		}
	}
}

func (e *mediaEngine) countErr(class string) {
	e.mu.Lock()
	e.res.Errors[class]++
	e.mu.Unlock()
}

func (mc *mediaCall) peer(c *client) *mediaPeer {
	mc.mu.Lock()
	defer mc.mu.Unlock()
	return mc.peers[c]
}

// onSDP applies the server's answer (the door station) or answers its
// offer (a device, which offers its microphone on the audio transceiver).
func (mc *mediaCall) onSDP(c *client, m *inbound) error {
	if m.Description == nil {
		return errors.New("no description")
	}
	if c == mc.door {
		p := mc.peer(c)
		if p == nil {
			return errors.New("an answer before the door's offer")
		}
		return p.pc.SetRemoteDescription(*m.Description)
	}
	p := mc.peer(c)
	if p == nil {
		var err error
		if p, err = newMediaPeer(mc.e.api, c, m.CallID); err != nil {
			return err
		}
		mc.mu.Lock()
		mc.peers[c] = p
		mc.mu.Unlock()
	}
	if err := p.pc.SetRemoteDescription(*m.Description); err != nil {
		return err
	}
	if m.Description.Type != webrtc.SDPTypeOffer {
		return nil
	}
	p.mu.Lock()
	hasMic := p.mic != nil
	p.mu.Unlock()
	if !hasMic { // a first offer (only this party's read loop gets here); a later one keeps the microphone
		mic, err := loopback.Microphone(p.pc, c.dev.Name)
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.mic = mic
		p.mu.Unlock()
	}
	answer, err := p.pc.CreateAnswer(nil)
	if err != nil {
		return err
	}
	// The description goes out before any candidate: gathering starts with
	// SetLocalDescription.
	if err := c.send(map[string]any{"type": "sdp", "call_id": m.CallID, "description": answer}); err != nil {
		return err
	}
	return p.pc.SetLocalDescription(answer)
}

// run takes the call through its steps and adds what it measured to the
// engine's result; a step that fails is counted by name and ends the call.
func (mc *mediaCall) run(ctx context.Context) {
	out, err := mc.steps(ctx)
	mc.mu.Lock()
	peers := mc.peers
	mc.peers = map[*client]*mediaPeer{}
	id := mc.callID
	mc.mu.Unlock()
	if err != nil && id != "" {
		_ = mc.door.send(map[string]any{"type": "hangup", "call_id": id}) // end it at the server too
	}
	for _, p := range peers {
		p.close()
	}
	e := mc.e
	e.mu.Lock()
	defer e.mu.Unlock()
	e.res.add(mediaCounts{ // a publisher may write once more after close: counted or refused
		SentVideo: mc.sentVideo.Load(), SentAudio: mc.sentAudio.Load(), SentMic: mc.sentMic.Load(),
	})
	if err != nil {
		e.res.Errors[err.Error()]++
		return
	}
	r := &e.res
	r.add(out.counts)
	r.PreviewNS = append(r.PreviewNS, out.preview...)
	r.AllPreviewNS = append(r.AllPreviewNS, out.allPreview)
	r.AudioNS = append(r.AudioNS, out.audio)
	r.MicNS = append(r.MicNS, out.mic)
}

// callOutcome is what one media call measured.
type callOutcome struct {
	preview                []int64 // call → each device's first video
	allPreview, audio, mic int64
	counts                 mediaCounts // Connected, Streams and the losers
}

// steps: call → calling → the door's offer and media → preview on all 7 →
// (preview time) → one answer → answered, 6 cancels → audio both ways →
// the losers' media closed → (hold) → hangup → ended at both ends.
func (mc *mediaCall) steps(ctx context.Context) (callOutcome, error) {
	var out callOutcome
	job := mc.e.job
	sent := time.Now()
	if err := mc.door.send(map[string]any{"type": "call", "to": mc.id.number, "ref": mc.seq}); err != nil {
		return out, errors.New("send call: " + classifyNetError("write", err))
	}
	var callID string
	if err := mc.until(ctx, "calling", func(x clientMsg) bool {
		if x.c == mc.door && x.m.Type == "calling" {
			callID = x.m.CallID
			if x.m.Ringing != idSize {
				mc.e.countErr(fmt.Sprintf("calling: %d ringing, want %d", x.m.Ringing, idSize))
			}
			return true
		}
		return false
	}); err != nil {
		return out, err
	}
	mc.mu.Lock()
	mc.callID = callID
	mc.mu.Unlock()

	door, video, audio, err := mc.offer(callID)
	if err != nil {
		return out, fmt.Errorf("door offer: %w", err)
	}
	go publish(video, streamVideo, job.VideoBytes, job.VideoPPS, 90000, &mc.sentVideo, door.stop)
	go publish(audio, streamAudio, audioBytes, audioPPS, 48000, &mc.sentAudio, door.stop)
	devices := mc.id.devices[:]
	if err := mc.wait(ctx, "preview on every device", func() bool {
		for _, d := range devices {
			if p := mc.peer(d); p == nil || !p.stream(streamVideo).started {
				return false
			}
		}
		return true
	}); err != nil {
		return out, err
	}
	for _, d := range devices {
		t := int64(mc.peer(d).stream(streamVideo).first.Sub(sent))
		out.preview = append(out.preview, t)
		out.allPreview = max(out.allPreview, t)
	}
	if err := ctxsleep.Sleep(ctx, time.Duration(job.PreviewMS)*time.Millisecond); err != nil {
		return out, err
	}

	winner := mc.peer(devices[rand.IntN(idSize)])
	winner.mu.Lock()
	mic := winner.mic
	winner.mu.Unlock()
	if mic == nil {
		return out, errors.New("the server's offer had no audio for the microphone")
	}
	answered := time.Now()
	go publish(mic, streamMic, audioBytes, audioPPS, 48000, &mc.sentMic, winner.stop)
	if err := winner.c.send(map[string]any{"type": "answer", "call_id": callID}); err != nil {
		return out, errors.New("send answer: " + classifyNetError("write", err))
	}
	doorAnswered, winnerAnswered, cancels := false, false, 0
	if err := mc.until(ctx, "answered and 6 cancels", func(x clientMsg) bool {
		switch {
		case x.m.Type == "answered" && x.c == mc.door:
			doorAnswered = true
		case x.m.Type == "answered" && x.c == winner.c:
			winnerAnswered = true
		case x.m.Type == "cancel" && x.m.Reason == "answered_elsewhere":
			cancels++
		case x.m.Type == "cancel":
			mc.e.countErr("cancel: " + x.m.Reason)
		}
		return doorAnswered && winnerAnswered && cancels == idSize-1
	}); err != nil {
		return out, err
	}
	if err := mc.wait(ctx, "audio both ways", func() bool {
		return winner.stream(streamAudio).started && door.stream(streamMic).started
	}); err != nil {
		return out, err
	}
	out.audio = int64(winner.stream(streamAudio).first.Sub(answered))
	out.mic = int64(door.stream(streamMic).first.Sub(answered))
	var losers []*mediaPeer
	for _, d := range devices {
		if p := mc.peer(d); p != winner {
			losers = append(losers, p)
		}
	}
	_ = mc.wait(ctx, "the losers' media closed", func() bool { // counted, not fatal
		for _, p := range losers {
			if !p.isEnded() {
				return false
			}
		}
		return true
	})
	out.counts.Losers = len(losers)
	for _, p := range losers {
		if p.isEnded() {
			out.counts.LosersClosed++
		}
		if p.stream(streamAudio).started {
			out.counts.LosersHeard++
		}
	}

	if err := ctxsleep.Sleep(ctx, time.Duration(job.HoldMS)*time.Millisecond); err != nil {
		return out, err
	}
	if err := mc.door.send(map[string]any{"type": "hangup", "call_id": callID}); err != nil {
		return out, errors.New("send hangup: " + classifyNetError("write", err))
	}
	endedDoor, endedWinner := false, false
	if err := mc.until(ctx, "ended", func(x clientMsg) bool {
		if x.m.Type == "ended" {
			endedDoor = endedDoor || x.c == mc.door
			endedWinner = endedWinner || x.c == winner.c
		}
		return endedDoor && endedWinner
	}); err != nil {
		return out, err
	}
	var previews streamCount
	for _, p := range losers {
		previews = previews.add(p.stream(streamVideo).count())
	}
	out.counts.Connected = 1
	out.counts.Streams = map[string]streamCount{
		"video to the winner":     winner.stream(streamVideo).count(),
		"audio to the winner":     winner.stream(streamAudio).count(),
		"microphone to the door":  door.stream(streamMic).count(),
		"video previews (losers)": previews,
	}
	return out, nil
}

// offer creates the door station's PeerConnection with its video (send
// only) and audio (both ways), and sends its offer.
func (mc *mediaCall) offer(callID string) (p *mediaPeer, video, audio *webrtc.TrackLocalStaticRTP, err error) {
	p, err = newMediaPeer(mc.e.api, mc.door, callID)
	if err != nil {
		return nil, nil, nil, err
	}
	mc.mu.Lock()
	mc.peers[mc.door] = p
	mc.mu.Unlock()
	video, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", mc.door.dev.Name)
	if err != nil {
		return nil, nil, nil, err
	}
	audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", mc.door.dev.Name)
	if err != nil {
		return nil, nil, nil, err
	}
	if _, err = p.pc.AddTransceiverFromTrack(video, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
		return nil, nil, nil, err
	}
	if _, err = p.pc.AddTransceiverFromTrack(audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
		return nil, nil, nil, err
	}
	offer, err := p.pc.CreateOffer(nil)
	if err != nil {
		return nil, nil, nil, err
	}
	// The offer is applied before it is sent, so that the server's answer
	// never finds the door's connection still stable; the candidates that
	// gathering starts meanwhile are held until the offer is out.
	p.trickle.Hold()
	if err = p.pc.SetLocalDescription(offer); err != nil {
		return nil, nil, nil, err
	}
	if err = mc.door.send(map[string]any{"type": "sdp", "call_id": callID, "description": offer}); err != nil {
		return nil, nil, nil, err
	}
	p.trickle.Release()
	return p, video, audio, nil
}

// until reads the call's messages until done accepts one; an error message
// or mediaWait without it fails the step.
func (mc *mediaCall) until(ctx context.Context, step string, done func(clientMsg) bool) error {
	t := time.NewTimer(mediaWait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return errors.New("timeout waiting for " + step)
		case x := <-mc.msgs:
			if x.m.Type == "error" {
				return fmt.Errorf("%s: error %s", step, x.m.Code)
			}
			if done(x) {
				return nil
			}
		}
	}
}

// wait polls cond until it holds; mediaWait without it fails the step.
func (mc *mediaCall) wait(ctx context.Context, step string, cond func() bool) error {
	deadline := time.Now().Add(mediaWait)
	for !cond() {
		if time.Now().After(deadline) {
			return errors.New("timeout waiting for " + step)
		}
		if err := ctxsleep.Sleep(ctx, mediaPoll); err != nil {
			return err
		}
	}
	return nil
}
