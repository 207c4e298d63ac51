package redistest

import (
	"fmt"
	"net/url"
	"testing"
)

// The names and passwords of a test sentinel deployment. The master's and
// the sentinel's passwords differ, so that a client that sends one where
// the other is due fails.
const (
	SentinelMasterName     = "mymaster"
	SentinelMasterPassword = "master-secret"
	SentinelPassword       = "sentinel-secret"
)

// TestSentinel is a master watched by one sentinel, that a test owns.
type TestSentinel struct {
	Master    *Server
	Sentinels []*Server
}

// Sentinel starts a master and a sentinel for the test and returns the
// URL that finds the master through the sentinel:
// redis+sentinel://:master-secret@127.0.0.1:sport?master=mymaster&sentinel_password=sentinel-secret.
func Sentinel(t testing.TB) string {
	t.Helper()
	return StartSentinel(t).URL()
}

// StartSentinel starts a master (password SentinelMasterPassword) and one
// sentinel (password SentinelPassword) that monitors it as
// SentinelMasterName, and returns once the sentinel reports the master as
// up.
func StartSentinel(t testing.TB) *TestSentinel {
	t.Helper()
	requireBinaries(t, "redis-server")
	master := StartServer(t, Config{Password: SentinelMasterPassword})
	s := newServer(t, "sentinel", kindSentinel, Config{Password: SentinelPassword})
	s.monitor = &monitor{name: SentinelMasterName, addr: master.Addr(), password: SentinelMasterPassword}
	s.startOnFreePorts()
	ts := &TestSentinel{Master: master, Sentinels: []*Server{s}}
	if err := ts.waitMaster(); err != nil {
		t.Fatalf("redistest: the sentinel does not report the master: %v", err)
	}
	return ts
}

// URL returns the deployment's URL: the master's password in the user
// information, the sentinel's in sentinel_password.
func (ts *TestSentinel) URL() string {
	addrs := ""
	for i, s := range ts.Sentinels {
		if i > 0 {
			addrs += ","
		}
		addrs += s.Addr()
	}
	q := url.Values{}
	q.Set("master", SentinelMasterName)
	q.Set("sentinel_password", SentinelPassword)
	return "redis+sentinel://:" + url.PathEscape(SentinelMasterPassword) + "@" + addrs + "?" + q.Encode()
}

// waitMaster waits until every sentinel gives the master's address for
// the master set and flags it as a master with nothing wrong (not down,
// not disconnected).
func (ts *TestSentinel) waitMaster() error {
	want := ts.Master.Addr()
	for _, s := range ts.Sentinels {
		err := pollUntil(func() error {
			reply, err := s.command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMasterName)
			if err != nil {
				return fmt.Errorf("%s: SENTINEL GET-MASTER-ADDR-BY-NAME: %w", s.Addr(), err)
			}
			hp, _ := reply.([]any)
			if len(hp) != 2 || replyString(hp[0])+":"+replyString(hp[1]) != want {
				return fmt.Errorf("%s: the master is %v, want %s", s.Addr(), reply, want)
			}
			reply, err = s.command("SENTINEL", "MASTER", SentinelMasterName)
			if err != nil {
				return fmt.Errorf("%s: SENTINEL MASTER: %w", s.Addr(), err)
			}
			m := replyMap(reply)
			if m["flags"] != "master" || m["role-reported"] != "master" {
				return fmt.Errorf("%s: the master's flags are %q, role reported %q", s.Addr(), m["flags"], m["role-reported"])
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
