package main

import (
	"context"
	"sync"
	"time"
)

// idGroup is one call ID's 7 connected devices, in one worker.
type idGroup struct {
	// Immutable after setup.
	number  string
	site    int
	devices [idSize]*client

	cur *cycle // guarded by stormEngine.mu: the call ringing it, if any
}

// doorSlot is a door station taking part in a storm.
type doorSlot struct {
	c   *client // immutable
	cur *cycle  // guarded by stormEngine.mu
}

// stormSite is a site's doors and IDs; a door calls only its own site.
type stormSite struct {
	doors            []*doorSlot
	ids              []*idGroup
	nextDoor, nextID int // guarded by stormEngine.mu; round-robin cursors
}

// stormEngine places a worker's calls at a fixed rate and follows each
// through its whole cycle. Lock order: cycle.mu before stormEngine.mu.
type stormEngine struct {
	// Immutable after construction.
	job     stormJob
	timeout time.Duration
	sites   []*stormSite
	doors   map[*client]*doorSlot

	mu       sync.Mutex
	res      stormResult // guarded by mu
	nextSite int         // guarded by mu
	wg       sync.WaitGroup
}

// runStorm runs a worker's part of a storm and returns what it measured.
func runStorm(ctx context.Context, w *worker, job stormJob) *stormResult {
	e := &stormEngine{
		job:     job,
		timeout: time.Duration(job.CycleTimeoutMS) * time.Millisecond,
		doors:   map[*client]*doorSlot{},
		res:     stormResult{Planned: job.Calls, Errors: map[string]int{}},
	}
	bySite := map[int]*stormSite{}
	site := func(i int) *stormSite {
		if bySite[i] == nil {
			bySite[i] = &stormSite{}
			e.sites = append(e.sites, bySite[i])
		}
		return bySite[i]
	}
	seen := map[*idGroup]bool{}
	for _, c := range w.clients {
		switch {
		case c.dev.Kind == kindDoor:
			d := &doorSlot{c: c}
			e.doors[c] = d
			site(c.site).doors = append(site(c.site).doors, d)
		case c.id != nil && !seen[c.id]:
			seen[c.id] = true
			site(c.site).ids = append(site(c.site).ids, c.id)
		}
	}
	h := handler(e.onMessage)
	for _, c := range w.clients {
		c.h.Store(&h)
	}
	e.schedule(ctx)
	e.wg.Wait() // every placed cycle finishes or times out
	for _, c := range w.clients {
		c.h.Store(nil)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return &e.res
}

// schedule places job.Calls calls, one every 1/rate seconds from the start
// (open loop: a late call is placed at once, and its lateness recorded).
func (e *stormEngine) schedule(ctx context.Context) {
	if e.job.Rate <= 0 {
		return
	}
	interval := time.Duration(float64(time.Second) / e.job.Rate)
	start := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for i := range e.job.Calls {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			t.Reset(d)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		e.place(int64(i), time.Since(due))
	}
}

// place starts one call from the next free door station to the next free ID.
func (e *stormEngine) place(seq int64, lag time.Duration) {
	e.mu.Lock()
	door, id := e.pickLocked()
	e.res.LagNS = append(e.res.LagNS, int64(lag))
	if door == nil {
		e.res.Skipped++
		e.mu.Unlock()
		return
	}
	cyc := newCycle(e, seq, door, id)
	door.cur, id.cur = cyc, cyc
	e.res.Placed++
	if e.res.FirstCallUnix == 0 {
		e.res.FirstCallUnix = time.Now().UnixNano()
	}
	e.wg.Add(1)
	e.mu.Unlock()
	cyc.start()
}

// pickLocked finds a site, in turn, with a free door station and a free ID.
func (e *stormEngine) pickLocked() (*doorSlot, *idGroup) {
	for range e.sites {
		s := e.sites[e.nextSite%len(e.sites)]
		e.nextSite++
		door := pickFree(s.doors, &s.nextDoor, func(d *doorSlot) bool { return d.cur == nil })
		id := pickFree(s.ids, &s.nextID, func(g *idGroup) bool { return g.cur == nil })
		if door != nil && id != nil {
			return door, id
		}
	}
	return nil, nil
}

// pickFree returns the next free item from *next on, advancing *next past it.
func pickFree[T any](items []T, next *int, free func(T) bool) T {
	var zero T
	for range items {
		it := items[*next%len(items)]
		*next++
		if free(it) {
			return it
		}
	}
	return zero
}

// onMessage routes a message to the cycle of the door or ID that got it.
func (e *stormEngine) onMessage(c *client, m *inbound, at time.Time) {
	e.mu.Lock()
	var cyc *cycle
	if c.id != nil {
		cyc = c.id.cur
	} else if d := e.doors[c]; d != nil {
		cyc = d.cur
	}
	e.mu.Unlock()
	if cyc == nil {
		if m.Type == "error" || m.Type == "ring" || m.Type == "cancel" || m.Type == "ended" {
			e.countErr("stray " + m.Type + " " + m.Code + m.Reason)
		}
		return
	}
	if c.id != nil {
		cyc.deviceMsg(c, m, at)
	} else {
		cyc.doorMsg(m, at)
	}
}

// countErr counts one error by class.
func (e *stormEngine) countErr(class string) {
	e.mu.Lock()
	e.res.Errors[class]++
	e.mu.Unlock()
}

// release frees the cycle's door station and ID and records its outcome.
func (e *stormEngine) release(c *cycle, out cycleOutcome) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c.door.cur, c.id.cur = nil, nil
	if out.ok {
		e.res.Completed++
		e.res.RingNS = append(e.res.RingNS, out.ring)
		e.res.CancelNS = append(e.res.CancelNS, out.cancel)
		e.res.CycleNS = append(e.res.CycleNS, out.cycle)
		e.res.LastDoneUnixNS = max(e.res.LastDoneUnixNS, time.Now().UnixNano())
	}
	e.res.CallTaken += out.taken
	e.wg.Done()
}

// callMessage is the door station's call; its ref is the cycle's sequence
// number, a JSON number that the server echoes verbatim.
func callMessage(to string, seq int64) map[string]any {
	return map[string]any{"type": "call", "to": to, "ref": seq}
}
