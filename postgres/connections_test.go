package postgres

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/sessiondtest"
)

// connRecord is a row of sessiond_connections.
type connRecord struct {
	opened             time.Time
	session, subject   string
	kind, node, ip, ua string
	closed             *time.Time
	duration           *time.Duration
	code               *int32
	reason             *string
	copies             int // rows with this connection's id
}

// connTable reads sessiond_connections, by connection id.
func connTable(t *testing.T, dsn, schema string) map[string]*connRecord {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT conn_id, opened_at, session_id, subject, kind, node, client_ip, user_agent,
		closed_at, duration, close_code, close_reason FROM `+schema+`.sessiond_connections`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]*connRecord{}
	for rows.Next() {
		var id string
		var r connRecord
		if err := rows.Scan(&id, &r.opened, &r.session, &r.subject, &r.kind, &r.node, &r.ip, &r.ua, &r.closed, &r.duration, &r.code, &r.reason); err != nil {
			t.Fatal(err)
		}
		if prev := out[id]; prev != nil {
			prev.copies++
			continue
		}
		r.copies = 1
		out[id] = &r
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// logConnections is what the store's log says of every connection it
// describes: its attach, and its close if it closed.
func logConnections(t *testing.T, st sessiond.Store) map[string]*sessiond.Event {
	t.Helper()
	evs, err := st.Events(context.Background(), sessiond.Cursor{}, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*sessiond.Event{}
	for i := range evs {
		e := &evs[i]
		switch {
		case e.Conn == nil:
		case e.Type == sessiond.EventConnectionClosed:
			out[e.Connection] = e
		case e.Type == sessiond.EventConnected || e.Type == sessiond.EventResumed:
			if out[e.Connection] == nil {
				out[e.Connection] = e
			}
		}
	}
	return out
}

// sameConnections checks that the table holds exactly the log's
// connections, each once, as the log describes it.
func sameConnections(t *testing.T, table map[string]*connRecord, log map[string]*sessiond.Event) {
	t.Helper()
	if len(table) != len(log) {
		t.Fatalf("the table holds %d connections, the log %d", len(table), len(log))
	}
	us := func(tm time.Time) time.Time { return tm.UTC().Truncate(time.Microsecond) }
	for id, e := range log {
		r, d := table[id], e.Conn
		if r == nil {
			t.Fatalf("connection %s is not in the table", id)
		}
		if r.copies != 1 || !r.opened.Equal(us(d.OpenedAt)) || r.session != e.SessionID || r.subject != e.Subject ||
			r.kind != d.Kind || r.node != d.Node || r.ip != d.ClientIP || r.ua != d.UserAgent {
			t.Fatalf("connection %s: row %+v (%d copies); want it as the log says, %+v", id, *r, r.copies, *d)
		}
		if e.Type != sessiond.EventConnectionClosed {
			if r.closed != nil || r.duration != nil || r.code != nil || r.reason != nil {
				t.Fatalf("connection %s is open in the log, closed in the table: %+v", id, *r)
			}
			continue
		}
		if r.closed == nil || !r.closed.Equal(us(d.ClosedAt)) || *r.duration != us(d.ClosedAt).Sub(us(d.OpenedAt)) ||
			int(*r.code) != d.CloseCode || *r.reason != string(d.CloseReason) {
			t.Fatalf("connection %s: row closed %v after %v, code %v, reason %v; want %+v", id, r.closed, r.duration, r.code, r.reason, *d)
		}
	}
}

// steps runs the sink until it has copied the whole log.
func steps(t *testing.T, h *History, st sessiond.Store) {
	t.Helper()
	for {
		n, _, err := h.Step(context.Background(), st)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// Every connection is one row with all it is: opened by its attach, closed
// by its connection_closed in a later batch, or in the same batch (a
// connection that opens and closes between two steps), with its close
// code, reason and duration; one still open has no close. Reading a
// session's history gives the same connections through its events.
func TestConnectionsWrittenOpenedAndClosed(t *testing.T) {
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	h := openHistory(t, dsn, Options{Schema: schema})
	st := inmem.New(inmem.Options{})
	clock := sessiondtest.NewManualClock(time.Date(2026, 4, 1, 23, 59, 0, 123456789, time.UTC))
	ws := sessiond.Policy{Name: "workspace", TTL: 8 * time.Hour, IdleTimeout: time.Hour, DisconnectGrace: 5 * time.Minute,
		HeartbeatInterval: time.Minute, HeartbeatTimeout: 10 * time.Minute} // no heartbeats needed here
	single := sessiond.Policy{Name: "single", TTL: time.Hour, OnConnect: sessiond.ConnectReplace, MaxConnections: 1}
	m := engineWith(t, sessiond.Config{Store: st, Node: "node-7", Clock: clock, Policies: []sessiond.Policy{ws, single}})
	ctx := context.Background()
	c, err := m.Create(ctx, sessiond.CreateRequest{Subject: "alice", Policy: "workspace"})
	if err != nil {
		t.Fatal(err)
	}
	id := c.Session.ID
	attach := func(sid, kind, ip, ua string) *sessiond.Connected {
		t.Helper()
		a, err := m.ConnectTo(ctx, sid, sessiond.ConnectRequest{Kind: kind, ClientIP: ip, UserAgent: ua})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	sock := attach(id, sessiond.KindWebSocket, "203.0.113.7", "Mozilla/5.0 (X11; Linux x86_64)")
	vnc := attach(id, "vnc", "2001:db8::1", "TigerVNC/1.13")
	steps(t, h, st) // both open in the table

	clock.Advance(90 * time.Second) // past midnight: the closes are a day later than the opens
	if err := m.DisconnectWith(ctx, sock.Conn.ID, sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: 1000}); err != nil {
		t.Fatal(err)
	}
	brief := attach(id, "http", "", "")
	clock.Advance(1500 * time.Millisecond)
	if err := m.RemoveConnection(ctx, brief.Conn.ID); err != nil {
		t.Fatal(err)
	}
	// Replaced, in another session.
	s2, err := m.Create(ctx, sessiond.CreateRequest{Subject: "bob", Policy: "single"})
	if err != nil {
		t.Fatal(err)
	}
	first := attach(s2.Session.ID, "vnc", "", "")
	clock.Advance(time.Second)
	second := attach(s2.Session.ID, "vnc", "", "")
	// alice's session ends with its vnc connection open: session_ended.
	keep := attach(id, "vnc", "", "")
	_ = keep
	clock.Advance(2 * time.Second)
	if err := m.Revoke(ctx, id, ""); err != nil {
		t.Fatal(err)
	}
	steps(t, h, st)

	table := connTable(t, dsn, schema)
	sameConnections(t, table, logConnections(t, st))
	for _, w := range []struct {
		conn     *sessiond.Connected
		reason   sessiond.CloseReason
		code     int32
		duration time.Duration
	}{
		{sock, sessiond.ClosedByClient, 1000, 90 * time.Second},
		{brief, sessiond.ClosedRemoved, 0, 1500 * time.Millisecond},
		{first, sessiond.ClosedReplaced, 0, time.Second},
		{vnc, sessiond.ClosedSessionEnded, 0, 90*time.Second + 1500*time.Millisecond + 3*time.Second},
	} {
		r := table[w.conn.Conn.ID]
		if r == nil || r.reason == nil || *r.reason != string(w.reason) || *r.code != w.code || *r.duration != w.duration {
			t.Fatalf("connection %s (%s): %+v; want %s, code %d, after %v", w.conn.Conn.ID, w.conn.Conn.Kind, r, w.reason, w.code, w.duration)
		}
	}
	if r := table[second.Conn.ID]; r.closed != nil {
		t.Fatalf("the connection still open: %+v", *r)
	}
	if r := table[sock.Conn.ID]; r.node != "node-7" || r.ip != "203.0.113.7" || r.ua != "Mozilla/5.0 (X11; Linux x86_64)" || r.kind != "websocket" {
		t.Fatalf("the websocket's row: %+v", *r)
	}
	// The rows live in the partition of the day they opened.
	var day string
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, "SELECT tableoid::regclass::text FROM "+schema+".sessiond_connections WHERE conn_id = $1", sock.Conn.ID).Scan(&day); err != nil {
		t.Fatal(err)
	}
	if want := schema + ".sessiond_connections_20260401"; day != want {
		t.Fatalf("the websocket's row is in %s, want %s", day, want)
	}

	// Read back through the history: each connection's connection_closed
	// event says what its row says.
	page, err := h.SessionHistory(ctx, id, sessiond.HistoryQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range page.Events {
		types = append(types, string(e.Type))
		if e.Type == sessiond.EventConnectionClosed && e.Connection == sock.Conn.ID {
			if d := e.Conn; d == nil || d.CloseCode != 1000 || d.CloseReason != sessiond.ClosedByClient || d.Duration() != 90*time.Second || d.UserAgent != "Mozilla/5.0 (X11; Linux x86_64)" {
				t.Fatalf("the websocket's close, read back: %+v", e.Conn)
			}
		}
	}
	want := "[created connected connected connection_closed connected connection_closed connected ending connection_closed connection_closed ended]"
	if fmt.Sprint(types) != want {
		t.Fatalf("alice's session's history: %v\nwant %s", types, want)
	}
	// Only the closes, by pages of one: alice's four connections.
	var closes []string
	q := sessiond.HistoryQuery{Types: []sessiond.EventType{sessiond.EventConnectionClosed}, Limit: 1}
	for {
		p, err := h.SubjectHistory(ctx, "alice", q)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			closes = append(closes, string(e.Conn.CloseReason))
		}
		if p.Next == "" {
			break
		}
		q.Cursor = p.Next
	}
	if fmt.Sprint(closes) != "[closed removed session_ended session_ended]" {
		t.Fatalf("alice's closed connections: %v", closes)
	}
}

// A sink stopped between batches and opened again (a restart) goes on
// from its cursor: every connection is one row, closed as the log says.
func TestConnectionsOnceAcrossASinkRestart(t *testing.T) {
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	st := inmem.New(inmem.Options{})
	m := engine(t, st)
	ctx := context.Background()
	var ids []string
	for i := range 40 {
		c, err := m.Create(ctx, sessiond.CreateRequest{Subject: fmt.Sprint("user-", i%5)})
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			a, err := m.ConnectTo(ctx, c.Session.ID, sessiond.ConnectRequest{Kind: "http", ClientIP: "198.51.100.9"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, a.Conn.ID)
		}
	}
	h := openHistory(t, dsn, Options{Schema: schema, Batch: 7})
	for range 10 {
		if _, _, err := h.Step(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	h.Close()
	// Meanwhile connections close, some of them before their open was
	// copied.
	sort.Strings(ids)
	for i, id := range ids {
		if i%2 == 0 {
			if err := m.DisconnectWith(ctx, id, sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: 1001}); err != nil {
				t.Fatal(err)
			}
		}
	}
	again := openHistory(t, dsn, Options{Schema: schema, Batch: 7})
	steps(t, again, st)
	table := connTable(t, dsn, schema)
	sameConnections(t, table, logConnections(t, st))
	if len(table) != 120 {
		t.Fatalf("%d connections in the table, want 120", len(table))
	}
	if rows, distinct := counts(t, dsn, schema); rows != logLen(t, st) || distinct != rows {
		t.Fatalf("events: %d rows, %d distinct; the log holds %d", rows, distinct, logLen(t, st))
	}
}

// connRows folds a batch: a close whose open is in the batch makes one
// closed row, the first close of a connection wins, and events that are
// not about connections (or recorded before events described them) make
// none.
func TestConnRowsFoldsABatch(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 999, time.UTC)
	d := &sessiond.ConnDetail{Kind: "vnc", OpenedAt: at}
	closed := func(reason sessiond.CloseReason) *sessiond.ConnDetail {
		c := *d
		c.ClosedAt, c.CloseReason = at.Add(time.Second), reason
		return &c
	}
	rows := connRows([]sessiond.Event{
		{Type: sessiond.EventCreated, SessionID: "s"},
		{Type: sessiond.EventConnected, SessionID: "s", Connection: "old"}, // no detail: before events carried it
		{Type: sessiond.EventConnected, SessionID: "s", Connection: "a", Conn: d},
		{Type: sessiond.EventConnectionClosed, SessionID: "s", Connection: "a", Conn: closed(sessiond.ClosedReplaced)},
		{Type: sessiond.EventConnectionClosed, SessionID: "s", Connection: "a", Conn: closed(sessiond.ClosedLost)},
		{Type: sessiond.EventConnectionClosed, SessionID: "s", Connection: "b", Conn: closed(sessiond.ClosedNodeLost)},
		{Type: sessiond.EventDisconnected, SessionID: "s", Connection: "b"},
	})
	if len(rows) != 2 || rows[0].id != "a" || rows[1].id != "b" {
		t.Fatalf("rows %+v; want a and b", rows)
	}
	if *rows[0].reason != "replaced" || *rows[1].reason != "node_lost" || !rows[0].opened.Equal(at.Truncate(time.Microsecond)) {
		t.Fatalf("rows %+v", rows)
	}
	if !rows[0].opens || rows[1].opens {
		t.Fatalf("a opens in the batch: %v, b does not: %v; want true, false (b's row is an earlier batch's)", rows[0].opens, rows[1].opens)
	}
}

// A partition the sink took for made that is gone (another node's Prune
// dropped it; or it was made in a transaction that a cut rolled back) is
// made again: the batch that finds it missing fails, the next one writes.
func TestAPartitionGoneIsMadeAgain(t *testing.T) {
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	h := openHistory(t, dsn, Options{Schema: schema})
	st := inmem.New(inmem.Options{})
	clock := sessiondtest.NewManualClock(time.Date(2026, 5, 5, 12, 0, 0, 0, time.UTC))
	m := engineWith(t, sessiond.Config{Store: st, Node: "n", Clock: clock})
	ctx := context.Background()
	attach := func() {
		t.Helper()
		c, err := m.Create(ctx, sessiond.CreateRequest{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.ConnectTo(ctx, c.Session.ID, sessiond.ConnectRequest{Kind: "http"}); err != nil {
			t.Fatal(err)
		}
	}
	attach()
	steps(t, h, st)
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, table := range []string{"sessiond_events", "sessiond_connections"} {
		if _, err := admin.Exec(ctx, "DROP TABLE "+schema+"."+table+"_20260505"); err != nil {
			t.Fatal(err)
		}
	}
	attach()
	if _, _, err := h.Step(ctx, st); err == nil {
		t.Fatal("a batch into a dropped partition was written")
	}
	steps(t, h, st)
	if rows, _ := counts(t, dsn, schema); rows != 2 {
		t.Fatalf("%d events after the partition was made again, want the second session's 2", rows)
	}
	if conns := connTable(t, dsn, schema); len(conns) != 1 {
		t.Fatalf("%d connections after the partition was made again, want 1", len(conns))
	}
}
