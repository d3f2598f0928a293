package signaling

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// endedLinger is how long an ended call's parties are remembered, so that
// their late answer, decline, hangup, open_door, sdp or candidate gets
// call_ended rather than not_found.
const endedLinger = 30 * time.Second

// endedCall is what the registry keeps of a call once it has ended: who took
// part, not the call. At 1,000 calls a second it holds 30,000 of them, about
// 270 B each; the whole calls (their legs, frames and timers) were 3.3 KB.
type endedCall struct {
	door    directory.DeviceID
	parties []directory.DeviceID // every device rung
}

// involves reports whether d was the call's door station or was rung.
func (e endedCall) involves(d directory.DeviceID) bool {
	return d == e.door || slices.Contains(e.parties, d)
}

// endedAt is when an ended call is to be forgotten.
type endedAt struct {
	id    CallID
	until time.Time
}

// register adds a new call to the hub before it rings. A door station has
// one call at a time: while its current one is not over, register adds
// nothing and returns that one.
func (h *Hub) register(call *Call) (cur *Call, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cur := h.doorCalls[call.door.ID]; cur != nil && !cur.over.Load() {
		return cur, nil // busy, draining or not
	}
	if h.draining {
		return nil, errDraining
	}
	h.calls[call.id] = call
	h.doorCalls[call.door.ID] = call
	t := directory.Target{Site: call.site.ID, Number: call.number}
	if h.ringIndex[t] == nil {
		h.ringIndex[t] = make(map[*Call]struct{})
	}
	h.ringIndex[t][call] = struct{}{} // in the ringing sets as it starts (Call.start)
	h.metrics.activeCalls.Inc()
	return nil, nil
}

// unringLocked removes a call from the ring index, and from the ringing
// sets. Called with call.mu held.
func (h *Hub) unringLocked(call *Call) {
	t := directory.Target{Site: call.site.ID, Number: call.number}
	if _, ok := h.ringIndex[t][call]; ok {
		h.router.Ringing(context.Background(), t, call.id, false)
	}
	delete(h.ringIndex[t], call)
	if len(h.ringIndex[t]) == 0 {
		delete(h.ringIndex, t)
	}
}

// answered records that d won call. Called with call.mu held.
func (h *Hub) answered(call *Call, d directory.Device, after time.Duration) {
	h.mu.Lock()
	h.unringLocked(call)
	if h.winners[d.ID] == nil {
		h.winners[d.ID] = make(map[*Call]struct{})
	}
	h.winners[d.ID][call] = struct{}{}
	h.mu.Unlock()
	h.metrics.answerSeconds.Observe(after.Seconds())
	h.metrics.answeredBy.WithLabelValues(string(d.Kind)).Inc()
	// At info level a call is one line, at its end (ended). Typed attributes:
	// at info level this line costs the answer nothing, not even an allocation.
	h.log.LogAttrs(context.Background(), slog.LevelDebug, "call answered",
		slog.String("call_id", string(call.id)), slog.String("by", string(d.ID)), slog.Int64("after_ms", after.Milliseconds()))
}

// ended records the end of call, at, the time it ended: its endedLinger
// runs from then, not from now, after its frames were queued (a party may
// have read its ended meanwhile). Called with call.mu held.
func (h *Hub) ended(call *Call, reason EndReason, talk time.Duration, at time.Time) {
	h.mu.Lock()
	h.unringLocked(call)
	if h.doorCalls[call.door.ID] == call {
		delete(h.doorCalls, call.door.ID)
	}
	if call.winner != "" {
		delete(h.winners[call.winner], call)
		if len(h.winners[call.winner]) == 0 {
			delete(h.winners, call.winner)
		}
	}
	remaining := len(h.doorCalls)
	if h.draining && remaining == 0 && h.idle != nil {
		close(h.idle)
		h.idle = nil
	}
	delete(h.calls, call.id)
	h.endedCalls[call.id] = endedCall{door: call.door.ID, parties: call.partiesLocked()}
	until := at.Add(endedLinger)
	h.endedQ = append(h.endedQ, endedAt{call.id, until})
	if len(h.endedQ) == 1 { // else forgetEnded's timer runs already
		h.clock.AfterFunc(until.Sub(h.clock.Now()), h.forgetEnded)
	}
	h.mu.Unlock()
	h.metrics.activeCalls.Dec()
	h.metrics.calls.WithLabelValues(string(reason)).Inc()
	h.metrics.outcomes.WithLabelValues(outcome(call.winner != "", reason)).Inc()
	r := call.recordLocked(reason, talk)
	h.logEnded(r)
	if h.cfg.OnCallEnded != nil {
		h.cfg.OnCallEnded(r)
	}
}

// forgetEnded forgets the ended calls whose endedLinger is over, then waits
// for the next one's: one timer for all of them, where a timer a call cost
// a runtime timer and a closure each. Its timer runs while endedQ is not
// empty.
func (h *Hub) forgetEnded() {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.clock.Now()
	for len(h.endedQ) > 0 && !h.endedQ[0].until.After(now) {
		delete(h.endedCalls, h.endedQ[0].id)
		h.endedQ[0] = endedAt{} // the array keeps no forgotten ID
		h.endedQ = h.endedQ[1:]
	}
	if len(h.endedQ) > 0 {
		h.clock.AfterFunc(h.endedQ[0].until.Sub(now), h.forgetEnded)
	} else {
		h.endedQ = nil // let go of the array
	}
}

// logEnded writes a call's one line at info level, from its record: how it
// ended, how many devices rang, and who answered when. It runs under the
// call's lock at every call's end; typed attributes on the stack leave the
// handler's own work as the line's only cost.
func (h *Hub) logEnded(r CallRecord) {
	var buf [10]slog.Attr
	attrs := append(buf[:0],
		slog.String("call_id", string(r.CallID)), slog.String("site_id", string(r.Site)),
		slog.String("door_station_id", string(r.Door)), slog.String("to", string(r.Number)),
		slog.String("reason", string(r.Reason)), slog.Int("rung", len(r.Rung)))
	if r.Answered.ID != "" {
		attrs = append(attrs, slog.String("answered_by", string(r.Answered.ID)),
			slog.Int64("answered_after_ms", r.AnsweredAfter.Milliseconds()), slog.Int64("talk_ms", r.Talk.Milliseconds()))
	}
	if r.DoorOpened {
		attrs = append(attrs, slog.Bool("door_opened", true))
	}
	h.log.LogAttrs(context.Background(), slog.LevelInfo, "call ended", attrs...)
}

// recordLocked is the call log's record of an ended call, whose talk time
// endLocked measured for the ended frame; call.mu is held.
func (c *Call) recordLocked(reason EndReason, talk time.Duration) CallRecord {
	r := CallRecord{CallID: c.id, Site: c.site.ID, Door: c.door.ID, Number: c.number, Started: c.created, Reason: reason, DoorOpened: c.doorOpened}
	if len(c.legs) > 0 {
		r.Rung = make([]directory.DeviceID, 0, len(c.legs))
	}
	for id := range c.legs {
		r.Rung = append(r.Rung, id)
	}
	slices.Sort(r.Rung)
	r.People, r.Declined = c.peopleLocked()
	if c.winner != "" {
		r.Answered = c.legs[c.winner].device
		r.AnsweredAfter = c.answeredAt.Sub(c.created)
		r.Talk = talk
	}
	return r
}

// peopleLocked returns the people a call was for (CallRecord.People) and
// those of them who declined; call.mu is held.
func (c *Call) peopleLocked() (people, declined []directory.UserID) {
	for _, l := range c.legs {
		if u := l.device.User; u != "" {
			people = append(people, u)
			if l.declined {
				declined = append(declined, u)
			}
		}
	}
	for _, d := range c.missed {
		if d.User != "" {
			people = append(people, d.User)
		}
	}
	slices.Sort(people)
	slices.Sort(declined)
	return slices.Compact(people), slices.Compact(declined)
}

// doorOpened records an unlock sent during a call.
func (h *Hub) doorOpened(call *Call, by directory.Device, relay int) {
	h.metrics.doorOpenings.WithLabelValues(openedByCall).Inc()
	call.doorOpened = true
	if h.cfg.OnDoorOpened != nil {
		h.cfg.OnDoorOpened(DoorRecord{CallID: call.id, Site: call.site.ID, Door: call.door.ID, By: by, Relay: relay, At: h.clock.Now()})
	}
	h.log.Info("door opened", "call_id", call.id, "site_id", call.site.ID, "door_station_id", call.door.ID, "by", by.ID, "relay", relay)
}

// ringLate rings a newly connected device for the ringing calls of its call IDs.
func (h *Hub) ringLate(c *Conn) { h.ringLateAt(c.device, c.targets, c.id) }

// ringLateAt rings device d, connected as conn (here or on another node),
// for this node's calls ringing its targets (Call.ringLate: a connection
// rung already, or a device that declined, is not rung).
func (h *Hub) ringLateAt(d directory.Device, targets []directory.Target, conn string) {
	h.mu.Lock()
	calls := h.ringingLocked(nil, targets)
	h.mu.Unlock()
	for _, call := range calls {
		call.ringLate(d, conn)
	}
}

// ringingLocked appends to calls this node's calls ringing for targets;
// h.mu is held.
func (h *Hub) ringingLocked(calls []*Call, targets []directory.Target) []*Call {
	for _, t := range targets {
		for call := range h.ringIndex[t] {
			calls = append(calls, call)
		}
	}
	return calls
}

// RemoteJoin implements NodeHandler: a device of a call this node owns
// connected to another node while the call rings.
func (h *Hub) RemoteJoin(id CallID, d directory.Device, conn string) {
	if call := h.call(id); call != nil {
		call.ringLate(d, conn)
	}
}

// RemoteMoved implements NodeHandler.
func (h *Hub) RemoteMoved(d directory.Device, targets []directory.Target, conn string) {
	h.ringLateAt(d, targets, conn)
}

// Unrung implements NodeHandler.
func (h *Hub) Unrung(id CallID) []directory.Device {
	if call := h.call(id); call != nil {
		return call.unrung()
	}
	return nil
}

// leave tells the calls a device takes part in that its connection is gone:
// the door station's call, the call it won, and the calls ringing its IDs.
func (h *Hub) leave(c *Conn) {
	h.mu.Lock()
	calls := h.ringingLocked(h.partyCallsLocked(c.device.ID), c.targets)
	h.mu.Unlock()
	for _, call := range calls {
		call.left(c.device.ID, c.id, c.endReason)
	}
	h.leftRemote(c)
}

// leftRemote tells the owners of the calls of other nodes c took part in
// that it has gone.
func (h *Hub) leftRemote(c *Conn) {
	for _, id := range c.takeRemoteCalls() {
		h.router.Left(context.Background(), ownerOf(id), id, c.device.ID, c.id, c.endReason)
	}
}

// passOnLate passes on the calls of other nodes recorded on c after its
// calls were taken as it went (Conn.noteRemoteFrame), where handOver passes
// the others: only those, for the rest of handOver's work is done. Not
// closed yet, c was replaced on this node (serve), and served, still to
// come, passes them on.
func (h *Hub) passOnLate(c *Conn) {
	if !c.isClosing() {
		return
	}
	to, ok := c.replacement()
	if !ok {
		h.keepHere(c)
		return
	}
	if calls := c.takeRemoteCalls(); len(calls) > 0 {
		h.router.Handover(context.Background(), to.node, c.device.ID, to.conn, calls)
	}
}

// handOver gives the calls c took part in to the connection on another
// node that replaced it, if one did: that one tells their owners when it
// goes, though it may never speak about them. And this node's calls that
// still ring c's call IDs ring the device there, as a late join: its new
// node looked for them in Redis's ringing sets as it connected (Announce),
// but a call writes its ringing set off the ring path, and the device may
// have moved before that write (a call's first ring reaches a device on
// the call's node without Redis). A call that rang the new connection
// already does not ring it again (Call.ringLate).
//
// Replaced on this node, c gave its calls to its replacement as that one
// attached (serve); but its reader may have been dispatching a message
// then, which recorded a call of another node on c afterwards (an answer
// in its socket as the device connected again): the device's connection
// here now takes that one too, or, gone already, its owner hears c left.
func (h *Hub) handOver(c *Conn) {
	to, ok := c.replacement()
	if !ok {
		h.keepHere(c)
		return
	}
	calls := c.takeRemoteCalls()
	h.mu.Lock()
	for _, call := range h.partyCallsLocked(c.device.ID) {
		calls = append(calls, call.id)
	}
	h.mu.Unlock()
	if len(calls) > 0 {
		h.router.Handover(context.Background(), to.node, c.device.ID, to.conn, calls)
	}
	h.ringLateAt(c.device, c.targets, to.conn)
}

// keepHere gives the calls of other nodes recorded on c to the device's
// connection on this node, or, with none, tells their owners it left.
func (h *Hub) keepHere(c *Conn) {
	if cur := h.router.Local(c.device.ID); cur != nil {
		cur.inheritRemoteCalls(c)
		return
	}
	h.leftRemote(c)
}

// partyCallsLocked returns this node's calls that d is a party of: as
// their door station, or as the device that answered; h.mu is held.
func (h *Hub) partyCallsLocked(d directory.DeviceID) []*Call {
	var calls []*Call
	if call := h.doorCalls[d]; call != nil {
		calls = append(calls, call)
	}
	for call := range h.winners[d] {
		calls = append(calls, call)
	}
	return calls
}

// RemoteForgotten implements NodeHandler.
func (h *Hub) RemoteForgotten(id CallID, d directory.DeviceID, conn string) {
	if call := h.call(id); call != nil && call.door.ID == d {
		call.forgottenBy(conn)
	}
}

// RemoteLeft implements NodeHandler.
func (h *Hub) RemoteLeft(id CallID, d directory.DeviceID, conn string, reason EndReason) {
	if call := h.call(id); call != nil {
		call.left(d, conn, reason)
	}
}

// call returns the call with this ID that this node owns, or nil when
// there is none or it has ended.
func (h *Hub) call(id CallID) *Call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[id]
}

// lookupEnded returns what is kept of a call with this ID that this node
// owned and that ended within endedLinger.
func (h *Hub) lookupEnded(id CallID) (endedCall, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.endedCalls[id]
	return e, ok
}

// ActiveCalls returns the number of calls this node owns that are not over.
func (h *Hub) ActiveCalls() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.doorCalls)
}

// Drain stops new calls and new connections, closes idle connections with
// CloseGoingAway so they reconnect elsewhere, and waits for active calls to
// finish until ctx ends. Then it ends what remains and closes every
// connection. It returns when all connections are gone.
func (h *Hub) Drain(ctx context.Context) {
	h.mu.Lock()
	h.draining = true
	idle := make(chan struct{})
	if len(h.doorCalls) == 0 {
		close(idle)
	} else {
		h.idle = idle
	}
	h.mu.Unlock()
	busy := h.busy()
	h.log.Info("draining", "active_calls", len(busy))

	h.router.Each(func(c *Conn) {
		if !busy[c.device.ID] {
			c.close(CloseGoingAway, EndFailed)
		}
	})
	select {
	case <-idle:
	case <-ctx.Done():
		h.log.Warn("drain deadline reached; ending the remaining calls")
	}
	// The calls still going end failed now, with their parties told, before
	// the connections close: closed first, an answered call would wait in
	// its rejoin window for parties that cannot come back here.
	h.mu.Lock()
	left := slices.Collect(maps.Values(h.calls))
	h.mu.Unlock()
	for _, call := range left {
		call.fail()
	}
	h.router.Each(func(c *Conn) { c.close(CloseGoingAway, EndFailed) })
	h.wg.Wait()
	h.mediaWG.Wait()
}

// busy returns the devices taking part in active calls: door stations,
// winners, and devices still ringing.
func (h *Hub) busy() map[directory.DeviceID]bool {
	h.mu.Lock()
	calls := make([]*Call, 0, len(h.doorCalls))
	for _, call := range h.doorCalls {
		calls = append(calls, call)
	}
	h.mu.Unlock()
	busy := make(map[directory.DeviceID]bool)
	for _, call := range calls {
		call.mu.Lock()
		busy[call.door.ID] = true
		busy[call.winner] = true
		for id, l := range call.legs {
			if l.ringing {
				busy[id] = true
			}
		}
		call.mu.Unlock()
	}
	return busy
}
