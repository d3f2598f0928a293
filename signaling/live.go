package signaling

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// LiveCall is a call in progress, as the admin portal shows it.
type LiveCall struct {
	CallID   CallID             `json:"call_id"`
	Node     string             `json:"node"` // the node owning the call (holding its door station)
	Door     directory.DeviceID `json:"door_station_id"`
	DoorName string             `json:"door_station_name"`
	Number   directory.Number   `json:"number"`
	State    string             `json:"state"` // ringing | answered
	Started  time.Time          `json:"started"`
	Ringing  int                `json:"ringing"`
	Answered directory.DeviceID `json:"answered_by,omitempty"`
	// AnsweredAt is when the call was answered (zero while ringing).
	AnsweredAt time.Time `json:"answered_at,omitzero"`
}

// LiveCalls are a site's calls in progress on every node.
type LiveCalls struct {
	Calls []LiveCall `json:"calls"`
	// Unanswered names the nodes that were asked for their calls and did
	// not answer in time (liveWait): their calls are missing from Calls.
	Unanswered []string `json:"unanswered_nodes,omitempty"`
}

// liveWait bounds how long a node waits for the other nodes' calls: less
// than the portal's refresh (2 s), so a node that does not answer leaves
// a list without its calls rather than a list that never comes.
const liveWait = time.Second

// LiveCalls returns the calls of site in progress, this node's and, in a
// cluster, every other live node's (Router.LiveElsewhere), oldest first,
// their times in UTC (the API's). Calls is never nil: none is [] in JSON.
func (h *Hub) LiveCalls(ctx context.Context, site directory.SiteID) LiveCalls {
	ctx, cancel := context.WithTimeout(ctx, liveWait)
	defer cancel()
	others, unanswered := h.router.LiveElsewhere(ctx, site)
	calls := append(h.LiveCallsHere(site), others...)
	sortLive(calls)
	slices.Sort(unanswered)
	return LiveCalls{Calls: calls, Unanswered: unanswered}
}

// Connected reports which of ids are connected now, to this node or to
// another (where the router places them: its presence view, else their
// leases in Redis, as a call looks them up). Should Redis not answer, the
// view as it stands says.
func (h *Hub) Connected(ctx context.Context, ids []directory.DeviceID) map[directory.DeviceID]bool {
	_ = h.router.Locate(ctx, ids) // counted and logged by the router
	on := make(map[directory.DeviceID]bool, len(ids))
	for _, id := range ids {
		if _, ok := h.router.Where(id); ok {
			on[id] = true
		}
	}
	return on
}

// ErrDoorOffline: the door station to open is connected to no node.
var ErrDoorOffline = errors.New("signaling: the door station is not connected")

// OpenDoor sends door's relay 1 an unlock for d, outside any call (a
// resident opening from the app), wherever the door station is connected:
// this node or, through the router, another. It reports ErrDoorOffline
// when the door station is connected nowhere. The caller checks who may
// and logs it; the hub counts it (foyer_door_openings_total{via="app"}).
func (h *Hub) OpenDoor(ctx context.Context, door directory.DeviceID, d time.Duration) error {
	_ = h.router.Locate(ctx, []directory.DeviceID{door}) // counted and logged by the router
	if _, ok := h.router.Deliver(door, encode(Unlock{Type: TypeUnlock, Relay: 1, DurationMS: d.Milliseconds()})); !ok {
		return ErrDoorOffline
	}
	h.metrics.doorOpenings.WithLabelValues(openedByApp).Inc()
	h.log.Info("door opened", "door_station_id", door, "via", openedByApp)
	return nil
}

// LiveCallsHere implements NodeHandler: the calls of site this node owns
// that have not ended, oldest first, their times in UTC.
func (h *Hub) LiveCallsHere(site directory.SiteID) []LiveCall {
	h.mu.Lock()
	calls := make([]*Call, 0, len(h.doorCalls))
	for _, c := range h.doorCalls {
		if c.site.ID == site {
			calls = append(calls, c)
		}
	}
	h.mu.Unlock()
	out := make([]LiveCall, 0, len(calls))
	for _, c := range calls { // each call's lock after the hub's is released (lock order)
		c.mu.Lock()
		if c.state != stateEnded {
			lc := LiveCall{CallID: c.id, Node: h.cfg.NodeID, Door: c.door.ID, DoorName: c.door.Name, Number: c.number, State: "ringing",
				Started: c.created.UTC(), Ringing: c.ringingLocked()}
			if c.state == stateAnswered {
				lc.State, lc.Answered, lc.AnsweredAt = "answered", c.winner, c.answeredAt.UTC()
			}
			out = append(out, lc)
		}
		c.mu.Unlock()
	}
	sortLive(out)
	return out
}

// sortLive orders calls oldest first (by call ID for calls of the same
// instant).
func sortLive(calls []LiveCall) {
	slices.SortFunc(calls, func(a, b LiveCall) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(string(a.CallID), string(b.CallID))
	})
}
