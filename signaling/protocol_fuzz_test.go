package signaling

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeInbound checks that the decoder never panics and that
// decode∘encode∘decode = decode for every frame it accepts.
func FuzzDecodeInbound(f *testing.F) {
	for _, s := range []string{
		`{"type":"hello","token":"fyr_x","version":1,"ref":"r1"}`,
		`{"type":"call","to":101,"site_id":"s_1"}`,
		`{"type":"answer","call_id":"c_a_b","ref":{"n":[1,2]}}`,
		`{"type":"decline","call_id":"c","scope":"everyone"}`,
		`{"type":"open_door","call_id":"c","relay":"2"}`,
		`{"type":"pin","code":1234}`,
		`{"type":"sdp","call_id":"c","description":{"type":"offer","sdp":"v=0\r\n"}}`,
		`{"type":"candidate","call_id":"c","candidate":{"candidate":"","sdpMid":"0"}}`,
		`{"type":"x"} `, `[]`, `{"type":"ping","ref":null}`,
		// Trailing text after the object must be refused.
		`{"type":"ping"}]`, `{"type":"ping"}}`, `{"type":"ping"} x`, `{"type":"ping"}{}`,
		"{\"type\":\"ping\"}\f", "{\"type\":\"ping\"}\u00a0", "{\"type\":\"ping\"} \t\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		m, err := DecodeInbound(frame)
		if err != nil {
			return
		}
		if !json.Valid(frame) {
			t.Fatalf("accepted %q, which is not one JSON value", frame)
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", frame, err)
		}
		m2, err := DecodeInbound(again)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", again, err)
		}
		v1, r1 := normal(t, m)
		v2, r2 := normal(t, m2)
		if !reflect.DeepEqual(v1, v2) || !reflect.DeepEqual(r1, r2) {
			t.Fatalf("decode∘encode∘decode differs:\n%+v\n%+v", m, m2)
		}
	})
}

// normal splits m into its plain fields and the values of its raw JSON
// fields, which encoding may re-format (spacing, \u0026 for &) without
// changing their value.
func normal(t *testing.T, m Inbound) (Inbound, []any) {
	var values []any
	for _, raw := range []*json.RawMessage{&m.Ref, &m.Description, &m.Candidate} {
		var v any
		if len(*raw) > 0 {
			if err := json.Unmarshal(*raw, &v); err != nil {
				t.Fatalf("raw field %q is not JSON: %v", *raw, err)
			}
		}
		values = append(values, v)
		*raw = nil
	}
	return m, values
}

// TestDecodeInboundTrailing: only JSON white space may follow the object;
// anything else after it, even a lone bracket, is refused.
func TestDecodeInboundTrailing(t *testing.T) {
	for _, tc := range []struct {
		frame string
		ok    bool
	}{
		{`{"type":"ping"}`, true},
		{" \t\r\n{\"type\":\"ping\"} \t\r\n", true},
		{`{"type":"ping"}]`, false},
		{`{"type":"ping"}}`, false},
		{`{"type":"ping"}]]`, false},
		{`{"type":"ping"} }`, false},
		{`{"type":"ping"},`, false},
		{`{"type":"ping"}:`, false},
		{`{"type":"ping"} x`, false},
		{`{"type":"ping"}{"type":"ping"}`, false},
		{`{"type":"ping"} 1`, false},
		{`{"type":"ping"}"`, false},
		{"{\"type\":\"ping\"}\f", false},
		{"{\"type\":\"ping\"}\v", false},
		{"{\"type\":\"ping\"}\u0085", false},
		{"{\"type\":\"ping\"}\u00a0", false},
		{"{\"type\":\"ping\"}\x00", false},
	} {
		_, err := DecodeInbound([]byte(tc.frame))
		if (err == nil) != tc.ok {
			t.Errorf("DecodeInbound(%q): err %v, want ok=%v", tc.frame, err, tc.ok)
		}
		if err == nil && !json.Valid([]byte(tc.frame)) {
			t.Errorf("DecodeInbound(%q) accepted what encoding/json calls invalid", tc.frame)
		}
	}
}

// FuzzFrameCall checks that frameCall finds the call of every frame a node
// hands another about a call (the ones remoteCallOf reads), whatever a
// client chose for the ref echoed in it or an installer for the names in
// it: a ref or name that looks like a call ID must not pass for it.
func FuzzFrameCall(f *testing.F) {
	for _, s := range [][2]string{
		{`"r1"`, "Front door"},
		{`{"call_id":"c_evil_x"}`, `","call_id":"c_evil_y`},
		{`["\",\"call_id\":\"c_evil_z"]`, `\","call_id":"`},
		{`null`, ""},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, ref, name string) {
		id := newCallIDAt("node1")
		var r json.RawMessage
		if json.Valid([]byte(ref)) {
			r = json.RawMessage(ref)
		}
		frames := [][]byte{
			encode(Ring{Type: TypeRing, CallID: id, From: Caller{DoorStationID: "ds_1", Name: name, SiteName: name}, To: "101"}),
			encode(Cancel{Type: TypeCancel, CallID: id, Reason: CancelAnsweredElsewhere}),
			encode(Calling{Type: TypeCalling, Ref: r, CallID: id, Ringing: 7}),
			encode(Ended{Type: TypeEnded, Ref: r, CallID: id, Reason: EndHangup}),
			encode(Answered{Type: TypeAnswered, Ref: r, CallID: id, By: Party{DeviceID: "dv_1", Name: name}}),
		}
		for _, frame := range frames {
			if got := frameCall(frame); got != id {
				t.Fatalf("frameCall(%s) = %q, want %q", frame, got, id)
			}
		}
	})
}
