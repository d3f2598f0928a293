package main

// The coordinator and its workers speak JSON lines: one command on the
// worker's stdin, one reply on its stdout, in turn. A worker's stderr is
// its log, passed through.

// Worker operations.
const (
	opConnect   = "connect"   // open the shard's connections
	opStorm     = "storm"     // place calls between the shard's doors and IDs
	opReconnect = "reconnect" // drop every connection at once, then reconnect them all
	opMedia     = "media"     // media calls between the shard's doors and IDs
	opStatus    = "status"    // report connections lost since connect
	opClose     = "close"     // close every connection and exit
)

// command is one line to a worker.
type command struct {
	Op string `json:"op"`
	// connect
	URLs            []string  `json:"urls,omitempty"` // the nodes; clients take them in turn
	Shard           *shard    `json:"shard,omitempty"`
	DialConcurrency int       `json:"dial_concurrency,omitempty"`
	DialTimeoutMS   int64     `json:"dial_timeout_ms,omitempty"`
	Storm           *stormJob `json:"storm,omitempty"`
	Media           *mediaJob `json:"media,omitempty"`
	Resume          bool      `json:"resume,omitempty"`
	// Lean: hold the connections with the lean client (lean_linux.go),
	// which can only connect, say hello and stay: idle and reconnect.
	Lean bool `json:"lean,omitempty"`
}

// shard is what one worker drives: whole sites, so that every call it
// places rings devices of the same process and is timed on one clock.
type shard struct {
	Sites []*siteLayout `json:"sites"`
	// SourceIPs are the 127.0.0.x addresses to connect from, in turn.
	SourceIPs []string `json:"source_ips"`
}

// stormJob is a worker's part of a storm.
type stormJob struct {
	Rate           float64 `json:"rate"`  // calls per second from this worker
	Calls          int     `json:"calls"` // calls to place
	Answer         int     `json:"answer"`
	CycleTimeoutMS int64   `json:"cycle_timeout_ms"`
}

// reply is one line from a worker.
type reply struct {
	Op        string           `json:"op"`
	Err       string           `json:"err,omitempty"`
	Connect   *connectResult   `json:"connect,omitempty"`
	Storm     *stormResult     `json:"storm,omitempty"`
	Media     *mediaResult     `json:"media,omitempty"`
	Reconnect *reconnectResult `json:"reconnect,omitempty"`
	// Lost counts connections the server closed (or that broke) while the
	// tool meant to keep them, by close code or error class.
	Lost map[string]int `json:"lost,omitempty"`
}

// connectResult is the outcome of opening a shard's connections.
type connectResult struct {
	Wanted    int            `json:"wanted"`
	Connected int            `json:"connected"`
	Errors    map[string]int `json:"errors,omitempty"` // failed attempts, by class
	// HandshakeNS: dial + hello → welcome of each connection that made it.
	HandshakeNS []int64 `json:"handshake_ns"`
	// Wall-clock span of the connecting, comparable across processes.
	StartUnixNS int64 `json:"start_unix_ns"`
	EndUnixNS   int64 `json:"end_unix_ns"`
}

// reconnectResult is the outcome of dropping and reconnecting a shard.
type reconnectResult struct {
	Wanted int            `json:"wanted"`
	Back   int            `json:"back"`
	Errors map[string]int `json:"errors,omitempty"`
	// BackNS: from the drop to this connection's welcome.
	BackNS          []int64 `json:"back_ns"`
	DropUnixNS      int64   `json:"drop_unix_ns"`
	LastWelcomeUnix int64   `json:"last_welcome_unix_ns"`
}

// stormResult is a worker's part of a storm.
type stormResult struct {
	Planned   int `json:"planned"`
	Placed    int `json:"placed"`
	Completed int `json:"completed"`
	// Skipped: ticks that found no free door station or ID (the tool's
	// own limit, not the server's).
	Skipped   int            `json:"skipped"`
	CallTaken int            `json:"call_taken"`
	Errors    map[string]int `json:"errors,omitempty"`
	// RingNS: the door's call sent → the 7th device's ring read.
	RingNS []int64 `json:"ring_ns"`
	// CancelNS: the first answer sent → the 6th cancel read.
	CancelNS []int64 `json:"cancel_ns"`
	// CycleNS: call sent → ended read by both the door and the winner.
	CycleNS        []int64 `json:"cycle_ns"`
	FirstCallUnix  int64   `json:"first_call_unix_ns"`
	LastDoneUnixNS int64   `json:"last_done_unix_ns"`
	// LagNS: how late the tool placed calls against its schedule (p99 shows
	// whether the generator kept up).
	LagNS []int64 `json:"lag_ns"`
}

// mediaJob is a worker's part of the media scenario.
type mediaJob struct {
	Calls      int     `json:"calls"` // calls, each from its own door station to its own ID
	Rate       float64 `json:"rate"`  // calls placed per second
	PreviewMS  int64   `json:"preview_ms"`
	HoldMS     int64   `json:"hold_ms"`
	VideoPPS   int     `json:"video_pps"`
	VideoBytes int     `json:"video_bytes"`
}

// mediaResult is a worker's part of the media scenario.
type mediaResult struct {
	mediaCounts
	// PreviewNS: the call sent → a ringing device's first video packet,
	// per device; AllPreviewNS: → the 7th device's, per call.
	PreviewNS    []int64 `json:"preview_ns"`
	AllPreviewNS []int64 `json:"all_preview_ns"`
	// AudioNS: the answer sent → the winner's first audio packet from the
	// door; MicNS: → the door's first packet of the winner's microphone.
	AudioNS []int64 `json:"audio_ns"`
	MicNS   []int64 `json:"mic_ns"`
}

// mediaCounts are what the media scenario counts: one call's, a worker's
// and the run's alike.
type mediaCounts struct {
	Planned int `json:"planned"`
	Placed  int `json:"placed"`
	// Connected: calls through every step (see mediaCall.steps).
	Connected int            `json:"connected"`
	Errors    map[string]int `json:"errors,omitempty"`
	// Streams: packets expected and received, by stream, over whole calls.
	Streams map[string]streamCount `json:"streams"`
	// Losers: devices that did not answer; LosersClosed: of them, those
	// whose media the server closed after the answer; LosersHeard: those
	// that got the door's audio (must be none).
	Losers       int `json:"losers"`
	LosersClosed int `json:"losers_closed"`
	LosersHeard  int `json:"losers_heard"`
	// Packets written: the doors' video and audio, the winners' microphones.
	SentVideo int64 `json:"sent_video"`
	SentAudio int64 `json:"sent_audio"`
	SentMic   int64 `json:"sent_mic"`
}

// add sums o into m.
func (m *mediaCounts) add(o mediaCounts) {
	m.Planned += o.Planned
	m.Placed += o.Placed
	m.Connected += o.Connected
	m.Losers += o.Losers
	m.LosersClosed += o.LosersClosed
	m.LosersHeard += o.LosersHeard
	m.SentVideo += o.SentVideo
	m.SentAudio += o.SentAudio
	m.SentMic += o.SentMic
	if len(o.Errors) > 0 && m.Errors == nil {
		m.Errors = map[string]int{}
	}
	mergeCounts(m.Errors, o.Errors)
	if len(o.Streams) > 0 && m.Streams == nil {
		m.Streams = map[string]streamCount{}
	}
	for k, v := range o.Streams {
		m.Streams[k] = m.Streams[k].add(v)
	}
}

// streamCount is one stream as an RTP receiver counts it.
type streamCount struct {
	Expected int64 `json:"expected"`
	Received int64 `json:"received"`
}

func (s streamCount) add(o streamCount) streamCount {
	return streamCount{Expected: s.Expected + o.Expected, Received: s.Received + o.Received}
}
