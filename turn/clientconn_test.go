package turn

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/pion/stun/v4"
)

// TestRelayedPayload: what the server writes to a client counts as
// relayed only when it carries a peer's data, and then by the data's
// length: a ChannelData message (padded over TCP) or a Data indication's
// DATA attribute, wherever it sits among the attributes.
func TestRelayedPayload(t *testing.T) {
	data := []byte("seven b")
	channel := func(pad int) []byte {
		m := binary.BigEndian.AppendUint16(nil, 0x4001)
		m = binary.BigEndian.AppendUint16(m, uint16(len(data)))
		return append(append(m, data...), make([]byte, pad)...)
	}
	build := func(tb testing.TB, typ stun.MessageType, setters ...stun.Setter) []byte {
		tb.Helper()
		m, err := stun.Build(append([]stun.Setter{stun.TransactionID, typ}, setters...)...)
		if err != nil {
			tb.Fatal(err)
		}
		return m.Raw
	}
	peer := stun.XORMappedAddress{IP: net.IPv4(127, 0, 0, 2), Port: 5004}
	xorPeer := stun.RawAttribute{Type: stun.AttrXORPeerAddress, Value: []byte{0, 1, 0x33, 0x44, 1, 2, 3, 4}}
	dataAttr := stun.RawAttribute{Type: stun.AttrData, Value: data}
	indication := stun.NewType(stun.MethodData, stun.ClassIndication)
	for _, tc := range []struct {
		name string
		msg  []byte
		want int
	}{
		{"channel data", channel(0), len(data)},
		{"channel data padded (TCP)", channel(1), len(data)},
		{"data indication", build(t, indication, xorPeer, dataAttr), len(data)},
		{"data indication, DATA first", build(t, indication, dataAttr, xorPeer), len(data)},
		{"data indication without DATA", build(t, indication, xorPeer), 0},
		{"binding response", build(t, stun.BindingSuccess, &peer), 0},
		{"allocate error", build(t, stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse), stun.CodeForbidden), 0},
		{"a send indication (client to server)", build(t, stun.NewType(stun.MethodSend, stun.ClassIndication), xorPeer, dataAttr), 0},
		{"channel data cut short", channel(0)[:6], 2},
		{"empty", nil, 0},
	} {
		if got := relayedPayload(tc.msg); got != tc.want {
			t.Errorf("%s: %d relayed bytes, want %d", tc.name, got, tc.want)
		}
	}
}
