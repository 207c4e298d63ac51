package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
)

// faultOpTimeout is the store's op timeout in the fault tests: a call to
// Redis that has not answered by then fails the request with 503.
const faultOpTimeout = 200 * time.Millisecond

// fastFailBound is how soon a request must be answered 503 while Redis is
// slow or cut: the op timeout, plus a margin for a loaded machine running
// the tests with -race. It is well under the latency the tests inject, so
// an answer within it did not wait for Redis.
const fastFailBound = faultOpTimeout + 800*time.Millisecond

// faultNodes starts two nodes on a throwaway Redis: node-1 reaches it
// through a fault proxy, with the store's op timeout at faultOpTimeout;
// node-2 reaches it directly. It returns node-1's socket, open for a
// session of alice's.
func faultNodes(t *testing.T) (n1, n2 *testServer, px *redistest.Proxy, sock *websocket.Conn, ack wire.Connected) {
	t.Helper()
	srv := redistest.StartServer(t, redistest.Config{})
	px = redistest.StartProxy(t, srv.Addr())
	n1 = clusterNode(t, "redis://"+px.Addr(), "node-1", func(cfg *Config) { cfg.storeOpTimeout = faultOpTimeout })
	n2 = clusterNode(t, srv.URL(), "node-2", nil)
	sock, ack = wsConnect(t, "ws://"+n1.addr+"/v1/connect?device_id=glasses", wsOpts{token: cliToken(t, "alice", "1h")})
	return n1, n2, px, sock, ack
}

// validateStatus validates token over REST and returns the answer's
// status, its error code if any, and how long it took.
func validateStatus(t *testing.T, n *testServer, token string) (int, sessiond.Code, time.Duration) {
	t.Helper()
	body, err := json.Marshal(wire.ValidateRequest{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), "POST", n.url+"/v1/sessions/validate", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.key)
	begin := time.Now()
	resp, err := n.hc.Do(req)
	if err != nil {
		t.Fatalf("validate: %v after %v", err, time.Since(begin))
	}
	defer resp.Body.Close()
	var e struct {
		Error struct {
			Code sessiond.Code `json:"code"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error.Code, time.Since(begin)
}

// failsFast checks that validations of token are answered 503
// store_unavailable within fastFailBound, a few times, and returns the
// slowest answer.
func failsFast(t *testing.T, n *testServer, token, while string) time.Duration {
	t.Helper()
	var slowest time.Duration
	for range 3 {
		status, code, took := validateStatus(t, n, token)
		if status != http.StatusServiceUnavailable || code != sessiond.CodeStoreUnavailable || took > fastFailBound {
			t.Fatalf("validate %s: %d %s after %v; want 503 store_unavailable within %v", while, status, code, took, fastFailBound)
		}
		slowest = max(slowest, took)
	}
	return slowest
}

// recovers waits until a validation of token succeeds and returns how long
// that took from since.
func recovers(t *testing.T, n *testServer, token, what string, since time.Time) time.Duration {
	t.Helper()
	var took time.Duration
	sessiondtest.Eventually(t, what, func() bool {
		status, _, _ := validateStatus(t, n, token)
		took = time.Since(since)
		return status == http.StatusOK
	})
	return took
}

// readyz returns /readyz's status code and body.
func readyz(t *testing.T, n *testServer) (int, wire.ReadyResponse) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", n.url+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		t.Fatalf("readyz: %v", err)
	}
	defer resp.Body.Close()
	var r wire.ReadyResponse
	_ = json.NewDecoder(resp.Body).Decode(&r)
	return resp.StatusCode, r
}

// wsPing sends a ping on c and waits for the pong: the socket is open and
// its node serves it.
func wsPing(t *testing.T, c *websocket.Conn, while string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatalf("ping on the socket %s: %v", while, err)
	}
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("the socket %s: %v (close code %d); want it open, answering pings", while, err, websocket.CloseStatus(err))
		}
		var m wire.Envelope
		if json.Unmarshal(b, &m) == nil && m.Type == wire.TypePong {
			return
		}
	}
}

// revokedElsewhere revokes the session of sock through n2 and checks that
// the node holding sock closes it with 4500: that node follows the store.
func revokedElsewhere(t *testing.T, n2 *testServer, sock *websocket.Conn, sessionID, while string) {
	t.Helper()
	if err := n2.client().Revoke(t.Context(), sessionID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := sock.Read(ctx)
		if err == nil {
			continue // a pong, or a message sent before the revoke
		}
		if code := websocket.CloseStatus(err); code != websocket.StatusCode(wire.CloseSessionRevoked) {
			t.Fatalf("node-1's socket after a revoke through node-2, %s: %v (code %d); want closed with %d", while, err, code, wire.CloseSessionRevoked)
		}
		return
	}
}

// With Redis slower than the op timeout (a latency toxic on the way back
// to node-1), a validation is answered 503 store_unavailable at the op
// timeout rather than when Redis answers, and a WebSocket node-1 holds
// stays open and answered. Once Redis is fast again, node-1 serves by
// itself, nothing restarted, and follows the store again: a revoke
// through node-2 closes its socket.
func TestRedisSlowValidationFailsFastAndRecovers(t *testing.T) {
	toxicFailsFastAndRecovers(t, "latency", "downstream", map[string]any{"latency": 3000}, "Redis 3s slow")
}

// With the way to Redis cut (the proxy refuses dials and closes every
// connection), requests fail fast with 503 store_unavailable (a new
// WebSocket too, before the upgrade), /readyz says the store is not ok,
// and a WebSocket node-1 holds stays open and answered. Once the way is
// open again node-1 serves by itself and follows the store again. Every
// create answered 201, also those racing the cut, is there after it.
func TestRedisCutKeepsSocketsAndLosesNothingAcknowledged(t *testing.T) {
	n1, n2, px, sock, ack := faultNodes(t)
	ctx := t.Context()
	s := create(t, n1.client(), "alice")

	// Creates through node-1, before and while the way is cut.
	w := startWriter(t, n1.client())
	sessiondtest.Eventually(t, "creates acknowledged before the cut", func() bool { return w.counts().acked >= 20 })
	px.Disable()
	sessiondtest.Eventually(t, "creates refused during the cut", func() bool { return w.counts().refused >= 3 })
	w.stop()

	slowest := failsFast(t, n1, s.Token, "with the way to Redis cut")
	begin := time.Now()
	if status, err := wsStatus(t, "ws://"+n1.addr+"/v1/connect?device_id=phone", wsOpts{token: cliToken(t, "carol", "1h")}); status != http.StatusServiceUnavailable || time.Since(begin) > fastFailBound {
		t.Fatalf("a new WebSocket with the way to Redis cut: %d, %v after %v; want refused with 503 within %v", status, err, time.Since(begin), fastFailBound)
	}
	if code, r := readyz(t, n1); code != http.StatusOK || r.Status != "degraded" || r.Checks["store"].OK {
		t.Fatalf("readyz with the way to Redis cut: %d %+v; want 200 degraded, the store check not ok", code, r)
	}
	wsPing(t, sock, "during the cut")

	px.Enable()
	took := recovers(t, n1, s.Token, "validations once the way to Redis is open again", time.Now())
	sessiondtest.Eventually(t, "readyz ready again", func() bool {
		code, r := readyz(t, n1)
		return code == http.StatusOK && r.Status == "ready" && r.Checks["store"].OK
	})
	wsPing(t, sock, "after the cut")

	// Nothing acknowledged is lost; what was refused may or may not be there.
	c := w.counts()
	for subject, ids := range w.acked {
		got, err := n2.client().ListSubject(ctx, subject)
		if err != nil {
			t.Fatal(err)
		}
		there := map[string]bool{}
		for _, v := range got {
			there[v.ID] = true
		}
		for _, id := range ids {
			if !there[id] {
				t.Errorf("session %s of %s, created with 201 before or during the cut, is gone", id, subject)
			}
		}
		if len(got) > len(ids)+w.refused[subject] {
			t.Errorf("%s has %d sessions; at most %d were created (%d answered 201, %d answered 503)", subject, len(got), len(ids)+w.refused[subject], len(ids), w.refused[subject])
		}
	}
	revokedElsewhere(t, n2, sock, ack.SessionID, "once the cut was over")
	t.Logf("way to Redis cut, op timeout %v: 503 within %v (slowest of 3); validations again %v after it opened; creates: %d answered 201 (all there), %d answered 503",
		faultOpTimeout, slowest, took, c.acked, c.refused)
}

// With every connection to Redis reset by the peer (a reset_peer toxic:
// RST on the first bytes), requests fail fast with 503 store_unavailable
// and a WebSocket node-1 holds stays open; once connections stop being
// reset node-1 serves by itself and follows the store again.
func TestRedisResetConnectionsRecover(t *testing.T) {
	toxicFailsFastAndRecovers(t, "reset_peer", "upstream", map[string]any{"timeout": 0}, "connections to Redis reset")
}

// toxicFailsFastAndRecovers puts a toxic between node-1 and Redis:
// validations through node-1 are answered 503 store_unavailable fast and
// the WebSocket it holds answers pings; once the toxic is gone node-1
// validates and creates again, nothing restarted, its socket still
// answers, and a revoke through node-2 closes it (node-1 follows the
// store again).
func toxicFailsFastAndRecovers(t *testing.T, typ, stream string, attrs map[string]any, what string) {
	t.Helper()
	n1, n2, px, sock, ack := faultNodes(t)
	s := create(t, n1.client(), "alice")

	px.AddToxic("toxic", typ, stream, attrs)
	slowest := failsFast(t, n1, s.Token, "with "+what)
	wsPing(t, sock, "with "+what)

	px.RemoveToxic("toxic")
	took := recovers(t, n1, s.Token, "validations once the toxic went", time.Now())
	create(t, n1.client(), "bob") // and writes
	wsPing(t, sock, "once the toxic went")
	revokedElsewhere(t, n2, sock, ack.SessionID, "once the toxic went")
	t.Logf("%s, op timeout %v: 503 within %v (slowest of 3); validations again %v after it stopped", what, faultOpTimeout, slowest, took)
}

// writer creates sessions through a node until stopped, noting which
// creates were answered 201 and which 503, by subject (50 per subject,
// under the per-subject limit).
type writer struct {
	wg   sync.WaitGroup
	done chan struct{}

	mu      sync.Mutex
	acked   map[string][]string // subject: ids answered 201
	refused map[string]int      // subject: creates answered 503
}

type writerCounts struct{ acked, refused int }

func startWriter(t *testing.T, c *client.Client) *writer {
	w := &writer{done: make(chan struct{}), acked: map[string][]string{}, refused: map[string]int{}}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for i := 0; ; i++ {
			select {
			case <-w.done:
				return
			default:
			}
			subject := fmt.Sprintf("writer-%d", i/50)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r, err := c.Create(ctx, client.CreateRequest{Subject: subject})
			cancel()
			w.mu.Lock()
			switch {
			case err == nil:
				w.acked[subject] = append(w.acked[subject], r.ID)
			case errors.Is(err, sessiond.ErrStoreUnavailable):
				w.refused[subject]++
			default:
				t.Errorf("create for %s: %v; want 201, or 503 store_unavailable", subject, err)
			}
			w.mu.Unlock()
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *writer) stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.wg.Wait()
}

func (w *writer) counts() writerCounts {
	w.mu.Lock()
	defer w.mu.Unlock()
	var c writerCounts
	for _, ids := range w.acked {
		c.acked += len(ids)
	}
	for _, n := range w.refused {
		c.refused += n
	}
	return c
}

// With Redis cut off from every node for longer than a node lease (1s
// here, 15s by default), no node takes another for dead once Redis is
// back: they were all cut off alike. Their sockets stay open, and each
// keeps its lease. (A node used to claim the others' lapsed leases at
// once, and the others, fenced, closed every socket they held with 4000.)
func TestRedisOutageLongerThanALeaseKeepsSockets(t *testing.T) {
	srv := redistest.StartServer(t, redistest.Config{})
	px := redistest.StartProxy(t, srv.Addr())
	edit := func(cfg *Config) { cfg.storeOpTimeout, cfg.LeaseTTL = faultOpTimeout, Duration(time.Second) }
	n1 := clusterNode(t, "redis://"+px.Addr(), "node-1", edit)
	n2 := clusterNode(t, "redis://"+px.Addr(), "node-2", edit)
	s1, _ := wsConnect(t, "ws://"+n1.addr+"/v1/connect?device_id=a", wsOpts{token: cliToken(t, "alice", "1h")})
	s2, _ := wsConnect(t, "ws://"+n2.addr+"/v1/connect?device_id=b", wsOpts{token: cliToken(t, "bob", "1h")})

	px.Disable()
	sessiondtest.Eventually(t, "both nodes' leases lapsed during the outage", func() bool {
		now := time.Now()
		return now.After(n1.s.m.Lease().Until) && now.After(n2.s.m.Lease().Until)
	})
	px.Enable()
	v1, v2 := n1.s.m.Lease().Version, n2.s.m.Lease().Version
	// Five renewals (a third of a lease each) take longer than the lease
	// that each node waits before it judges the others' again.
	sessiondtest.Eventually(t, "each node renewed its lease five times, or was fenced", func() bool {
		a, b := n1.s.m.Lease().Version, n2.s.m.Lease().Version
		return (a == 0 || a >= v1+5) && (b == 0 || b >= v2+5)
	})
	if a, b := n1.s.m.Lease().Version, n2.s.m.Lease().Version; a == 0 || b == 0 {
		t.Errorf("after an outage of Redis for every node, a node was fenced off: lease versions %d and %d", a, b)
	}
	wsPing(t, s1, "on node-1 after an outage longer than a lease")
	wsPing(t, s2, "on node-2 after an outage longer than a lease")
}
