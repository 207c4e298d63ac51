package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"go.yaml.in/yaml/v3"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/sessiondtest"
)

// These tests drive the command the way a new user would: start the
// server, then talk to it with the admin commands, in-process.

// syncBuffer is a bytes.Buffer safe for a server writing logs while a test
// reads them.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// noEnv is an empty environment, so that the developer's SESSIOND_*
// variables never leak into a test.
func noEnv(string) string { return "" }

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// testServer is a server started with openServer and run in a goroutine.
type testServer struct {
	s    *server
	addr string
	key  string
	logs *syncBuffer
	url  string       // http://addr, or https://addr with TLS
	hc   *http.Client // trusts the server's certificate

	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// stop cancels the server's context and waits for run to return (at most
// 20s); it returns run's error. It is idempotent.
func (ts *testServer) stop(t *testing.T) error {
	t.Helper()
	ts.once.Do(func() {
		ts.cancel()
		select {
		case ts.err = <-ts.done:
		case <-time.After(20 * time.Second):
			ts.err = errors.New("run did not return within 20s of cancel")
		}
	})
	return ts.err
}

func (ts *testServer) client() *client.Client {
	c := client.New(ts.url, ts.key)
	c.HTTP = ts.hc
	return c
}

// testConfig is the default configuration on a free port with a fresh
// data directory.
func testConfig(t *testing.T) Config {
	cfg := defaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	return cfg
}

// startServer opens a server with cfg and runs it until the test ends; it
// returns once /readyz answers 200.
func startServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	return startServerAt(t, cfg, (*server).URL)
}

// startServerAt is startServer for a server reached at base(s) rather
// than at its listen address.
func startServerAt(t *testing.T, cfg Config, base func(*server) string) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := openServer(ctx, cfg, logs)
	if err != nil {
		cancel()
		t.Fatalf("openServer: %v\nlogs:\n%s", err, logs)
	}
	ts := &testServer{s: s, addr: s.Addr(), key: s.cfg.APIKey, logs: logs, cancel: cancel, done: make(chan error, 1),
		url: base(s), hc: &http.Client{Timeout: 10 * time.Second}}
	if cfg.TLS.on() {
		if ts.hc, err = s.cfg.clientTLS(); err != nil {
			cancel()
			t.Fatal(err)
		}
	}
	go func() { ts.done <- s.run(ctx) }()
	t.Cleanup(func() {
		if err := ts.stop(t); err != nil {
			t.Errorf("server run: %v", err)
		}
		if t.Failed() {
			t.Logf("server logs:\n%s", logs)
		}
	})
	waitReadyAt(t, ts.hc, ts.url)
	return ts
}

// waitReady waits until /readyz answers 200.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	waitReadyAt(t, &http.Client{Timeout: time.Second}, "http://"+addr)
}

// serveInProcess runs `sessiond serve` with args in this process until the
// test ends or stop is called, finding the address it chose in its JSON
// log, and returns that address once it listens (once /readyz answers, over
// plain HTTP). scheme is what the server announced: "http" or "https".
func serveInProcess(t *testing.T, args ...string) (addr, scheme string, logs *syncBuffer, stop func() int) {
	t.Helper()
	logs = &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...), io.Discard, logs, noEnv)
	}()
	code, stopped := 0, false
	stop = func() int {
		if !stopped {
			stopped = true
			cancel()
			select {
			case code = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("serve did not return within 20s of cancel")
			}
		}
		return code
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("logs:\n%s", logs)
		}
	})
	urlRE := regexp.MustCompile(`"msg":"sessiond listening","url":"(https?)://([0-9.:]+)"`)
	sessiondtest.Eventually(t, "serve to log its address", func() bool {
		if m := urlRE.FindStringSubmatch(logs.String()); m != nil {
			scheme, addr = m[1], m[2]
			return true
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited with %d before listening:\n%s", code, logs)
		default:
		}
		return false
	})
	if scheme == "http" {
		waitReady(t, addr)
	}
	return addr, scheme, logs, stop
}

// waitReadyAt waits until base's /readyz answers 200 to hc.
func waitReadyAt(t *testing.T, hc *http.Client, base string) {
	t.Helper()
	sessiondtest.Eventually(t, base+"/readyz to answer 200", func() bool {
		resp, err := hc.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// cli runs the command in-process and returns its exit code and output.
func cli(t *testing.T, getenv func(string) string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code = run(ctx, args, &out, &errb, getenv)
	return code, out.String(), errb.String()
}

// mustCLI runs the command and fails the test unless it exits 0.
func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := cli(t, noEnv, args...)
	if code != 0 {
		t.Fatalf("sessiond %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func create(t *testing.T, c *client.Client, subject string) *client.CreateResponse {
	t.Helper()
	r, err := c.Create(context.Background(), client.CreateRequest{Subject: subject})
	if err != nil {
		t.Fatalf("create for %s: %v", subject, err)
	}
	return r
}

// hasField reports whether out has a "name:  value" line, as `sessions
// show` and `status` print them.
func hasField(out, name, value string) bool {
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `:\s+` + regexp.QuoteMeta(value) + `\s*$`)
	return re.MatchString(out)
}

func TestAPIKeyGeneratedSavedAndReused(t *testing.T) {
	cfg := testConfig(t)
	ts := startServer(t, cfg)
	keyFile := filepath.Join(cfg.DataDir, "api_key")

	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatalf("the generated API key was not saved: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %v, want 0600", keyFile, perm)
	}
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" || key != ts.key {
		t.Fatalf("saved key %q, server uses %q", key, ts.key)
	}
	if ts.s.keySource != "generated" {
		t.Errorf("key source %q on first start, want generated", ts.s.keySource)
	}
	if len(key) < 40 {
		t.Errorf("generated key %q looks too short for 256 random bits", key)
	}

	// The key works; another does not.
	ctx := context.Background()
	created := create(t, ts.client(), "alice")
	if _, err := client.New(ts.addr, key+"x").Stats(ctx); !errors.Is(err, sessiond.ErrUnauthorized) {
		t.Errorf("stats with a wrong key: %v, want unauthorized", err)
	}
	if err := ts.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}

	// A second start on the same data directory reuses the saved key, and
	// the session made before the (graceful) restart is still there.
	ts2 := startServer(t, cfg)
	if ts2.key != key {
		t.Fatalf("second start uses key %q, want the saved %q", ts2.key, key)
	}
	if ts2.s.keySource != "saved" {
		t.Errorf("key source %q on second start, want saved", ts2.s.keySource)
	}
	if b2, _ := os.ReadFile(keyFile); string(b2) != string(b) {
		t.Errorf("the key file changed on the second start: %q, was %q", b2, b)
	}
	v, err := ts2.client().Validate(ctx, created.Token, nil)
	if err != nil {
		t.Fatalf("validating a session made before a graceful restart: %v", err)
	}
	if v.Session.ID != created.ID {
		t.Errorf("validate returned session %s, want %s", v.Session.ID, created.ID)
	}

	// A configured key wins over the saved one and is not written anywhere.
	if err := ts2.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	cfg.APIKey = "configured-key-0123456789abcdefghijklmnop"
	ts3 := startServer(t, cfg)
	if ts3.s.keySource != "configured" {
		t.Errorf("key source %q with a configured key, want configured", ts3.s.keySource)
	}
	if _, err := client.New(ts3.addr, key).Stats(ctx); !errors.Is(err, sessiond.ErrUnauthorized) {
		t.Errorf("the saved key still works while another is configured: %v", err)
	}
	if _, err := ts3.client().Stats(ctx); err != nil {
		t.Errorf("stats with the configured key: %v", err)
	}
	if b3, _ := os.ReadFile(keyFile); string(b3) != string(b) {
		t.Errorf("a configured key overwrote the saved one: %q", b3)
	}
}

func TestAdminCommands(t *testing.T) {
	cfg := testConfig(t)
	ts := startServer(t, cfg)
	c := ts.client()
	alice1 := create(t, c, "alice")
	alice2 := create(t, c, "alice")
	bob := create(t, c, "bob")
	conn := []string{"--addr", ts.addr, "--data-dir", cfg.DataDir}
	cmd := func(args ...string) []string { return append(args, conn...) }

	t.Run("ls subject", func(t *testing.T) {
		out := mustCLI(t, cmd("sessions", "ls", "--subject", "alice")...)
		for _, want := range []string{"ID", "SUBJECT", "STATE", alice1.ID, alice2.ID, "alice", "active"} {
			if !strings.Contains(out, want) {
				t.Errorf("sessions ls --subject alice: missing %q in\n%s", want, out)
			}
		}
		if strings.Contains(out, bob.ID) || strings.Contains(out, "bob") {
			t.Errorf("sessions ls --subject alice lists bob's session:\n%s", out)
		}
		if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 3 {
			t.Errorf("want a header and 2 rows, got %d lines:\n%s", len(lines), out)
		}
	})

	t.Run("ls json", func(t *testing.T) {
		out := mustCLI(t, cmd("sessions", "ls", "--json")...)
		var lr client.ListResponse
		if err := json.Unmarshal([]byte(out), &lr); err != nil {
			t.Fatalf("sessions ls --json is not JSON: %v\n%s", err, out)
		}
		var ids []string
		for _, s := range lr.Sessions {
			ids = append(ids, s.ID)
			if s.State != sessiond.StateActive || s.Policy != "default" {
				t.Errorf("session %s: state %v policy %q, want active default", s.ID, s.State, s.Policy)
			}
		}
		want := []string{alice1.ID, alice2.ID, bob.ID}
		slices.Sort(ids)
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("sessions ls --json ids %v, want %v", ids, want)
		}
		if strings.Contains(out, alice1.Token) {
			t.Error("sessions ls --json prints a token")
		}
	})

	t.Run("show", func(t *testing.T) {
		out := mustCLI(t, cmd("sessions", "show", alice1.ID)...)
		for _, f := range [][2]string{{"id", alice1.ID}, {"subject", "alice"}, {"state", "active"}, {"policy", "default"}} {
			if !hasField(out, f[0], f[1]) {
				t.Errorf("sessions show: want %s: %s in\n%s", f[0], f[1], out)
			}
		}
		if strings.Contains(out, "end reason") {
			t.Errorf("sessions show of a live session prints an end reason:\n%s", out)
		}
		// Flags may follow the id or precede it.
		out2 := mustCLI(t, append(append([]string{"sessions", "show"}, conn...), "--json", alice1.ID)...)
		var s sessiond.Session
		if err := json.Unmarshal([]byte(out2), &s); err != nil || s.ID != alice1.ID || s.Subject != "alice" {
			t.Errorf("sessions show --json: %v, %+v\n%s", err, s, out2)
		}
	})

	t.Run("revoke id", func(t *testing.T) {
		out := mustCLI(t, cmd("sessions", "revoke", alice1.ID)...)
		if strings.TrimSpace(out) != "revoked "+alice1.ID {
			t.Errorf("sessions revoke: %q", out)
		}
		out = mustCLI(t, cmd("sessions", "show", alice1.ID)...)
		if !hasField(out, "state", "ended") || !hasField(out, "end reason", "revoked") {
			t.Errorf("show after revoke: want state ended, end reason revoked:\n%s", out)
		}
		if _, err := c.Validate(context.Background(), alice1.Token, nil); !errors.Is(err, sessiond.ErrEnded) {
			t.Errorf("validating a revoked session: %v, want session_ended", err)
		}
		// Revoking again succeeds (ending is idempotent).
		mustCLI(t, cmd("sessions", "revoke", alice1.ID)...)
	})

	t.Run("revoke subject", func(t *testing.T) {
		out := mustCLI(t, cmd("sessions", "revoke", "--subject", "alice")...)
		if strings.TrimSpace(out) != "revoked 1 sessions of alice" {
			t.Errorf("sessions revoke --subject alice: %q, want the count 1", out)
		}
		out = mustCLI(t, cmd("sessions", "show", alice2.ID)...)
		if !hasField(out, "state", "ended") || !hasField(out, "end reason", "revoked") {
			t.Errorf("alice's second session after revoke --subject:\n%s", out)
		}
		out = mustCLI(t, cmd("sessions", "show", bob.ID)...)
		if !hasField(out, "state", "active") {
			t.Errorf("bob's session after revoking alice's:\n%s", out)
		}
		out = mustCLI(t, cmd("sessions", "revoke", "--subject", "alice")...)
		if strings.TrimSpace(out) != "revoked 0 sessions of alice" {
			t.Errorf("second revoke --subject alice: %q, want the count 0", out)
		}
		out = mustCLI(t, cmd("sessions", "ls", "--subject", "alice", "--state", "ended")...)
		if !strings.Contains(out, alice1.ID) || !strings.Contains(out, alice2.ID) || !strings.Contains(out, "ended (revoked)") {
			t.Errorf("sessions ls --state ended:\n%s", out)
		}
	})

	t.Run("status", func(t *testing.T) {
		out := mustCLI(t, cmd("status")...)
		for _, re := range []string{
			`(?m)^server:\s+ready, version dev, up `,
			`(?m)^sessions:\s+3 \(1 subjects with live sessions\)$`,
			`(?m)^\s+active:\s+1$`,
			`(?m)^\s+ended:\s+2$`,
			`(?m)^deadlines:\s+3 scheduled$`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("status: no line matching %s in\n%s", re, out)
			}
		}
		var st client.Stats
		if err := json.Unmarshal([]byte(mustCLI(t, cmd("status", "--json")...)), &st); err != nil {
			t.Fatalf("status --json: %v", err)
		}
		if st.Total != 3 || st.Sessions["active"] != 1 || st.Sessions["ended"] != 2 || st.Subjects != 1 {
			t.Errorf("status --json: %+v", st)
		}
	})

	t.Run("config", func(t *testing.T) {
		out := mustCLI(t, cmd("config")...)
		if strings.Contains(out, ts.key) {
			t.Fatalf("config prints the API key:\n%s", out)
		}
		var got Config
		if err := yaml.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("config does not print YAML: %v\n%s", err, out)
		}
		if got.Addr != ts.addr || got.DataDir != cfg.DataDir {
			t.Errorf("config: addr %q data_dir %q, want %q %q", got.Addr, got.DataDir, ts.addr, cfg.DataDir)
		}
		if !strings.HasPrefix(got.APIKey, "(") {
			t.Errorf("config: api_key %q, want it hidden", got.APIKey)
		}
		checkDefaultPolicy(t, got)

		// A key given on the command line is hidden too.
		out = mustCLI(t, cmd("config", "--api-key", ts.key)...)
		if strings.Contains(out, ts.key) || !strings.Contains(out, "api_key: (set; hidden)") {
			t.Errorf("config --api-key KEY does not hide the key:\n%s", out)
		}
	})

	t.Run("version", func(t *testing.T) {
		if out := mustCLI(t, "version"); !strings.HasPrefix(out, "sessiond dev\n") {
			t.Errorf("version: %q", out)
		}
	})
}

// checkDefaultPolicy checks the built-in policy as `config` prints it.
// checkDefaultPolicy checks that the built-in policies were printed: the
// default for REST sessions, and device for WebSocket connections that
// create their session.
func checkDefaultPolicy(t *testing.T, got Config) {
	t.Helper()
	if got.DefaultPolicy != "default" || len(got.Policies) != 2 {
		t.Fatalf("config: default_policy %q, policies %v; want the built-in default and device", got.DefaultPolicy, got.Policies)
	}
	hb, hbTimeout := Duration(sessiond.DefaultHeartbeatInterval), Duration(2*sessiond.DefaultHeartbeatInterval+10*time.Second)
	for name, want := range map[string]PolicyConfig{
		"default": {TTL: Duration(24 * time.Hour), IdleTimeout: Duration(30 * time.Minute), TouchInterval: Duration(time.Minute),
			RotationGrace: Duration(30 * time.Second), OnLimit: "reject", MaxPerSubject: sessiond.DefaultMaxPerSubject,
			HeartbeatInterval: hb, HeartbeatTimeout: hbTimeout, OnConnect: "allow_multiple", MaxConnections: sessiond.DefaultMaxConnections,
			WakeTimeout: Duration(sessiond.DefaultWakeTimeout)},
		"device": {TTL: Duration(24 * time.Hour), IdleTimeout: Duration(time.Hour), TouchInterval: Duration(time.Minute),
			OnLimit: "reject", DisconnectGrace: Duration(30 * time.Second), MaxPerSubject: sessiond.DefaultMaxPerSubject,
			HeartbeatInterval: hb, HeartbeatTimeout: hbTimeout, MaxConnections: 1, OnConnect: "replace",
			WakeTimeout: Duration(sessiond.DefaultWakeTimeout)},
	} {
		if p := got.Policies[name]; p != want {
			t.Errorf("config: %s policy %+v, want %+v", name, p, want)
		}
	}
}

func TestConfigDefaults(t *testing.T) {
	out := mustCLI(t, "config")
	var got Config
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("config: %v\n%s", err, out)
	}
	want := defaultConfig()
	if got.Addr != want.Addr || got.DataDir != want.DataDir || got.Store != "embedded" || got.LogFormat != "auto" ||
		got.LogLevel != "info" || got.Retention != want.Retention || got.EventRetention != want.EventRetention ||
		got.MaxMetadataBytes != want.MaxMetadataBytes || got.ShutdownTimeout != want.ShutdownTimeout {
		t.Errorf("config with nothing set:\n%s", out)
	}
	if !strings.Contains(got.APIKey, "generated") || !strings.Contains(got.APIKey, filepath.Join("sessiond-data", "api_key")) {
		t.Errorf("config: api_key %q, want a note that it is generated in sessiond-data/api_key", got.APIKey)
	}
	checkDefaultPolicy(t, got)
}

func TestHelpAndUsage(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, out, _ := cli(t, noEnv, args...)
		if code != 0 || !strings.Contains(out, "Usage:") || !strings.Contains(out, "SESSIOND_API_KEY") {
			t.Errorf("sessiond %v: exit %d\n%s", args, code, out)
		}
	}
	// connect's --device is optional: without it, the subject's default device.
	_, out, _ := cli(t, noEnv, "help")
	if !strings.Contains(out, "sessiond connect --subject S [--device D | --session-token T]") {
		t.Errorf("usage does not show --device as optional for connect:\n%s", out)
	}
	// -h on a command exits 0.
	if code, _, _ := cli(t, noEnv, "config", "-h"); code != 0 {
		t.Errorf("config -h: exit %d, want 0", code)
	}
	code, out, errOut := cli(t, noEnv)
	if code != 2 || out != "" || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no arguments: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", code, out, errOut)
	}
}

func TestExitCodes(t *testing.T) {
	cfg := testConfig(t)
	ts := startServer(t, cfg)
	s := create(t, ts.client(), "alice")
	conn := []string{"--addr", ts.addr, "--data-dir", cfg.DataDir}
	deadAddr := func() string { // a port nothing listens on
		c := testConfig(t)
		c.Store = "memory"
		dead := startServer(t, c)
		if err := dead.stop(t); err != nil {
			t.Fatal(err)
		}
		return dead.addr
	}()

	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  []string // stderr contains one of these
	}{
		{"unknown command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{"bad flag", append([]string{"status", "--bogus"}, conn...), 2, []string{"bogus"}},
		{"bad flag after id", append([]string{"sessions", "show", s.ID, "--nope"}, conn...), 2, []string{"nope"}},
		{"bad flag on serve", []string{"serve", "--port", "1"}, 2, []string{"port"}},
		{"serve takes no arguments", []string{"serve", "now"}, 2, []string{"no arguments"}},
		{"flag without value", []string{"config", "--addr"}, 2, []string{"addr"}},
		{"sessions without subcommand", []string{"sessions"}, 2, []string{"want a subcommand: ls, show, revoke, hibernate or wake"}},
		{"sessions unknown subcommand", append([]string{"sessions", "frob"}, conn...), 2, []string{`"frob"`}},
		{"show without id", append([]string{"sessions", "show"}, conn...), 2, []string{"one session id"}},
		{"show two ids", append([]string{"sessions", "show", s.ID, s.ID}, conn...), 2, []string{"one session id"}},
		{"revoke without id or subject", append([]string{"sessions", "revoke"}, conn...), 2, []string{"--subject"}},
		{"revoke id and subject", append([]string{"sessions", "revoke", s.ID, "--subject", "alice"}, conn...), 2, []string{"--subject"}},
		{"ls with an argument", append([]string{"sessions", "ls", "alice"}, conn...), 2, []string{"no arguments"}},
		{"show malformed id", append([]string{"sessions", "show", "not/an/id"}, conn...), 2, []string{"invalid_argument", "id:"}},
		{"ls unknown state", append([]string{"sessions", "ls", "--state", "asleep"}, conn...), 2, []string{"state"}},
		{"show unknown id", append([]string{"sessions", "show", "01ABCDEFGHJKMNPQRSTVWXYZ00"}, conn...), 1, []string{"session_not_found", "not found"}},
		{"revoke unknown id", append([]string{"sessions", "revoke", "01ABCDEFGHJKMNPQRSTVWXYZ00"}, conn...), 1, []string{"session_not_found", "not found"}},
		{"wrong api key", append([]string{"status", "--api-key", "sdk_wrong"}, conn...), 1, []string{"unauthorized", "wrong API key"}},
		{"wrong api key ls", append([]string{"sessions", "ls", "--api-key", "sdk_wrong"}, conn...), 1, []string{"unauthorized", "wrong API key"}},
		{"no api key", []string{"status", "--addr", ts.addr, "--data-dir", t.TempDir()}, 1, []string{"no API key"}},
		{"server down", []string{"status", "--addr", deadAddr, "--api-key", "k"}, 1,
			[]string{"no sessiond server answers at http://" + deadAddr + ": is it running? (--addr, SESSIOND_ADDR)"}},
		{"a flag of another command", append([]string{"status", "--store", "memory"}, conn...), 2, []string{"status: unknown flag --store"}},
		{"bad config value", []string{"config", "--store", "disk"}, 2, []string{`store: must be "embedded", "memory" or a Redis URL`}},
		{"bad Redis URL", []string{"config", "--store", "redis+sentinel://:hunter2@127.0.0.1:26379/0"}, 2, []string{"store: redis: invalid URL", "master"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cli(t, noEnv, tc.args...)
			if code != tc.code {
				t.Errorf("sessiond %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(tc.args, " "), code, tc.code, out, errOut)
			}
			if !slices.ContainsFunc(tc.msg, func(m string) bool { return strings.Contains(errOut, m) }) {
				t.Errorf("sessiond %s: stderr %q, want one of %q", strings.Join(tc.args, " "), errOut, tc.msg)
			}
			if !strings.HasPrefix(errOut, "sessiond") {
				t.Errorf("stderr %q does not start with the command's name", errOut)
			}
		})
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "sessiond.yaml", `# two policies, one the default
addr: 127.0.0.1:1111
data_dir: /from/file
store: memory
log_format: text
log_level: debug
retention: 1h
event_retention: 500
default_policy: web
policies:
  web:
    ttl: 12h
    idle_timeout: 20m
  device:
    ttl: 720h
    max_per_subject: 3
    on_limit: evict_oldest
    bind_device: true
`)
	load := func(t *testing.T, env map[string]string, args ...string) Config {
		t.Helper()
		code, out, errOut := cli(t, envOf(env), append([]string{"config"}, args...)...)
		if code != 0 {
			t.Fatalf("config %v with env %v: exit %d: %s", args, env, code, errOut)
		}
		var cfg Config
		if err := yaml.Unmarshal([]byte(out), &cfg); err != nil {
			t.Fatalf("config output is not YAML: %v\n%s", err, out)
		}
		if !strings.HasPrefix(out, "# read from "+file) {
			t.Errorf("config output does not say which file it read:\n%s", out)
		}
		return cfg
	}
	// Defaults filled in: touch_interval, heartbeats, on_connect.
	hb, hbTimeout := Duration(sessiond.DefaultHeartbeatInterval), Duration(2*sessiond.DefaultHeartbeatInterval+10*time.Second)
	wantPolicies := map[string]PolicyConfig{
		"web": {TTL: Duration(12 * time.Hour), IdleTimeout: Duration(20 * time.Minute),
			TouchInterval: Duration(time.Minute), OnLimit: "reject", MaxPerSubject: sessiond.DefaultMaxPerSubject,
			HeartbeatInterval: hb, HeartbeatTimeout: hbTimeout, OnConnect: "allow_multiple", MaxConnections: sessiond.DefaultMaxConnections,
			WakeTimeout: Duration(sessiond.DefaultWakeTimeout)},
		"device": {TTL: Duration(720 * time.Hour), MaxPerSubject: 3, OnLimit: "evict_oldest", BindDevice: true,
			HeartbeatInterval: hb, HeartbeatTimeout: hbTimeout, OnConnect: "allow_multiple", MaxConnections: sessiond.DefaultMaxConnections,
			WakeTimeout: Duration(sessiond.DefaultWakeTimeout)},
	}
	check := func(t *testing.T, got Config, addr, dataDir, store, format, level string) {
		t.Helper()
		if got.Addr != addr || got.DataDir != dataDir || got.Store != store || got.LogFormat != format || got.LogLevel != level {
			t.Errorf("got addr=%s data_dir=%s store=%s log_format=%s log_level=%s\nwant addr=%s data_dir=%s store=%s log_format=%s log_level=%s",
				got.Addr, got.DataDir, got.Store, got.LogFormat, got.LogLevel, addr, dataDir, store, format, level)
		}
		// Settings only the file can set come through whatever else is given.
		if got.Retention != Duration(time.Hour) || got.EventRetention != 500 || got.DefaultPolicy != "web" {
			t.Errorf("retention %v event_retention %d default_policy %q; want the file's 1h, 500, web",
				time.Duration(got.Retention), got.EventRetention, got.DefaultPolicy)
		}
		if len(got.Policies) != 2 || got.Policies["web"] != wantPolicies["web"] || got.Policies["device"] != wantPolicies["device"] {
			t.Errorf("policies %+v, want %+v", got.Policies, wantPolicies)
		}
	}

	t.Run("file", func(t *testing.T) {
		check(t, load(t, nil, "--config", file), "127.0.0.1:1111", "/from/file", "memory", "text", "debug")
	})
	env := map[string]string{
		"SESSIOND_CONFIG":     file,
		"SESSIOND_ADDR":       "127.0.0.1:2222",
		"SESSIOND_DATA_DIR":   "/from/env",
		"SESSIOND_LOG_LEVEL":  "warn",
		"SESSIOND_LOG_FORMAT": "json",
	}
	t.Run("env over file", func(t *testing.T) {
		check(t, load(t, env), "127.0.0.1:2222", "/from/env", "memory", "json", "warn")
	})
	t.Run("flags over env", func(t *testing.T) {
		check(t, load(t, env, "--addr", "127.0.0.1:3333", "--store", "embedded", "--log-level", "error"),
			"127.0.0.1:3333", "/from/env", "embedded", "json", "error")
	})
	t.Run("config flag over env", func(t *testing.T) {
		other := writeFile(t, "other.yaml", "log_level: error\n")
		code, out, errOut := cli(t, envOf(env), "config", "--config", other)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !strings.Contains(out, "# read from "+other) || strings.Contains(out, "web:") {
			t.Errorf("--config did not win over SESSIOND_CONFIG:\n%s", out)
		}
		// env still beats the file it chose
		if !strings.Contains(out, "log_level: warn") {
			t.Errorf("SESSIOND_LOG_LEVEL lost to the file:\n%s", out)
		}
	})
	t.Run("api key from env is hidden", func(t *testing.T) {
		e := map[string]string{"SESSIOND_API_KEY": "sdk_from_env_secret_0123456789abcdefgh"}
		code, out, _ := cli(t, envOf(e), "config")
		if code != 0 || strings.Contains(out, "sdk_from_env_secret") || !strings.Contains(out, "api_key: (set; hidden)") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})
	t.Run("server uses it", func(t *testing.T) {
		// The effective policies are the ones a server started with the
		// file creates sessions under.
		cfg := defaultConfig()
		cfg.Addr = "127.0.0.1:0"
		cfg.DataDir = t.TempDir()
		if err := cfg.readFile(file); err != nil {
			t.Fatal(err)
		}
		cfg.Addr, cfg.DataDir, cfg.LogFormat = "127.0.0.1:0", t.TempDir(), "json"
		ts := startServer(t, cfg)
		ctx := context.Background()
		web := create(t, ts.client(), "alice")
		if web.Session.Policy != "web" || web.Session.IdleTimeout != 20*time.Minute ||
			web.Session.ExpiresAt.Sub(web.Session.CreatedAt) != 12*time.Hour {
			t.Errorf("a create naming no policy got %+v, want policy web (12h, idle 20m)", web.Session)
		}
		if _, err := ts.client().Create(ctx, client.CreateRequest{Subject: "alice", Policy: "device"}); !errors.Is(err, sessiond.ErrInvalidArgument) {
			t.Errorf("a device session without device.id: %v, want invalid_argument", err)
		}
		d, err := ts.client().Create(ctx, client.CreateRequest{Subject: "alice", Policy: "device", Device: &sessiond.Device{ID: "phone"}})
		if err != nil || d.Session.Policy != "device" {
			t.Fatalf("device session: %v", err)
		}
		if _, err := ts.client().Validate(ctx, d.Token, &sessiond.Device{ID: "laptop"}); !errors.Is(err, sessiond.ErrDeviceMismatch) {
			t.Errorf("validating from another device: %v, want device_mismatch", err)
		}
	})
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		code       int
		want       []string // all in stderr
	}{
		{"idle not below ttl", "policies:\n  web:\n    ttl: 1h\n    idle_timeout: 1h\n", 2,
			[]string{"policies.web.idle_timeout", "must be less than ttl"}},
		{"negative duration", "policies:\n  web:\n    ttl: -1h\n", 2, []string{"policies.web.ttl", "negative"}},
		{"grace over ttl", "policies:\n  web:\n    ttl: 1m\n    rotation_grace: 2m\n", 2, []string{"policies.web.rotation_grace"}},
		{"bad on_limit", "policies:\n  web:\n    ttl: 1h\n    on_limit: drop\n", 2, []string{"policies.web.on_limit", "drop"}},
		{"bad policy name", "policies:\n  \"we b\":\n    ttl: 1h\n", 2, []string{"policy name", "we b"}},
		{"unknown key", "addr: 127.0.0.1:1\ncolour: blue\n", 2, []string{"colour", "line 2"}},
		{"unknown policy key", "policies:\n  web:\n    ttl: 1h\n    idle: 5m\n", 2, []string{"idle", "main.PolicyConfig"}},
		{"bad duration", "policies:\n  web:\n    ttl: 1h\n    idle_timeout: 5 minutes\n", 2,
			[]string{"line 4", `idle_timeout: "5 minutes" is not a duration`}},
		{"bad top-level duration", "retention: forever\n", 2, []string{"line 1", `retention: "forever" is not a duration`}},
		{"bad Redis URL", "store: redis+cluster://127.0.0.1:7000/3\n", 2, []string{"store: redis: invalid URL"}},
		{"several policies no default", "policies:\n  web:\n    ttl: 1h\n  app:\n    ttl: 2h\n", 2,
			[]string{"default_policy", "app, web"}},
		{"default names no policy", "default_policy: mobile\npolicies:\n  web:\n    ttl: 1h\n", 2,
			[]string{"default_policy", `"mobile"`}},
		{"default without policies", "default_policy: mobile\n", 2, []string{"default_policy", `"mobile"`}},
		{"bad log level", "log_level: loud\n", 2, []string{"log_level", "loud"}},
		{"bad store", "store: disk\n", 2, []string{"store", "disk"}},
		{"bad event retention", "event_retention: 0\n", 2, []string{"event_retention"}},
		{"not yaml", "policies: [\n", 2, []string{"config"}},
		{"negative message rate", "websocket:\n  message_rate: -1\n", 2, []string{"websocket.message_rate: must not be negative (got -1)"}},
		{"negative jwks refresh", "jwt:\n  jwks_refresh: -1m\n", 2, []string{"jwt.jwks_refresh: must not be negative (got -1m0s)"}},
		{"negative socket cap", "websocket:\n  max_sockets: -5\n", 2, []string{"websocket.max_sockets (--ws-max-sockets): must not be negative (got -5)"}},
		{"negative leeway", "jwt:\n  leeway: -1s\n", 2, []string{"jwt.leeway (--jwt-leeway): must not be negative (got -1s)"}},
		{"hibernate_after past idle", "policies:\n  ws:\n    ttl: 1h\n    idle_timeout: 5m\n    hibernate_after: 10m\n", 2,
			[]string{"policies.ws.idle_timeout", "hibernate_after"}},
		{"runtime url and command", "hooks:\n  runtime:\n    url: http://127.0.0.1:1/h\n    command: [sh]\n", 2,
			[]string{"hooks.runtime: a url or a command, not both"}},
		{"runtime secret not whsec", "hooks:\n  runtime:\n    url: http://127.0.0.1:1/h\n    secret: hunter2\n", 2,
			[]string{"hooks.runtime.secret"}},
		{"runtime command missing", "hooks:\n  runtime:\n    command: [/no/such/hook]\n", 2,
			[]string{"hooks.runtime.command", "/no/such/hook"}},
		{"runtime url not http", "hooks:\n  runtime:\n    url: ftp://x/h\n", 2, []string{"hooks.runtime.url"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "sessiond.yaml", tc.yaml)
			for _, cmd := range [][]string{{"config"}, {"config", "check"}, {"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}} {
				code, out, errOut := cli(t, noEnv, append(cmd, "--config", path)...)
				if code != tc.code {
					t.Errorf("%s: exit %d, want %d; stderr %q", strings.Join(cmd, " "), code, tc.code, errOut)
				}
				if out != "" {
					t.Errorf("%s: printed %q on stdout", strings.Join(cmd, " "), out)
				}
				for _, w := range tc.want {
					if !strings.Contains(errOut, w) {
						t.Errorf("%s: stderr %q does not contain %q", strings.Join(cmd, " "), errOut, w)
					}
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nope.yaml")
		code, _, errOut := cli(t, noEnv, "config", "--config", missing)
		if code != 2 || !strings.Contains(errOut, missing) {
			t.Errorf("exit %d, stderr %q", code, errOut)
		}
	})
	t.Run("empty file", func(t *testing.T) {
		code, out, errOut := cli(t, noEnv, "config", "--config", writeFile(t, "empty.yaml", ""))
		if code != 0 || !strings.Contains(out, "default_policy: default") {
			t.Errorf("an empty config file: exit %d, %s%s", code, out, errOut)
		}
	})
}

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	t.Run("with a data dir", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Store = "memory"
		cfg.DataDir = filepath.Join(t.TempDir(), "data")
		ts := startServer(t, cfg)
		c := ts.client()
		s := create(t, c, "alice")
		if _, err := c.Validate(ctx, s.Token, nil); err != nil {
			t.Fatalf("validate: %v", err)
		}
		out := mustCLI(t, "sessions", "show", s.ID, "--addr", ts.addr, "--data-dir", cfg.DataDir)
		if !hasField(out, "state", "active") {
			t.Errorf("show:\n%s", out)
		}
		if _, err := os.Stat(filepath.Join(cfg.DataDir, "store")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the memory store made a store directory: %v", err)
		}
		if err := ts.stop(t); err != nil {
			t.Fatal(err)
		}
		// Nothing survives a restart, but the saved key does.
		ts2 := startServer(t, cfg)
		if ts2.key != ts.key {
			t.Errorf("memory store restart: key changed")
		}
		if _, err := ts2.client().Get(ctx, s.ID); !errors.Is(err, sessiond.ErrNotFound) {
			t.Errorf("memory store kept a session across a restart: %v", err)
		}
	})
	t.Run("no data dir at all", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Store = "memory"
		cfg.DataDir = ""
		cfg.APIKey = "sdk_test_key_for_memory_0123456789abcdef"
		ts := startServer(t, cfg)
		s := create(t, ts.client(), "bob")
		if got, err := ts.client().Get(ctx, s.ID); err != nil || got.Subject != "bob" {
			t.Fatalf("get: %v", err)
		}
	})
}

// TestServeCommand runs `sessiond serve` itself through run, finding the
// port it chose in its JSON log.
func TestServeCommand(t *testing.T) {
	dir := t.TempDir()
	addr, _, logs, stop := serveInProcess(t, "--data-dir", dir)
	out := mustCLI(t, "status", "--addr", addr, "--data-dir", dir)
	if !strings.Contains(out, "ready") {
		t.Errorf("status:\n%s", out)
	}
	// JSON logs: every line is an object, and there is no banner for humans.
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("a log line is not JSON: %q", line)
		}
	}
	if strings.Contains(logs.String(), "try: curl") {
		t.Error("the human banner is printed with --log-format json")
	}

	if code := stop(); code != 0 {
		t.Errorf("serve exited with %d after cancel, want 0", code)
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Error("no stopped log line")
	}
}

func TestServeTextBanner(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogFormat = "text"
	ts := startServer(t, cfg)
	sessiondtest.Eventually(t, "the banner's last line", func() bool { return strings.Contains(ts.logs.String(), "try: curl") })
	logs := ts.logs.String()
	for _, want := range []string{"listening on http://" + ts.addr, "generated and saved in " + filepath.Join(cfg.DataDir, "api_key"), "/v1/stats"} {
		if !strings.Contains(logs, want) {
			t.Errorf("banner lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, ts.key) {
		t.Error("the banner prints the API key itself")
	}
}

// max_subscribers caps the event streams open at once: one over it is
// answered 503 unavailable, and a stream that closes makes room.
func TestMaxSubscribers(t *testing.T) {
	cfg := loadTestConfig(t, envOf(map[string]string{"SESSIOND_MAX_SUBSCRIBERS": "2"}), "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	if cfg.MaxSubscribers != 2 {
		t.Fatalf("SESSIOND_MAX_SUBSCRIBERS=2: max_subscribers %d", cfg.MaxSubscribers)
	}
	ts := startServer(t, cfg) // no JWT key: the WebSocket edge, which holds one, is off
	first := openEvents(t, ts.url, ts.key, "")
	second := openEvents(t, ts.url, ts.key, "")
	defer second.close()
	resp, err := ts.hc.Do(authorized(t, ts, "GET", "/v1/events"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), `"code":"unavailable"`) ||
		!strings.Contains(string(body), "max_subscribers") {
		t.Fatalf("a third stream with max_subscribers 2: %s %s; want 503 unavailable naming max_subscribers", resp.Status, body)
	}
	first.close()
	sessiondtest.Eventually(t, "a closed stream to make room", func() bool {
		resp, err := ts.hc.Do(authorized(t, ts, "GET", "/v1/events"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	// The default, from the flag, from the file; negative is refused.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "max_subscribers: 1024\n"},
		{[]string{"--max-subscribers", "16"}, "max_subscribers: 16\n"},
		{[]string{"--config", writeFile(t, "subs.yaml", "max_subscribers: 64\n")}, "max_subscribers: 64\n"},
	} {
		if out := mustCLI(t, append([]string{"config"}, tc.args...)...); !strings.Contains(out, tc.want) {
			t.Errorf("config %v: no %q in\n%s", tc.args, tc.want, out)
		}
	}
	if code, _, errOut := cli(t, noEnv, "config", "--max-subscribers", "-1"); code != 2 ||
		!strings.Contains(errOut, "max_subscribers (--max-subscribers): must not be negative") {
		t.Errorf("config --max-subscribers -1: exit %d, %s", code, errOut)
	}
}

// authorized is a request to the server's path with its API key.
func authorized(t *testing.T, ts *testServer, method, path string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, ts.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+ts.key)
	return req
}

func TestGracefulShutdown(t *testing.T) {
	cfg := testConfig(t)
	cfg.ShutdownTimeout = Duration(10 * time.Second)
	ts := startServer(t, cfg)
	s := create(t, ts.client(), "alice")

	// An open event stream must not hold up the shutdown.
	req, _ := http.NewRequest("GET", "http://"+ts.addr+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+ts.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(line, ": sessiond events") {
		t.Fatalf("event stream opened with %q, %v", line, err)
	}

	start := time.Now()
	if err := ts.stop(t); err != nil {
		t.Fatalf("run returned %v after cancel, want nil", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v with an event stream open", d)
	}
	if _, err := io.ReadAll(br); err != nil {
		t.Errorf("the event stream did not end cleanly: %v", err)
	}
	hc := &http.Client{Timeout: time.Second}
	if resp, err := hc.Get("http://" + ts.addr + "/readyz"); err == nil {
		resp.Body.Close()
		t.Errorf("readyz still answers (%s) after shutdown", resp.Status)
	}

	// The store was closed cleanly: a new server opens it and has the session.
	ts2 := startServer(t, cfg)
	if got, err := ts2.client().Get(context.Background(), s.ID); err != nil || got.State != sessiond.StateActive {
		t.Errorf("after a graceful restart: %v %+v", err, got)
	}
}

// TestEndingHookIsSignedAndRetried: a revoke POSTs the ending session to
// ending_hook_url as a Standard Webhooks delivery; an answer of 503 is
// retried with the same webhook-id, and the delivery verifies with the
// Standard Webhooks project's Go library.
func TestEndingHookIsSignedAndRetried(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	type delivery struct {
		header http.Header
		body   []byte
	}
	got := make(chan delivery, 10)
	var calls atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- delivery{r.Header.Clone(), body}
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	cfg := testConfig(t)
	cfg.EndingHookURL, cfg.EndingHookSecret = hook.URL, secret
	ts := startServer(t, cfg)
	s := create(t, ts.client(), "alice")
	if err := ts.client().Revoke(t.Context(), s.ID); err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		var d delivery
		select {
		case d = <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("delivery %d of the ending hook did not come", i+1)
		}
		if id := d.header.Get("webhook-id"); id != s.ID+".ending" {
			t.Fatalf("delivery %d: webhook-id %q, want %q on every attempt", i+1, id, s.ID+".ending")
		}
		if err := wh.Verify(d.body, d.header); err != nil {
			t.Fatalf("delivery %d does not verify: %v", i+1, err)
		}
		var body struct {
			Type    string            `json:"type"`
			Session *sessiond.Session `json:"session"`
		}
		if err := json.Unmarshal(d.body, &body); err != nil || body.Type != "session.ending" || body.Session == nil || body.Session.ID != s.ID {
			t.Fatalf("delivery %d: %s, %v", i+1, d.body, err)
		}
	}
	sessiondtest.Eventually(t, "the session ended once its hook answered", func() bool {
		got, err := ts.client().Get(t.Context(), s.ID)
		return err == nil && got.State == sessiond.StateEnded
	})
}

// A secret that is not in the whsec_ form is refused before the server starts.
func TestEndingHookSecretIsChecked(t *testing.T) {
	cfg := testConfig(t)
	cfg.EndingHookURL, cfg.EndingHookSecret = "http://127.0.0.1:1/hook", "hunter2"
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "ending_hook_secret") {
		t.Fatalf("validate with a bad ending_hook_secret: %v", err)
	}
	cfg.EndingHookURL = ""
	cfg.EndingHookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	if err := cfg.validate(); err == nil || !strings.Contains(err.Error(), "ending_hook_url") {
		t.Fatalf("validate with a secret and no URL: %v", err)
	}
}
