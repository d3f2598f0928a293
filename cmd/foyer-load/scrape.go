package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// scrapeTimeout bounds one GET of /metrics.
const scrapeTimeout = 5 * time.Second

// Server metrics the report reads.
const (
	metricRSS       = "process_resident_memory_bytes"
	metricCPU       = "process_cpu_seconds_total"
	metricGoroutine = "go_goroutines"
	metricHeap      = "go_memstats_heap_inuse_bytes"
	metricConnected = "foyer_signaling_connected_devices"
	metricForwarded = "foyer_media_packets_forwarded_total"
)

// serverCounters are the counters whose change over a scenario the report
// shows by label, as the server saw it.
var serverCounters = []string{
	"foyer_calls_ended_total",
	"foyer_signaling_slow_consumers_total",
	"foyer_signaling_rate_limited_total",
	"foyer_signaling_handshake_failures_total",
	"foyer_signaling_disconnects_total",
	"foyer_media_door_packets_received_total",
	metricForwarded,
	"foyer_media_device_packets_received_total",
	"foyer_media_write_errors_total",
	"foyer_media_malformed_packets_total",
	"foyer_media_pli_total",
	"foyer_media_packets_lost_total",
}

// sample is one scrape: every series by its full name with labels, and
// every metric summed over its labels.
type sample struct {
	at     time.Time
	series map[string]float64
	sums   map[string]float64
}

// scrape reads the Prometheus text format from url. Only plain
// `name{labels} value` lines are read; comments are skipped.
func scrape(ctx context.Context, url string) (*sample, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping %s: %s", url, resp.Status)
	}
	s := &sample{at: time.Now(), series: map[string]float64{}, sums: map[string]float64{}}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		key := line[:i]
		name := key
		if j := strings.IndexByte(key, '{'); j >= 0 {
			name = key[:j]
		}
		s.series[key] = v
		s.sums[name] += v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	for _, name := range []string{metricRSS, metricCPU, metricGoroutine, metricHeap} { // (the per-kind gauges appear with the first device)
		if _, ok := s.sums[name]; !ok {
			return nil, fmt.Errorf("scraping %s: no %s; is this a foyer node's /metrics?", url, name)
		}
	}
	return s, nil
}

// add returns the sum of two scrapes (of two nodes): every series and every
// sum added up, at the later of the two times. A nil s is no scrape yet.
func (s *sample) add(o *sample) *sample {
	if s == nil {
		return o
	}
	for k, v := range o.series {
		s.series[k] += v
	}
	for k, v := range o.sums {
		s.sums[k] += v
	}
	if o.at.After(s.at) {
		s.at = o.at
	}
	return s
}

// counterDeltas returns, for each of names, how every labelled series of it
// changed from a to b (only the ones that did).
func counterDeltas(a, b *sample, names []string) map[string]float64 {
	out := map[string]float64{}
	if a == nil || b == nil {
		return out
	}
	for key, v := range b.series {
		for _, n := range names {
			if key == n || strings.HasPrefix(key, n+"{") {
				if d := v - a.series[key]; d != 0 {
					out[key] = d
				}
			}
		}
	}
	return out
}
