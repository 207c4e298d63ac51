package httpapi_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/wire"
)

// pagedHistory is a HistoryReader over a fixed list, standing in for the
// PostgreSQL one (package postgres, tested against a real PostgreSQL):
// these tests are about the HTTP side.
type pagedHistory struct{ events []sessiond.Event }

func (p pagedHistory) read(key string, q sessiond.HistoryQuery, match func(sessiond.Event) string) (sessiond.HistoryPage, error) {
	if q.Cursor != "" && q.Cursor != "next" {
		return sessiond.HistoryPage{}, sessiond.Errorf(sessiond.CodeInvalidArgument, "cursor", "not a cursor this server issued")
	}
	page := sessiond.HistoryPage{Events: []sessiond.Event{}}
	for i, e := range p.events {
		if match(e) != key || (q.Cursor == "next" && i == 0) || (!q.Since.IsZero() && e.Time.Before(q.Since)) ||
			(len(q.Types) > 0 && !slices.Contains(q.Types, e.Type)) {
			continue
		}
		if q.Limit > 0 && len(page.Events) == q.Limit {
			page.Next = "next"
			break
		}
		page.Events = append(page.Events, e)
	}
	return page, nil
}

func (p pagedHistory) SessionHistory(_ context.Context, id string, q sessiond.HistoryQuery) (sessiond.HistoryPage, error) {
	return p.read(id, q, func(e sessiond.Event) string { return e.SessionID })
}

func (p pagedHistory) SubjectHistory(_ context.Context, subject string, q sessiond.HistoryQuery) (sessiond.HistoryPage, error) {
	return p.read(subject, q, func(e sessiond.Event) string { return e.Subject })
}

func testHistory() pagedHistory {
	now := time.Now().UTC()
	return pagedHistory{events: []sessiond.Event{
		{Seq: 1, Type: sessiond.EventCreated, SessionID: "s1", Subject: "alice", Time: now.Add(-2 * time.Hour), State: sessiond.StateActive, Version: 1},
		{Seq: 2, Type: sessiond.EventEnding, SessionID: "s1", Subject: "alice", Time: now.Add(-time.Minute), State: sessiond.StateEnding, Reason: sessiond.EndRevoked, Version: 2},
		{Seq: 3, Type: sessiond.EventConnectionClosed, SessionID: "s1", Subject: "alice", Time: now.Add(-time.Minute), State: sessiond.StateEnding,
			Reason: sessiond.EndRevoked, Version: 2, Connection: "abcdefghijklmnop.s1", Conn: &sessiond.ConnDetail{Kind: "vnc", ClientIP: "203.0.113.7",
				OpenedAt: now.Add(-90 * time.Minute), ClosedAt: now.Add(-time.Minute), CloseReason: sessiond.ClosedSessionEnded}},
	}}
}

func TestHistoryRoutes(t *testing.T) {
	e := htStart(t, func(c *httpapi.Config) { c.History = testHistory() })
	r := e.send("GET", "/v1/sessions/s1/history?limit=1", "")
	htWantStatus(t, r, http.StatusOK)
	page := htDecode[wire.HistoryResponse](t, r)
	if len(page.Events) != 1 || page.Events[0].Type != sessiond.EventCreated || page.NextCursor != "next" {
		t.Fatalf("first page: %+v", page)
	}
	r = e.send("GET", "/v1/sessions/s1/history?cursor=next", "")
	htWantStatus(t, r, http.StatusOK)
	page = htDecode[wire.HistoryResponse](t, r)
	if len(page.Events) != 2 || page.Events[0].Type != sessiond.EventEnding || page.NextCursor != "" {
		t.Fatalf("second page: %+v", page)
	}
	r = e.send("GET", "/v1/subjects/alice/history?since=1h", "")
	htWantStatus(t, r, http.StatusOK)
	page = htDecode[wire.HistoryResponse](t, r)
	if len(page.Events) != 2 || page.Events[0].Type != sessiond.EventEnding {
		t.Fatalf("alice's last hour: %+v", page)
	}
	// Connections that closed, with what they were: the JSON carries the
	// duration and close code.
	r = e.send("GET", "/v1/subjects/alice/history?type=connection_closed", "")
	htWantStatus(t, r, http.StatusOK)
	body := string(r.body)
	page = htDecode[wire.HistoryResponse](t, r)
	if len(page.Events) != 1 || page.Events[0].Conn == nil || page.Events[0].Conn.Duration() != 89*time.Minute ||
		!strings.Contains(body, `"duration_ms":5340000`) || !strings.Contains(body, `"close_code":0`) || !strings.Contains(body, `"close_reason":"session_ended"`) {
		t.Fatalf("alice's closed connections: %s", body)
	}
	r = e.send("GET", "/v1/subjects/alice/history?type=created,ending&type=rotated", "")
	htWantStatus(t, r, http.StatusOK)
	if page = htDecode[wire.HistoryResponse](t, r); len(page.Events) != 2 {
		t.Fatalf("alice's created and ending events: %+v", page)
	}
	for _, bad := range []struct{ query, field string }{
		{"since=yesterday", "since"}, {"until=-1h", "until"}, {"limit=0", "limit"}, {"limit=1001", "limit"}, {"cursor=bogus", "cursor"},
		{"type=Connected", "type"}, {"type=created,,ended", "type"}, {"type=", "type"},
	} {
		htWantError(t, e.send("GET", "/v1/subjects/alice/history?"+bad.query, ""), http.StatusBadRequest, sessiond.CodeInvalidArgument, bad.field)
	}
	// Without a history, the routes say so.
	off := htStart(t, nil)
	htWantError(t, off.send("GET", "/v1/sessions/s1/history", ""), http.StatusNotFound, wire.CodeRouteNotFound, "")
}
