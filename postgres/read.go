package postgres

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
)

var _ sessiond.HistoryReader = (*History)(nil)

const (
	defaultPage = 100
	maxPage     = 1000
	cursorTag   = "h1."
)

// SessionHistory implements sessiond.HistoryReader.
func (h *History) SessionHistory(ctx context.Context, id string, q sessiond.HistoryQuery) (sessiond.HistoryPage, error) {
	return h.read(ctx, "session_id", id, q)
}

// SubjectHistory implements sessiond.HistoryReader.
func (h *History) SubjectHistory(ctx context.Context, subject string, q sessiond.HistoryQuery) (sessiond.HistoryPage, error) {
	return h.read(ctx, "subject", subject, q)
}

// position is where a page ends: an event's time, log partition and Seq,
// the table's order.
type position struct {
	at   time.Time
	part int32
	seq  int64
}

func (p position) cursor() string {
	return cursorTag + strconv.FormatInt(p.at.UnixNano(), 10) + "." + strconv.Itoa(int(p.part)) + "." + strconv.FormatInt(p.seq, 10)
}

func parseCursor(c string) (position, error) {
	bad := sessiond.Errorf(sessiond.CodeInvalidArgument, "cursor", "not a cursor this server issued")
	rest, ok := strings.CutPrefix(c, cursorTag)
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 3 {
		return position{}, bad
	}
	ns, err1 := strconv.ParseInt(parts[0], 10, 64)
	part, err2 := strconv.ParseInt(parts[1], 10, 32)
	seq, err3 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || part < 0 || seq < 0 {
		return position{}, bad
	}
	return position{time.Unix(0, ns).UTC(), int32(part), seq}, nil
}

// read returns a page of the events whose column is value, in the
// table's order (time, log partition, Seq).
func (h *History) read(ctx context.Context, column, value string, q sessiond.HistoryQuery) (sessiond.HistoryPage, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = defaultPage
	}
	limit = min(limit, maxPage)
	sql := "SELECT at, log_part, seq, event FROM " + h.schema + ".sessiond_events WHERE " + column + " = $1"
	args := []any{value}
	if q.Cursor != "" {
		p, err := parseCursor(q.Cursor)
		if err != nil {
			return sessiond.HistoryPage{}, err
		}
		args = append(args, p.at, p.part, p.seq)
		sql += " AND (at, log_part, seq) > ($2, $3, $4)"
	}
	if !q.Since.IsZero() {
		args = append(args, q.Since)
		sql += " AND at >= $" + strconv.Itoa(len(args))
	}
	if !q.Until.IsZero() {
		args = append(args, q.Until)
		sql += " AND at < $" + strconv.Itoa(len(args))
	}
	if len(q.Types) > 0 {
		types := make([]string, len(q.Types))
		for i, t := range q.Types {
			types[i] = string(t)
		}
		args = append(args, types)
		sql += " AND type = ANY($" + strconv.Itoa(len(args)) + "::text[])"
	}
	args = append(args, limit+1)
	sql += " ORDER BY at, log_part, seq LIMIT $" + strconv.Itoa(len(args))
	rows, err := h.pool.Query(ctx, sql, args...)
	if err != nil {
		return sessiond.HistoryPage{}, unavailable(err)
	}
	var page sessiond.HistoryPage
	var last position
	for rows.Next() {
		var doc []byte
		var p position
		if err := rows.Scan(&p.at, &p.part, &p.seq, &doc); err != nil {
			rows.Close()
			return sessiond.HistoryPage{}, unavailable(err)
		}
		if len(page.Events) == limit {
			page.Next = last.cursor()
			break
		}
		var e sessiond.Event
		if err := json.Unmarshal(doc, &e); err != nil {
			rows.Close()
			return sessiond.HistoryPage{}, err
		}
		page.Events = append(page.Events, e)
		last = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return sessiond.HistoryPage{}, unavailable(err)
	}
	if page.Events == nil {
		page.Events = []sessiond.Event{}
	}
	return page, nil
}

// unavailable turns a failure to reach PostgreSQL into a 503 that a
// client may retry.
func unavailable(err error) error {
	return &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "the history (PostgreSQL) cannot be read now; retry", Err: err}
}
