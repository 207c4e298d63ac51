package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/sessiondtest"
)

// PostgreSQL itself restarts, twice, while sessions are made and
// connections come and go: every event arrives once, every connection is
// one row closed as the log says, and the sink felt the outages. The
// server is a throwaway one (internal/pgtest): the shared test server
// cannot be restarted under the other tests.
func TestPostgreSQLRestartsUnderLoad(t *testing.T) {
	srv := pgtest.Start(t)
	h := openHistory(t, srv.DSN, Options{Batch: 20, Poll: 50 * time.Millisecond})
	st := inmem.New(inmem.Options{})
	m := engine(t, st)
	follow(t, h, st)
	ctx := context.Background()
	var open []string
	for i := range 600 {
		c, err := m.Create(ctx, sessiond.CreateRequest{Subject: fmt.Sprint("user-", i%50)})
		if err != nil {
			t.Fatal(err)
		}
		if i%4 != 3 {
			a, err := m.ConnectTo(ctx, c.Session.ID, sessiond.ConnectRequest{Kind: "vnc", ClientIP: "192.0.2.7", UserAgent: "viewer/1"})
			if err != nil {
				t.Fatal(err)
			}
			open = append(open, a.Conn.ID)
		}
		if i%5 == 0 {
			if err := m.Revoke(ctx, c.Session.ID, ""); err != nil {
				t.Fatal(err)
			}
		}
		if len(open) > 20 {
			if err := m.Disconnect(ctx, open[0]); err != nil {
				t.Fatal(err)
			}
			open = open[1:]
		}
		if i == 200 || i == 400 {
			srv.Restart(t) // while the sink writes
		}
	}
	want := logLen(t, st)
	// After failures the sink pauses (up to 5s) before it tries again.
	sessiondtest.Eventually(t, "the history holds the whole log", func() bool {
		rows, _ := counts(t, srv.DSN, "public")
		return rows >= want
	})
	rows, distinct := counts(t, srv.DSN, "public")
	t.Logf("PostgreSQL restarted twice; %d batches failed and were tried again; %d events written", h.Stats().Failures, rows)
	if rows != want || distinct != want {
		t.Fatalf("history: %d rows, %d distinct; the log holds %d: want each once", rows, distinct, want)
	}
	if h.Stats().Failures == 0 {
		t.Fatal("no batch failed: the restarts came between batches, and the test tested no outage")
	}
	sameConnections(t, connTable(t, srv.DSN, "public"), logConnections(t, st))
}
