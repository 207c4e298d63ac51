package sessiond

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Codes are part of the API:
// clients switch on them, so they never change meaning.
type Code string

// Error codes.
const (
	CodeInvalidArgument    Code = "invalid_argument"     // bad input; Field names what
	CodeUnauthorized       Code = "unauthorized"         // missing or wrong credentials
	CodeNotFound           Code = "session_not_found"    // no such session or token
	CodeExpired            Code = "session_expired"      // ended by ttl or idle timeout
	CodeEnded              Code = "session_ended"        // ended for another reason (revoked, evicted, ...)
	CodeDeviceMismatch     Code = "device_mismatch"      // bound session used from another device
	CodeTokenReused        Code = "token_reused"         // rotated-out token used after its grace; the session is ended
	CodeLimitReached       Code = "limit_reached"        // subject is at max_per_subject and the policy rejects
	CodeExists             Code = "session_exists"       // a session with that id exists
	CodeConflict           Code = "conflict"             // a concurrent change won; retry
	CodeSubjectMismatch    Code = "subject_mismatch"     // the session belongs to another subject than the credential's
	CodeTooManyConnections Code = "too_many_connections" // the session is at its policy's max_connections
	CodeConnectionNotFound Code = "connection_not_found" // no such connection on a live session
	CodeRateLimited        Code = "rate_limited"         // too many requests from one client or subject; retry later
	CodeUnavailable        Code = "unavailable"          // shutting down or not ready
	CodeStoreFull          Code = "store_full"           // the store's disk is nearly full: writes are refused, reads work
	CodeStoreUnavailable   Code = "store_unavailable"    // a shared store (Redis) cannot be reached or did not answer in time
	CodeInvalidState       Code = "invalid_state"        // the session's state does not allow the call (hibernating a session with connections)
	CodeRuntimeFailed      Code = "runtime_failed"       // the session's runtime did not complete a hibernate or wake in time
	CodeInternal           Code = "internal"             // a fault of the server or its store
)

// Error is the error type of the domain. Errors of the same Code match each
// other under errors.Is, so callers can test against the sentinels below
// whatever the message:
//
//	if errors.Is(err, sessiond.ErrNotFound) { ... }
type Error struct {
	Code    Code
	Field   string // for CodeInvalidArgument: the offending field, if one
	Message string
	Err     error // underlying cause, if any
}

func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = string(e.Code)
	}
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Sentinels, one per code, for errors.Is.
var (
	ErrInvalidArgument    = &Error{Code: CodeInvalidArgument, Message: "invalid argument"}
	ErrUnauthorized       = &Error{Code: CodeUnauthorized, Message: "unauthorized"}
	ErrNotFound           = &Error{Code: CodeNotFound, Message: "session not found"}
	ErrExpired            = &Error{Code: CodeExpired, Message: "session expired"}
	ErrEnded              = &Error{Code: CodeEnded, Message: "session ended"}
	ErrDeviceMismatch     = &Error{Code: CodeDeviceMismatch, Message: "session is bound to another device"}
	ErrTokenReused        = &Error{Code: CodeTokenReused, Message: "rotated token reused; session ended"}
	ErrLimitReached       = &Error{Code: CodeLimitReached, Message: "subject has reached its session limit"}
	ErrExists             = &Error{Code: CodeExists, Message: "session id already exists"}
	ErrConflict           = &Error{Code: CodeConflict, Message: "concurrent modification"}
	ErrSubjectMismatch    = &Error{Code: CodeSubjectMismatch, Message: "the session belongs to another subject"}
	ErrTooManyConnections = &Error{Code: CodeTooManyConnections, Message: "too many connections"}
	ErrConnectionNotFound = &Error{Code: CodeConnectionNotFound, Message: "connection not found"}
	ErrUnavailable        = &Error{Code: CodeUnavailable, Message: "unavailable"}
	ErrRateLimited        = &Error{Code: CodeRateLimited, Message: "rate limited"}
	ErrStoreFull          = &Error{Code: CodeStoreFull, Message: "the store's disk is nearly full; writes are refused"}
	ErrStoreUnavailable   = &Error{Code: CodeStoreUnavailable, Message: "the store cannot be reached; retry"}
	ErrInvalidState       = &Error{Code: CodeInvalidState, Message: "the session's state does not allow this"}
	ErrRuntimeFailed      = &Error{Code: CodeRuntimeFailed, Message: "the session's runtime did not complete the transition"}
)

// Errorf returns an *Error with the code, field and formatted message.
func Errorf(code Code, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err: the Code of the first *Error in its
// chain, or CodeInternal for any other non-nil error, or "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// endedError is the error returned for a session that is ending or ended.
func endedError(s *Session) error {
	if s.EndReason.expiry() {
		return &Error{Code: CodeExpired, Message: "session expired (" + string(s.EndReason) + ")"}
	}
	return &Error{Code: CodeEnded, Message: "session ended (" + string(s.EndReason) + ")"}
}
