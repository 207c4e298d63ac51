package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/sessiondtest"
)

// testDSN is the PostgreSQL the tests use (pgtest.DSN).
func testDSN(t *testing.T) string {
	t.Helper()
	return pgtest.DSN(t)
}

// testSchema is a schema of the test's own, dropped when it ends.
func testSchema(t *testing.T, dsn string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Logf("dropping schema %s: %v", schema, err)
			return
		}
		defer conn.Close(context.Background())
		_, _ = conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
	})
	return schema
}

func openHistory(t *testing.T, dsn string, o Options) *History {
	t.Helper()
	h, err := Open(context.Background(), dsn, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return h
}

// engine runs a Manager on an in-memory store.
func engine(t *testing.T, st sessiond.Store) *sessiond.Manager {
	t.Helper()
	return engineWith(t, sessiond.Config{Store: st})
}

// engineWith runs a Manager configured so (its node "test" if it names
// none) until the test ends.
func engineWith(t testing.TB, cfg sessiond.Config) *sessiond.Manager {
	t.Helper()
	if cfg.Node == "" {
		cfg.Node = "test"
	}
	m, err := sessiond.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// counts returns how many rows the history holds, and how many distinct
// events (partition and Seq) among them.
func counts(t *testing.T, dsn, schema string) (rows, distinct int) {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(context.Background(), "SELECT count(*), count(DISTINCT (log_part, seq)) FROM "+schema+".sessiond_events").Scan(&rows, &distinct); err != nil {
		t.Fatal(err)
	}
	return rows, distinct
}

// logLen is how many events the store's log holds.
func logLen(t *testing.T, st sessiond.Store) int {
	t.Helper()
	evs, err := st.Events(context.Background(), sessiond.Cursor{}, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// follow runs h.Follow until the test ends.
func follow(t *testing.T, h *History, st sessiond.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.Follow(ctx, st) }()
	t.Cleanup(func() { cancel(); <-done })
}

// Two sinks (two nodes) follow one store into one database, and a third
// opens the schema at the same moment: every event is written once.
func TestEveryEventOnceWithTwoSinks(t *testing.T) {
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	var hs [3]*History
	var wg sync.WaitGroup
	for i := range hs {
		wg.Go(func() { hs[i] = openHistory(t, dsn, Options{Schema: schema, Batch: 50}) })
	}
	wg.Wait()
	st := inmem.New(inmem.Options{})
	m := engine(t, st)
	follow(t, hs[0], st)
	follow(t, hs[1], st)
	ctx := context.Background()
	for i := range 300 {
		c, err := m.Create(ctx, sessiond.CreateRequest{Subject: fmt.Sprint("user-", i%17)})
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := m.Revoke(ctx, c.Session.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := logLen(t, st)
	sessiondtest.Eventually(t, "the history holds every event", func() bool {
		rows, _ := counts(t, dsn, schema)
		return rows >= want
	})
	rows, distinct := counts(t, dsn, schema)
	if rows != want || distinct != want {
		t.Fatalf("history: %d rows, %d distinct events; the log holds %d: want each once", rows, distinct, want)
	}
	if w := hs[0].Stats().Written + hs[1].Stats().Written; w != int64(want) {
		t.Fatalf("the sinks say they wrote %d events, want %d", w, want)
	}
}

// PostgreSQL cuts the sink's connections (its backends) again and again
// while sessions are made, and connections attach to them and leave: every
// event arrives, once, and every connection is one row, closed as the log
// says.
func TestBackendsCutUnderLoad(t *testing.T) {
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	cfgDSN := dsn + sep(dsn) + "application_name=sessiond-history-" + schema
	h := openHistory(t, cfgDSN, Options{Schema: schema, Batch: 20, Poll: 50 * time.Millisecond})
	st := inmem.New(inmem.Options{})
	m := engine(t, st)
	follow(t, h, st)

	admin, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var cut atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(15 * time.Millisecond):
			}
			var n int64
			_ = admin.QueryRow(context.Background(), "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
				"sessiond-history-"+schema).Scan(&n)
			cut.Add(n)
		}
	})
	ctx := context.Background()
	var open []string
	for i := range 600 {
		c, err := m.Create(ctx, sessiond.CreateRequest{Subject: fmt.Sprint("user-", i)})
		if err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 0, 1: // a connection that stays a while
			a, err := m.ConnectTo(ctx, c.Session.ID, sessiond.ConnectRequest{Kind: "vnc", ClientIP: "192.0.2.1", UserAgent: fmt.Sprint("viewer/", i)})
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, a.Conn.ID)
		case 2: // the session ends with it
			if _, err := m.ConnectTo(ctx, c.Session.ID, sessiond.ConnectRequest{Kind: "http"}); err != nil {
				t.Fatal(err)
			}
			if err := m.Revoke(ctx, c.Session.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
		if len(open) > 10 { // the oldest open one closes
			if err := m.DisconnectWith(ctx, open[0], sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: 4000 + i%500}); err != nil {
				t.Fatal(err)
			}
			open = open[1:]
		}
		if i%100 == 0 { // a cut lands among each hundred creates
			before := cut.Load()
			sessiondtest.Eventually(t, "PostgreSQL cuts the sink's connections", func() bool { return cut.Load() > before })
		}
	}
	close(stop)
	wg.Wait()
	want := logLen(t, st)
	// The sink may be pausing (up to 5s after failures in a row) and has
	// many small batches to write: wait while it makes progress.
	for progress := -1; ; {
		var rows int
		sessiondtest.Eventually(t, "the sink to write more of the log after the cuts", func() bool {
			rows, _ = counts(t, dsn, schema)
			return rows > progress || rows >= want
		})
		if progress = rows; rows >= want {
			break
		}
	}
	rows, distinct := counts(t, dsn, schema)
	t.Logf("%d connections cut; %d batches failed and were tried again; %d events written", cut.Load(), h.Stats().Failures, rows)
	if cut.Load() == 0 || h.Stats().Failures == 0 {
		t.Fatalf("the test cut %d connections and %d batches failed: it tested no outage", cut.Load(), h.Stats().Failures)
	}
	if rows != want || distinct != want {
		t.Fatalf("history: %d rows, %d distinct; the log holds %d", rows, distinct, want)
	}
	log := logConnections(t, st)
	sameConnections(t, connTable(t, dsn, schema), log)
	if len(log) != 450 {
		t.Fatalf("the log describes %d connections, want 450", len(log))
	}
}

func sep(dsn string) string {
	for _, c := range dsn {
		if c == '?' {
			return "&"
		}
	}
	return "?"
}

// A log that no longer holds the events past the sink's cursor (its
// retention is 10 events here) is a gap: recorded, counted, and the sink
// goes on with what the log holds.
func TestAGapIsRecorded(t *testing.T) {
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	h := openHistory(t, dsn, Options{Schema: schema})
	st := inmem.New(inmem.Options{EventRetention: 10})
	m := engine(t, st)
	for i := range 30 {
		if _, err := m.Create(context.Background(), sessiond.CreateRequest{Subject: fmt.Sprint("user-", i)}); err != nil {
			t.Fatal(err)
		}
	}
	n, pos, err := h.Step(context.Background(), st)
	if err != nil || n != 10 {
		t.Fatalf("Step = %d, %v; want the 10 events the log holds", n, err)
	}
	if pos.Seq(0) != 30 || h.Stats().Gaps != 1 {
		t.Fatalf("after the step: cursor %v, %d gaps; want 30 and 1", pos, h.Stats().Gaps)
	}
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var after, next int64
	if err := conn.QueryRow(context.Background(), "SELECT after_seq, next_seq FROM "+schema+".sessiond_history_gaps").Scan(&after, &next); err != nil {
		t.Fatal(err)
	}
	if after != 0 || next != 21 {
		t.Fatalf("gap recorded from %d to %d; want after 0, next 21 (events 1-20 are gone)", after, next)
	}
}

// A cursor set back by hand (an operator replaying the log) makes the
// sink read events, and connections, the tables hold already: the batch's
// COPY fails on the primary key, and the batch is written again keeping
// the rows there (a connection's close still fills in its row). The sink
// goes on; nothing is written twice.
func TestACursorSetBackWritesNothingTwice(t *testing.T) {
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	h := openHistory(t, dsn, Options{Schema: schema, Batch: 20})
	st := inmem.New(inmem.Options{})
	m := engine(t, st)
	ctx := context.Background()
	var open []string
	for i := range 15 { // 30 events: created, connected
		c, err := m.Create(ctx, sessiond.CreateRequest{Subject: fmt.Sprint("user-", i)})
		if err != nil {
			t.Fatal(err)
		}
		a, err := m.ConnectTo(ctx, c.Session.ID, sessiond.ConnectRequest{Kind: "vnc", ClientIP: "198.51.100.7"})
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, a.Conn.ID)
	}
	steps(t, h, st)
	if _, err := h.pool.Exec(ctx, "UPDATE "+schema+".sessiond_history_cursor SET position = '10'"); err != nil {
		t.Fatal(err)
	}
	for _, id := range open[:10] { // 10 events: connection_closed
		if err := m.DisconnectWith(ctx, id, sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: 1000}); err != nil {
			t.Fatal(err)
		}
	}
	written := 0
	for { // batches of 20 past 10: 20 events there already, then 10 that are not
		n, _, err := h.Step(ctx, st)
		if err != nil {
			t.Fatalf("Step after the cursor was set back: %v", err)
		}
		if n == 0 {
			break
		}
		written += n
	}
	if written != 30 {
		t.Fatalf("the sink went over %d events after the cursor was set back to 10 of 40; want 30", written)
	}
	if rows, distinct := counts(t, dsn, schema); rows != 40 || distinct != 40 {
		t.Fatalf("%d rows, %d distinct events; want each of the 40 once", rows, distinct)
	}
	sameConnections(t, connTable(t, dsn, schema), logConnections(t, st))
}

// readCounter counts a store's Events reads (one per batch of the sink),
// keeping its EventWaiter.
type readCounter struct {
	*inmem.Store
	reads atomic.Int64
}

func (c *readCounter) Events(ctx context.Context, after sessiond.Cursor, limit int) ([]sessiond.Event, error) {
	c.reads.Add(1)
	return c.Store.Events(ctx, after, limit)
}

// A trickle of events, one commit every 5 ms for a second, is written in
// a few batches (one per Linger), not one per commit (about 200); and all
// of it.
func TestATrickleIsWrittenInFewBatches(t *testing.T) {
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	st := &readCounter{Store: inmem.New(inmem.Options{})}
	m := engine(t, st.Store)
	h := openHistory(t, dsn, Options{Schema: schema, Linger: 250 * time.Millisecond})
	follow(t, h, st)
	created := 0
	for start := time.Now(); time.Since(start) < time.Second; created++ {
		if _, err := m.Create(context.Background(), sessiond.CreateRequest{Subject: fmt.Sprint("user-", created)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond) // the trickle's pace
	}
	sessiondtest.Eventually(t, fmt.Sprintf("the %d events written", created), func() bool { return h.Stats().Written >= int64(created) })
	// A second at one batch per 250 ms: about 5; 12 allows for the
	// batches while the sink starts and the last one.
	if reads := st.reads.Load(); reads > 12 {
		t.Fatalf("%d events were read in %d batches; want about one per Linger (250 ms) of the second they took", created, reads)
	}
	if rows, distinct := counts(t, dsn, schema); rows != created || distinct != created {
		t.Fatalf("%d rows, %d distinct; want the %d events once", rows, distinct, created)
	}
}

// Days past the retention are dropped with their partition, of events and
// of connections (by the day they opened).
func TestPruneDropsOldDays(t *testing.T) {
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	h := openHistory(t, dsn, Options{Schema: schema, Retention: 48 * time.Hour})
	st := inmem.New(inmem.Options{})
	now := time.Now().UTC()
	clock := sessiondtest.NewManualClock(now.Add(-5 * 24 * time.Hour))
	m := engineWith(t, sessiond.Config{Store: st, Node: "test", Clock: clock})
	attach := func(subject string) {
		t.Helper()
		c, err := m.Create(context.Background(), sessiond.CreateRequest{Subject: subject})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.ConnectTo(context.Background(), c.Session.ID, sessiond.ConnectRequest{Kind: "http"}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 { // days -5, -4, -3 ... then today
		attach("old")
		clock.Jump(24 * time.Hour)
	}
	clock.Jump(2 * 24 * time.Hour)
	attach("new")
	if _, _, err := h.Step(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	before, _ := counts(t, dsn, schema)
	if err := h.Prune(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	after, _ := counts(t, dsn, schema)
	if before < 8 || after != 2 {
		t.Fatalf("rows before pruning %d, after %d; want the 6 events of 3 to 5 days ago gone and today's 2 kept", before, after)
	}
	if conns := connTable(t, dsn, schema); len(conns) != 1 {
		t.Fatalf("%d connections after pruning, want today's one", len(conns))
	}
}

// A session's and a subject's history read back by pages, in order, with
// the time bounds applied; a foreign cursor is refused.
func TestReadHistory(t *testing.T) {
	dsn := testDSN(t)
	schema := testSchema(t, dsn)
	h := openHistory(t, dsn, Options{Schema: schema})
	st := inmem.New(inmem.Options{})
	m := engine(t, st)
	ctx := context.Background()
	var ids []string
	for range 5 {
		c, err := m.Create(ctx, sessiond.CreateRequest{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.Session.ID)
	}
	if err := m.Revoke(ctx, ids[0], ""); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, sessiond.CreateRequest{Subject: "bob"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := h.Step(ctx, st); err != nil {
		t.Fatal(err)
	}
	one, err := h.SessionHistory(ctx, ids[0], sessiond.HistoryQuery{})
	if err != nil || len(one.Events) != 3 || one.Next != "" {
		t.Fatalf("the revoked session's history: %+v, %v; want created, ending, ended", one, err)
	}
	for i, typ := range []sessiond.EventType{sessiond.EventCreated, sessiond.EventEnding, sessiond.EventEnded} {
		if one.Events[i].Type != typ || one.Events[i].SessionID != ids[0] {
			t.Fatalf("event %d of the session's history: %+v, want %s", i, one.Events[i], typ)
		}
	}
	var all []sessiond.Event
	q := sessiond.HistoryQuery{Limit: 3}
	for pages := 0; ; pages++ {
		p, err := h.SubjectHistory(ctx, "alice", q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, p.Events...)
		if p.Next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("the pages do not end")
		}
		q.Cursor = p.Next
	}
	if len(all) != 7 { // 5 created, 1 ending, 1 ended
		t.Fatalf("alice's history by pages of 3: %d events, want 7", len(all))
	}
	future, err := h.SubjectHistory(ctx, "alice", sessiond.HistoryQuery{Since: time.Now().Add(time.Hour)})
	if err != nil || len(future.Events) != 0 {
		t.Fatalf("alice's history from an hour on: %+v, %v; want none", future, err)
	}
	if _, err := h.SubjectHistory(ctx, "alice", sessiond.HistoryQuery{Cursor: "c1.bogus"}); !errors.Is(err, sessiond.ErrInvalidArgument) {
		t.Fatalf("a foreign cursor: %v; want invalid_argument", err)
	}
}
