package wire

import (
	"strconv"

	"github.com/sessiond/sessiond"
)

// CloseCode is a WebSocket close code (docs/protocol.md, "Close codes").
// Codes 1000-1015 and 4000-4499 mean reconnect, except 1003, 1008 and 1009;
// codes 4500-4999 and every other code mean do not.
//
// It implements error, so that a client can return the code that stopped
// it: errors.Is(err, wire.CloseSessionRevoked), or errors.As with a
// CloseCode.
type CloseCode int

// The close codes the server sends, and CloseAbnormal, which it never
// sends.
const (
	CloseNormal          CloseCode = 1000 // the client closed
	CloseGoingAway       CloseCode = 1001 // the server is shutting down: reconnect elsewhere
	CloseUnsupportedData CloseCode = 1003 // a binary frame was sent
	ClosePolicyViolation CloseCode = 1008 // the message rate was exceeded
	CloseMessageTooBig   CloseCode = 1009 // a message was over the size limit
	CloseInternalError   CloseCode = 1011 // the server failed: reconnect

	CloseReconnect         CloseCode = 4000 // the server asks the client to reconnect
	CloseCredentialExpired CloseCode = 4001 // the JWT expired without a refresh: reconnect with a fresh one
	CloseHeartbeatTimeout  CloseCode = 4002 // nothing heard for the heartbeat timeout
	// CloseWakeFailed: the session was hibernated and its runtime did not
	// wake it within the policy's wake_timeout; it is hibernated again.
	// Reconnecting wakes it again.
	CloseWakeFailed CloseCode = 4003

	CloseSessionRevoked     CloseCode = 4500
	CloseSessionExpired     CloseCode = 4501 // ttl or idle timeout
	CloseReplaced           CloseCode = 4502 // a newer connection took the session over
	CloseSessionEnded       CloseCode = 4503 // ended for another reason (evicted, token reused, ...)
	CloseUnauthorized       CloseCode = 4504 // an attach token was refused
	CloseTooManyConnections CloseCode = 4505 // the session is at its max_connections
	CloseBadRequest         CloseCode = 4506 // no valid attach message in time

	// CloseAbnormal never comes from the server: it is what a client sees
	// when the connection was lost without a close frame. It means
	// reconnect.
	CloseAbnormal CloseCode = 1006
)

var closeReasons = map[CloseCode]string{ //nolint:gosec // G101: close reasons, not credentials
	CloseNormal:             "normal closure",
	CloseGoingAway:          "server shutting down",
	CloseUnsupportedData:    "binary frames are not supported",
	CloseAbnormal:           "abnormal closure",
	ClosePolicyViolation:    "message rate exceeded",
	CloseMessageTooBig:      "message too big",
	CloseInternalError:      "internal error",
	CloseReconnect:          "reconnect",
	CloseCredentialExpired:  "credential expired",
	CloseHeartbeatTimeout:   "heartbeat timeout",
	CloseWakeFailed:         "wake failed",
	CloseSessionRevoked:     "session revoked",
	CloseSessionExpired:     "session expired",
	CloseReplaced:           "replaced by a newer connection",
	CloseSessionEnded:       "session ended",
	CloseUnauthorized:       "unauthorized",
	CloseTooManyConnections: "too many connections",
	CloseBadRequest:         "bad request",
}

// Reason is the text the server puts in the close frame with the code: ""
// for a code it does not send. Clients must not parse it.
func (c CloseCode) Reason() string { return closeReasons[c] }

// Reconnect reports whether a client should reconnect after the code.
func (c CloseCode) Reconnect() bool {
	switch {
	case c == CloseUnsupportedData, c == ClosePolicyViolation, c == CloseMessageTooBig:
		return false
	case c >= 1000 && c <= 1015, c >= 4000 && c <= 4499:
		return true
	}
	return false
}

// Error describes the close: "websocket closed with code 4500 (session
// revoked)".
func (c CloseCode) Error() string {
	s := "websocket closed with code " + strconv.Itoa(int(c))
	if r := c.Reason(); r != "" {
		s += " (" + r + ")"
	}
	return s
}

// CloseForReason is the close code of a socket whose session ended for
// reason.
func CloseForReason(reason sessiond.EndReason) CloseCode {
	switch reason {
	case sessiond.EndRevoked:
		return CloseSessionRevoked
	case sessiond.EndExpired, sessiond.EndIdle:
		return CloseSessionExpired
	}
	return CloseSessionEnded
}

// CloseForError is the close code of an attach that failed with err.
func CloseForError(err error) CloseCode {
	switch sessiond.ErrorCode(err) {
	case sessiond.CodeUnauthorized, sessiond.CodeSubjectMismatch, sessiond.CodeNotFound,
		sessiond.CodeInvalidArgument, sessiond.CodeDeviceMismatch, sessiond.CodeTokenReused:
		return CloseUnauthorized
	case sessiond.CodeExpired:
		return CloseSessionExpired
	case sessiond.CodeEnded:
		return CloseSessionEnded
	case sessiond.CodeTooManyConnections:
		return CloseTooManyConnections
	case sessiond.CodeUnavailable:
		return CloseGoingAway
	case sessiond.CodeRuntimeFailed:
		return CloseWakeFailed
	}
	return CloseInternalError
}
