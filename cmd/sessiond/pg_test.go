package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/pgtest"
)

// testHistory points cfg's history at the PostgreSQL named by
// SESSIOND_TEST_POSTGRES_URL (pgtest.DSN), in a schema of its own that
// is dropped when the test ends, and returns a connection to read it.
func testHistory(t *testing.T, cfg *Config) (admin *pgx.Conn, schema string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema = "t_" + hex.EncodeToString(b[:])
	admin, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE")
		_ = admin.Close(context.Background())
	})
	cfg.History, cfg.historySchema = dsn, schema
	return admin, schema
}
