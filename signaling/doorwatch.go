package signaling

import (
	"context"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// A door station offline: when a door station's connection to this node
// closes and it is connected to no node DoorOffline later, the hub tells
// Config.OnDoorOffline (the site's managers are e-mailed); every door
// station connecting tells Config.OnDoorOnline (which says it is back, if
// it was reported offline). The node that held the connection watches it:
// a door station that moved to another node, or came back, is not
// reported; a draining node watches none (its door stations move on).

// defaultDoorOffline is how long a door station must be gone before it is
// reported: longer than a router's reboot or a network blip.
const defaultDoorOffline = 5 * time.Minute

// doorWatch is one closed door station connection being watched.
type doorWatch struct{ t Timer }

// watchDoor starts watching door station d, whose connection here closed.
func (h *Hub) watchDoor(d directory.Device) {
	if h.cfg.OnDoorOffline == nil {
		return
	}
	since := h.clock.Now()
	w := &doorWatch{}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.draining || h.stopped {
		return
	}
	w.t = h.clock.AfterFunc(h.cfg.DoorOffline, func() {
		h.mu.Lock()
		_, live := h.doorWatches[w]
		delete(h.doorWatches, w)
		h.mu.Unlock()
		if !live {
			return // the hub stopped
		}
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.RequestTimeout)
		defer cancel()
		if !h.Connected(ctx, []directory.DeviceID{d.ID})[d.ID] {
			h.log.Warn("door station offline", "door_station_id", d.ID, "site_id", d.Site, "since", since)
			h.cfg.OnDoorOffline(d, since)
		}
	})
	h.doorWatches[w] = struct{}{}
}

// doorOnline tells OnDoorOnline of door station d, connected here now.
func (h *Hub) doorOnline(d directory.Device) {
	if h.cfg.OnDoorOnline != nil {
		go h.cfg.OnDoorOnline(d)
	}
}

// stopWatching stops every watch: the hub has stopped.
func (h *Hub) stopWatching() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	for w := range h.doorWatches {
		w.t.Stop()
		delete(h.doorWatches, w)
	}
}
