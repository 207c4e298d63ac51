package postgres

import (
	"strings"
	"testing"
)

// CheckDSN accepts what Open can connect with and refuses the rest
// without connecting, and without showing the password.
func TestCheckDSN(t *testing.T) {
	for _, dsn := range []string{
		"postgres://sessiond@127.0.0.1:5432/sessiond?sslmode=disable",
		"postgresql://sessiond:hunter2@db.invalid/sessiond",
		"host=db.invalid user=sessiond dbname=sessiond",
	} {
		if err := CheckDSN(dsn); err != nil {
			t.Errorf("CheckDSN(%q): %v", dsn, err)
		}
	}
	for _, dsn := range []string{
		"postgres://sessiond:hunter2@db.invalid:port/sessiond",
		"postgres://sessiond:hunter2@db.invalid/sessiond?sslmode=sometimes",
	} {
		err := CheckDSN(dsn)
		if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.HasPrefix(err.Error(), "postgres: ") {
			t.Errorf("CheckDSN(%q) = %v; want an error without the password", dsn, err)
		}
	}
}
