package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sessiond/sessiond"
)

// events streams lifecycle events as server-sent events:
//
//	id: <cursor>
//	event: <type>
//	data: <event JSON>
//
// The id is the stream's position after the event (sessiond.Cursor: the
// Seq on the embedded store, one Seq per partition on Redis), opaque to
// clients. A client that reconnects with Last-Event-ID (or ?after=ID) gets
// what it missed from the store's event log, then live events; after=0
// replays the whole retained log. Without either, the stream starts with
// events recorded from now on.
func (s *Server) events(w http.ResponseWriter, r *http.Request) error {
	after, err := lastEventID(r)
	if err != nil {
		return err
	}
	if s.closed.Load() {
		// Shutting down: tell clients to go elsewhere rather than answer
		// with a stream that ends at once.
		return &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "server is shutting down"}
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	rc := http.NewResponseController(w)
	sub, err := s.m.Subscribe(r.Context(), after)
	if err != nil {
		return err
	}
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": sessiond events\nretry: 1000\n\n")
	if err := rc.Flush(); err != nil {
		return nil
	}
	// The deadline the handler set covered the answer so far; from now on
	// each event gets its own, so a client that stops reading is cut.

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		wait, stop := context.WithTimeout(ctx, s.keepAlive)
		ev, err := sub.Next(wait)
		stop()
		_ = rc.SetWriteDeadline(time.Now().Add(s.writeTO))
		switch {
		case err == nil:
			data, _ := json.Marshal(ev)
			// A text/event-stream of digits and dots, an event type of the
			// engine's and JSON: nothing a browser renders as HTML.
			fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", sub.Cursor(), ev.Type, data) //nolint:gosec // see above
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			fmt.Fprint(w, ": keep-alive\n\n")
		default:
			// Client gone, server closing, or this stream fell too far
			// behind: end it; the client resumes with Last-Event-ID.
			return nil
		}
		if err := rc.Flush(); err != nil {
			return nil
		}
	}
}

func lastEventID(r *http.Request) (sessiond.Cursor, error) {
	field, v := "Last-Event-ID", r.Header.Get("Last-Event-ID")
	if v == "" {
		field, v = "after", r.URL.Query().Get("after")
	}
	if v == "" {
		return sessiond.FromNow, nil
	}
	c, err := sessiond.ParseCursor(v)
	if err != nil {
		return sessiond.Cursor{}, sessiond.Errorf(sessiond.CodeInvalidArgument, field, "must be an event id this server sent (or 0)")
	}
	return c, nil
}
