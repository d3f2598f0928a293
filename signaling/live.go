package signaling

import (
	"slices"
	"strings"
	"time"

	"github.com/foyer-intercom/foyer/directory"
)

// LiveCall is a call in progress, as the admin portal shows it.
type LiveCall struct {
	CallID   CallID             `json:"call_id"`
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

// LiveCalls returns the calls of site this node owns that have not ended,
// oldest first, their times in UTC (the API's).
func (h *Hub) LiveCalls(site directory.SiteID) []LiveCall {
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
			lc := LiveCall{CallID: c.id, Door: c.door.ID, DoorName: c.door.Name, Number: c.number, State: "ringing",
				Started: c.created.UTC(), Ringing: c.ringingLocked()}
			if c.state == stateAnswered {
				lc.State, lc.Answered, lc.AnsweredAt = "answered", c.winner, c.answeredAt.UTC()
			}
			out = append(out, lc)
		}
		c.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b LiveCall) int {
		if c := a.Started.Compare(b.Started); c != 0 {
			return c
		}
		return strings.Compare(string(a.CallID), string(b.CallID))
	})
	return out
}
