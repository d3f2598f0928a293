package signaling

import (
	"context"
	"sync"

	"github.com/foyer-intercom/foyer/directory"
)

var _ Router = (*Memory)(nil)

// Memory is the single-node Router: a map of the connections on this node.
type Memory struct {
	mu    sync.RWMutex
	conns map[directory.DeviceID]*Conn // guarded by mu
}

// NewMemory returns an empty single-node router.
func NewMemory() *Memory {
	return &Memory{conns: make(map[directory.DeviceID]*Conn)}
}

// Attach implements Router.
func (m *Memory) Attach(_ context.Context, c *Conn) (*Conn, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prev := m.conns[c.device.ID]
	m.conns[c.device.ID] = c
	return prev, nil
}

// Detach implements Router.
func (m *Memory) Detach(_ context.Context, c *Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conns[c.device.ID] != c {
		return false
	}
	delete(m.conns, c.device.ID)
	return true
}

// Deliver implements Router.
func (m *Memory) Deliver(id directory.DeviceID, frame []byte) (string, bool) {
	c := m.Local(id)
	if c == nil || !c.Send(frame) {
		return "", false
	}
	return c.id, true
}

// Where implements Router.
func (m *Memory) Where(id directory.DeviceID) (string, bool) {
	if c := m.Local(id); c != nil {
		return c.id, true
	}
	return "", false
}

// Local implements Router.
func (m *Memory) Local(id directory.DeviceID) *Conn {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.conns[id]
}

// Each implements Router. It iterates over a snapshot, so fn may block or
// call back into the router.
func (m *Memory) Each(fn func(*Conn)) {
	m.mu.RLock()
	snapshot := make([]*Conn, 0, len(m.conns))
	for _, c := range m.conns {
		snapshot = append(snapshot, c)
	}
	m.mu.RUnlock()
	for _, c := range snapshot {
		fn(c)
	}
}

// Len implements Router.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.conns)
}

// Locate implements Router: one node knows only its own connections.
func (m *Memory) Locate(context.Context, []directory.DeviceID) error { return nil }

// Forward implements Router: with one node, a call owned by another node
// (an ID from before a restart) does not exist.
func (m *Memory) Forward(context.Context, string, CallID, directory.Device, string, []byte) error {
	return errNoSuchCall
}

// Left implements Router; with one node every call is local.
func (m *Memory) Left(context.Context, string, CallID, directory.DeviceID, string, EndReason) {}

// Handover implements Router; with one node no connection is replaced by
// one on another node.
func (m *Memory) Handover(context.Context, string, directory.DeviceID, string, []CallID) {}

// Forgotten implements Router; with one node every call is this node's.
func (m *Memory) Forgotten(context.Context, string, CallID, directory.DeviceID, string) {}

// Ringing implements Router; the hub's own ring index suffices on one node.
func (m *Memory) Ringing(context.Context, directory.Target, CallID, bool) {}

// Announce implements Router; the hub's own ring index suffices on one node.
func (m *Memory) Announce(context.Context, directory.Device, []directory.Target) {}

// LiveElsewhere implements Router: there are no other nodes.
func (m *Memory) LiveElsewhere(context.Context, directory.SiteID) ([]LiveCall, []string) {
	return nil, nil
}

// Run implements Router; one node has no background work.
func (m *Memory) Run(ctx context.Context, _ NodeHandler) { <-ctx.Done() }

// Ready implements Router.
func (m *Memory) Ready(context.Context) error { return nil }

// Flush implements Router: a single node has nothing to send.
func (m *Memory) Flush(context.Context) {}
