package signaling

import (
	"encoding/json"

	"github.com/foyer-intercom/foyer/directory"
)

// ICEServer is one entry of welcome.ice_servers (the RTCIceServer of WebRTC).
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Welcome answers a successful hello.
type Welcome struct {
	Type        string               `json:"type"`
	Ref         json.RawMessage      `json:"ref,omitempty"`
	DeviceID    directory.DeviceID   `json:"device_id"`
	Kind        directory.DeviceKind `json:"kind"`
	SiteIDs     []directory.SiteID   `json:"site_ids"`
	ICEServers  []ICEServer          `json:"ice_servers"`
	HeartbeatS  int                  `json:"heartbeat_s"`
	ResumeToken string               `json:"resume_token"`
}

// Calling tells the door station how many devices ring.
type Calling struct {
	Type    string          `json:"type"`
	Ref     json.RawMessage `json:"ref,omitempty"`
	CallID  CallID          `json:"call_id"`
	Ringing int             `json:"ringing"`
}

// Caller describes the door station in a ring.
type Caller struct {
	DoorStationID directory.DeviceID `json:"door_station_id"`
	Name          string             `json:"name"`
	SiteID        directory.SiteID   `json:"site_id"`
	SiteName      string             `json:"site_name"`
}

// Ring asks a device to start ringing.
type Ring struct {
	Type       string           `json:"type"`
	CallID     CallID           `json:"call_id"`
	From       Caller           `json:"from"`
	To         directory.Number `json:"to"`
	LifetimeMS int64            `json:"lifetime_ms"`
	Preview    bool             `json:"preview"`
}

// Party describes the device that answered.
type Party struct {
	DeviceID directory.DeviceID   `json:"device_id"`
	Kind     directory.DeviceKind `json:"kind"`
	Name     string               `json:"name"`
}

// Answered tells the door station and the winner that the call is connected.
type Answered struct {
	Type   string          `json:"type"`
	Ref    json.RawMessage `json:"ref,omitempty"`
	CallID CallID          `json:"call_id"`
	By     Party           `json:"by"`
}

// Cancel tells a ringing device to stop.
type Cancel struct {
	Type   string       `json:"type"`
	CallID CallID       `json:"call_id"`
	Reason CancelReason `json:"reason"`
}

// Ended tells the parties that the call is over.
type Ended struct {
	Type       string          `json:"type"`
	Ref        json.RawMessage `json:"ref,omitempty"`
	CallID     CallID          `json:"call_id"`
	Reason     EndReason       `json:"reason"`
	DurationMS int64           `json:"duration_ms"`
}

// Unlock drives a door station's relay.
type Unlock struct {
	Type       string `json:"type"`
	CallID     CallID `json:"call_id,omitempty"`
	Relay      int    `json:"relay"`
	DurationMS int64  `json:"duration_ms"`
}

// DirectoryEntry is one name a door station shows.
type DirectoryEntry struct {
	CallID directory.Number `json:"call_id"`
	Name   string           `json:"name"`
	SiteID directory.SiteID `json:"site_id"`
}

// DirectoryPush lists the names a door station shows.
type DirectoryPush struct {
	Type    string           `json:"type"`
	Entries []DirectoryEntry `json:"entries"`
}

// ErrorReply reports a failed request; the connection stays open.
type ErrorReply struct {
	Type    string          `json:"type"`
	Ref     json.RawMessage `json:"ref,omitempty"`
	Code    ErrorCode       `json:"code"`
	Message string          `json:"message"`
	CallID  CallID          `json:"call_id,omitempty"`
}

// Pong answers an application-level ping.
type Pong struct {
	Type string          `json:"type"`
	Ref  json.RawMessage `json:"ref,omitempty"`
}

// encode marshals an outbound message. Outbound types hold only strings,
// numbers and slices of them, so marshalling cannot fail.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Unreachable for the types above; keep the connection alive regardless.
		return []byte(`{"type":"error","code":"internal","message":"encoding failed"}`)
	}
	return b
}

// DoorOpened confirms open_door to the device that asked (an addition to v1).
type DoorOpened struct {
	Type       string          `json:"type"`
	Ref        json.RawMessage `json:"ref,omitempty"`
	CallID     CallID          `json:"call_id"`
	Relay      int             `json:"relay"`
	DurationMS int64           `json:"duration_ms"`
}
