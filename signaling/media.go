package signaling

import (
	"encoding/json"

	"github.com/pion/webrtc/v4"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/media"
)

// SDPMessage carries a WebRTC description between a client and the call's
// media session on the owning node.
type SDPMessage struct {
	Type        string                    `json:"type"`
	CallID      CallID                    `json:"call_id"`
	Description webrtc.SessionDescription `json:"description"`
}

// CandidateMessage carries one trickled ICE candidate; an empty candidate
// string means the end of candidates.
type CandidateMessage struct {
	Type      string                  `json:"type"`
	CallID    CallID                  `json:"call_id"`
	Candidate webrtc.ICECandidateInit `json:"candidate"`
}

// callEvents sends a media session's descriptions and candidates to the
// call's parties. Pion's goroutines call it; it only enqueues.
type callEvents struct {
	router Router
	call   CallID
}

var _ media.Events = callEvents{}

// SDP implements media.Events.
func (e callEvents) SDP(to string, desc webrtc.SessionDescription) {
	e.router.Deliver(directory.DeviceID(to), encode(SDPMessage{Type: TypeSDP, CallID: e.call, Description: desc}))
}

// Candidate implements media.Events.
func (e callEvents) Candidate(to string, c *webrtc.ICECandidateInit) {
	m := CandidateMessage{Type: TypeCandidate, CallID: e.call}
	if c != nil {
		m.Candidate = *c
	}
	e.router.Deliver(directory.DeviceID(to), encode(m))
}

// handleMedia passes an sdp or candidate message to the call's media
// session. Only the door station and the devices rung for the call are its
// parties; the session refuses anyone else (not_found).
func (h *Hub) handleMedia(call *Call, d directory.Device, msg Inbound) error {
	if call.media == nil {
		return protoErr(CodeServiceUnavailable, "media is not enabled on this server")
	}
	if msg.Type == TypeSDP {
		var desc webrtc.SessionDescription
		if len(msg.Description) == 0 || json.Unmarshal(msg.Description, &desc) != nil {
			return protoErr(CodeBadRequest, `"description" must be {"type": "offer"|"answer", "sdp": "…"}`)
		}
		return call.media.HandleSDP(string(d.ID), desc)
	}
	var cand webrtc.ICECandidateInit
	if len(msg.Candidate) == 0 || json.Unmarshal(msg.Candidate, &cand) != nil {
		return protoErr(CodeBadRequest, `"candidate" must be an RTCIceCandidateInit object`)
	}
	return call.media.HandleCandidate(string(d.ID), cand)
}

// closeMedia closes a call's media session off the call's lock (closing
// waits for Pion). Drain waits for it.
func (h *Hub) closeMedia(s *media.Session) {
	if s == nil {
		return
	}
	h.mediaWG.Add(1)
	go func() {
		defer h.mediaWG.Done()
		s.Close()
	}()
}
