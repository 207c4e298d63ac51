package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/redistest"
)

// waitTimeout bounds the polls of these tests: generous for a loaded
// machine under -race; a condition that holds ends the wait at once.
const waitTimeout = 15 * time.Second

// open connects with rawURL and closes the client at the test's end.
func open(t *testing.T, rawURL string) *Client {
	t.Helper()
	c, err := Open(rawURL)
	if err != nil {
		t.Fatalf("Open(%s): %v", rawURL, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// ctx returns a context that ends with the test or after waitTimeout.
func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// setGet writes a value under key and reads it back.
func setGet(t *testing.T, c *Client, key string) {
	t.Helper()
	ctx := ctx(t)
	want := "value of " + key
	if err := c.rc.Do(ctx, c.rc.B().Set().Key(key).Value(want).Build()).Error(); err != nil {
		t.Fatalf("SET %s: %v", key, err)
	}
	got, err := c.rc.Do(ctx, c.rc.B().Get().Key(key).Build()).ToString()
	if err != nil || got != want {
		t.Fatalf("GET %s = %q, %v; want %q", key, got, err, want)
	}
}

// eventually polls cond until it returns nil or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for poll := time.Millisecond; ; poll = min(2*poll, 50*time.Millisecond) {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", waitTimeout, what, err)
		}
		time.Sleep(poll)
	}
}

func TestStandaloneSetGetAndPing(t *testing.T) {
	c := open(t, redistest.Standalone(t))
	if c.Topology() != Standalone {
		t.Errorf("Topology() = %v", c.Topology())
	}
	setGet(t, c, "standalone")
	if err := c.Ping(ctx(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func TestStandaloneSelectsTheDatabase(t *testing.T) {
	s := redistest.StartServer(t, redistest.Config{})
	c3 := open(t, s.URL()+"/3")
	c0 := open(t, s.URL())
	setGet(t, c3, "in-db-3")
	ctx := ctx(t)
	if n, err := c0.rc.Do(ctx, c0.rc.B().Exists().Key("in-db-3").Build()).AsInt64(); err != nil || n != 0 {
		t.Errorf("EXISTS in-db-3 in database 0 = %d, %v; want 0", n, err)
	}
	if n, err := c3.rc.Do(ctx, c3.rc.B().Dbsize().Build()).AsInt64(); err != nil || n != 1 {
		t.Errorf("DBSIZE of database 3 = %d, %v; want 1", n, err)
	}
}

func TestStandaloneWithPassword(t *testing.T) {
	s := redistest.StartServer(t, redistest.Config{Password: "right"})
	setGet(t, open(t, s.URL()), "with-password")

	u, _ := url.Parse(s.URL())
	u.User = url.UserPassword("", "wrong")
	if c, err := Open(u.String()); err == nil {
		c.Close()
		t.Error("Open with the wrong password succeeded")
	} else if strings.Contains(err.Error(), "wrong") {
		t.Errorf("Open's error %q shows the password", err)
	}
	u.User = nil
	if c, err := Open(u.String()); err == nil {
		c.Close()
		t.Error("Open without a password succeeded")
	}
}

func TestTLS(t *testing.T) {
	s := redistest.StartServer(t, redistest.Config{TLS: true})
	setGet(t, open(t, s.URL()), "over-tls")

	u, _ := url.Parse(s.URL())
	q := u.Query()
	withQuery := func(edit func(url.Values)) string {
		q2 := url.Values{}
		for k, v := range q {
			q2[k] = v
		}
		edit(q2)
		v := *u
		v.RawQuery = q2.Encode()
		return v.String()
	}
	t.Run("an unknown CA is refused", func(t *testing.T) {
		_, err := Open(withQuery(func(q url.Values) { q.Del("tls_ca") }))
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("Open without tls_ca: %v, want a certificate error", err)
		}
	})
	t.Run("insecure skip verify accepts it", func(t *testing.T) {
		setGet(t, open(t, withQuery(func(q url.Values) { q.Del("tls_ca"); q.Set("tls_insecure_skip_verify", "true") })), "insecure")
	})
	t.Run("a wrong server name is refused", func(t *testing.T) {
		_, err := Open(withQuery(func(q url.Values) { q.Set("tls_server_name", "redis.example") }))
		if err == nil || !strings.Contains(err.Error(), "redis.example") {
			t.Errorf("Open with tls_server_name=redis.example: %v, want a certificate name error", err)
		}
	})
	t.Run("the server requires the client certificate", func(t *testing.T) {
		if c, err := Open(withQuery(func(q url.Values) { q.Del("tls_cert"); q.Del("tls_key") })); err == nil {
			// TLS 1.3 tells of a refused client certificate only at the
			// first read: the connection must not work.
			defer c.Close()
			if err := c.Ping(ctx(t)); err == nil {
				t.Error("Ping without a client certificate succeeded")
			}
		}
	})
	t.Run("a missing CA file is a clear error", func(t *testing.T) {
		_, err := Open(withQuery(func(q url.Values) { q.Set("tls_ca", "/nonexistent/ca.pem") }))
		if err == nil || !strings.Contains(err.Error(), "tls_ca") {
			t.Errorf("Open with a missing CA file: %v", err)
		}
	})
}

func TestOpenRefusesABadURLBeforeDialing(t *testing.T) {
	_, err := Open("redis+cluster://127.0.0.1:1/2")
	if !errors.Is(err, ErrInvalidURL) {
		t.Errorf("Open of a cluster URL with database 2: %v, want ErrInvalidURL", err)
	}
}

func TestDialGivesUpWithinTheDialTimeout(t *testing.T) {
	s := redistest.StartServer(t, redistest.Config{})
	addr := s.Addr()
	s.Kill() // nothing listens there now
	start := time.Now()
	_, err := Open("redis://" + addr + "?dial_timeout=200ms")
	if err == nil {
		t.Fatal("Open of a port where nothing listens succeeded")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Open took %v to fail", took)
	}
	if !strings.Contains(err.Error(), addr) {
		t.Errorf("the error %q does not name the address", err)
	}
}

func TestCluster(t *testing.T) {
	tc := redistest.StartCluster(t)
	c := open(t, tc.URL())
	if c.Topology() != Cluster {
		t.Errorf("Topology() = %v", c.Topology())
	}
	ctx := ctx(t)

	t.Run("set and get on every node's slots", func(t *testing.T) {
		// 30 keys land on all three masters (about 10 each).
		for i := range 30 {
			setGet(t, c, "key-"+strconv.Itoa(i))
		}
	})

	const script = `redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); return redis.call('MGET', KEYS[1], KEYS[2])`
	t.Run("a script on keys of one hash slot works", func(t *testing.T) {
		keys := []string{"{session:42}:record", "{session:42}:index"}
		got, err := c.rc.Do(ctx, c.rc.B().Eval().Script(script).Numkeys(2).Key(keys...).Arg("v").Build()).AsStrSlice()
		if err != nil || len(got) != 2 || got[0] != "v" || got[1] != "v" {
			t.Errorf("EVAL on %v = %v, %v", keys, got, err)
		}
	})
	t.Run("a script on keys of two slots fails with CROSSSLOT", func(t *testing.T) {
		// rueidis's command builder refuses such keys itself (it panics
		// in cluster mode): the command is sent as arbitrary words so
		// that the server judges it.
		keys := []string{"{a}:record", "{b}:record"}
		err := c.rc.Do(ctx, c.rc.B().Arbitrary("EVAL").Args(script, "2", keys[0], keys[1], "v").Build()).Error()
		if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
			t.Errorf("EVAL on %v: %v, want a CROSSSLOT error", keys, err)
		}
	})
	t.Run("ping", func(t *testing.T) {
		if err := c.Ping(ctx); err != nil {
			t.Errorf("Ping: %v", err)
		}
	})
	t.Run("ping fails when a master is down", func(t *testing.T) {
		tc.Nodes[2].Kill()
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		err := c.Ping(pctx)
		if err == nil {
			t.Fatal("Ping succeeded with a master down")
		}
		if !strings.Contains(err.Error(), tc.Nodes[2].Addr()) {
			t.Errorf("Ping: %v, want it to name %s", err, tc.Nodes[2].Addr())
		}
	})
}

func TestClusterURLOnAStandaloneServerFails(t *testing.T) {
	s := redistest.StartServer(t, redistest.Config{})
	_, err := Open("redis+cluster://" + s.Addr())
	if err == nil || !strings.Contains(err.Error(), "not a Redis Cluster node") {
		t.Errorf("Open(redis+cluster://%s): %v, want an error saying it is not a cluster node", s.Addr(), err)
	}
}

func TestSentinelReachesTheMaster(t *testing.T) {
	ts := redistest.StartSentinel(t)
	c := open(t, ts.URL())
	if c.Topology() != Sentinel {
		t.Errorf("Topology() = %v", c.Topology())
	}
	setGet(t, c, "through-sentinel")
	ctx := ctx(t)

	// The client talks to the master itself: the value is there.
	direct := open(t, ts.Master.URL())
	if got, err := direct.rc.Do(ctx, direct.rc.B().Get().Key("through-sentinel").Build()).ToString(); err != nil || got != "value of through-sentinel" {
		t.Errorf("GET on the master = %q, %v", got, err)
	}
	role, err := c.rc.Do(ctx, c.rc.B().Role().Build()).ToArray()
	if err != nil || len(role) == 0 {
		t.Fatalf("ROLE: %v", err)
	}
	if r, _ := role[0].ToString(); r != "master" {
		t.Errorf("ROLE = %s, want master", r)
	}
	if err := c.Ping(ctx); err != nil {
		t.Errorf("Ping: %v", err)
	}

	t.Run("the sentinel's password is not the master's", func(t *testing.T) {
		u, _ := url.Parse(ts.URL())
		q := u.Query()
		q.Set("sentinel_password", redistest.SentinelMasterPassword)
		u.RawQuery = q.Encode()
		if c, err := Open(u.String()); err == nil {
			c.Close()
			t.Error("Open with the master's password for the sentinel succeeded")
		}
	})
	t.Run("an unknown master set fails", func(t *testing.T) {
		u, _ := url.Parse(ts.URL())
		q := u.Query()
		q.Set("master", "nosuchmaster")
		q.Set("dial_timeout", "500ms")
		u.RawQuery = q.Encode()
		if c, err := Open(u.String()); err == nil {
			c.Close()
			t.Error("Open with an unknown master set succeeded")
		}
	})
}

func TestClientReconnectsToARestartedServer(t *testing.T) {
	s := redistest.StartServer(t, redistest.Config{})
	c := open(t, s.URL()+"?io_timeout=1s")
	setGet(t, c, "before")

	s.Kill()
	pctx, cancel := context.WithTimeout(ctx(t), 2*time.Second)
	defer cancel()
	if err := c.Ping(pctx); err == nil {
		t.Fatal("Ping succeeded with the server killed")
	}

	// After the restart, a write may still fail once on each connection
	// that has not yet found its socket dead (rueidis retries reads, not
	// writes; an idle connection learns it at its next keep-alive PING,
	// within a second): the client has recovered once every call of a
	// burst succeeds.
	s.Restart()
	restarted := time.Now()
	const burst = 20
	eventually(t, "a burst of writes and reads on the restarted server to succeed", func() error {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		for i := range burst {
			key := "after-" + strconv.Itoa(i)
			if err := c.rc.Do(ctx, c.rc.B().Set().Key(key).Value("v").Build()).Error(); err != nil {
				return fmt.Errorf("SET %s: %w", key, err)
			}
			if got, err := c.rc.Do(ctx, c.rc.B().Get().Key(key).Build()).ToString(); err != nil || got != "v" {
				return fmt.Errorf("GET %s = %q, %v", key, got, err)
			}
		}
		return c.Ping(ctx)
	})
	t.Logf("recovered %v after the restart", time.Since(restarted).Round(time.Millisecond))
}

func TestCloseTwice(t *testing.T) {
	c := open(t, redistest.Standalone(t))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx(t)); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

func TestInfoFieldReadsRESP2AndRESP3Replies(t *testing.T) {
	for _, info := range []string{
		"cluster_state:ok\r\ncluster_slots_assigned:16384\r\n",
		"txt:cluster_state:ok\r\ncluster_slots_assigned:16384\r\n",
		"# Cluster\ncluster_slots_assigned:16384\ncluster_state:ok",
	} {
		if got := infoField(info, "cluster_state"); got != "ok" {
			t.Errorf("infoField(%q, cluster_state) = %q, want ok", info, got)
		}
	}
	if got := infoField("cluster_state_x:1\r\n", "cluster_state"); got != "" {
		t.Errorf("a longer name matched: %q", got)
	}
}
