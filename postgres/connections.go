package postgres

import (
	"context"
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
			WHERE c.closed_at IS NULL AND EXCLUDED.closed_at IS NOT NULL`,
		openedAt, id, sid, subj, kind, node, ip, ua, closedAt, code, reason)
	return err
}

// connColumns are the columns of sessiond_connections that upsertConns
// writes.
var connColumns = []string{"opened_at", "conn_id", "session_id", "subject", "kind", "node", "client_ip", "user_agent", "closed_at", "close_code", "close_reason"}
