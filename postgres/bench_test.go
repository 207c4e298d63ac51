package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/internal/pgtest"
)

// BenchmarkHistoryAppend measures how fast the sink copies a store's log
// into PostgreSQL: b.N events recorded first (creates, through the
// engine, in an in-memory store), then copied by Step in batches of 1,000
// (one transaction each), timed alone. It reports events/s.
//
//	SESSIOND_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test ./postgres -run '^$' -bench HistoryAppend -benchtime 200000x
func BenchmarkHistoryAppend(b *testing.B) {
	benchAppend(b, func(ctx context.Context, m *sessiond.Manager) int {
		for i := range b.N {
			if _, err := m.Create(ctx, sessiond.CreateRequest{Subject: fmt.Sprint("user-", i)}); err != nil {
				b.Fatal(err)
			}
		}
		return b.N
	})
}

// BenchmarkHistoryAppendConnections is BenchmarkHistoryAppend with the
// events of connections: sessions of ten connections each, every one
// attached and closed (a connected and a connection_closed event, with
// their details), so that nearly every event also writes a row of
// sessiond_connections (a close in the same batch as its open folds into
// one insert; one in the next batch updates the row). It reports
// events/s.
//
//	SESSIOND_TEST_POSTGRES_URL=... go test ./postgres -run '^$' -bench HistoryAppendConnections -benchtime 200000x
func BenchmarkHistoryAppendConnections(b *testing.B) {
	benchAppend(b, func(ctx context.Context, m *sessiond.Manager) int {
		events := 0
		for i := 0; events < b.N; i++ {
			c, err := m.Create(ctx, sessiond.CreateRequest{Subject: fmt.Sprint("user-", i)})
			if err != nil {
				b.Fatal(err)
			}
			events++
			for j := 0; j < 10 && events < b.N; j++ {
				a, err := m.ConnectTo(ctx, c.Session.ID, sessiond.ConnectRequest{Kind: "vnc", ClientIP: "198.51.100.7", UserAgent: "TigerVNC/1.13.1"})
				if err != nil {
					b.Fatal(err)
				}
				if err := m.DisconnectWith(ctx, a.Conn.ID, sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: 1000}); err != nil {
					b.Fatal(err)
				}
				events += 2
			}
		}
		return events
	})
}

// benchAppend records events through an engine on an in-memory store
// (record returns how many), then times the sink alone copying them into
// a schema of its own, in batches of 1,000, and reports events/s.
func benchAppend(b *testing.B, record func(context.Context, *sessiond.Manager) int) {
	ctx := context.Background()
	dsn := pgtest.DSN(b)
	schema := fmt.Sprintf("b_%d", time.Now().UnixNano())
	h, err := Open(ctx, dsn, Options{Schema: schema, Batch: 1000})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_, _ = h.pool.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
		h.Close()
	}()
	// Room for all that record makes (b.N, or one more).
	st := inmem.New(inmem.Options{EventRetention: b.N + 1000})
	m := engineWith(b, sessiond.Config{Store: st, Node: "bench"})
	events := record(ctx, m)
	b.ResetTimer()
	written := 0
	for written < events {
		n, _, err := h.Step(ctx, st)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatalf("the log ran dry after %d of %d events", written, events)
		}
		written += n
	}
	b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "events/s")
}
