package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/internal/ctxsleep"
)

// runScenario seeds or reads the devices, starts the workers, connects
// everything, runs the scenario and returns the report (nil for --seed-only).
func runScenario(ctx context.Context, o *options, log *slog.Logger) (*report, error) {
	if o.seedOnly && o.tokensOut == "" {
		return nil, errors.New("--seed-only needs --tokens-out FILE to keep the tokens")
	}
	l, err := prepareLayout(ctx, o, log)
	if err != nil {
		return nil, err
	}
	if o.seedOnly {
		devices, doors := l.counts()
		log.Info("seeded; run the scenarios with --tokens", "tokens", o.tokensOut, "devices", devices, "doors", doors)
		return nil, nil
	}
	shards, err := splitShards(l, o)
	if err != nil {
		return nil, err
	}
	devices, doors := l.counts()
	rep := &report{Scenario: o.scenario, Started: time.Now(), URLs: o.signalURLs, Devices: devices, Doors: doors, Workers: len(shards), Client: o.client}
	procs, err := startWorkers(len(shards), log)
	if err != nil {
		return nil, err
	}
	defer stopWorkers(procs, log)

	first, err := o.scrape(ctx)
	if err != nil {
		return nil, err
	}
	log.Info("connecting", "sockets", devices+doors, "workers", len(shards))
	replies, err := callAll(ctx, procs, func(i int) command {
		return command{Op: opConnect, URLs: o.signalURLs, Shard: shards[i],
			DialConcurrency: o.dialConcurrency, DialTimeoutMS: o.dialTimeout.Milliseconds(), Lean: o.client == "lean"}
	})
	if err != nil {
		return nil, err
	}
	rep.Connect = connectSummary(replies)
	log.Info("connected", "connected", rep.Connect.Connected, "of", rep.Connect.Wanted, "seconds", rep.Connect.Seconds)

	switch o.scenario {
	case "idle":
		err = runIdle(ctx, o, rep, first)
	case "storm":
		err = runStormScenario(ctx, o, procs, shards, rep)
	case "reconnect":
		err = runReconnect(ctx, o, procs, rep)
	case "media":
		err = runMediaScenario(ctx, o, procs, shards, rep)
	}
	if err != nil {
		return nil, err
	}
	status, err := callAll(ctx, procs, func(int) command { return command{Op: opStatus} })
	if err != nil {
		return nil, err
	}
	rep.Lost = map[string]int{}
	for _, r := range status {
		mergeCounts(rep.Lost, r.Lost)
	}
	last, err := o.scrape(ctx)
	if err != nil {
		return nil, err
	}
	rep.Server = counterDeltas(first, last, serverCounters)
	// The server counts a call's end just after it sends its ended: the
	// storm's last calls may not be counted yet. Scrape again, 2 s at most.
	for deadline := time.Now().Add(2 * time.Second); rep.Storm != nil && first != nil && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ended := 0.0
		for k, v := range rep.Server {
			if strings.HasPrefix(k, "foyer_calls_ended_total") {
				ended += v
			}
		}
		if ended >= float64(rep.Storm.Completed) {
			break
		}
		if last, err = o.scrape(ctx); err != nil {
			return nil, err
		}
		rep.Server = counterDeltas(first, last, serverCounters)
	}
	return rep, nil
}

// scrape reads the server's metrics, or nothing without --metrics. With
// several nodes it reads each and adds them up: the cluster's memory, CPU,
// connected devices and counters.
func (o *options) scrape(ctx context.Context) (*sample, error) {
	var all *sample
	for _, url := range o.metricsURLs {
		s, err := scrape(ctx, url)
		if err != nil {
			return nil, err
		}
		all = all.add(s)
	}
	return all, nil
}

// connectSummary merges the workers' connect results.
func connectSummary(replies []reply) *connectReport {
	m := shardSums{errors: map[string]int{}}
	for _, r := range replies {
		cr := r.Connect
		m.add(cr.Wanted, cr.Connected, cr.Errors, cr.HandshakeNS, cr.StartUnixNS, cr.EndUnixNS)
	}
	c := &connectReport{Wanted: m.wanted, Connected: m.got, Errors: m.errors, Seconds: m.seconds(), Handshake: summarise(m.times)}
	if c.Seconds > 0 {
		c.PerSecond = float64(c.Connected) / c.Seconds
	}
	return c
}

// shardSums adds up the workers' results of a connect or a reconnect:
// connections wanted and made, errors by class, each connection's time,
// and the span from the earliest start to the latest end. Its errors map
// must be made before the first add.
type shardSums struct {
	wanted, got int
	errors      map[string]int
	times       []int64
	start, end  int64 // Unix nanoseconds
}

func (m *shardSums) add(wanted, got int, errors map[string]int, times []int64, start, end int64) {
	m.wanted += wanted
	m.got += got
	mergeCounts(m.errors, errors)
	m.times = append(m.times, times...)
	if m.start == 0 || start < m.start {
		m.start = start
	}
	m.end = max(m.end, end)
}

// seconds is the span from the earliest start to the latest end.
func (m *shardSums) seconds() float64 { return float64(m.end-m.start) / 1e9 }

// runIdle holds the connections and reads the server's memory and CPU:
// memory per connection = (RSS after the hold − RSS before connecting) / N;
// CPU per connection = CPU seconds during the hold / N / hold seconds.
func runIdle(ctx context.Context, o *options, rep *report, before *sample) error {
	if before == nil {
		return errors.New("idle measures the server through --metrics; give its URL")
	}
	if err := ctxsleep.Sleep(ctx, o.settle); err != nil {
		return err
	}
	mid, err := o.scrape(ctx)
	if err != nil {
		return err
	}
	if err := ctxsleep.Sleep(ctx, o.hold); err != nil {
		return err
	}
	after, err := o.scrape(ctx)
	if err != nil {
		return err
	}
	if rep.Connect.Connected == 0 {
		return errors.New("no connection was made; nothing to measure")
	}
	rep.Idle = idleSummary(before, mid, after, rep.Connect.Connected)
	return nil
}

// idleSummary computes the idle figures of conns connections from the
// scrapes before connecting, after settling (the hold's start) and after
// the hold: memory per connection from before connecting to after the
// hold, CPU per connection over the hold alone.
func idleSummary(before, mid, after *sample, conns int) *idleReport {
	n := float64(conns)
	hold := after.at.Sub(mid.at).Seconds()
	cpu := after.sums[metricCPU] - mid.sums[metricCPU]
	return &idleReport{
		Connections:         conns,
		RSSBeforeBytes:      before.sums[metricRSS],
		RSSAfterBytes:       after.sums[metricRSS],
		BytesPerConn:        (after.sums[metricRSS] - before.sums[metricRSS]) / n,
		HeapBytesPerConn:    (after.sums[metricHeap] - before.sums[metricHeap]) / n,
		GoroutinesPerConn:   (after.sums[metricGoroutine] - before.sums[metricGoroutine]) / n,
		HoldSeconds:         hold,
		CPUSeconds:          cpu,
		CPUMicrosPerConnSec: cpu / n / hold * 1e6,
		ServerConnected:     after.sums[metricConnected],
	}
}

// runReconnect drops every connection of every worker at once and
// reconnects them; all back = the last welcome − the first drop.
func runReconnect(ctx context.Context, o *options, procs []*workerProc, rep *report) error {
	if err := ctxsleep.Sleep(ctx, o.settle); err != nil {
		return err
	}
	before, err := o.scrape(ctx)
	if err != nil {
		return err
	}
	replies, err := callAll(ctx, procs, func(int) command { return command{Op: opReconnect, Resume: o.resume} })
	if err != nil {
		return err
	}
	after, err := o.scrape(ctx)
	if err != nil {
		return err
	}
	m := shardSums{errors: map[string]int{}}
	for _, rp := range replies {
		rr := rp.Reconnect
		m.add(rr.Wanted, rr.Back, rr.Errors, rr.BackNS, rr.DropUnixNS, rr.LastWelcomeUnix)
	}
	r := &reconnectReport{
		Wanted: m.wanted, Back: m.got, Errors: m.errors, Resume: o.resume,
		AllBackSeconds: m.seconds(), DropToWelcome: summarise(m.times),
	}
	rep.Reconnect = r
	rep.ServerCPU = serverCPU(before, after, float64(r.Back), "reconnects")
	// The server retires the old connections on its own time: wait until
	// it counts as many connected as before the drop, for settle (5 s at
	// least) at most.
	for deadline := time.Now().Add(max(o.settle, 5*time.Second)); ; {
		s, err := o.scrape(ctx)
		if err != nil || s == nil {
			return err
		}
		r.ServerConnected = s.sums[metricConnected]
		if r.ServerConnected == before.sums[metricConnected] || time.Now().After(deadline) {
			return nil
		}
		if err := ctxsleep.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// share is one worker's part of a scenario's calls.
type share struct {
	calls int
	rate  float64 // calls per second
}

// shareCalls shares n calls at rate over the workers in proportion to the
// door stations of their sites that also have IDs to call.
func shareCalls(shards []*shard, n int, rate float64) ([]share, error) {
	doors := make([]int, len(shards))
	total := 0
	for i, sh := range shards {
		for _, s := range sh.Sites {
			if len(s.IDs) > 0 {
				doors[i] += len(s.Doors)
			}
		}
		total += doors[i]
	}
	if total == 0 {
		return nil, errors.New("no site has both door stations and IDs")
	}
	shares := make([]share, len(shards))
	left := n
	for i := range shards {
		shares[i] = share{calls: n * doors[i] / total, rate: rate * float64(doors[i]) / float64(total)}
		left -= shares[i].calls
	}
	for i := 0; left > 0; i = (i + 1) % len(shards) {
		if doors[i] > 0 {
			shares[i].calls++
			left--
		}
	}
	return shares, nil
}

// runCalls shares the calls over the workers (shareCalls), sends each the
// command job makes of its share, and returns the replies with the
// server's metrics scraped just before and just after (nil without
// --metrics).
func runCalls(ctx context.Context, o *options, procs []*workerProc, shards []*shard, job func(share) command) (replies []reply, before, after *sample, err error) {
	shares, err := shareCalls(shards, o.calls, o.rate)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", o.scenario, err)
	}
	if before, err = o.scrape(ctx); err != nil {
		return nil, nil, nil, err
	}
	if replies, err = callAll(ctx, procs, func(i int) command { return job(shares[i]) }); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", o.scenario, err)
	}
	after, err = o.scrape(ctx)
	return replies, before, after, err
}

// runStormScenario runs the storm's calls and merges the results.
func runStormScenario(ctx context.Context, o *options, procs []*workerProc, shards []*shard, rep *report) error {
	replies, before, after, err := runCalls(ctx, o, procs, shards, func(sh share) command {
		return command{Op: opStorm, Storm: &stormJob{
			Rate: sh.rate, Calls: sh.calls, Answer: o.answer, CycleTimeoutMS: o.cycleTimeout.Milliseconds(),
		}}
	})
	if err != nil {
		return err
	}
	rep.Storm = stormSummary(o, replies)
	rep.ServerCPU = serverCPU(before, after, float64(rep.Storm.Completed), "full cycles")
	return nil
}

// runMediaScenario runs the media calls and merges the results.
func runMediaScenario(ctx context.Context, o *options, procs []*workerProc, shards []*shard, rep *report) error {
	replies, before, after, err := runCalls(ctx, o, procs, shards, func(sh share) command {
		return command{Op: opMedia, Media: &mediaJob{
			Calls: sh.calls, Rate: sh.rate, PreviewMS: o.preview.Milliseconds(), HoldMS: o.hold.Milliseconds(),
			VideoPPS: o.videoPPS, VideoBytes: o.videoBytes,
		}}
	})
	if err != nil {
		return err
	}
	rep.Media = mediaSummary(o, replies)
	if before != nil && after != nil {
		rep.ServerCPU = serverCPU(before, after, after.sums[metricForwarded]-before.sums[metricForwarded], "packets forwarded")
	}
	return nil
}

// serverCPU is the server's CPU time between two scrapes and the work done
// per CPU-second; nil without --metrics.
func serverCPU(before, after *sample, work float64, unit string) *cpuReport {
	if before == nil || after == nil {
		return nil
	}
	r := &cpuReport{Seconds: after.at.Sub(before.at).Seconds(), CPUSeconds: after.sums[metricCPU] - before.sums[metricCPU], Work: work, Unit: unit}
	if r.CPUSeconds > 0 {
		r.WorkPerCPUSecond = work / r.CPUSeconds
	}
	return r
}
