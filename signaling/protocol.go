// Package signaling serves protocol v1 on GET /v1/signal: the WebSocket
// connections of door stations, monitors and apps, the call state machine
// (ringing every device of a call ID at once, first answer wins), and the
// router that reaches devices. docs/protocol.md is the wire reference.
package signaling

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/foyer-intercom/foyer/directory"
)

// ProtocolVersion is the only version of the wire protocol this server speaks.
const ProtocolVersion = 1

// CallID identifies one call (one press of a door station's button). It is
// not the dialled number, which the directory calls a Number.
type CallID string

// Message types of protocol v1, as named on the wire (DESIGN.md, binding).
const (
	TypeHello      = "hello"
	TypeWelcome    = "welcome"
	TypeCall       = "call"
	TypeCalling    = "calling"
	TypeRing       = "ring"
	TypeAnswer     = "answer"
	TypeAnswered   = "answered"
	TypeDecline    = "decline"
	TypeCancel     = "cancel"
	TypeHangup     = "hangup"
	TypeEnded      = "ended"
	TypeOpenDoor   = "open_door"
	TypeUnlock     = "unlock"
	TypeSDP        = "sdp"
	TypeCandidate  = "candidate"
	TypeDirectory  = "directory"
	TypePin        = "pin"
	TypeError      = "error"
	TypePing       = "ping" // application-level keepalive for clients that cannot see WebSocket pings
	TypePong       = "pong"
	TypeDoorOpened = "door_opened" // confirms open_door to the device that asked
)

// Decline scopes.
const (
	ScopeDevice   = "device"
	ScopeEveryone = "everyone"
)

// CancelReason says why a ringing device stops ringing.
type CancelReason string

// Cancel reasons (binding). AnsweredElsewhere is not a missed call.
const (
	CancelAnsweredElsewhere CancelReason = "answered_elsewhere"
	CancelDeclinedElsewhere CancelReason = "declined_elsewhere"
	CancelCallerHangup      CancelReason = "caller_hangup"
	CancelTimeout           CancelReason = "timeout"
)

// EndReason says why a call is over.
type EndReason string

// End reasons (binding).
const (
	EndHangup      EndReason = "hangup"
	EndTimeout     EndReason = "timeout"   // the other party stopped answering heartbeats
	EndNoAnswer    EndReason = "no_answer" // nobody answered within the site's ring timeout
	EndDeclined    EndReason = "declined"
	EndUnavailable EndReason = "unavailable" // no ringable device was reachable
	EndFailed      EndReason = "failed"      // the other party's connection closed, or the server shut down
	EndTimeLimit   EndReason = "time_limit"
)

// flexString accepts a JSON string or number, so that a door station sending
// "to": 101 is understood like "to": "101".
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("want a string or a number")
	}
	*f = flexString(n.String())
	return nil
}

// relayNumber is a door relay: a positive integer, sent as a number or a numeric string.
type relayNumber int

// UnmarshalJSON implements json.Unmarshaler.
func (r *relayNumber) UnmarshalJSON(b []byte) error {
	var f flexString
	if err := f.UnmarshalJSON(b); err != nil {
		return err
	}
	n, err := strconv.Atoi(string(f))
	if err != nil || n < 1 || n > maxRelay {
		return fmt.Errorf("relay must be a number from 1 to %d", maxRelay)
	}
	*r = relayNumber(n)
	return nil
}

// maxRelay bounds relay numbers; door stations have one to a handful of relays.
const maxRelay = 16

// Inbound is every message a client may send, decoded in one pass. Fields
// that a type does not use are ignored.
type Inbound struct {
	Type string `json:"type"`
	// Ref is the client's own id for the message, echoed verbatim on replies.
	Ref         json.RawMessage  `json:"ref,omitempty"`
	Token       string           `json:"token,omitempty"`
	ResumeToken string           `json:"resume_token,omitempty"`
	Version     int              `json:"version,omitempty"`
	To          flexString       `json:"to,omitempty"`
	SiteID      directory.SiteID `json:"site_id,omitempty"`
	CallID      CallID           `json:"call_id,omitempty"`
	Scope       string           `json:"scope,omitempty"`
	Relay       relayNumber      `json:"relay,omitempty"`
	Code        flexString       `json:"code,omitempty"`
	Description json.RawMessage  `json:"description,omitempty"`
	Candidate   json.RawMessage  `json:"candidate,omitempty"`
}

// DecodeInbound parses one text frame. It rejects anything that is not a
// single JSON object with a string "type". json.Unmarshal allows only JSON
// white space (RFC 8259 §2: space, tab, LF, CR) around the one value, so a
// stray ] or }, a second object or \f, \v, U+0085 or U+00A0 after it is
// refused; unlike a json.Decoder it copies nothing, which matters on every
// frame.
func DecodeInbound(frame []byte) (Inbound, error) {
	var m Inbound
	if err := json.Unmarshal(frame, &m); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) && syn.Offset > 0 && json.Valid(frame[:syn.Offset-1]) {
			return Inbound{}, fmt.Errorf("malformed message: one JSON object per frame, nothing after it")
		}
		return Inbound{}, fmt.Errorf("malformed message: %w", err)
	}
	if m.Type == "" {
		return Inbound{}, fmt.Errorf(`malformed message: missing "type"`)
	}
	if len(m.Ref) > maxRefBytes {
		return Inbound{}, fmt.Errorf("ref longer than %d bytes", maxRefBytes)
	}
	return m, nil
}

// maxRefBytes bounds the echoed ref, so that replies cannot be inflated.
const maxRefBytes = 256
