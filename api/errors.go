package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/foyer-intercom/foyer/accounts"
	"github.com/foyer-intercom/foyer/directory"
	"github.com/foyer-intercom/foyer/internal/kv"
)

// Error is a client-facing error: an HTTP status, a stable code, a message,
// and for CSV imports the rows at fault.
type Error struct {
	Status  int        `json:"-"`
	Code    string     `json:"code"`
	Message string     `json:"message"`
	Rows    []RowError `json:"rows,omitempty"`
	// RetryAfter, when set, becomes the Retry-After header (seconds).
	RetryAfter int `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// RowError names one bad row of an imported file (1-based, the header is row 1).
type RowError struct {
	Row     int    `json:"row"`
	Column  string `json:"column,omitempty"`
	Message string `json:"message"`
}

func apiErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// errRetry is an error the client may retry after the given seconds
// (the Retry-After header).
func errRetry(status int, code string, after int, format string, args ...any) *Error {
	e := apiErr(status, code, format, args...)
	e.RetryAfter = after
	return e
}

func errBadRequest(format string, args ...any) *Error {
	return apiErr(http.StatusBadRequest, "bad_request", format, args...)
}

func errNotFound(format string, args ...any) *Error {
	return apiErr(http.StatusNotFound, "not_found", format, args...)
}

// errInvalidField is a 422 whose message names the field at fault.
func errInvalidField(format string, args ...any) *Error {
	return apiErr(http.StatusUnprocessableEntity, "invalid", format, args...)
}

func errForbidden(format string, args ...any) *Error {
	return apiErr(http.StatusForbidden, "forbidden", format, args...)
}

var errUnauthenticated = apiErr(http.StatusUnauthorized, "unauthenticated", "sign in first (session cookie or Authorization: Bearer)")

// passwordChangeRequired answers a session from a temporary password on
// anything but choosing a new one, naming where to choose it.
func passwordChangeRequired(kind accounts.SessionKind) *Error {
	return apiErr(http.StatusForbidden, "password_change_required", "signed in with a temporary password: choose a new one (POST /v1/%s/password) first", kind)
}

// staleRetries is how many times an edit is made again, from a fresh read,
// when another edit overtook it (directory.ErrStale).
const staleRetries = 3

// againIfStale runs edit (a read, then a write over what it read) again
// while its write finds the record changed since its read, up to
// staleRetries times; after that the client gets 409.
func againIfStale(edit func() error) error {
	for i := 0; ; i++ {
		if err := edit(); !errors.Is(err, directory.ErrStale) || i == staleRetries {
			return err
		}
	}
}

// unavailableRetry is the Retry-After (seconds) of an answer given while
// the store is unavailable: about a Redis restart's or failover's time.
const unavailableRetry = 5

// toError maps any error to the client-facing one: the single place where
// store and account errors become statuses.
func toError(err error) *Error {
	var e *Error
	var te *accounts.ThrottledError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &e):
		return e
	case errors.As(err, &te):
		return errRetry(http.StatusTooManyRequests, "too_many_attempts", int(te.RetryAfter.Seconds())+1, "%s", te.Error())
	case errors.As(err, &mbe):
		return apiErr(http.StatusRequestEntityTooLarge, "too_large", "request body over %d bytes", mbe.Limit)
	case errors.Is(err, accounts.ErrBusy):
		return errRetry(http.StatusServiceUnavailable, "service_unavailable", 1, "busy; try again")
	case errors.Is(err, accounts.ErrBadCredentials):
		return apiErr(http.StatusUnauthorized, "bad_credentials", "wrong e-mail or password")
	case errors.Is(err, accounts.ErrInvitationExpired):
		return apiErr(http.StatusGone, "expired", "this invitation has expired (its temporary password worked for %d days); ask for it to be sent again", accounts.InvitationTTL/(24*time.Hour))
	case errors.Is(err, accounts.ErrExpired):
		return apiErr(http.StatusGone, "expired", "this link or code has expired or was already used")
	case errors.Is(err, directory.ErrLimit):
		return apiErr(http.StatusConflict, "limit", "%s", ruleMessage(err))
	case errors.Is(err, directory.ErrConflict), errors.Is(err, accounts.ErrConflict):
		return apiErr(http.StatusConflict, "conflict", "%s", ruleMessage(err))
	case errors.Is(err, directory.ErrInvalid), errors.Is(err, accounts.ErrInvalid):
		return apiErr(http.StatusUnprocessableEntity, "invalid", "%s", ruleMessage(err))
	case errors.Is(err, directory.ErrNotFound), errors.Is(err, accounts.ErrNotFound):
		return apiErr(http.StatusNotFound, "not_found", "%s", ruleMessage(err))
	case storageFull(err):
		return apiErr(http.StatusInsufficientStorage, "storage_full", "the server's storage is full; nothing was changed — tell the operator")
	case errors.Is(err, directory.ErrFull):
		return apiErr(http.StatusInsufficientStorage, "storage_full", "the server's store is full — tell the operator (look before repeating a change once there is room: it may be made then)")
	case errors.Is(err, kv.ErrContention):
		return apiErr(http.StatusServiceUnavailable, "service_unavailable", "busy; try again")
	case errors.Is(err, directory.ErrUnavailable):
		return errRetry(http.StatusServiceUnavailable, "service_unavailable", unavailableRetry, "the server's store is not answering; try again in a few seconds (a change may or may not have been made: look before repeating it)")
	}
	return apiErr(http.StatusInternalServerError, "internal", "internal error")
}

// ruleMessage is what a directory rule said, without the batch's
// "op N (type):" prefix, which means nothing to a client.
func ruleMessage(err error) string {
	var oe *directory.OpError
	if errors.As(err, &oe) {
		return oe.Err.Error()
	}
	return err.Error()
}

func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := toError(err)
	if e.Status >= 500 {
		a.log.Error("api request failed", "method", r.Method, "route", r.Pattern, "err", err)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	writeJSON(w, e.Status, map[string]*Error{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// storageFull reports a write that failed for want of space (a full disk,
// or a file-size limit). bbolt formats some of these with %s, so the
// message is checked too.
func storageFull(err error) bool {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "no space left on device") || strings.Contains(msg, "file too large") || strings.Contains(msg, "disk quota exceeded")
}
