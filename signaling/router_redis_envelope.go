package signaling

// What one node publishes to another, and its wire form.

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/foyer-intercom/foyer/directory"
)

// envelope is what one node publishes to another. On the wire it is one
// line of JSON (every field but Frame), a newline, then Frame as is: the
// protocol frame is neither re-encoded nor re-validated on the way.
type envelope struct {
	Kind    string               `json:"k"`              // deliver | message | join | left | replaced | handover | moved | forgotten | probe | live | live_calls
	From    string               `json:"f"`              // the sending node
	Devices []directory.DeviceID `json:"d,omitempty"`    // deliver: the target devices; left: the device gone; replaced: the device
	Conn    string               `json:"c,omitempty"`    // message, join: the sender's connection; left: the connection gone; replaced: the receiver's connection to close; handover: the receiver's connection that takes the calls; moved: the device's connection on To
	By      string               `json:"b,omitempty"`    // replaced: the sender's connection that replaced it
	To      string               `json:"n,omitempty"`    // moved: the node the device went to
	Prev    string               `json:"p,omitempty"`    // moved: the sender's connection that the device left
	Call    CallID               `json:"call,omitempty"` // message: the call its frame is about (the key that orders a call's messages); join, left, forgotten: the call
	Sender  *directory.Device    `json:"s,omitempty"`    // message, join: the device that sent or connected; moved: the device
	Targets []directory.Target   `json:"ts,omitempty"`   // moved: the call IDs the device rings for
	Sent    int64                `json:"t,omitempty"`    // probe: send time, unix ns
	Reason  EndReason            `json:"r,omitempty"`    // left: how the device's calls end
	Calls   []CallID             `json:"cs,omitempty"`   // handover: the calls
	Site    directory.SiteID     `json:"site,omitempty"` // live: the site whose calls are asked for
	Ask     string               `json:"a,omitempty"`    // live, live_calls: the query answered
	Frame   []byte               `json:"-"`              // deliver, message: the protocol frame; live_calls: the calls as JSON
}

// deliverPrefix starts the compact header of a deliver envelope, the one
// on the ring and cancel path: "D <from> <device>,<device>…". Node and
// device IDs hold only letters, digits, '_', '-' and '.', so spaces and
// commas separate them unambiguously; JSON headers start with '{'.
const deliverPrefix = "D "

// marshal encodes the envelope for PUBLISH.
func (e *envelope) marshal() ([]byte, error) {
	if e.Kind == "deliver" {
		n := len(deliverPrefix) + len(e.From) + 2 + len(e.Frame)
		for _, d := range e.Devices {
			n += len(d) + 1
		}
		out := make([]byte, 0, n)
		out = append(append(append(out, deliverPrefix...), e.From...), ' ')
		for i, d := range e.Devices {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, d...)
		}
		return append(append(out, '\n'), e.Frame...), nil
	}
	head, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(head)+1+len(e.Frame))
	out = append(append(out, head...), '\n')
	return append(out, e.Frame...), nil
}

// unmarshalEnvelope decodes what marshal encoded.
func unmarshalEnvelope(payload string) (envelope, error) {
	head, frame, _ := strings.Cut(payload, "\n")
	if rest, ok := strings.CutPrefix(head, deliverPrefix); ok {
		from, devices, ok := strings.Cut(rest, " ")
		if !ok || from == "" || devices == "" {
			return envelope{}, errors.New("malformed deliver envelope")
		}
		e := envelope{Kind: "deliver", From: from, Frame: []byte(frame)}
		for d := range strings.SplitSeq(devices, ",") {
			e.Devices = append(e.Devices, directory.DeviceID(d))
		}
		return e, nil
	}
	var e envelope
	if err := json.Unmarshal([]byte(head), &e); err != nil {
		return e, err
	}
	if frame != "" {
		e.Frame = []byte(frame)
	}
	return e, nil
}
