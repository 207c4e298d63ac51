package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sessiond/sessiond"
)

// Codes that only the HTTP edges produce.
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
	sessiond.CodeInvalidState:       http.StatusConflict,
	sessiond.CodeRuntimeFailed:      http.StatusBadGateway,
	sessiond.CodeUnavailable:        http.StatusServiceUnavailable,
	sessiond.CodeStoreFull:          http.StatusServiceUnavailable,
	sessiond.CodeStoreUnavailable:   http.StatusServiceUnavailable,
	sessiond.CodeInternal:           http.StatusInternalServerError,
	CodeRouteNotFound:               http.StatusNotFound,
	CodeMethodNotAllowed:            http.StatusMethodNotAllowed,
}

// Status returns the HTTP status for an error code: 500 for a code the
// API does not answer with.
func Status(code sessiond.Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Statuses returns a copy of the table: every error code the API answers
// with, and its HTTP status.
func Statuses() map[sessiond.Code]int { return maps.Clone(statusOf) }

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

// WriteError answers with err's code, status and message. Faults that are
// not domain errors (and sessiond.CodeInternal) are answered as internal
// errors, without their details; logging them is the caller's part.
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
		// The message only: a wrapped cause may carry internal detail.
		body.Error = ErrorDetail{Code: se.Code, Message: se.Message, Field: se.Field}
		if body.Error.Message == "" {
			body.Error.Message = string(se.Code)
		}
	}
	if status == 0 || body.Error.Code == sessiond.CodeInternal {
		status = Status(body.Error.Code)
	}
	if cr, ok := w.(CodeRecorder); ok {
		cr.RecordCode(body.Error.Code)
	}
	WriteJSON(w, status, body)
}

// CodeRecorder is a ResponseWriter that wants to know the code of the
// error answered through it (httpapi's, which records it on the request's
// span): WriteErrorStatus tells it, before it writes the answer.
type CodeRecorder interface {
	RecordCode(sessiond.Code)
}

// WriteRateLimited answers 429 rate_limited with msg, and a Retry-After of
// the whole seconds until wait has passed (at least 1).
func WriteRateLimited(w http.ResponseWriter, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.FormatInt(max(1, int64((wait+time.Second-1)/time.Second)), 10))
	WriteError(w, &sessiond.Error{Code: sessiond.CodeRateLimited, Message: msg})
}

// appender is a body that encodes itself without reflection.
type appender interface{ AppendJSON([]byte) []byte }

// bufPool holds the buffers of self-encoding answers.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// WriteJSON answers with status and v as JSON, followed by a newline. A v
// with an AppendJSON method (ValidateResponse) encodes itself.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var b []byte
	if a, ok := v.(appender); ok {
		// The answer to every validation: its buffer is reused once the
		// writer has copied it.
		p := bufPool.Get().(*[]byte)
		b = a.AppendJSON((*p)[:0])
		defer func() {
			if cap(b) <= 16<<10 {
				*p = b
				bufPool.Put(p)
			}
		}()
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			status = http.StatusInternalServerError
			b = fmt.Appendf(nil, `{"error":{"code":"internal","message":%q}}`, err.Error())
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b = append(b, '\n')
	_, _ = w.Write(b) //nolint:gosec // G705: JSON, served as application/json; a client that left is not ours to handle
}
