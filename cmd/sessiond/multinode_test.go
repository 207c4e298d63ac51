package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	jwtlib "github.com/golang-jwt/jwt/v5"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/internal/workers"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
)

// Tests of several real sessiond processes sharing a real Redis: what the
// cluster promises when a node is killed, and when many deadlines fall in
// one second.

const clusterKey = "sdk_cluster_test_key_0123456789abcdef"

// binaryNode runs the sessiond binary as a node of the cluster on the
// Redis at url, with the YAML configuration conf, and returns once it is
// ready. The node's log is printed if the test fails.
func binaryNode(t *testing.T, bin, url, name, conf string) *proc {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "sessiond.yaml")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, name+".log")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 20000 {
				b = b[len(b)-20000:]
			}
			t.Logf("%s's log (the end):\n%s", name, b)
		}
	})
	addr := freeAddr(t)
	p := startRaw(t, bin, logPath, "serve", "--addr", addr, "--store", url, "--node", name,
		"--api-key", clusterKey, "--jwt-secret", testSecret, "--config", cfgPath, "--data-dir", dir,
		"--log-format", "json", "--access-log=false",
		"--ws-connects-per-address", "-1", "--ws-connects-per-subject", "-1")
	p.addr, p.key = addr, clusterKey
	sessiondtest.Eventually(t, name+" ready", func() bool {
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready: %v\n%s", name, p.err, p.log())
		default:
		}
		return readyStatus(addr) == http.StatusOK
	})
	p.c = client.New(addr, clusterKey)
	p.c.HTTP = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	return p
}

// hsCredential is a WebSocket credential for subject, signed with the
// nodes' secret.
func hsCredential(t testing.TB, subject string) string {
	t.Helper()
	now := time.Now()
	s, err := jwtlib.NewWithClaims(jwtlib.SigningMethodHS256, jwtlib.MapClaims{
		"sub": subject, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// replayEvents reads the whole event log through the node at addr, up to
// the created event of a session it makes last, and returns it.
func replayEvents(t *testing.T, p *proc) []sessiond.Event {
	t.Helper()
	marker, err := p.c.Create(t.Context(), client.CreateRequest{Subject: "replay-marker"})
	if err != nil {
		t.Fatal(err)
	}
	es := openEvents(t, "http://"+p.addr, p.key, "0")
	defer es.close()
	var out []sessiond.Event
	es.until(t, func(e sessiond.Event) bool {
		out = append(out, e)
		return e.SessionID == marker.ID && e.Type == sessiond.EventCreated
	})
	return out
}

// TestClusterNodeKilled: node-1 holds 1,000 live WebSocket sessions and is
// killed with SIGKILL. 900 clients reconnect to node-2 at once: each gets
// its session back (same id, resumed: true); the time from dial to ack is
// logged (docs/benchmarks.md records it). The 100 that do not come back end
// with grace_elapsed, once each, after node-1's lease lapses and another
// node takes their connections for lost; the 900 stay active.
func TestClusterNodeKilled(t *testing.T) {
	url := redistest.Standalone(t)
	bin := buildSessiond(t)
	const conf = `lease_ttl: 2s
connect_policy: device
policies:
  device:
    ttl: 1h
    idle_timeout: 30m
    disconnect_grace: 5s
    on_connect: replace
    max_connections: 1
`
	n1 := binaryNode(t, bin, url, "node-1", conf)
	n2 := binaryNode(t, bin, url, "node-2", conf)
	binaryNode(t, bin, url, "node-3", conf)

	const total, back = 1000, 900
	creds := make([]string, total)
	ids := make([]string, total)
	for i := range total {
		creds[i] = hsCredential(t, fmt.Sprintf("device-%04d", i))
	}
	parallel(t, total, 32, func(i int) error {
		c, ack, err := dialAck(t, "ws://"+n1.addr+"/v1/connect?device_id=glasses", creds[i])
		if err != nil {
			return err
		}
		_ = c // held until node-1 dies
		ids[i] = ack.SessionID
		return nil
	})

	n1.kill()
	killed := time.Now()

	took := make([]time.Duration, back)
	parallel(t, back, 64, func(i int) error {
		begin := time.Now()
		_, ack, err := dialAck(t, "ws://"+n2.addr+"/v1/connect?device_id=glasses", creds[i])
		took[i] = time.Since(begin)
		if err != nil {
			return err
		}
		if ack.SessionID != ids[i] || !ack.Resumed {
			return fmt.Errorf("device-%04d reconnecting to node-2: session %s resumed=%v; want %s resumed", i, ack.SessionID, ack.Resumed, ids[i])
		}
		return nil
	})
	slices.Sort(took)
	p99 := took[len(took)*99/100]
	t.Logf("%d reconnects to node-2 after node-1's kill: all resumed; from dial to ack p50 %v, p99 %v, max %v; the last done %v after the kill",
		back, took[len(took)/2], p99, took[len(took)-1], time.Since(killed).Round(time.Millisecond))

	// The 100 that stay away end once node-1's lease (2s) lapses and their
	// grace (5s) passes.
	// Real processes on real time: the wait is bounded by the lease and
	// the grace, with room for a loaded machine.
	for _, id := range ids[back:] {
		waitUntil(t, killed.Add(30*time.Second), "the session of a client that did not come back ends", func() bool {
			s, err := n2.c.Get(t.Context(), id)
			return err == nil && s.State == sessiond.StateEnded
		})
	}
	t.Logf("the %d sessions whose clients stayed away ended %v after the kill", total-back, time.Since(killed).Round(time.Millisecond))

	count := map[string]map[string]int{}
	for _, e := range replayEvents(t, n2) {
		if count[e.SessionID] == nil {
			count[e.SessionID] = map[string]int{}
		}
		k := string(e.Type)
		if e.Reason != "" {
			k += ":" + string(e.Reason)
		}
		if e.Conn != nil && e.Conn.CloseReason != "" {
			k += "/" + string(e.Conn.CloseReason)
		}
		count[e.SessionID][k]++
	}
	for i, id := range ids {
		c := count[id]
		if i >= back {
			if c["connected"] != 1 || c["connection_closed/node_lost"] != 1 || c["disconnected"] != 1 || c["ending:grace_elapsed"] != 1 ||
				c["ended:grace_elapsed"] != 1 || len(c) != 6 {
				t.Errorf("session %s of a client that stayed away: events %v; want created, connected, then its connection closed as node_lost, "+
					"disconnected and ended with grace_elapsed once each", id, c)
			}
			continue
		}
		s, err := n2.c.Get(t.Context(), id)
		if err != nil || s.State != sessiond.StateActive || s.ConnCount != 1 {
			t.Errorf("session %s resumed on node-2: %+v, %v; want active with its one connection", id, s, err)
		}
		// A reconnect that lands before node-1's lease lapses replaces its
		// connection (closed as replaced); one that lands after finds it
		// dropped (closed as node_lost, the session disconnected) and
		// resumes the session. Either way the session never ends.
		replaced := c["disconnected"] == 0 && c["connected"] == 2 && c["connection_closed/replaced"] == 1 && len(c) == 3
		resumed := c["disconnected"] == 1 && c["resumed"] == 1 && c["connected"] == 1 && c["connection_closed/node_lost"] == 1 && len(c) == 5
		if !replaced && !resumed {
			t.Errorf("session %s resumed on node-2 has events %v", id, c)
		}
	}
}

// TestClusterExpiriesExactlyOnce: three nodes, 10,000 sessions created
// through all three whose ttls end in the same second. Each ends exactly
// once (one ending and one ended event, reason expired), none before its
// deadline, and all within expiryBound after it. The target, all within
// 1s, is measured with this test outside the race detector and CI's
// parallel packages (docs/benchmarks.md): on two cores shared by three
// nodes, Redis and the test, the tail is about 0.9s alone and up to 1.2s
// beside the rest of CI, so the bound here catches what would break the
// design (a deadline left to the 1s poll, or to a 5s claim hold) rather
// than the machine's load.
func TestClusterExpiriesExactlyOnce(t *testing.T) {
	url := redistest.Standalone(t)
	bin := buildSessiond(t)
	const conf = `event_retention: 200000
default_policy: fixed
policies:
  fixed:
    ttl: 1h
`
	nodes := []*proc{
		binaryNode(t, bin, url, "node-1", conf),
		binaryNode(t, bin, url, "node-2", conf),
		binaryNode(t, bin, url, "node-3", conf),
	}
	n := envInt(t, "SESSIOND_TEST_EXPIRIES", 10_000)
	// Room for the creates: about 8s for 10,000 under -race on two cores,
	// more beside the rest of CI.
	target := time.Now().Add(20 * time.Second).Truncate(time.Second)
	expires := make([]time.Time, n)
	ids := make([]string, n)
	begin := time.Now()
	parallel(t, n, 48, func(i int) error {
		ttl := time.Until(target).Round(time.Millisecond)
		s, err := nodes[i%3].c.Create(context.Background(), client.CreateRequest{Subject: fmt.Sprintf("user-%d", i), TTL: ttl.String()})
		if err != nil {
			return err
		}
		ids[i], expires[i] = s.ID, s.Session.ExpiresAt
		return nil
	})
	t.Logf("%d creates through 3 nodes in %v; all expire in [%v, %v]", n, time.Since(begin).Round(time.Millisecond),
		slices.MinFunc(expires, time.Time.Compare).Format("15:04:05.000"), slices.MaxFunc(expires, time.Time.Compare).Format("15:04:05.000"))
	if time.Now().After(target) {
		t.Fatalf("the creates took until after the sessions' expiry: the test is broken on this machine")
	}

	waitUntil(t, target.Add(15*time.Second), "all sessions end", func() bool {
		st, err := nodes[0].c.Stats(t.Context())
		return err == nil && st.Sessions[sessiond.StateEnded.String()] >= n
	})

	index := make(map[string]int, n)
	for i, id := range ids {
		index[id] = i
	}
	ending, ended := make([]int, n), make([]int, n)
	var late []time.Duration
	for _, e := range replayEvents(t, nodes[1]) {
		i, ok := index[e.SessionID]
		if !ok {
			continue
		}
		switch e.Type {
		case sessiond.EventEnding:
			ending[i]++
		case sessiond.EventEnded:
			ended[i]++
			if e.Reason != sessiond.EndExpired {
				t.Errorf("session %s ended with %q, want expired", e.SessionID, e.Reason)
			}
			late = append(late, e.Time.Sub(expires[i]))
		}
	}
	var once int
	for i := range n {
		if ending[i] == 1 && ended[i] == 1 {
			once++
		} else if ending[i] != 1 || ended[i] != 1 {
			t.Errorf("session %s: %d ending and %d ended events, want one each", ids[i], ending[i], ended[i])
		}
	}
	slices.Sort(late)
	t.Logf("%d of %d sessions ended exactly once; ended after their deadline: min %v, p50 %v, p99 %v, max %v",
		once, n, late[0], late[len(late)/2], late[len(late)*99/100], late[len(late)-1])
	if late[0] < 0 || late[len(late)-1] > expiryBound {
		t.Errorf("sessions ended from %v to %v after their deadline; want all within [0, %v]", late[0], late[len(late)-1], expiryBound)
	}
}

// waitUntil polls cond until it holds, failing the test at deadline: for
// tests of real processes, whose timers run on real time.
func waitUntil(t *testing.T, deadline time.Time, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not by %v", what, deadline.Format("15:04:05.000"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// expiryBound is how late TestClusterExpiriesExactlyOnce lets an expiry be.
const expiryBound = 2500 * time.Millisecond

// parallel runs f(0..n-1) on workers goroutines and fails the test with
// the first error.
func parallel(t *testing.T, n, conc int, f func(i int) error) {
	t.Helper()
	if err := workers.Each(n, conc, f); err != nil {
		t.Fatal(err)
	}
}

// dialAck opens a WebSocket with a credential and reads the ack. The
// socket is closed when the test ends.
func dialAck(t *testing.T, url, cred string) (*websocket.Conn, wire.Connected, error) {
	c, _, err := wsDial(t, url, wsOpts{token: cred})
	if err != nil {
		return nil, wire.Connected{}, err
	}
	ack, err := readAck(c)
	return c, ack, err
}

// TestClusterTopologies runs three sessiond processes on a three-master
// Redis Cluster and on a Sentinel deployment, each started by the test:
// a session created through node-1 validates through node-2 and is
// revoked through node-3, each call seeing the one before; a WebSocket
// node-1 holds closes with 4500 on the revoke, and node-3's event stream
// carries what node-1 recorded.
func TestClusterTopologies(t *testing.T) {
	bin := buildSessiond(t)
	for _, topo := range []struct {
		name string
		url  func(testing.TB) string
	}{{"cluster", redistest.Cluster}, {"sentinel", redistest.Sentinel}} {
		t.Run(topo.name, func(t *testing.T) {
			url := topo.url(t)
			const conf = "connect_policy: device\n"
			n1 := binaryNode(t, bin, url, "node-1", conf)
			n2 := binaryNode(t, bin, url, "node-2", conf)
			n3 := binaryNode(t, bin, url, "node-3", conf)
			ctx := t.Context()
			es := openEvents(t, "http://"+n3.addr, n3.key, "")
			defer es.close()

			var ids []string
			for i := range 20 { // subjects over several partitions, so slots
				s, err := n1.c.Create(ctx, client.CreateRequest{Subject: fmt.Sprintf("user-%d", i)})
				if err != nil {
					t.Fatal(err)
				}
				if v, err := n2.c.Validate(ctx, s.Token, nil); err != nil || v.Session.ID != s.ID {
					t.Fatalf("validate through node-2 of a create through node-1: %+v, %v", v, err)
				}
				if err := n3.c.Revoke(ctx, s.ID); err != nil {
					t.Fatalf("revoke through node-3: %v", err)
				}
				if _, err := n1.c.Validate(ctx, s.Token, nil); !errors.Is(err, sessiond.ErrEnded) {
					t.Fatalf("validate through node-1 after the revoke through node-3: %v; want session_ended", err)
				}
				ids = append(ids, s.ID)
			}

			c, ack, err := dialAck(t, "ws://"+n1.addr+"/v1/connect?device_id=glasses", hsCredential(t, "dora"))
			if err != nil {
				t.Fatal(err)
			}
			begin := time.Now()
			if err := n3.c.Revoke(ctx, ack.SessionID); err != nil {
				t.Fatal(err)
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			if _, _, err := c.Read(rctx); websocket.CloseStatus(err) != websocket.StatusCode(wire.CloseSessionRevoked) {
				t.Fatalf("node-1's socket after a revoke through node-3: %v; want closed with %d", err, wire.CloseSessionRevoked)
			}
			t.Logf("%s: revoke through node-3 closed node-1's socket %v later", topo.name, time.Since(begin))

			want := map[string]bool{}
			for _, id := range ids {
				want[id] = true
			}
			es.until(t, func(e sessiond.Event) bool {
				if e.Type == sessiond.EventCreated {
					delete(want, e.SessionID)
				}
				return len(want) == 0
			})
		})
	}
}
