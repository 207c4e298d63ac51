package sessiond

import (
	"context"
	"time"
)

// HistoryReader reads the lifecycle history kept apart from the store
// (package postgres keeps it in PostgreSQL): the past events of a session
// or of a subject's sessions, oldest first, by pages. Connections are in
// it through their events: each one's connected (or resumed) and
// connection_closed events describe it (Event.Conn), the latter with when
// and why it closed and how long it lasted.
type HistoryReader interface {
	SessionHistory(ctx context.Context, id string, q HistoryQuery) (HistoryPage, error)
	SubjectHistory(ctx context.Context, subject string, q HistoryQuery) (HistoryPage, error)
}

// HistoryQuery selects events: those at or after Since and before Until
// (zero times do not bound), of one of Types (none: all types), after
// Cursor (from a previous page's Next, read with the same Since, Until
// and Types), at most Limit (readers treat <= 0 as 100 and cap it at
// 1000). A cursor the reader did not issue gives an error matching
// ErrInvalidArgument.
type HistoryQuery struct {
	Since, Until time.Time
	Types        []EventType
	Cursor       string
	Limit        int
}

// HistoryPage is one page of events; Next is "" after the last.
type HistoryPage struct {
	Events []Event
	Next   string
}
