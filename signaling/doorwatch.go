package signaling

import (
	"github.com/foyer-intercom/foyer/directory"
)

// Door stations coming and going: the hub tells Config.OnDoorOnline of
// every door station connecting here, and Config.OnDoorGone of one whose
// connection here closed, unless it was replaced by a newer one (it is
// connected again) or the node is draining (its door stations move to the
// other nodes). Whether one stays gone long enough to tell anybody is
// decided by whoever listens (api.DoorAlerts: every node's sweeps of the
// shared store), so a node that dies or restarts loses no door station,
// only, at worst, the exact time one went.

// doorOnline tells OnDoorOnline of door station d, connected here now.
func (h *Hub) doorOnline(d directory.Device) {
	if h.cfg.OnDoorOnline != nil {
		go h.cfg.OnDoorOnline(d)
	}
}

// doorGone tells OnDoorGone of door station d, whose connection here
// closed with code, on the goroutine that ends serving it.
func (h *Hub) doorGone(d directory.Device, code CloseCode) {
	if h.cfg.OnDoorGone == nil || code == CloseReplaced {
		return
	}
	h.mu.Lock()
	draining := h.draining
	h.mu.Unlock()
	if !draining {
		h.cfg.OnDoorGone(d, h.clock.Now())
	}
}
