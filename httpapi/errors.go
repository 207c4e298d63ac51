package httpapi

import (
	"errors"
	"net/http"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// writeError answers with err's code, status and message (wire.WriteError).
// Faults that are not domain errors are logged and answered without their
// details; a request whose client went away is answered as canceled.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var se *sessiond.Error
	switch {
	case errors.As(err, &se) && se.Code != sessiond.CodeInternal:
	case errors.Is(err, r.Context().Err()) && r.Context().Err() != nil:
		err = &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "request canceled"}
	default:
		s.log.Error("request failed", "method", r.Method, "route", r.Pattern, "err", err)
	}
	wire.WriteError(w, err)
}
