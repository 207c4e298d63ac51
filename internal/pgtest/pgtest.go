// Package pgtest gives tests their PostgreSQL: the shared test server
// named by SESSIOND_TEST_POSTGRES_URL (DSN), or a throwaway server for
// tests that must stop or restart one, which the shared one cannot be
// under the other tests (Start): initdb into a temporary
// directory and pg_ctl on a free port, with the binaries of the machine's
// PostgreSQL installation. As root (a container, CI), the server runs as
// the postgres user, as initdb requires.
package pgtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// DSN returns the shared test server's URL, SESSIOND_TEST_POSTGRES_URL
// (postgres://postgres@127.0.0.1:5432/test?sslmode=disable on the
// project's machines). Without it the test is skipped, except under CI
// (CI=true), where a skip would go unnoticed: there it fails.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SESSIOND_TEST_POSTGRES_URL")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("SESSIOND_TEST_POSTGRES_URL is not set, and under CI a skip is a failure")
		}
		t.Skip("SESSIOND_TEST_POSTGRES_URL is not set (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	return dsn
}

// Server is a running throwaway PostgreSQL server.
type Server struct {
	// DSN connects to its database postgres as the superuser postgres
	// (trust authentication on 127.0.0.1).
	DSN    string
	bin    string
	data   string
	port   int
	runas  []string // the command prefix that runs as the postgres user, if root
	logDir string
}

// Start starts a server for the test and stops it when the test ends. It
// skips the test when PostgreSQL's server binaries are not installed,
// except under CI (CI=true), where that fails it.
func Start(t *testing.T) *Server {
	t.Helper()
	bin, err := binDir()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: %v (apt-get install postgresql)", err)
		}
		t.Skipf("pgtest: %v", err)
	}
	s := &Server{bin: bin}
	root, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	s.data, s.logDir = filepath.Join(root, "data"), root
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("pgtest: running as root needs a postgres user to run the server as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(root, uid, gid); err != nil {
			t.Fatal(err)
		}
		s.runas = []string{"runuser", "-u", "postgres", "--"}
	}
	if out, err := s.run("initdb", "-D", s.data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	if s.port, err = freePort(); err != nil {
		t.Fatal(err)
	}
	s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	s.ctl(t, "start")
	t.Cleanup(func() { _, _ = s.run("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop") })
	return s
}

// Restart stops the server (fast: open connections are cut, transactions
// in flight roll back) and starts it again, waiting for each.
func (s *Server) Restart(t *testing.T) {
	t.Helper()
	s.ctl(t, "restart")
}

func (s *Server) ctl(t *testing.T, action string) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off", s.port, s.logDir)
	if out, err := s.run("pg_ctl", "-D", s.data, "-l", filepath.Join(s.logDir, "server.log"), "-o", opts, "-m", "fast", "-w", action); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.logDir, "server.log"))
		t.Fatalf("pgtest: pg_ctl %s: %v\n%s\n%s", action, err, out, log)
	}
}

func (s *Server) run(name string, args ...string) ([]byte, error) {
	argv := append(slices.Clone(s.runas), filepath.Join(s.bin, name))
	argv = append(argv, args...)
	return exec.Command(argv[0], argv[1:]...).CombinedOutput() //nolint:gosec // G204: the installation's own binaries
}

// binDir finds the directory of initdb and pg_ctl: on PATH, or where
// Debian installs them (/usr/lib/postgresql/<version>/bin, the newest).
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.Reverse(dirs)
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, pg_ctl) found")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close() //nolint:errcheck // a listener closed to free its port
	return l.Addr().(*net.TCPAddr).Port, nil
}
