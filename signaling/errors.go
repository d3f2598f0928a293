package signaling

import (
	"context"
	"errors"
	"fmt"

	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/media"
)

// ErrorCode is the stable identifier of a protocol error; clients switch on it.
type ErrorCode string

// Error codes of protocol v1. docs/protocol.md lists when each is sent.
const (
	CodeBadRequest         ErrorCode = "bad_request"         // malformed JSON, missing or invalid field
	CodeUnknownType        ErrorCode = "unknown_type"        // a type this server does not know
	CodeNotFound           ErrorCode = "not_found"           // no such ID, not permitted, or not rung for this call
	CodeForbidden          ErrorCode = "forbidden"           // this kind of device may not send this message
	CodeCallTaken          ErrorCode = "call_taken"          // another device answered first
	CodeCallEnded          ErrorCode = "call_ended"          // the call is already over
	CodeBusy               ErrorCode = "busy"                // the door station already has a call
	CodeRateLimited        ErrorCode = "rate_limited"        // too many messages or calls; retry later
	CodeServiceUnavailable ErrorCode = "service_unavailable" // retry later (draining, store unreachable)
	CodeInternal           ErrorCode = "internal"            // a bug or fault on the server; retry later
)

// ProtoError is an error a client sees: a stable code and a message.
type ProtoError struct {
	Code    ErrorCode
	Message string
}

// Error implements error.
func (e *ProtoError) Error() string { return string(e.Code) + ": " + e.Message }

func protoErr(code ErrorCode, format string, args ...any) *ProtoError {
	return &ProtoError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Errors shared by several handlers.
var (
	errNotFound    = protoErr(CodeNotFound, "no such call ID, or not permitted")
	errNoSuchCall  = protoErr(CodeNotFound, "no such call, or this device was not rung for it")
	errCallTaken   = protoErr(CodeCallTaken, "the call was answered by another device")
	errCallEnded   = protoErr(CodeCallEnded, "the call is over")
	errDraining    = protoErr(CodeServiceUnavailable, "the server is shutting down; reconnect and retry")
	errDeclined    = protoErr(CodeForbidden, "this device declined the call; it can no longer answer it")
	errTooFast     = protoErr(CodeRateLimited, "too many messages; slow down (this one was not processed)")
	errBackendDown = protoErr(CodeServiceUnavailable, "the directory or the cluster is unreachable; retry")
	errNotDoor     = protoErr(CodeForbidden, "only door stations place calls and enter codes")
	errDoorOnly    = protoErr(CodeForbidden, "door stations do not answer, decline or open doors")
	errMissingCall = protoErr(CodeBadRequest, `missing "call_id"`)
)

// toProto maps any error from a handler to what the client sees. It is the
// one place where Go errors become protocol errors.
func toProto(err error) *ProtoError {
	var pe *ProtoError
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, directory.ErrNotFound):
		return errNotFound
	case errors.Is(err, media.ErrBadSDP), errors.Is(err, media.ErrBadCandidate), errors.Is(err, media.ErrUnexpectedSDP):
		return protoErr(CodeBadRequest, "%s", err.Error())
	case errors.Is(err, media.ErrUnknownPeer):
		return errNoSuchCall
	case errors.Is(err, media.ErrClosed):
		return errCallEnded
	case errors.Is(err, media.ErrCallTaken):
		return errCallTaken
	case errors.Is(err, media.ErrTooManyPeers):
		return protoErr(CodeServiceUnavailable, "too many devices in this call's media")
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, directory.ErrLocked):
		return protoErr(CodeServiceUnavailable, "the directory is unreachable; retry")
	default:
		return protoErr(CodeInternal, "internal error; retry")
	}
}
