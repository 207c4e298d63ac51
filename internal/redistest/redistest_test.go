package redistest

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// alive tells whether a process with the pid exists (a zombie counts).
func alive(pid int) bool {
	return pid > 0 && !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestServerIsKilledAtCleanup(t *testing.T) {
	var pid int
	t.Run("owner", func(t *testing.T) {
		s := StartServer(t, Config{})
		pid = s.Pid()
		if !alive(pid) {
			t.Fatalf("pid %d: not running after StartServer", pid)
		}
		if got, err := s.command("PING"); err != nil || got != "PONG" {
			t.Fatalf("PING: %v, %v", got, err)
		}
	})
	if alive(pid) {
		t.Errorf("pid %d still runs after its test ended", pid)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still has processes: %v", pid, err)
	}
}

func TestServerIsKilledAtCleanupOfAFailedTest(t *testing.T) {
	// A failing test cannot be run inside a passing one, but its cleanups
	// run as a passing test's do: a recording TB stands for the test and
	// runs them as testing would after Fatal.
	rec := &recordingTB{TB: t}
	var pid int
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer rec.runCleanups()
		s := StartServer(rec, Config{})
		pid = s.Pid()
		rec.Fatal("the test fails here")
	}()
	<-done
	if rec.fatal != "the test fails here" {
		t.Fatalf("the test ended with %q", rec.fatal)
	}
	if pid == 0 || alive(pid) {
		t.Errorf("pid %d: still running after the failed test's cleanups", pid)
	}
}

func TestRestartKeepsThePortAndLosesTheData(t *testing.T) {
	s := StartServer(t, Config{})
	addr := s.Addr()
	if _, err := s.command("SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	oldPid := s.Pid()
	s.Restart()
	if got := s.Addr(); got != addr {
		t.Errorf("address after Restart = %s, want %s", got, addr)
	}
	if s.Pid() == oldPid || alive(oldPid) {
		t.Errorf("pid before restart %d, after %d: the old process should be gone", oldPid, s.Pid())
	}
	got, err := s.command("GET", "k")
	if err != nil || got != nil {
		t.Errorf("GET k after Restart = %v, %v; want nil (nothing is persisted)", got, err)
	}
}

func TestKillStopsTheServer(t *testing.T) {
	s := StartServer(t, Config{})
	pid := s.Pid()
	s.Kill()
	if alive(pid) || s.Pid() != 0 {
		t.Errorf("pid %d still runs after Kill", pid)
	}
	if _, err := s.command("PING"); err == nil {
		t.Error("PING answered after Kill")
	}
	s.Kill() // a second time does nothing
	s.Restart()
	if _, err := s.command("PING"); err != nil {
		t.Errorf("PING after Restart: %v", err)
	}
}

func TestPasswordIsRequired(t *testing.T) {
	s := StartServer(t, Config{Password: "pw"})
	if _, err := command(s.Addr(), nil, "", "GET", "k"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("GET without AUTH: %v, want a NOAUTH error", err)
	}
	if want := "redis://:pw@" + s.Addr(); s.URL() != want {
		t.Errorf("URL = %s, want %s", s.URL(), want)
	}
}

func TestTLSServerRequiresAClientCertificate(t *testing.T) {
	s := StartServer(t, Config{TLS: true})
	if _, err := s.command("PING"); err != nil {
		t.Fatalf("PING with the client certificate: %v", err)
	}
	noCert := &tls.Config{RootCAs: s.tls.clientConfig.RootCAs, MinVersion: tls.VersionTLS12}
	if _, err := command(s.Addr(), noCert, "", "PING"); err == nil {
		t.Error("PING without a client certificate answered")
	}
	if _, err := command(s.Addr(), nil, "", "PING"); err == nil {
		t.Error("PING in plain TCP answered")
	}
	u, err := url.Parse(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "rediss" || q.Get("tls_ca") != s.tls.caFile || q.Get("tls_cert") != s.tls.clientCertFile || q.Get("tls_key") != s.tls.clientKeyFile {
		t.Errorf("URL = %s: want rediss with tls_ca, tls_cert, tls_key", s.URL())
	}
}

func TestClusterForms(t *testing.T) {
	c := StartCluster(t)
	if len(c.Nodes) != ClusterNodes {
		t.Fatalf("%d nodes, want %d", len(c.Nodes), ClusterNodes)
	}
	// Every node serves a share of the slots, and they cover all 16384.
	reply, err := c.Nodes[0].command("CLUSTER", "SLOTS")
	if err != nil {
		t.Fatal(err)
	}
	slots, masters := 0, map[string]bool{}
	for _, r := range reply.([]any) {
		r := r.([]any)
		slots += int(r[1].(int64)-r[0].(int64)) + 1
		node := r[2].([]any)
		masters[fmt.Sprintf("%s:%d", node[0], node[1])] = true
	}
	if slots != 16384 {
		t.Errorf("%d slots served, want 16384", slots)
	}
	for _, n := range c.Nodes {
		if !masters[n.Addr()] {
			t.Errorf("%s serves no slot (masters: %v)", n.Addr(), masters)
		}
	}
	want := "redis+cluster://" + c.Nodes[0].Addr() + "," + c.Nodes[1].Addr() + "," + c.Nodes[2].Addr()
	if c.URL() != want {
		t.Errorf("URL = %s, want %s", c.URL(), want)
	}
}

func TestSentinelReportsTheMaster(t *testing.T) {
	ts := StartSentinel(t)
	s := ts.Sentinels[0]
	if _, err := command(s.Addr(), nil, "", "SENTINEL", "MASTERS"); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("SENTINEL MASTERS without the sentinel's password: %v, want NOAUTH", err)
	}
	if _, err := command(s.Addr(), nil, SentinelMasterPassword, "PING"); err == nil {
		t.Error("the master's password opened the sentinel")
	}
	want := fmt.Sprintf("redis+sentinel://:%s@%s?master=%s&sentinel_password=%s", SentinelMasterPassword, s.Addr(), SentinelMasterName, SentinelPassword)
	if ts.URL() != want {
		t.Errorf("URL = %s, want %s", ts.URL(), want)
	}
}

func TestStandaloneSharesAServerByDatabase(t *testing.T) {
	server := StartServer(t, Config{Password: "shared-pw"})
	if _, err := server.command("SET", "db0-key", "kept"); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvURL, server.URL())

	var urls []string
	t.Run("two tests at once", func(t *testing.T) {
		for range 2 {
			u := Standalone(t)
			urls = append(urls, u)
			parsed, err := url.Parse(u)
			if err != nil {
				t.Fatal(err)
			}
			db := strings.TrimPrefix(parsed.Path, "/")
			if db == "" || db == "0" {
				t.Fatalf("Standalone gave %s: want a database other than 0", u)
			}
			c, err := dialRESP(server.Addr(), nil, "", "shared-pw")
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			if _, err := c.do("SELECT", db); err != nil {
				t.Fatal(err)
			}
			if _, err := c.do("SET", "test-key", "v"); err != nil {
				t.Fatal(err)
			}
		}
		if urls[0] == urls[1] {
			t.Errorf("both got %s", urls[0])
		}
	})
	for _, u := range urls {
		parsed, _ := url.Parse(u)
		c, err := dialRESP(server.Addr(), nil, "", "shared-pw")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.do("SELECT", strings.TrimPrefix(parsed.Path, "/")); err != nil {
			t.Fatal(err)
		}
		if n, err := c.do("DBSIZE"); err != nil || n != int64(0) {
			t.Errorf("%s after its test: DBSIZE %v, %v; want 0 (emptied, lease gone)", u, n, err)
		}
		c.close()
	}
	if got, err := server.command("GET", "db0-key"); err != nil || got != "kept" {
		t.Errorf("database 0 after the tests: GET db0-key = %v, %v; want kept", got, err)
	}
}

func TestMissingRedisSkipsOrFailsUnderCI(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			rec := &recordingTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				requireBinaries(rec, "redis-server")
			}()
			<-done
			if ci == "true" && (rec.fatal == "" || rec.skip != "") {
				t.Errorf("under CI: fatal %q, skip %q; want a failure", rec.fatal, rec.skip)
			}
			if ci == "" && (rec.skip == "" || rec.fatal != "") {
				t.Errorf("outside CI: fatal %q, skip %q; want a skip", rec.fatal, rec.skip)
			}
		})
	}
}

// recordingTB stands for a test in tests of the helpers' failures: it
// records Fatal and Skip (and ends the goroutine as they do) and keeps
// the cleanups for runCleanups.
type recordingTB struct {
	testing.TB
	fatal, skip string
	cleanups    []func()
}

func (r *recordingTB) Helper()                           {}
func (r *recordingTB) Cleanup(f func())                  { r.cleanups = append(r.cleanups, f) }
func (r *recordingTB) Failed() bool                      { return r.fatal != "" }
func (r *recordingTB) Fatal(args ...any)                 { r.fatal = fmt.Sprint(args...); runtime.Goexit() }
func (r *recordingTB) Fatalf(format string, args ...any) { r.Fatal(fmt.Sprintf(format, args...)) }
func (r *recordingTB) Skip(args ...any)                  { r.skip = fmt.Sprint(args...); runtime.Goexit() }
func (r *recordingTB) Logf(format string, args ...any)   {}

func (r *recordingTB) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}
