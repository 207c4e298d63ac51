package httpapi_test

import (
	"context"
	"net/http"
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
		if match(e) != key || (q.Cursor == "next" && i == 0) || (!q.Since.IsZero() && e.Time.Before(q.Since)) {
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
	if len(page.Events) != 1 || page.Events[0].Type != sessiond.EventEnding || page.NextCursor != "" {
		t.Fatalf("second page: %+v", page)
	}
	r = e.send("GET", "/v1/subjects/alice/history?since=1h", "")
	htWantStatus(t, r, http.StatusOK)
	page = htDecode[wire.HistoryResponse](t, r)
	if len(page.Events) != 1 || page.Events[0].Type != sessiond.EventEnding {
		t.Fatalf("alice's last hour: %+v", page)
	}
	for _, bad := range []struct{ query, field string }{
		{"since=yesterday", "since"}, {"until=-1h", "until"}, {"limit=0", "limit"}, {"limit=1001", "limit"}, {"cursor=bogus", "cursor"},
	} {
		htWantError(t, e.send("GET", "/v1/subjects/alice/history?"+bad.query, ""), http.StatusBadRequest, sessiond.CodeInvalidArgument, bad.field)
	}
	// Without a history, the routes say so.
	off := htStart(t, nil)
	htWantError(t, off.send("GET", "/v1/sessions/s1/history", ""), http.StatusNotFound, wire.CodeRouteNotFound, "")
}
