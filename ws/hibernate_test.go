package ws_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
	"github.com/sessiond/sessiond/ws"
)

// sleepy is a workspace that hibernates after 5 minutes alone, and whose
// runtime has a minute to wake it.
func sleepy() sessiond.Policy {
	return sessiond.Policy{
		Name: "sleepy", TTL: 8 * time.Hour, IdleTimeout: time.Hour, HibernateAfter: 5 * time.Minute,
		WakeTimeout: time.Minute, HeartbeatInterval: 30 * time.Second, HeartbeatTimeout: 2 * time.Minute, // outlasts a wake that times out
	}
}

// gatedRuntime answers hibernates at once and each wake with what the
// test sends on its channel (nil: woken), or not at all.
type gatedRuntime struct{ wake chan error }

func (g *gatedRuntime) run(ctx context.Context, c sessiond.RuntimeCall) error {
	if c.Action != sessiond.RuntimeWake {
		return nil
	}
	select {
	case err := <-g.wake:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hibernated creates a session under sleepy and puts it to sleep.
func (e *wsEnv) hibernated() *sessiond.Created {
	e.t.Helper()
	created, err := e.m.Create(context.Background(), sessiond.CreateRequest{Subject: "alice", Policy: "sleepy"})
	if err != nil {
		e.t.Fatal(err)
	}
	if s, err := e.m.Hibernate(context.Background(), created.Session.ID); err != nil || s.State != sessiond.StateHibernated {
		e.t.Fatalf("Hibernate: %v, %v", s, err)
	}
	return created
}

// A socket to a hibernated session is acked "waking", then told "ready"
// once the runtime woke the session.
func TestASocketWakesItsSessionAndIsToldWhenReady(t *testing.T) {
	rt := &gatedRuntime{wake: make(chan error)}
	e := newEnvWith(t, ws.Config{}, sessiond.Config{Runtime: rt.run})
	created := e.hibernated()
	c := e.mustDial("alice", "", http.Header{"X-Session-Token": {created.Token}})
	sid, _, resumed, ack := c.ack()
	if sid != created.Session.ID || !resumed || ack["state"] != "waking" {
		t.Fatalf("ack %v, want the session, resumed, waking", ack)
	}
	rt.wake <- nil
	if m := c.read(); m["type"] != wire.TypeReady || m["state"] != "active" {
		t.Fatalf("after the wake: %v, want ready", m)
	}
	if s := e.session(sid); s.State != sessiond.StateActive || s.ConnCount != 1 {
		t.Fatalf("session %v with %d connections, want active with 1", s.State, s.ConnCount)
	}
	// An awake session's sockets are acked active, with no ready.
	d := e.mustDial("alice", "", http.Header{"X-Session-Token": {created.Token}})
	if _, _, _, ack := d.ack(); ack["state"] != "active" {
		t.Fatalf("second ack %v, want active", ack)
	}
	if others := d.pingPong(); len(others) != 0 {
		t.Fatalf("messages before the pong: %v", others)
	}
}

// A wake the runtime fails, or does not finish within wake_timeout, closes
// the waiting socket with 4003 (reconnect); the session is hibernated
// again, and a reconnect wakes it again.
func TestAFailedWakeClosesTheSocketWithReconnect(t *testing.T) {
	rt := &gatedRuntime{wake: make(chan error)}
	// The reconcile would close a socket whose record the failed wake
	// dropped with 4000 (also reconnect) if it ran as the clock jumps past
	// the wake_timeout; the code under test is the wait's own.
	e := newEnvWith(t, ws.Config{ReconcileInterval: time.Hour}, sessiond.Config{Runtime: rt.run})
	created := e.hibernated()
	h := http.Header{"X-Session-Token": {created.Token}}

	c := e.mustDial("alice", "", h)
	if _, _, _, ack := c.ack(); ack["state"] != "waking" {
		t.Fatalf("ack %v, want waking", ack)
	}
	rt.wake <- errors.New("no capacity")
	if code := c.closedWith(); code != wire.CloseWakeFailed || !code.Reconnect() {
		t.Fatalf("closed with %d, want %d (reconnect)", code, wire.CloseWakeFailed)
	}
	if s := e.session(created.Session.ID); s.State != sessiond.StateHibernated || s.ConnCount != 0 {
		t.Fatalf("after the failed wake: %v with %d connections, want hibernated with none", s.State, s.ConnCount)
	}

	// The runtime does not answer: at wake_timeout the socket closes.
	c = e.mustDial("alice", "", h.Clone())
	if _, _, _, ack := c.ack(); ack["state"] != "waking" {
		t.Fatalf("ack %v, want waking", ack)
	}
	e.clock.Advance(time.Minute + time.Second)
	if code := c.closedWith(); code != wire.CloseWakeFailed {
		t.Fatalf("closed with %d after wake_timeout, want %d", code, wire.CloseWakeFailed)
	}

	// The next connection wakes it.
	c = e.mustDial("alice", "", h.Clone())
	if _, _, _, ack := c.ack(); ack["state"] != "waking" {
		t.Fatalf("ack %v, want waking", ack)
	}
	rt.wake <- nil
	if m := c.read(); m["type"] != wire.TypeReady {
		t.Fatalf("after the wake: %v, want ready", m)
	}
}
