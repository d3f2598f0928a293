package main

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// cancelsPerCall: everyone rung but the winner is told answered_elsewhere,
// the devices that lost the race included.
const cancelsPerCall = idSize - 1

// cycle is one call followed from the door's call to ended at both ends:
// call → 7 rings → k answers at once → answered, 6 cancels, k−1 call_taken
// → the door hangs up → ended to the door and the winner.
type cycle struct {
	// Immutable after construction.
	e         *stormEngine
	seq       int64
	door      *doorSlot
	id        *idGroup
	answerers []*client

	mu           sync.Mutex
	sent         time.Time   // guarded by mu: the call written
	callID       string      // guarded by mu
	rings        int         // guarded by mu
	lastRing     time.Time   // guarded by mu
	answerSent   time.Time   // guarded by mu: the first answer written
	cancels      int         // guarded by mu
	lastCancel   time.Time   // guarded by mu
	taken        int         // guarded by mu: call_taken errors
	doorAnswered bool        // guarded by mu
	winner       *client     // guarded by mu
	hungUp       bool        // guarded by mu
	endedDoor    bool        // guarded by mu
	endedWinner  bool        // guarded by mu
	finished     bool        // guarded by mu
	timer        *time.Timer // set in start, under mu
}

// cycleOutcome is what a finished cycle adds to the results.
type cycleOutcome struct {
	ok                  bool
	ring, cancel, cycle int64 // ns
	taken               int
}

func newCycle(e *stormEngine, seq int64, door *doorSlot, id *idGroup) *cycle {
	c := &cycle{e: e, seq: seq, door: door, id: id}
	for _, i := range rand.Perm(idSize)[:e.job.Answer] {
		c.answerers = append(c.answerers, id.devices[i])
	}
	return c
}

// start writes the call and arms the cycle's timeout.
func (c *cycle) start() {
	c.mu.Lock()
	c.sent = time.Now()
	c.timer = time.AfterFunc(c.e.timeout, c.timedOut)
	c.mu.Unlock()
	if err := c.door.c.send(callMessage(c.id.number, c.seq)); err != nil {
		c.fail("send call: " + classifyNetError("write", err))
	}
}

// doorMsg handles what the door station reads during the cycle.
func (c *cycle) doorMsg(m *inbound, at time.Time) {
	if m.Type == "error" && m.refSeq() == c.seq {
		c.fail("call refused: " + m.Code)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch m.Type {
	case "calling":
		c.setCallLocked(m.CallID)
		if m.Ringing != idSize {
			c.e.countErr(fmt.Sprintf("calling: %d ringing, want %d", m.Ringing, idSize))
		}
	case "error":
		c.e.countErr("door error: " + m.Code)
	case "answered":
		c.doorAnswered = true
		c.maybeHangupLocked()
	case "ended":
		if m.Reason != "hangup" {
			c.e.countErr("ended: " + m.Reason)
		}
		c.endedDoor = true
		c.maybeFinishLocked(at)
	}
}

// deviceMsg handles what one of the ID's devices reads during the cycle.
func (c *cycle) deviceMsg(d *client, m *inbound, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m.CallID != "" && c.callID != "" && m.CallID != c.callID {
		c.e.countErr("stray " + m.Type + " (another call)")
		return
	}
	switch m.Type {
	case "ring":
		c.setCallLocked(m.CallID)
		c.rings++
		c.lastRing = at
		if c.rings == idSize {
			go c.answer() // all 7 ring: the chosen devices answer together
		}
	case "answered":
		switch {
		case c.winner == nil:
			c.winner = d
		case c.winner != d:
			c.e.countErr("answered: two winners")
		}
		c.maybeHangupLocked()
	case "cancel":
		if m.Reason != "answered_elsewhere" {
			c.e.countErr("cancel: " + m.Reason)
		}
		c.cancels++
		c.lastCancel = at
		c.maybeHangupLocked()
	case "error":
		if m.Code != "call_taken" {
			c.e.countErr("device error: " + m.Code)
			return
		}
		c.taken++
		c.maybeHangupLocked()
	case "ended":
		if d == c.winner {
			c.endedWinner = true
			c.maybeFinishLocked(at)
		}
	}
}

func (c *cycle) setCallLocked(id string) {
	if c.callID == "" {
		c.callID = id
	}
}

// answer sends answer from every chosen device at the same instant: each
// waits on one barrier, then writes.
func (c *cycle) answer() {
	c.mu.Lock()
	id := c.callID
	c.mu.Unlock()
	barrier := make(chan struct{})
	var wg sync.WaitGroup
	for _, d := range c.answerers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-barrier
			now := time.Now()
			c.mu.Lock()
			if c.answerSent.IsZero() || now.Before(c.answerSent) {
				c.answerSent = now
			}
			c.mu.Unlock()
			if err := d.send(map[string]any{"type": "answer", "call_id": id}); err != nil {
				c.e.countErr("send answer: " + classifyNetError("write", err))
			}
		}()
	}
	close(barrier)
	wg.Wait()
}

// maybeHangupLocked hangs up once everything the answer causes was read:
// answered at both ends, 6 cancels, k−1 call_taken. Hanging up earlier would
// turn late answers into call_ended.
func (c *cycle) maybeHangupLocked() {
	if c.hungUp || !c.doorAnswered || c.winner == nil || c.cancels < cancelsPerCall || c.taken < len(c.answerers)-1 {
		return
	}
	c.hungUp = true
	id := c.callID
	go func() { // the door's write must not hold the cycle's lock
		if err := c.door.c.send(map[string]any{"type": "hangup", "call_id": id}); err != nil {
			c.e.countErr("send hangup: " + classifyNetError("write", err))
		}
	}()
}

// maybeFinishLocked completes the cycle once both ends read ended.
func (c *cycle) maybeFinishLocked(at time.Time) {
	if c.finished || !c.endedDoor || !c.endedWinner {
		return
	}
	c.finished = true
	c.timer.Stop()
	out := cycleOutcome{
		ok:     c.rings == idSize && c.cancels == cancelsPerCall,
		ring:   int64(c.lastRing.Sub(c.sent)),
		cancel: int64(c.lastCancel.Sub(c.answerSent)),
		cycle:  int64(at.Sub(c.sent)),
		taken:  c.taken,
	}
	c.e.release(c, out) // lock order: cycle.mu, then stormEngine.mu
}

// fail ends the cycle without a result (the call was refused or not sent).
func (c *cycle) fail(class string) {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished = true
	c.timer.Stop()
	taken := c.taken
	c.mu.Unlock()
	c.e.countErr(class)
	c.e.release(c, cycleOutcome{taken: taken})
}

// timedOut gives up on a cycle stuck somewhere, names where, and hangs up
// so that the server's call ends too.
func (c *cycle) timedOut() {
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		return
	}
	c.finished = true
	stage := fmt.Sprintf("timeout: %d/%d rings, answered door=%v winner=%v, %d/%d cancels, %d/%d call_taken, ended door=%v winner=%v",
		c.rings, idSize, c.doorAnswered, c.winner != nil, c.cancels, cancelsPerCall, c.taken, len(c.answerers)-1, c.endedDoor, c.endedWinner)
	id, taken := c.callID, c.taken
	c.mu.Unlock()
	c.e.countErr(stage)
	if id != "" {
		_ = c.door.c.send(map[string]any{"type": "hangup", "call_id": id})
	}
	c.e.release(c, cycleOutcome{taken: taken})
}
