package ws

import "github.com/sessiond/sessiond"

// Close codes. docs/protocol.md documents each; clients reconnect after the
// 1000-1011 and 4000-4499 ones, except 1003, 1008 and 1009, and never after
// the 4500-4999 ones.
const (
	CodeNormal          = 1000
	CodeGoingAway       = 1001 // server shutting down: reconnect elsewhere
	CodeUnsupportedData = 1003 // binary frame
	CodePolicyViolation = 1008 // message rate exceeded
	CodeMessageTooBig   = 1009 // message over the size limit
	CodeInternalError   = 1011 // server fault: reconnect

	CodeReconnect         = 4000
	CodeCredentialExpired = 4001 // reconnect with a fresh credential
	CodeHeartbeatTimeout  = 4002

	CodeSessionRevoked     = 4500
	CodeSessionExpired     = 4501
	CodeReplaced           = 4502
	CodeSessionEnded       = 4503
	CodeUnauthorized       = 4504
	CodeTooManyConnections = 4505
	CodeBadRequest         = 4506
)

var closeReasons = map[int]string{ //nolint:gosec // G101: close reasons, not credentials
	CodeNormal:             "normal closure",
	CodeGoingAway:          "server shutting down",
	CodeUnsupportedData:    "binary frames are not supported",
	CodePolicyViolation:    "message rate exceeded",
	CodeMessageTooBig:      "message too big",
	CodeInternalError:      "internal error",
	CodeReconnect:          "reconnect",
	CodeCredentialExpired:  "credential expired",
	CodeHeartbeatTimeout:   "heartbeat timeout",
	CodeSessionRevoked:     "session revoked",
	CodeSessionExpired:     "session expired",
	CodeReplaced:           "replaced by a newer connection",
	CodeSessionEnded:       "session ended",
	CodeUnauthorized:       "unauthorized",
	CodeTooManyConnections: "too many connections",
	CodeBadRequest:         "bad request",
}

func closeReason(code int) string { return closeReasons[code] }

// Reconnectable reports whether a client should reconnect after code.
func Reconnectable(code int) bool {
	switch {
	case code == CodeUnsupportedData, code == CodePolicyViolation, code == CodeMessageTooBig:
		return false
	case code >= 1000 && code < 1016, code >= 4000 && code < 4500:
		return true
	}
	return false
}

// codeForReason is the close code of a socket whose session ended for reason.
func codeForReason(r sessiond.EndReason) int {
	switch r {
	case sessiond.EndRevoked:
		return CodeSessionRevoked
	case sessiond.EndExpired, sessiond.EndIdle:
		return CodeSessionExpired
	}
	return CodeSessionEnded
}

// codeForError is the close code of an attach that failed with err.
func codeForError(err error) int {
	switch sessiond.ErrorCode(err) {
	case sessiond.CodeUnauthorized, sessiond.CodeSubjectMismatch, sessiond.CodeNotFound,
		sessiond.CodeInvalidArgument, sessiond.CodeDeviceMismatch, sessiond.CodeTokenReused:
		return CodeUnauthorized
	case sessiond.CodeExpired:
		return CodeSessionExpired
	case sessiond.CodeEnded:
		return CodeSessionEnded
	case sessiond.CodeTooManyConnections:
		return CodeTooManyConnections
	case sessiond.CodeUnavailable:
		return CodeGoingAway
	}
	return CodeInternalError
}
