package httpapi

import (
	"errors"
	"net/http"

	"github.com/sessiond/sessiond"
)

// Codes that only the HTTP edge produces.
const (
	CodeRouteNotFound    sessiond.Code = "not_found"
	CodeMethodNotAllowed sessiond.Code = "method_not_allowed"
)

// statusOf is the one table mapping error codes to HTTP statuses.
var statusOf = map[sessiond.Code]int{
	sessiond.CodeInvalidArgument:    http.StatusBadRequest,
	sessiond.CodeUnauthorized:       http.StatusUnauthorized,
	sessiond.CodeNotFound:           http.StatusNotFound,
	sessiond.CodeExpired:            http.StatusGone,
	sessiond.CodeEnded:              http.StatusGone,
	sessiond.CodeDeviceMismatch:     http.StatusForbidden,
	sessiond.CodeTokenReused:        http.StatusForbidden,
	sessiond.CodeLimitReached:       http.StatusConflict,
	sessiond.CodeExists:             http.StatusConflict,
	sessiond.CodeConflict:           http.StatusConflict,
	sessiond.CodeSubjectMismatch:    http.StatusForbidden,
	sessiond.CodeTooManyConnections: http.StatusConflict,
	sessiond.CodeConnectionNotFound: http.StatusNotFound,
	sessiond.CodeRateLimited:        http.StatusTooManyRequests,
	sessiond.CodeUnavailable:        http.StatusServiceUnavailable,
	sessiond.CodeStoreFull:          http.StatusServiceUnavailable,
	sessiond.CodeInternal:           http.StatusInternalServerError,
	CodeRouteNotFound:               http.StatusNotFound,
	CodeMethodNotAllowed:            http.StatusMethodNotAllowed,
}

// Status returns the HTTP status for an error code.
func Status(code sessiond.Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes one error.
type ErrorDetail struct {
	Code    sessiond.Code `json:"code"`
	Message string        `json:"message"`
	Field   string        `json:"field,omitempty"`
}

// WriteError answers with err's code, status and message, for other edges
// (the WebSocket edge refuses connections with the API's error bodies).
// Faults that are not domain errors are answered without their details.
func WriteError(w http.ResponseWriter, err error) {
	WriteErrorStatus(w, 0, err)
}

// WriteErrorStatus is WriteError with another status than the code's, for
// the few answers whose status says more than their code (a WebSocket
// handshake from a refused Origin is 403 unauthorized). Status 0 means the
// code's.
func WriteErrorStatus(w http.ResponseWriter, status int, err error) {
	var se *sessiond.Error
	body := ErrorBody{Error: ErrorDetail{Code: sessiond.CodeInternal, Message: "internal error"}}
	if errors.As(err, &se) && se.Code != sessiond.CodeInternal {
		body.Error = ErrorDetail{Code: se.Code, Message: se.Message, Field: se.Field}
		if body.Error.Message == "" {
			body.Error.Message = string(se.Code)
		}
	}
	if status == 0 || body.Error.Code == sessiond.CodeInternal {
		status = Status(body.Error.Code)
	}
	writeJSON(w, status, body)
}

// writeError answers with err's code, status and message. Faults that are
// not domain errors are logged and answered without their details.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var se *sessiond.Error
	var body ErrorBody
	switch {
	case errors.As(err, &se) && se.Code != sessiond.CodeInternal:
		// The message only: a wrapped cause may carry internal detail.
		body.Error = ErrorDetail{Code: se.Code, Message: se.Message, Field: se.Field}
		if body.Error.Message == "" {
			body.Error.Message = string(se.Code)
		}
	case errors.Is(err, r.Context().Err()) && r.Context().Err() != nil:
		body.Error = ErrorDetail{Code: sessiond.CodeUnavailable, Message: "request canceled"}
	default:
		s.log.Error("request failed", "method", r.Method, "route", r.Pattern, "err", err)
		body.Error = ErrorDetail{Code: sessiond.CodeInternal, Message: "internal error"}
	}
	writeJSON(w, Status(body.Error.Code), body)
}
