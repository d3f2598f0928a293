package media

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// peersChildEnv makes the test binary the peers' process of
// BenchmarkForward6Server (TestPeersProcess runs only with it).
const peersChildEnv = "FOYER_MEDIA_PEERS_PROCESS"

// pipeMsg is one line between the benchmark and its peers' process: a
// description or candidate for or from a peer, or a control word.
type pipeMsg struct {
	Peer string                     `json:"peer,omitempty"`
	SDP  *webrtc.SessionDescription `json:"sdp,omitempty"`
	Cand *webrtc.ICECandidateInit   `json:"cand,omitempty"`
	Ctl  string                     `json:"ctl,omitempty"` // ready, go, done, recv
	N    uint64                     `json:"n,omitempty"`
}

// pipeMark starts every protocol line, so that the test framework's own
// output on the same stdout is skipped.
const pipeMark = "@@ "

// BenchmarkForward6Server is BenchmarkForward6 with the door station and
// the six devices in a second process: the CPU time this process uses is
// the session's alone, so forwarded packets per CPU-second is a per-core
// figure for the server.
// It runs on each of udpSetups.
func BenchmarkForward6Server(b *testing.B) {
	for _, setup := range udpSetups {
		b.Run(setup.name, func(b *testing.B) { forward6Server(b, newEngineWith(b, setup.config(b))) })
	}
}

func forward6Server(b *testing.B, e *Engine) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	child := exec.Command(exe, "-test.run=^TestPeersProcess$", "-test.count=1")
	child.Env = append(os.Environ(), peersChildEnv+"=1")
	child.Stderr = os.Stderr
	toChild, err := child.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	fromChild, err := child.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = toChild.Close(); _ = child.Wait() })

	var outMu sync.Mutex
	out := json.NewEncoder(toChild)
	send := func(m pipeMsg) {
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = io.WriteString(toChild, pipeMark)
		_ = out.Encode(m)
	}
	w := &pipeEvents{send: send}
	s := e.NewSession("bench", "door", true, w)
	b.Cleanup(s.Close)
	for i := range benchFanout {
		if err := s.AddDevice(fmt.Sprintf("dev%d", i)); err != nil {
			b.Fatal(err)
		}
	}
	ctl := make(chan pipeMsg, 4)
	go func() {
		sc := bufio.NewScanner(fromChild)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), pipeMark)
			if !ok {
				continue
			}
			var m pipeMsg
			if json.Unmarshal([]byte(line), &m) != nil {
				continue
			}
			switch {
			case m.SDP != nil:
				if err := s.HandleSDP(m.Peer, *m.SDP); err != nil {
					b.Errorf("%s → session: %v", m.Peer, err)
				}
			case m.Cand != nil:
				if err := s.HandleCandidate(m.Peer, *m.Cand); err != nil {
					b.Errorf("%s → session: %v", m.Peer, err)
				}
			default:
				ctl <- m
			}
		}
		close(ctl)
	}()
	expect := func(word string) pipeMsg {
		select {
		case m, ok := <-ctl:
			if !ok || m.Ctl != word {
				b.Fatalf("peers' process: got %+v, want %s", m, word)
			}
			return m
		case <-time.After(waitFor):
			b.Fatalf("peers' process: no %s within %v", word, waitFor)
		}
		return pipeMsg{}
	}
	expect("ready") // every device receives
	forwarded := s.counters.forwardedPackets.Load
	settle(forwarded, 0)
	fwd0, cpu0 := forwarded(), cpuTime()
	b.ResetTimer()
	start := time.Now()
	send(pipeMsg{Ctl: "go", N: uint64(b.N)})
	expect("done")
	last, lastChange := settle(forwarded, fwd0+uint64(b.N*benchFanout))
	elapsed := lastChange.Sub(start)
	b.StopTimer()
	cpu := cpuTime() - cpu0
	send(pipeMsg{Ctl: "recv"})
	recv := expect("recv")
	fwd := float64(last - fwd0)
	b.ReportMetric(fwd/elapsed.Seconds(), "fwd-pkts/s")
	b.ReportMetric(fwd/cpu.Seconds(), "fwd-pkts/server-cpu-s")
	b.ReportMetric(100*fwd/float64(b.N*benchFanout), "fwd-%")
	b.ReportMetric(100*float64(recv.N)/float64(b.N*benchFanout), "recv-%")
}

// pipeEvents carries the session's descriptions and candidates to the
// peers' process.
type pipeEvents struct{ send func(pipeMsg) }

func (p *pipeEvents) SDP(to string, desc webrtc.SessionDescription) {
	p.send(pipeMsg{Peer: to, SDP: &desc})
}

func (p *pipeEvents) Candidate(to string, ci *webrtc.ICECandidateInit) {
	if ci == nil {
		ci = &webrtc.ICECandidateInit{}
	}
	p.send(pipeMsg{Peer: to, Cand: ci})
}

// TestPeersProcess is the peers' side of BenchmarkForward6Server: a door
// station sending VP8 and six devices counting what arrives, talking to
// the session in the parent process over stdin and stdout. Without the
// environment variable it does nothing.
func TestPeersProcess(t *testing.T) {
	if os.Getenv(peersChildEnv) == "" {
		t.Skip("the peers' process of BenchmarkForward6Server")
	}
	var outMu sync.Mutex
	out := json.NewEncoder(os.Stdout)
	send := func(m pipeMsg) {
		outMu.Lock()
		defer outMu.Unlock()
		_, _ = io.WriteString(os.Stdout, pipeMark)
		_ = out.Encode(m)
	}
	w := newWire()
	newPeer := func(api *webrtc.API, id string) *client {
		c := newClient(t, api, id, nil, w)
		c.send = func(v any) {
			switch m := v.(type) {
			case webrtc.SessionDescription:
				send(pipeMsg{Peer: id, SDP: &m})
			case webrtc.ICECandidateInit:
				send(pipeMsg{Peer: id, Cand: &m})
			}
		}
		return c
	}
	door := newPeer(clientAPI(t, vp8Codec), "door")
	track, err := webrtc.NewTrackLocalStaticRTP(vp8Codec.RTPCodecCapability, "video", "door")
	if err != nil {
		t.Fatal(err)
	}
	sender, err := door.pc.AddTrack(track)
	if err != nil {
		t.Fatal(err)
	}
	go drainRTCP(sender)
	var devices []*client
	for i := range benchFanout {
		d := newPeer(clientAPI(t), fmt.Sprintf("dev%d", i))
		d.countOnly.Store(true)
		devices = append(devices, d)
	}
	received := func() (n uint64) {
		for _, d := range devices {
			n += d.packets.Load()
		}
		return n
	}
	ctl := make(chan pipeMsg, 4)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), pipeMark)
			if !ok {
				continue
			}
			var m pipeMsg
			if json.Unmarshal([]byte(line), &m) != nil {
				continue
			}
			switch {
			case m.SDP != nil:
				w.SDP(m.Peer, *m.SDP)
			case m.Cand != nil:
				w.Candidate(m.Peer, m.Cand)
			default:
				ctl <- m
			}
		}
		close(ctl)
	}()
	door.offer()
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SSRC: 1}, Payload: payload('V', 0, benchPayload)}
	waitUntil(t, "all devices receiving", func() bool {
		p.SequenceNumber++
		_ = track.WriteRTP(p)
		for _, d := range devices {
			if d.packets.Load() == 0 {
				return false
			}
		}
		return true
	})
	settle(received, 0)
	send(pipeMsg{Ctl: "ready"})
	for m := range ctl {
		switch m.Ctl {
		case "go":
			rcv0, fan := received(), uint64(benchFanout)
			for i := range m.N {
				// End-to-end flow control: at most benchWindow packets
				// in flight, as in BenchmarkForward6.
				for i*fan > received()-rcv0+benchWindow*fan {
					time.Sleep(benchPoll)
				}
				p.SequenceNumber++
				p.Timestamp += 300
				_ = track.WriteRTP(p)
			}
			settle(received, rcv0+m.N*fan)
			send(pipeMsg{Ctl: "done"})
			rcvStart := rcv0
			for m := range ctl {
				if m.Ctl == "recv" {
					send(pipeMsg{Ctl: "recv", N: received() - rcvStart})
					return
				}
			}
			return
		}
	}
}
