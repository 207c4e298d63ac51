package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// sessionHistory serves GET /v1/sessions/{id}/history.
func (s *Server) sessionHistory(w http.ResponseWriter, r *http.Request) error {
	if s.history == nil {
		return errHistoryOff
	}
	return s.serveHistory(w, r, s.history.SessionHistory, r.PathValue("id"))
}

// subjectHistory serves GET /v1/subjects/{subject}/history.
func (s *Server) subjectHistory(w http.ResponseWriter, r *http.Request) error {
	if s.history == nil {
		return errHistoryOff
	}
	return s.serveHistory(w, r, s.history.SubjectHistory, r.PathValue("subject"))
}

var errHistoryOff = &sessiond.Error{Code: wire.CodeRouteNotFound, Message: "the history is off: start the server with --history postgres://..."}

func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request, read func(context.Context, string, sessiond.HistoryQuery) (sessiond.HistoryPage, error), key string) error {
	q, err := historyQuery(r.URL.Query(), time.Now())
	if err != nil {
		return err
	}
	page, err := read(r.Context(), key, q)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, wire.HistoryResponse{Events: page.Events, NextCursor: page.Next})
	return nil
}

// eventTypeName is what an event type looks like; one that no event has
// matches nothing.
var eventTypeName = regexp.MustCompile(`^[a-z_]{1,32}$`)

// historyQuery reads since, until (RFC 3339 times, or durations back from
// now: since=1h), type (event types, comma-separated or repeated), cursor
// and limit.
func historyQuery(q url.Values, now time.Time) (sessiond.HistoryQuery, error) {
	out := sessiond.HistoryQuery{Cursor: q.Get("cursor")}
	for _, v := range q["type"] {
		for t := range strings.SplitSeq(v, ",") {
			if !eventTypeName.MatchString(t) {
				return out, sessiond.Errorf(sessiond.CodeInvalidArgument, "type", "event types are lower-case words (connected,connection_closed), not %q", t)
			}
			out.Types = append(out.Types, sessiond.EventType(t))
		}
	}
	for _, f := range []struct {
		name string
		into *time.Time
	}{{"since", &out.Since}, {"until", &out.Until}} {
		v := q.Get(f.name)
		if v == "" {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			*f.into = t
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			return out, sessiond.Errorf(sessiond.CodeInvalidArgument, f.name, "must be an RFC 3339 time or a duration back from now (1h)")
		}
		*f.into = now.Add(-d)
	}
	n, err := pageLimit(q)
	out.Limit = n
	return out, err
}
