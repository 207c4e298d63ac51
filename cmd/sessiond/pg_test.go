package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// testHistory points cfg's history at the PostgreSQL named by
// SESSIOND_TEST_POSTGRES_URL, in a schema of its own that is dropped when
// the test ends, and returns a connection to read it. Without the
// variable the test is skipped, or fails under CI.
func testHistory(t *testing.T, cfg *Config) (admin *pgx.Conn, schema string) {
	t.Helper()
	dsn := os.Getenv("SESSIOND_TEST_POSTGRES_URL")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SESSIOND_TEST_POSTGRES_URL is not set, and under CI a skip is a failure")
		}
		t.Skip("SESSIOND_TEST_POSTGRES_URL is not set")
	}
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
