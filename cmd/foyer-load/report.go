package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// report is what a run measured; --json writes it as is.
type report struct {
	Scenario string    `json:"scenario"`
	Started  time.Time `json:"started"`
	URLs     []string  `json:"urls"`
	Devices  int       `json:"devices"`
	Doors    int       `json:"doors"`
	Workers  int       `json:"workers"`
	Client   string    `json:"client"` // lean or gorilla (--client)

	Connect   *connectReport   `json:"connect"`
	Idle      *idleReport      `json:"idle,omitempty"`
	Storm     *stormReport     `json:"storm,omitempty"`
	Reconnect *reconnectReport `json:"reconnect,omitempty"`
	Media     *mediaReport     `json:"media,omitempty"`
	// ServerCPU: the server's CPU time over the scenario's main phase (the
	// storm, the drop to all back, the media calls), from its metrics.
	ServerCPU *cpuReport `json:"server_cpu,omitempty"`
	// Lost: connections that ended while the tool held them, by cause.
	Lost map[string]int `json:"lost"`
	// Server: how the server's own counters moved during the run, by series.
	Server map[string]float64 `json:"server_counters,omitempty"`
}

type connectReport struct {
	Wanted    int            `json:"wanted"`
	Connected int            `json:"connected"`
	Seconds   float64        `json:"seconds"`
	PerSecond float64        `json:"per_second"`
	Handshake latency        `json:"handshake"`
	Errors    map[string]int `json:"errors"`
}

type idleReport struct {
	Connections         int     `json:"connections"`
	RSSBeforeBytes      float64 `json:"rss_before_bytes"`
	RSSAfterBytes       float64 `json:"rss_after_bytes"`
	BytesPerConn        float64 `json:"rss_bytes_per_conn"`
	HeapBytesPerConn    float64 `json:"heap_inuse_bytes_per_conn"`
	GoroutinesPerConn   float64 `json:"goroutines_per_conn"`
	HoldSeconds         float64 `json:"hold_seconds"`
	CPUSeconds          float64 `json:"cpu_seconds"`
	CPUMicrosPerConnSec float64 `json:"cpu_us_per_conn_per_s"`
	ServerConnected     float64 `json:"server_connected"`
}

type stormReport struct {
	Rate            float64        `json:"rate"`
	Answer          int            `json:"answer"`
	Planned         int            `json:"planned"`
	Placed          int            `json:"placed"`
	Completed       int            `json:"completed"`
	Skipped         int            `json:"skipped"`
	Seconds         float64        `json:"seconds"`
	CyclesPerSecond float64        `json:"cycles_per_second"`
	CallTaken       int            `json:"call_taken"`
	CallToLastRing  latency        `json:"call_to_last_ring"`
	AnswerToCancel  latency        `json:"answer_to_last_cancel"`
	Cycle           latency        `json:"cycle"`
	ScheduleLag     latency        `json:"schedule_lag"`
	Errors          map[string]int `json:"errors"`
}

type reconnectReport struct {
	Wanted          int            `json:"wanted"`
	Back            int            `json:"back"`
	AllBackSeconds  float64        `json:"all_back_seconds"`
	DropToWelcome   latency        `json:"drop_to_welcome"`
	Errors          map[string]int `json:"errors"`
	ServerConnected float64        `json:"server_connected"`
	Resume          bool           `json:"resume"`
}

// cpuReport is the server's CPU time over a phase and the work it did.
type cpuReport struct {
	Seconds          float64 `json:"seconds"` // wall clock between the two scrapes
	CPUSeconds       float64 `json:"cpu_seconds"`
	Work             float64 `json:"work"`
	Unit             string  `json:"unit"`
	WorkPerCPUSecond float64 `json:"work_per_cpu_second"`
}

type mediaReport struct {
	Calls      int     `json:"calls"`
	Rate       float64 `json:"rate"`
	PreviewS   float64 `json:"preview_s"`
	HoldS      float64 `json:"hold_s"`
	VideoPPS   int     `json:"video_pps"`
	VideoBytes int     `json:"video_bytes"`
	mediaCounts
	Preview    latency `json:"call_to_preview"`
	AllPreview latency `json:"call_to_all_7_previews"`
	Audio      latency `json:"answer_to_door_audio"`
	Mic        latency `json:"answer_to_microphone"`
}

// mediaSummary merges the workers' media results.
func mediaSummary(o *options, replies []reply) *mediaReport {
	m := &mediaReport{Calls: o.calls, Rate: o.rate, PreviewS: o.preview.Seconds(), HoldS: o.hold.Seconds(),
		VideoPPS: o.videoPPS, VideoBytes: o.videoBytes}
	var preview, all, audio, mic []int64
	for _, r := range replies {
		mr := r.Media
		m.add(mr.mediaCounts)
		preview = append(preview, mr.PreviewNS...)
		all = append(all, mr.AllPreviewNS...)
		audio = append(audio, mr.AudioNS...)
		mic = append(mic, mr.MicNS...)
	}
	m.Preview, m.AllPreview, m.Audio, m.Mic = summarise(preview), summarise(all), summarise(audio), summarise(mic)
	return m
}

// loss is the share of expected packets not received, in per cent.
func (s streamCount) loss() float64 {
	if s.Expected == 0 {
		return 0
	}
	return 100 * float64(s.Expected-min(s.Received, s.Expected)) / float64(s.Expected)
}

// writeJSON writes the report to path.
func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// writeTable prints the report for a person.
func (r *report) writeTable(w io.Writer) {
	t := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, format string, args ...any) {
		fmt.Fprintf(t, "%s\t"+format+"\n", append([]any{k}, args...)...)
	}
	lat := func(k string, l latency) {
		row(k, "p50 %.3f ms\tp99 %.3f ms\tp999 %.3f ms\tmax %.3f ms\t(n=%d)", l.P50, l.P99, l.P999, l.Max, l.N)
	}
	row("scenario", "%s  (%d devices, %d door stations, %d workers, %s client, %s)", r.Scenario, r.Devices, r.Doors, r.Workers, r.Client, strings.Join(r.URLs, ", "))
	if c := r.Connect; c != nil {
		row("connected", "%d of %d in %.2f s (%.0f/s)", c.Connected, c.Wanted, c.Seconds, c.PerSecond)
		lat("  hello → welcome", c.Handshake)
		counts(row, "  connect error", c.Errors)
	}
	if i := r.Idle; i != nil {
		row("server RSS", "%.1f MiB → %.1f MiB", i.RSSBeforeBytes/(1<<20), i.RSSAfterBytes/(1<<20))
		row("memory per idle conn", "%.0f bytes RSS  (heap in use %.0f B, %.2f goroutines)", i.BytesPerConn, i.HeapBytesPerConn, i.GoroutinesPerConn)
		row("CPU per idle conn", "%.3f µs/s  (%.3f CPU-s over %.1f s hold)", i.CPUMicrosPerConnSec, i.CPUSeconds, i.HoldSeconds)
		row("server says connected", "%.0f", i.ServerConnected)
	}
	if s := r.Storm; s != nil {
		row("calls", "%d planned at %.0f/s, %d placed, %d full cycles, %d skipped (no free door/ID)", s.Planned, s.Rate, s.Placed, s.Completed, s.Skipped)
		row("full cycles/s", "%.1f over %.2f s", s.CyclesPerSecond, s.Seconds)
		row("answering at once", "%d of %d; call_taken seen %d (want %d)", s.Answer, idSize, s.CallTaken, s.Completed*(s.Answer-1))
		lat("call → last ring", s.CallToLastRing)
		lat("answer → last cancel", s.AnswerToCancel)
		lat("whole cycle", s.Cycle)
		lat("schedule lag", s.ScheduleLag)
		counts(row, "  error", s.Errors)
	}
	if c := r.Reconnect; c != nil {
		if c.Back == c.Wanted {
			row("reconnected", "%d of %d; all back %.3f s after the drop (resume tokens: %v)", c.Back, c.Wanted, c.AllBackSeconds, c.Resume)
		} else {
			row("reconnected", "%d of %d (%d never back); the last back %.3f s after the drop (resume tokens: %v)", c.Back, c.Wanted, c.Wanted-c.Back, c.AllBackSeconds, c.Resume)
		}
		lat("drop → welcome", c.DropToWelcome)
		counts(row, "  reconnect error", c.Errors)
		row("server says connected", "%.0f", c.ServerConnected)
	}
	if m := r.Media; m != nil {
		row("media calls", "%d planned at %.0f/s, %d placed, %d through every step (preview %.1f s, talk %.1f s; video %d × %d B/s)",
			m.Calls, m.Rate, m.Placed, m.Connected, m.PreviewS, m.HoldS, m.VideoPPS, m.VideoBytes)
		lat("call → a device's preview", m.Preview)
		lat("call → all 7 previews", m.AllPreview)
		lat("answer → door audio", m.Audio)
		lat("answer → microphone", m.Mic)
		keys := make([]string, 0, len(m.Streams))
		for k := range m.Streams {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s := m.Streams[k]
			row(k, "%d of %d packets, loss %.3f %%", s.Received, s.Expected, s.loss())
		}
		row("packets written", "door video %d, door audio %d, microphones %d", m.SentVideo, m.SentAudio, m.SentMic)
		row("losers' media", "closed for %d of %d; heard the door: %d", m.LosersClosed, m.Losers, m.LosersHeard)
		counts(row, "  error", m.Errors)
	}
	if c := r.ServerCPU; c != nil {
		row("server CPU", "%.2f CPU-s over %.2f s: %.0f %s, %.0f per CPU-second", c.CPUSeconds, c.Seconds, c.Work, c.Unit, c.WorkPerCPUSecond)
	}
	if len(r.Lost) == 0 {
		row("connections lost", "none")
	}
	counts(row, "connection lost", r.Lost)
	keys := make([]string, 0, len(r.Server))
	for k := range r.Server {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row("server "+k, "%+.0f", r.Server[k])
	}
	t.Flush()
}

// counts prints one row per class, sorted.
func counts(row func(string, string, ...any), label string, m map[string]int) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		row(label, "%d × %s", m[k], k)
	}
}
