package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
)

// clusterNode starts a node of a cluster on the Redis at url: the nodes of
// a test share the API key and the JWT secret; edit, if given, changes the
// rest of the node's configuration.
func clusterNode(t *testing.T, url, name string, edit func(*Config)) *testServer {
	t.Helper()
	cfg := testConfig(t)
	cfg.Store, cfg.Node = url, name
	cfg.APIKey = "sdk_cluster_test_key_0123456789abcdef"
	cfg.JWT.Secret = testSecret
	if edit != nil {
		edit(&cfg)
	}
	return startServer(t, cfg)
}

// TestNodesShareARedisStore runs two servers on one Redis (--store
// redis://...): what one node writes the other reads, and a revoke through
// one node closes a WebSocket the other holds, with its terminal code.
func TestNodesShareARedisStore(t *testing.T) {
	url := redistest.Standalone(t)
	n1, n2 := clusterNode(t, url, "node-1", nil), clusterNode(t, url, "node-2", nil)
	ctx := t.Context()

	s := create(t, n1.client(), "alice")
	if v, err := n2.client().Validate(ctx, s.Token, nil); err != nil || v.Session.ID != s.ID {
		t.Fatalf("validate through node-2 of a session created through node-1: %+v, %v", v, err)
	}
	if err := n2.client().Revoke(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.client().Validate(ctx, s.Token, nil); !errors.Is(err, sessiond.ErrEnded) {
		t.Fatalf("validate through node-1 after a revoke through node-2: %v; want session_ended", err)
	}

	// WebSockets held by node-1, revoked through node-2.
	var took []time.Duration
	for i := range 10 {
		c, ack := wsConnect(t, "ws://"+n1.addr+"/v1/connect?device_id=glasses-"+string(rune('a'+i)), wsOpts{token: cliToken(t, "bob", "")})
		begin := time.Now()
		if err := n2.client().Revoke(ctx, ack.SessionID); err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, _, err := c.Read(rctx)
		cancel()
		if code := websocket.CloseStatus(err); code != websocket.StatusCode(wire.CloseSessionRevoked) {
			t.Fatalf("the socket on node-1 after a revoke through node-2: %v (code %d); want closed with %d", err, code, wire.CloseSessionRevoked)
		}
		took = append(took, time.Since(begin))
	}
	slices.Sort(took)
	t.Logf("revoke through node-2 to close on node-1, 10 sockets: median %v, slowest %v", took[len(took)/2], took[len(took)-1])

	// Revoking all of a subject's sessions through node-2 closes them too.
	c, _ := wsConnect(t, "ws://"+n1.addr+"/v1/connect?device_id=phone", wsOpts{token: cliToken(t, "carol", "")})
	if n, err := n2.client().RevokeSubject(ctx, "carol"); err != nil || n != 1 {
		t.Fatalf("revoke carol's sessions through node-2: %d, %v", n, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, _, err := c.Read(rctx); websocket.CloseStatus(err) != websocket.StatusCode(wire.CloseSessionRevoked) {
		t.Fatalf("carol's socket on node-1 after revoking her sessions through node-2: %v", err)
	}

	// The event stream of node-2 carries what node-1 records.
	req, err := http.NewRequestWithContext(rctx, "GET", n2.url+"/v1/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n2.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	dave := create(t, n1.client(), "dave")
	lines := bufio.NewScanner(resp.Body)
	for lines.Scan() {
		if line := lines.Text(); strings.HasPrefix(line, "data: ") && strings.Contains(line, dave.ID) {
			return // node-1's create, streamed by node-2
		}
	}
	t.Fatalf("node-2's event stream ended without the session created through node-1: %v", lines.Err())
}

// sessiond config shows a Redis store's URL without its passwords.
func TestConfigHidesRedisPasswords(t *testing.T) {
	code, out, errOut := cli(t, noEnv, "config", "--data-dir", t.TempDir(), "--store",
		"redis+sentinel://:hunter2-master@10.0.0.1:26379,10.0.0.2:26379/2?master=main&sentinel_password=hunter2-sentinel")
	if code != 0 {
		t.Fatalf("config: exit %d: %s", code, errOut)
	}
	if strings.Contains(out, "hunter2") || !strings.Contains(out, "store: redis+sentinel://") || !strings.Contains(out, "master=main") {
		t.Fatalf("config printed:\n%s\nwant the store's URL without its passwords", out)
	}
}

// With Redis down, a validation fails fast with 503 store_unavailable
// (within the URL's io_timeout), and the node serves again by itself once
// Redis is back; what was acknowledged before is still there.
func TestRedisDownAndBack(t *testing.T) {
	srv := redistest.StartServer(t, redistest.Config{Durable: true})
	cfg := testConfig(t)
	cfg.Store = srv.URL() + "?io_timeout=300ms&dial_timeout=300ms"
	n := startServer(t, cfg)
	ctx := t.Context()
	s := create(t, n.client(), "alice")

	srv.Kill()
	for range 3 {
		begin := time.Now()
		_, err := n.client().Validate(ctx, s.Token, nil)
		if took := time.Since(begin); !errors.Is(err, sessiond.ErrStoreUnavailable) || took > 2*time.Second {
			t.Fatalf("validate with Redis down: %v after %v; want store_unavailable within the timeouts", err, took)
		}
	}
	srv.Restart()
	sessiondtest.Eventually(t, "validations again once Redis is back", func() bool {
		v, err := n.client().Validate(ctx, s.Token, nil)
		return err == nil && v.Session.ID == s.ID
	})
	create(t, n.client(), "bob") // and writes
}

// A create through node-2 that evicts the subject's oldest session (its
// policy's max_per_subject, on_limit evict_oldest) closes the socket node-1
// holds for the evicted one, with 4503 (ended).
func TestEvictionThroughAnotherNodeClosesTheSocket(t *testing.T) {
	url := redistest.Standalone(t)
	onePerSubject := func(cfg *Config) {
		cfg.DefaultPolicy, cfg.ConnectPolicy = "default", "device"
		cfg.Policies = map[string]PolicyConfig{
			"default": {TTL: Duration(time.Hour)},
			"device": {TTL: Duration(24 * time.Hour), MaxPerSubject: 1, OnLimit: "evict_oldest",
				DisconnectGrace: Duration(30 * time.Second), MaxConnections: 1, OnConnect: "replace"},
		}
	}
	n1, n2 := clusterNode(t, url, "node-1", onePerSubject), clusterNode(t, url, "node-2", onePerSubject)
	c, ack := wsConnect(t, "ws://"+n1.addr+"/v1/connect?device_id=glasses", wsOpts{token: cliToken(t, "erin", "")})
	begin := time.Now()
	created, err := n2.client().Create(t.Context(), wire.CreateRequest{Subject: "erin", Policy: "device", Device: &sessiond.Device{ID: "phone"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(created.Evicted) != 1 || created.Evicted[0] != ack.SessionID {
		t.Fatalf("the create through node-2 evicted %v; want the socket's session %s", created.Evicted, ack.SessionID)
	}
	rctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if _, _, err := c.Read(rctx); websocket.CloseStatus(err) != websocket.StatusCode(wire.CloseSessionEnded) {
		t.Fatalf("the evicted session's socket on node-1: %v; want closed with %d", err, wire.CloseSessionEnded)
	}
	t.Logf("eviction through node-2 closed node-1's socket %v later", time.Since(begin))
}

// TestTheftThroughAnotherNodeClosesTheSocket: a session's token is rotated
// through node-2, and the replaced token is used through node-3 after its
// grace: theft. The session ends (rotated_reuse) and the WebSocket node-1
// holds for it closes with its terminal code.
func TestTheftThroughAnotherNodeClosesTheSocket(t *testing.T) {
	url := redistest.Standalone(t)
	noGrace := func(cfg *Config) {
		cfg.DefaultPolicy, cfg.ConnectPolicy = "web", "web"
		cfg.Policies = map[string]PolicyConfig{
			"web": {TTL: Duration(time.Hour), DisconnectGrace: Duration(30 * time.Second), MaxConnections: 1, OnConnect: "replace"},
		}
	}
	n1, n2, n3 := clusterNode(t, url, "node-1", noGrace), clusterNode(t, url, "node-2", noGrace), clusterNode(t, url, "node-3", noGrace)
	ctx := t.Context()
	s := create(t, n1.client(), "frank")
	c, ack := wsConnect(t, "ws://"+n1.addr+"/v1/connect", wsOpts{token: cliToken(t, "frank", ""), header: http.Header{"X-Session-Token": {s.Token}}})
	if ack.SessionID != s.ID {
		t.Fatalf("the socket attached to %s, want the session %s", ack.SessionID, s.ID)
	}
	if _, err := n2.client().Rotate(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if _, err := n3.client().Validate(ctx, s.Token, nil); !errors.Is(err, sessiond.ErrTokenReused) {
		t.Fatalf("the replaced token through node-3: %v; want token_reused", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, _, err := c.Read(rctx); websocket.CloseStatus(err) != websocket.StatusCode(wire.CloseSessionEnded) {
		t.Fatalf("the stolen session's socket on node-1: %v; want closed with %d", err, wire.CloseSessionEnded)
	}
	t.Logf("theft detected through node-3 closed node-1's socket %v after the validation began", time.Since(begin))
	if got, err := n1.client().Get(ctx, s.ID); err != nil || got.EndReason != sessiond.EndRotatedReuse {
		t.Fatalf("the session after the theft: %+v, %v; want ended rotated_reuse", got, err)
	}
}

// TestValidationCacheAcrossNodes: node-1 caches validations
// (validation_cache: 1m). A revoke through node-1 is seen by its next
// validation; one through node-2 reaches node-1's cache through the event
// log: the time until node-1 answers session_ended is logged
// (docs/redis.md records it); Eventually fails the test past 10s, far
// below the cache's minute.
func TestValidationCacheAcrossNodes(t *testing.T) {
	url := redistest.Standalone(t)
	cached := func(cfg *Config) { cfg.ValidationCache = Duration(time.Minute) }
	n1, n2 := clusterNode(t, url, "node-1", cached), clusterNode(t, url, "node-2", nil)
	ctx := t.Context()

	s := create(t, n1.client(), "alice")
	if _, err := n1.client().Validate(ctx, s.Token, nil); err != nil {
		t.Fatal(err)
	}
	if err := n1.client().Revoke(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.client().Validate(ctx, s.Token, nil); !errors.Is(err, sessiond.ErrEnded) {
		t.Fatalf("validate through node-1 right after its own revoke: %v; want session_ended", err)
	}

	var took []time.Duration
	for range 20 {
		s := create(t, n1.client(), "bob")
		if _, err := n1.client().Validate(ctx, s.Token, nil); err != nil {
			t.Fatal(err)
		}
		if err := n2.client().Revoke(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		sessiondtest.Eventually(t, "node-1 sees the revoke through node-2", func() bool {
			_, err := n1.client().Validate(ctx, s.Token, nil)
			return errors.Is(err, sessiond.ErrEnded)
		})
		took = append(took, time.Since(begin))
	}
	slices.Sort(took)
	t.Logf("a revoke through node-2 reached node-1's validation cache in: median %v, slowest %v (20 sessions)", took[len(took)/2], took[len(took)-1])
}

// TestEventStreamResumesOnAnotherNode: a client reads node-1's event
// stream, stops, and reconnects to node-2 with the Last-Event-ID node-1
// gave it: it gets every event recorded in between, through any node,
// once each, and none it had read.
func TestEventStreamResumesOnAnotherNode(t *testing.T) {
	url := redistest.Standalone(t)
	n1, n2 := clusterNode(t, url, "node-1", nil), clusterNode(t, url, "node-2", nil)
	ctx := t.Context()

	first := openEvents(t, n1.url, n1.key, "")
	var read []string
	for i := range 10 { // subjects over several partitions
		read = append(read, create(t, n1.client(), fmt.Sprintf("before-%d", i)).ID)
	}
	seen, lastID := map[string]int{}, ""
	for len(seen) < len(read) {
		e, id, err := first.nextWithID()
		if err != nil {
			t.Fatal(err)
		}
		seen[e.SessionID]++
		lastID = id
	}
	first.close()

	var missed []string
	for i := range 10 {
		missed = append(missed, create(t, n2.client(), fmt.Sprintf("after-%d", i)).ID)
		if err := n1.client().Revoke(ctx, missed[i]); err != nil {
			t.Fatal(err)
		}
	}
	resumed := openEvents(t, n2.url, n2.key, lastID)
	defer resumed.close()
	got := map[string][]string{}
	marker := create(t, n1.client(), "marker").ID
	resumed.until(t, func(e sessiond.Event) bool {
		got[e.SessionID] = append(got[e.SessionID], string(e.Type))
		return e.SessionID == marker
	})
	for _, id := range read {
		if len(got[id]) != 0 {
			t.Errorf("resumed on node-2, the stream repeated %v of a session read before", got[id])
		}
	}
	for _, id := range missed {
		if fmt.Sprint(got[id]) != "[created ending ended]" {
			t.Errorf("resumed on node-2, session %s: %v; want created, ending, ended once each", id, got[id])
		}
	}
}
