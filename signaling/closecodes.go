package signaling

import (
	"errors"
	"time"

	"github.com/gorilla/websocket"
)

// CloseCode is a WebSocket close code (RFC 6455 §7.4) in the private range
// 4000–4999, telling the client why the server closed and whether to
// reconnect; and CloseTooBig, WebSocket's own.
type CloseCode int

// CloseTooBig is RFC 6455's 1009: a frame over the 64 KiB limit. The
// WebSocket library sends it as it refuses the frame; foyer only counts
// it (writeClose).
const CloseTooBig CloseCode = websocket.CloseMessageTooBig

// Close codes of protocol v1. docs/protocol.md has the same table.
const (
	// CloseUnauthorized: the token (or resume token) is unknown, expired or revoked. Do not reconnect with it.
	CloseUnauthorized CloseCode = 4001
	// CloseHelloTimeout: no hello within the hello timeout. Reconnect.
	CloseHelloTimeout CloseCode = 4002
	// CloseProtocol: the first message was not a valid hello. Fix the client; do not retry as is.
	CloseProtocol CloseCode = 4003
	// CloseUnsupportedVersion: hello.version is not 1. Do not reconnect with it.
	CloseUnsupportedVersion CloseCode = 4004
	// CloseSlow: the client did not read fast enough and its queue overflowed. Reconnect.
	CloseSlow CloseCode = 4008
	// CloseReplaced: the same device connected again; this connection is obsolete. Do not reconnect.
	CloseReplaced CloseCode = 4009
	// CloseRevoked: the device was deleted or its token replaced. Do not reconnect; re-provision.
	CloseRevoked CloseCode = 4010
	// CloseReconfigured: the device's settings changed; reconnect to pick them up.
	CloseReconfigured CloseCode = 4011
	// CloseGoingAway: the node is shutting down. Reconnect after a random delay of up to 5 s.
	CloseGoingAway CloseCode = 4012
	// CloseHeartbeat: nothing heard for two heartbeat intervals. Reconnect.
	CloseHeartbeat CloseCode = 4013
	// CloseInternal: a fault on the server. Reconnect with backoff.
	CloseInternal CloseCode = 4014
)

// closeText is the reason sent in the close frame.
var closeText = map[CloseCode]string{
	CloseUnauthorized:       "unauthorized",
	CloseHelloTimeout:       "hello timeout",
	CloseProtocol:           "protocol error",
	CloseUnsupportedVersion: "unsupported version",
	CloseSlow:               "slow consumer",
	CloseReplaced:           "replaced by a newer connection",
	CloseRevoked:            "revoked",
	CloseReconfigured:       "reconfigured",
	CloseGoingAway:          "going away",
	CloseHeartbeat:          "heartbeat timeout",
	CloseInternal:           "internal error",
	CloseTooBig:             "message too big",
}

// Reconnect reports whether a client should reconnect after this close code.
func (c CloseCode) Reconnect() bool {
	switch c {
	case CloseUnauthorized, CloseProtocol, CloseUnsupportedVersion, CloseReplaced, CloseRevoked:
		return false
	}
	return true
}

// String returns the close reason text.
func (c CloseCode) String() string { return closeText[c] }

// writeClose sends ws the close frame of code, bounded by closeWait; none
// for 0 (the peer went away) nor for CloseTooBig, which the library sent.
func writeClose(ws *websocket.Conn, code CloseCode) {
	if code == 0 || code == CloseTooBig {
		return
	}
	msg := websocket.FormatCloseMessage(int(code), code.String())
	_ = ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait))
}

// readFailure is the close code of a failed read: CloseTooBig for a frame
// over the limit, 0 otherwise (the peer closed or the socket broke).
func readFailure(err error) CloseCode {
	if errors.Is(err, websocket.ErrReadLimit) {
		return CloseTooBig
	}
	return 0
}
