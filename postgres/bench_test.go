package postgres

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
)

// BenchmarkHistoryAppend measures how fast the sink copies a store's log
// into PostgreSQL: b.N events recorded first (creates, through the
// engine, in an in-memory store), then copied by Step in batches of 1,000
// (one transaction each), timed alone. It reports events/s.
//
//	SESSIOND_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//	  go test ./postgres -run '^$' -bench HistoryAppend -benchtime 200000x
func BenchmarkHistoryAppend(b *testing.B) {
	dsn := benchDSN(b)
	schema := fmt.Sprintf("b_%d", time.Now().UnixNano())
	h, err := Open(context.Background(), dsn, Options{Schema: schema, Batch: 1000})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		_, _ = h.pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
		h.Close()
	}()
	st := inmem.New(inmem.Options{EventRetention: b.N + 1000})
	m, err := sessiond.New(sessiond.Config{Store: st, Node: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	for i := range b.N {
		if _, err := m.Create(context.Background(), sessiond.CreateRequest{Subject: fmt.Sprint("user-", i)}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	written := 0
	for written < b.N {
		n, _, err := h.Step(context.Background(), st)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			b.Fatalf("the log ran dry after %d of %d events", written, b.N)
		}
		written += n
	}
	b.ReportMetric(float64(written)/b.Elapsed().Seconds(), "events/s")
}

func benchDSN(b *testing.B) string {
	dsn := os.Getenv("SESSIOND_TEST_POSTGRES_URL")
	if dsn == "" {
		b.Skip("SESSIOND_TEST_POSTGRES_URL is not set")
	}
	return dsn
}
