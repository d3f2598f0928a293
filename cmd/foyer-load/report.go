package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
	"time"
)

// report is what a run measured; --json writes it as is.
type report struct {
	Scenario string    `json:"scenario"`
	Started  time.Time `json:"started"`
	URL      string    `json:"url"`
	Devices  int       `json:"devices"`
	Doors    int       `json:"doors"`
	Workers  int       `json:"workers"`

	Connect   *connectReport   `json:"connect"`
	Idle      *idleReport      `json:"idle,omitempty"`
	Storm     *stormReport     `json:"storm,omitempty"`
	Reconnect *reconnectReport `json:"reconnect,omitempty"`
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
	row("scenario", "%s  (%d devices, %d door stations, %d workers, %s)", r.Scenario, r.Devices, r.Doors, r.Workers, r.URL)
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
		row("reconnected", "%d of %d; all back %.3f s after the drop (resume tokens: %v)", c.Back, c.Wanted, c.AllBackSeconds, c.Resume)
		lat("drop → welcome", c.DropToWelcome)
		counts(row, "  reconnect error", c.Errors)
		row("server says connected", "%.0f", c.ServerConnected)
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
