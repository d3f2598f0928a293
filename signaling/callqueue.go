package signaling

import "sync"

// callQueues runs work about calls in order per call, with a goroutine
// for each call that has work waiting, so that one call's slow work (the
// media negotiation of an SDP, a directory read) holds up neither other
// calls nor whatever gave it the work. What other nodes send about this
// node's calls (messages, joins, lefts, forgotten) runs so
// (RedisRouter.receive): each node's channel has one receiving goroutine,
// which would otherwise wait for every call's work in turn.
type callQueues struct {
	mu      sync.Mutex
	waiting map[CallID][]func() // guarded by mu; a call's key is present while a goroutine runs its work
	running sync.WaitGroup      // goroutines running work
}

// run runs f after the work already given for call, on another goroutine.
func (q *callQueues) run(call CallID, f func()) {
	q.mu.Lock()
	if pending, busy := q.waiting[call]; busy {
		q.waiting[call] = append(pending, f)
		q.mu.Unlock()
		return
	}
	if q.waiting == nil {
		q.waiting = make(map[CallID][]func())
	}
	q.waiting[call] = nil
	q.running.Add(1)
	q.mu.Unlock()
	go q.drain(call, f)
}

// drain runs f, then the call's work given meanwhile, until none is left.
func (q *callQueues) drain(call CallID, f func()) {
	defer q.running.Done()
	for {
		f()
		q.mu.Lock()
		pending := q.waiting[call]
		if len(pending) == 0 {
			delete(q.waiting, call)
			q.mu.Unlock()
			return
		}
		f, pending[0] = pending[0], nil
		q.waiting[call] = pending[1:]
		q.mu.Unlock()
	}
}

// wait returns once no work is left to run.
func (q *callQueues) wait() { q.running.Wait() }
