package signaling

import (
	"reflect"
	"testing"

	"github.com/foyer-intercom/foyer/directory"
)

// TestEnvelopeRoundTrip: both encodings (the compact deliver header and
// JSON for the rest) decode to what was encoded, frames untouched.
func TestEnvelopeRoundTrip(t *testing.T) {
	frame := []byte(`{"type":"ring","call_id":"c_node0_x","to":"1"}` + "\n" + `with a newline inside`)
	for _, e := range []envelope{
		{Kind: "deliver", From: "node-0", Devices: []directory.DeviceID{"d_a", "d_b.c", "d_-_"}, Frame: frame},
		{Kind: "deliver", From: "n1", Devices: []directory.DeviceID{"d_only"}, Frame: []byte("x")},
		{Kind: "message", From: "n1", Call: "c_node0_x", Conn: "k1", Sender: &directory.Device{ID: "d_a", Kind: directory.KindApp, Name: "phone", User: "u_1"}, Frame: frame},
		{Kind: "left", From: "n2", Call: "c_n2_y", Devices: []directory.DeviceID{"d_z"}, Conn: "k9", Reason: EndFailed},
		{Kind: "replaced", From: "n2", Devices: []directory.DeviceID{"d_z"}, Conn: "k9", By: "k10"},
		{Kind: "handover", From: "n1", Devices: []directory.DeviceID{"d_z"}, Conn: "k10", Calls: []CallID{"c_n0_a", "c_n2_b"}},
		{Kind: "moved", From: "n0", Sender: &directory.Device{ID: "d_a", Kind: directory.KindApp, Name: "phone", User: "u_1"}, To: "n1", Conn: "k11", Prev: "k8",
			Targets: []directory.Target{{Site: "s_1", Number: "101"}, {Site: "s_2", Number: "7"}}},
		{Kind: "probe", From: "n3", Sent: 12345},
	} {
		b, err := e.marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := unmarshalEnvelope(string(b))
		if err != nil {
			t.Fatalf("%s: %v", e.Kind, err)
		}
		if len(e.Frame) == 0 {
			e.Frame = nil
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("%s: decoded %+v, want %+v", e.Kind, got, e)
		}
	}
	for _, bad := range []string{"D \nx", "D node0\nx", "D node0 \nx"} {
		if _, err := unmarshalEnvelope(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}
