package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
)

// connRow is one connection's row of sessiond_connections, as a batch of
// events leaves it: opened (by its connected or resumed event), and
// closed if its connection_closed is in the batch too.
type connRow struct {
	opened                               time.Time
	id, session, subject, kind, node, ip string
	ua                                   string
	closed                               *time.Time
	code                                 *int32
	reason                               *string
	// opens: its connected or resumed event is in the batch, so no
	// earlier batch wrote its row.
	opens bool
}

// connRows folds the events that describe connections into one row per
// connection, in the order they first appear. A connection_closed event
// carries all that its connection's row holds, so a close whose open is
// not in the batch (an earlier batch wrote it, or it fell in a gap of the
// log) still makes a whole row.
func connRows(evs []sessiond.Event) []connRow {
	var rows []connRow
	at := map[string]int{}
	for i := range evs {
		e := &evs[i]
		if e.Conn == nil || e.Connection == "" {
			continue // not about a connection, or recorded before events described them
		}
		var closing bool
		switch e.Type {
		case sessiond.EventConnected, sessiond.EventResumed:
		case sessiond.EventConnectionClosed:
			closing = true
		default:
			continue
		}
		d := e.Conn
		r := connRow{
			// PostgreSQL keeps microseconds: truncated here, so that the
			// open and the close of a connection name one row, and its day
			// is the day of what is stored.
			opened: d.OpenedAt.UTC().Truncate(time.Microsecond),
			id:     e.Connection, session: e.SessionID, subject: e.Subject,
			kind: d.Kind, node: d.Node, ip: d.ClientIP, ua: d.UserAgent, opens: !closing,
		}
		if closing {
			closed := d.ClosedAt.UTC().Truncate(time.Microsecond)
			code := int32(min(max(d.CloseCode, 0), 0xffff)) //nolint:gosec // clamped to a close code's range
			reason := string(d.CloseReason)
			r.closed, r.code, r.reason = &closed, &code, &reason
		}
		j, seen := at[r.id]
		switch {
		case !seen:
			at[r.id] = len(rows)
			rows = append(rows, r)
		case closing && rows[j].closed == nil:
			r.opens = rows[j].opens
			rows[j] = r // the first close wins, as in the table
		case !closing:
			rows[j].opens = true
		}
	}
	return rows
}

// upsertConns writes the connection rows of a batch of events, into day
// partitions made first if need be: the rows of connections opened in the
// batch with COPY (closed already if their close is in the batch too: no
// earlier batch can have written them, see insert), and in one statement
// the closes of connections opened before, each filling in its row if
// that row is still open (or making it, if its open fell in a gap of the
// log). Written twice, a row stays as it was the first time.
func (h *History) upsertConns(ctx context.Context, tx pgx.Tx, evs []sessiond.Event, made *[]string) error {
	rows := connRows(evs)
	if len(rows) == 0 {
		return nil
	}
	days := map[string]time.Time{}
	var opened, closes []connRow
	for _, r := range rows {
		d := r.opened.Truncate(24 * time.Hour)
		days[d.Format("20060102")] = d
		if r.opens {
			opened = append(opened, r)
		} else {
			closes = append(closes, r)
		}
	}
	for name, day := range days {
		if err := h.ensureDay(ctx, tx, "sessiond_connections", name, day, made); err != nil {
			return err
		}
	}
	dup, err := copyRows(ctx, tx, pgx.Identifier{h.o.Schema, "sessiond_connections"}, connColumns, len(opened), func(i int) []any {
		r := &opened[i]
		return []any{r.opened, r.id, r.session, r.subject, r.kind, r.node, r.ip, r.ua, r.closed, r.code, r.reason}
	})
	switch {
	case err != nil:
		return err
	case dup:
		closes = rows // some are there already: every row by the statement that keeps what is there
	case len(closes) == 0:
		return nil
	}
	n := len(closes)
	openedAt, closedAt := make([]time.Time, n), make([]*time.Time, n)
	id, sid, subj, kind, node, ip, ua := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	code, reason := make([]*int32, n), make([]*string, n)
	for i, r := range closes {
		openedAt[i], id[i], sid[i], subj[i], kind[i], node[i], ip[i], ua[i] = r.opened, r.id, r.session, r.subject, r.kind, r.node, r.ip, r.ua
		closedAt[i], code[i], reason[i] = r.closed, r.code, r.reason
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+h.schema+`.sessiond_connections AS c (`+strings.Join(connColumns, ", ")+`)
		SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::timestamptz[], $10::int[], $11::text[])
		ON CONFLICT (opened_at, conn_id) DO UPDATE
			SET closed_at = EXCLUDED.closed_at, close_code = EXCLUDED.close_code, close_reason = EXCLUDED.close_reason
			WHERE (c.closed_at IS NULL OR c.close_reason = '`+ClosedInGap+`') AND EXCLUDED.closed_at IS NOT NULL`,
		openedAt, id, sid, subj, kind, node, ip, ua, closedAt, code, reason)
	return err
}

// ClosedInGap is the close_reason of a connection the history took for
// closed in a gap of the log (closeLostInGap).
const ClosedInGap = "lost_in_gap"

// gapCloseLimit bounds how many open rows one gap has checked against the
// store.
const gapCloseLimit = 10_000

// closeLostInGap closes the rows of connections that a gap of the log may
// have closed unseen: a row still open, opened before the gap ended (at
// gapEnd, the time of the first event after it), whose connection the
// store no longer holds. Its close_reason is ClosedInGap, its closed_at
// gapEnd (the latest it can have closed), its close_code 0. If the
// connection's connection_closed is in fact further on in the log, that
// event fills the row in when the sink gets to it. It checks up to
// gapCloseLimit rows, oldest first.
func (h *History) closeLostInGap(ctx context.Context, tx pgx.Tx, st sessiond.Store, gapEnd time.Time) error {
	rows, err := tx.Query(ctx, `SELECT opened_at, conn_id FROM `+h.schema+`.sessiond_connections
		WHERE closed_at IS NULL AND opened_at < $1 ORDER BY opened_at LIMIT $2`, gapEnd, gapCloseLimit)
	if err != nil {
		return err
	}
	type key struct {
		opened time.Time
		id     string
	}
	open, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (key, error) {
		var k key
		return k, r.Scan(&k.opened, &k.id)
	})
	if err != nil {
		return err
	}
	var opened []time.Time
	var ids []string
	for _, k := range open {
		_, err := st.Conn(ctx, k.id)
		switch {
		case errors.Is(err, sessiond.ErrNotFound):
			opened, ids = append(opened, k.opened), append(ids, k.id)
		case err != nil:
			return err
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE `+h.schema+`.sessiond_connections AS c
		SET closed_at = $3, close_code = 0, close_reason = '`+ClosedInGap+`'
		FROM unnest($1::timestamptz[], $2::text[]) AS g(opened_at, conn_id)
		WHERE c.opened_at = g.opened_at AND c.conn_id = g.conn_id AND c.closed_at IS NULL`,
		opened, ids, gapEnd.UTC()); err != nil {
		return err
	}
	h.o.Logger.Warn("history: connections gone from the store, their close lost in a gap of the log, closed as "+ClosedInGap, "connections", len(ids))
	return nil
}

// connColumns are the columns of sessiond_connections that upsertConns
// writes.
var connColumns = []string{"opened_at", "conn_id", "session_id", "subject", "kind", "node", "client_ip", "user_agent", "closed_at", "close_code", "close_reason"}
