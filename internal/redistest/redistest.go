// Package redistest starts throwaway Redis deployments for tests: a
// standalone server, a three-master cluster, a master behind a sentinel.
// Each is owned by the test that asked for it: its servers run from
// redis-server on free ports of 127.0.0.1, keep their files under
// t.TempDir(), persist nothing, and are killed (their whole process group)
// by t.Cleanup, whether the test passed or failed. A test binary that dies
// without running its cleanups takes its servers with it (they are started
// with a parent-death signal).
//
// Each helper returns the URL that package redis's ParseURL reads (see
// docs/redis.md), or a handle on the servers for tests that kill and
// restart them.
//
// Without redis-server (or redis-cli, for a cluster) on the PATH, the
// helpers skip the test, except under CI=true, where they fail it: a test
// skipped in CI is a test that did not run.
//
// With SESSIOND_TEST_REDIS_URL set (a redis:// URL of a standalone server
// you run), Standalone uses that server instead of starting one: see
// Standalone.
package redistest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// StartTimeout bounds the wait for a server to answer after it starts
// (and, for a cluster or a sentinel, for the deployment to form): generous,
// for a loaded machine running the tests with -race. A server that is up
// ends the wait at once.
const StartTimeout = 15 * time.Second

// portTries is how many sets of free ports a server is tried on before
// its start is given up: a port found free may be taken by another
// process before the server binds it.
const portTries = 5

// Config is what a standalone server is started with. The zero value is a
// plain server without a password.
type Config struct {
	// Password is required of clients (requirepass). Empty: none.
	Password string
	// TLS makes the server listen over TLS only, with a certificate
	// authority, a server certificate (for 127.0.0.1 and localhost) and a
	// client certificate made for the test; the server requires the
	// client certificate (tls-auth-clients yes). The URL is a rediss://
	// URL naming the files (tls_ca, tls_cert, tls_key).
	TLS bool
	// Durable keeps an append-only file synced on every write
	// (appendfsync always): what the server acknowledged survives Kill
	// and Restart. Otherwise the server keeps nothing on disk.
	Durable bool
}

// kind is what a Server runs as.
type kind uint8

const (
	kindStandalone kind = iota
	kindClusterNode
	kindSentinel
)

// Server is one redis-server process that a test owns. Its methods must be
// called from the test's goroutine (they fail the test on errors).
type Server struct {
	t        testing.TB
	name     string
	kind     kind
	cfg      Config
	dir      string
	confPath string
	logPath  string
	tls      *tlsFiles
	monitor  *monitor // kindSentinel: the master it watches

	mu      sync.Mutex
	port    int // the port clients use (tls-port with TLS)
	busPort int // kindClusterNode: the cluster bus's port
	proc    *process
}

// monitor is what a sentinel watches.
type monitor struct {
	name     string // master set name
	addr     string // master's host:port
	password string // master's password
}

// Standalone returns the URL of a standalone Redis for the test.
//
// If SESSIOND_TEST_REDIS_URL is set, it is a redis://[user:password@]host:port
// URL of a server that the test shares with others: Standalone claims one
// of its databases from 1 up (never 0) that no other test holds (a lease
// key in that database, held for at most 10 minutes), empties it, and
// returns the URL with that database; t.Cleanup empties it again, which
// also frees it. Tests given such a database must not FLUSHDB or FLUSHALL.
// Otherwise, Standalone starts a server (StartServer).
func Standalone(t testing.TB) string {
	t.Helper()
	if raw := os.Getenv(EnvURL); raw != "" {
		return shared(t, raw)
	}
	return StartServer(t, Config{}).URL()
}

// StartServer starts a standalone server that the test owns, on a free
// port, and returns once it answers PING. Unlike Standalone it never uses
// SESSIOND_TEST_REDIS_URL: a test that kills or restarts its server needs
// one of its own.
func StartServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	requireBinaries(t, "redis-server")
	s := newServer(t, "redis", kindStandalone, cfg)
	if cfg.TLS {
		var err error
		if s.tls, err = makeTLSFiles(s.dir); err != nil {
			t.Fatalf("redistest: making TLS certificates: %v", err)
		}
	}
	s.startOnFreePorts()
	return s
}

// newServer prepares a server (its directory, its cleanup) without
// starting it.
func newServer(t testing.TB, name string, k kind, cfg Config) *Server {
	t.Helper()
	dir := t.TempDir()
	s := &Server{
		t: t, name: name, kind: k, cfg: cfg, dir: dir,
		confPath: filepath.Join(dir, "redis.conf"),
		logPath:  filepath.Join(dir, "redis.log"),
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("redistest: stopping %s: %v", s.name, err)
		}
		if t.Failed() {
			t.Logf("redistest: %s (%s) log, last lines:\n%s", s.name, s.Addr(), lastLines(logTail(s.logPath), 20))
		}
	})
	return s
}

// requireBinaries skips the test if a binary is missing, or fails it
// under CI=true.
func requireBinaries(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			msg := fmt.Sprintf("redistest: %s not found (%v): install Redis (Debian: apt-get install redis-server)", name, err)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg + "; CI must run this test, not skip it")
			}
			t.Skip(msg)
		}
	}
}

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// URL returns the URL that reaches the server as a standalone server:
// redis://[:password@]127.0.0.1:port, or rediss://... with the TLS files.
func (s *Server) URL() string {
	scheme, q := "redis", url.Values{}
	if s.tls != nil {
		scheme = "rediss"
		q.Set("tls_ca", s.tls.caFile)
		q.Set("tls_cert", s.tls.clientCertFile)
		q.Set("tls_key", s.tls.clientKeyFile)
	}
	u := url.URL{Scheme: scheme, Host: s.Addr()}
	if s.cfg.Password != "" {
		u.User = url.UserPassword("", s.cfg.Password)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// Pid returns the server process's id, or 0 if it is not running.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil || s.proc.exited() {
		return 0
	}
	return s.proc.cmd.Process.Pid
}

// LogTail returns the last lines of the server's log.
func (s *Server) LogTail() string { return logTail(s.logPath) }

// Kill kills the server with SIGKILL (its whole process group) and waits
// until it has exited. Its data is gone: nothing is persisted. Killing a
// server that is not running does nothing.
func (s *Server) Kill() {
	s.t.Helper()
	if err := s.stop(); err != nil {
		s.t.Fatalf("redistest: killing %s: %v", s.name, err)
	}
}

// Restart kills the server if it is running, starts it again on the same
// port with the same configuration (a cluster node keeps its identity and
// slots, a sentinel its state; the data is gone), and returns once it
// answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	if err := s.launch(); err != nil {
		s.t.Fatalf("redistest: restarting %s on %s: %v", s.name, s.Addr(), err)
	}
}

func (s *Server) stop() error {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.kill()
}

// startOnFreePorts starts the server on free ports, trying other ports if
// the ones it was given were taken meanwhile. It fails the test if the
// server does not start.
func (s *Server) startOnFreePorts() {
	s.t.Helper()
	var err error
	for range portTries {
		if err = s.pickPorts(); err != nil {
			break
		}
		if err = s.writeConfig(); err != nil {
			break
		}
		if err = s.launch(); !errors.Is(err, errPortTaken) {
			break
		}
		s.appendLog("redistest: port taken; trying other ports")
	}
	if err != nil {
		s.t.Fatalf("redistest: starting %s: %v", s.name, err)
	}
}

func (s *Server) pickPorts() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	bus := 0
	if s.kind == kindClusterNode {
		if bus, err = freePort(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.port, s.busPort = port, bus
	s.mu.Unlock()
	return nil
}

// errPortTaken is launch's error when the server could not bind its port.
var errPortTaken = errors.New("port taken")

// launch starts the server from its configuration file and waits until it
// answers PING, or fails with the log's tail.
func (s *Server) launch() error {
	args := []string{s.confPath}
	if s.kind == kindSentinel {
		args = append(args, "--sentinel")
	}
	s.appendLog(fmt.Sprintf("redistest: starting redis-server %s", strings.Join(args, " ")))
	p, err := startProcess("redis-server", args, s.logPath)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	if err := s.waitReady(p); err != nil {
		killErr := p.kill()
		tail := logTail(s.logPath)
		if strings.Contains(tail, "Address already in use") {
			return fmt.Errorf("%w: %s", errPortTaken, s.Addr())
		}
		return fmt.Errorf("%v (kill: %v); log %s, last lines:\n%s", err, killErr, s.logPath, lastLines(tail, 30))
	}
	return nil
}

// waitReady polls the server with PING until it answers PONG, it exits,
// or StartTimeout passes.
func (s *Server) waitReady(p *process) error {
	deadline := time.Now().Add(StartTimeout)
	var last error
	for poll := time.Millisecond; ; poll = min(2*poll, 50*time.Millisecond) {
		if p.exited() {
			return fmt.Errorf("redis-server exited: %v", p.err)
		}
		reply, err := s.command("PING")
		if err == nil && reply == "PONG" {
			return nil
		}
		last = cmpOr(err, fmt.Errorf("PING answered %v", reply))
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG from %s within %v: last %v", s.Addr(), StartTimeout, last)
		}
		select {
		case <-p.done:
		case <-time.After(poll):
		}
	}
}

// command runs one command on the server, authenticated.
func (s *Server) command(args ...string) (any, error) {
	var tc *tls.Config
	if s.tls != nil {
		tc = s.tls.clientConfig
	}
	return command(s.Addr(), tc, s.cfg.Password, args...)
}

// writeConfig writes the server's configuration file for its ports.
func (s *Server) writeConfig() error {
	s.mu.Lock()
	port, bus := s.port, s.busPort
	s.mu.Unlock()
	var b strings.Builder
	line := func(words ...string) {
		for i, w := range words {
			if i > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(quote(w))
		}
		b.WriteByte('\n')
	}
	line("bind", "127.0.0.1")
	line("dir", s.dir)
	line("logfile", "") // standard output, which goes to the log file
	line("daemonize", "no")
	if s.cfg.Password != "" {
		line("requirepass", s.cfg.Password)
	}
	if s.kind == kindSentinel {
		m := s.monitor
		line("port", strconv.Itoa(port))
		line("sentinel", "monitor", m.name, hostOf(m.addr), portOf(m.addr), "1")
		if m.password != "" {
			line("sentinel", "auth-pass", m.name, m.password)
		}
		line("sentinel", "down-after-milliseconds", m.name, "1000")
		line("sentinel", "failover-timeout", m.name, "5000")
		return os.WriteFile(s.confPath, []byte(b.String()), 0o600)
	}
	line("save", "")
	if s.cfg.Durable {
		line("appendonly", "yes")
		line("appendfsync", "always")
	} else {
		line("appendonly", "no")
	}
	if s.tls != nil {
		line("port", "0")
		line("tls-port", strconv.Itoa(port))
		line("tls-cert-file", s.tls.serverCertFile)
		line("tls-key-file", s.tls.serverKeyFile)
		line("tls-ca-cert-file", s.tls.caFile)
		line("tls-auth-clients", "yes")
	} else {
		line("port", strconv.Itoa(port))
	}
	if s.kind == kindClusterNode {
		line("cluster-enabled", "yes")
		line("cluster-config-file", filepath.Join(s.dir, "nodes.conf"))
		line("cluster-node-timeout", "2000")
		line("cluster-port", strconv.Itoa(bus))
	}
	return os.WriteFile(s.confPath, []byte(b.String()), 0o600)
}

// appendLog writes a line of the helper's own into the server's log, so
// that the log tells what the helper did between the server's lines.
func (s *Server) appendLog(msg string) {
	f, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600) //nolint:gosec // G304: under the test's temp dir
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%s %s\n", time.Now().Format("15:04:05.000"), msg)
}

// quote quotes a word of a Redis configuration file.
func quote(w string) string {
	if w != "" && !strings.ContainsAny(w, " \t\r\n\"'\\") {
		return w
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`)
	return `"` + r.Replace(w) + `"`
}

func hostOf(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }
func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// pollUntil calls check until it returns nil or StartTimeout passes, and
// returns check's last error then.
func pollUntil(check func() error) error {
	deadline := time.Now().Add(StartTimeout)
	for poll := time.Millisecond; ; poll = min(2*poll, 50*time.Millisecond) {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", StartTimeout, err)
		}
		time.Sleep(poll)
	}
}
