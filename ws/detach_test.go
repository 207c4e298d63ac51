package ws_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
	"github.com/sessiond/sessiond/ws"
)

// A detach that fails is retried until it lands: the session does not keep
// a connection that no longer exists (it would never idle and would count
// against max_connections).
func TestFailedDetachIsRetried(t *testing.T) {
	st := &sessiondtest.FaultyStore{Store: inmem.New(inmem.Options{})}
	e := newEnvWith(t, ws.Config{}, sessiond.Config{Store: st})
	c := e.mustDial("alice", "device_id=glasses", nil)
	sid, _, _, _ := c.ack()
	st.UpdatesDown.Store(true)
	_ = c.c.Close(websocket.StatusNormalClosure, "bye")
	sessiondtest.Eventually(e.t, "the socket closed on the edge", func() bool { return e.edge.Open() == 0 })
	sessiondtest.Eventually(e.t, "the failed detach queued", func() bool { return e.edge.Stats().DetachesPending == 1 })
	if s := e.session(sid); s.ConnCount != 1 {
		t.Fatalf("%d connections while the store is down, want the stale 1", s.ConnCount)
	}
	failed := st.Failed.Load()
	e.clock.Advance(2 * time.Second) // a retry fails: the store is still down
	sessiondtest.Eventually(e.t, "a retry to be tried and fail", func() bool { return st.Failed.Load() > failed })
	if n := e.edge.Stats().DetachesPending; n != 1 {
		t.Fatalf("%d detaches pending after a failed retry, want it kept", n)
	}
	st.UpdatesDown.Store(false)
	e.clock.Advance(5 * time.Second)
	sessiondtest.Eventually(e.t, "the retried detach to land", func() bool {
		s := e.session(sid)
		return s.ConnCount == 0 && s.State == sessiond.StateDisconnected && e.edge.Stats().DetachesPending == 0
	})
}

// The edge reconciles what it holds with what the store records for its
// node: a record without a socket is detached, a socket without a record
// is closed with 4000 so that its client reconnects.
func TestReconcileWithTheStore(t *testing.T) {
	e := newEnvWith(t, ws.Config{ReconcileInterval: 31 * time.Second}, sessiond.Config{})
	ctx := context.Background()
	// A record of this node with no socket behind it.
	ghost, err := e.m.Connect(ctx, sessiond.ConnectRequest{Subject: "bob", Device: sessiond.Device{ID: "watch"}})
	if err != nil {
		t.Fatal(err)
	}
	// A socket whose record is gone (a workspace session: heartbeats time
	// out after a minute, later than the reconcile).
	ws1, err := e.m.Create(ctx, sessiond.CreateRequest{Subject: "alice", Policy: "workspace"})
	if err != nil {
		t.Fatal(err)
	}
	c := e.mustDial("alice", "", http.Header{"X-Session-Token": {ws1.Token}})
	_, connID, _, _ := c.ack()
	if err := e.m.Disconnect(ctx, connID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(31 * time.Second)
	if code := c.closedWith(); code != wire.CloseReconnect {
		t.Fatalf("socket without a record closed with %d, want %d", code, wire.CloseReconnect)
	}
	sessiondtest.Eventually(e.t, "the record without a socket detached", func() bool {
		return e.session(ghost.Session.ID).ConnCount == 0
	})
	if st := e.edge.Stats(); st.Reconciled != 2 {
		t.Fatalf("reconciled %d, want 2", st.Reconciled)
	}
}

// A node that could not renew its lease for longer than it lasts is taken
// for dead by another node, which releases its connections. When it finds
// out, its edge closes every socket with 4000: their clients reconnect and
// attach again.
func TestFencedNodeClosesItsSockets(t *testing.T) {
	inner := inmem.New(inmem.Options{})
	st := &sessiondtest.FaultyStore{Store: inner, LeaseNode: "node-1"}
	e := newEnvWith(t, ws.Config{}, sessiond.Config{Store: st})
	other, err := sessiond.New(sessiond.Config{Store: inner, Clock: e.clock, Node: "node-2",
		Policies: []sessiond.Policy{sessiond.DefaultPolicy(), device(), workspace()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	c := e.mustDial("alice", "device_id=glasses", nil)
	sid, _, _, _ := c.ack()
	st.LeasesDown.Store(true)
	for range 4 { // 20s of failed renewals, answering the server's pings
		e.clock.Advance(5 * time.Second)
		c.pingPong()
	}
	sessiondtest.Eventually(e.t, "node-2 to release node-1's connection", func() bool { return e.session(sid).ConnCount == 0 })
	var fenced atomic.Bool
	e.m.OnFenced(func() { fenced.Store(true) })
	st.LeasesDown.Store(false)
	// The manual clock runs a due renewal in a goroutine, which arms the
	// next one when it is done: a single Advance can come before that and
	// move past nothing. Move the clock until a renewal finds the lease
	// claimed.
	sessiondtest.Eventually(e.t, "node-1 to find its lease claimed", func() bool {
		e.clock.Advance(time.Second)
		return fenced.Load()
	})
	if code := c.closedWith(); code != wire.CloseReconnect {
		t.Fatalf("fenced node's socket closed with %d, want %d", code, wire.CloseReconnect)
	}
}
