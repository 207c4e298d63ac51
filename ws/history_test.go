package ws_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
	"github.com/sessiond/sessiond/ws"
)

// closeEvent waits for the connection's connection_closed event in the
// store's log and returns it.
func (e *wsEnv) closeEvent(connID string) sessiond.Event {
	e.t.Helper()
	var found *sessiond.Event
	sessiondtest.Eventually(e.t, "the connection's connection_closed event", func() bool {
		evs, err := e.store.Events(context.Background(), sessiond.Cursor{}, 10_000)
		if err != nil {
			e.t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Type == sessiond.EventConnectionClosed && ev.Connection == connID {
				found = &ev
				return true
			}
		}
		return false
	})
	if found.Conn == nil {
		e.t.Fatalf("connection_closed without its detail: %+v", *found)
	}
	return *found
}

// The edge tells the engine why each socket closed, with the close code
// it saw: the client's close frame and its code, a socket lost without
// one (1006), or the code the server closed it with (a heartbeat timeout,
// a protocol error, shutdown). Each lands on the connection's
// connection_closed event, with the socket's address and user agent.
func TestSocketClosesReachTheHistory(t *testing.T) {
	e := newEnv(t, ws.Config{})
	cause := func(ev sessiond.Event) sessiond.CloseCause {
		return sessiond.CloseCause{Reason: ev.Conn.CloseReason, Code: ev.Conn.CloseCode}
	}

	// The client closes with its own code.
	opened := e.clock.Now()
	c := e.mustDial("alice", "device_id=g", http.Header{"User-Agent": {"glasses-os/2.1"}})
	_, connID, _, _ := c.ack()
	e.clock.Jump(7 * time.Second)
	_ = c.c.Close(websocket.StatusCode(4321), "done")
	ev := e.closeEvent(connID)
	if d := ev.Conn; cause(ev) != (sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: 4321}) || d.Kind != "websocket" || d.Node != "node-1" ||
		d.ClientIP != "127.0.0.1" || d.UserAgent != "glasses-os/2.1" || !d.OpenedAt.Equal(opened) || d.Duration() != 7*time.Second {
		t.Fatalf("a client's close: %+v", *d)
	}

	// The socket breaks without a close frame.
	lost := e.mustDial("bob", "device_id=g", nil)
	_, lostID, _, _ := lost.ack()
	_ = lost.c.CloseNow()
	if ev := e.closeEvent(lostID); cause(ev) != (sessiond.CloseCause{Reason: sessiond.ClosedLost, Code: int(wire.CloseAbnormal)}) {
		t.Fatalf("a lost socket: %+v", *ev.Conn)
	}

	// Silence past the heartbeat timeout (25s): the server closes it.
	silent := e.mustDial("carol", "device_id=g", nil)
	_, silentID, _, _ := silent.ack()
	e.clock.Advance(25 * time.Second)
	if code := silent.closedWith(); code != wire.CloseHeartbeatTimeout {
		t.Fatalf("closed with %d", code)
	}
	if ev := e.closeEvent(silentID); cause(ev) != (sessiond.CloseCause{Reason: sessiond.ClosedHeartbeatTimeout, Code: int(wire.CloseHeartbeatTimeout)}) ||
		ev.Conn.Duration() != 25*time.Second {
		t.Fatalf("a heartbeat timeout: %+v", *ev.Conn)
	}

	// Protocol errors: a binary frame (the edge closes it), a message
	// over the size limit (gws closes it).
	bin := e.mustDial("dave", "device_id=g", nil)
	_, binID, _, _ := bin.ack()
	_ = bin.c.Write(context.Background(), websocket.MessageBinary, []byte{1})
	bin.closedWith()
	if ev := e.closeEvent(binID); cause(ev) != (sessiond.CloseCause{Reason: sessiond.ClosedProtocolError, Code: int(wire.CloseUnsupportedData)}) {
		t.Fatalf("a binary frame: %+v", *ev.Conn)
	}
	big := e.mustDial("erin", "device_id=g", nil)
	_, bigID, _, _ := big.ack()
	_ = big.c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"ping","pad":"`+strings.Repeat("x", 5000)+`"}`))
	big.closedWith()
	if ev := e.closeEvent(bigID); cause(ev) != (sessiond.CloseCause{Reason: sessiond.ClosedProtocolError, Code: int(wire.CloseMessageTooBig)}) {
		t.Fatalf("a message too big: %+v", *ev.Conn)
	}

	// A revoke: its session ended (recorded by the engine as it ended it;
	// the socket's own detach then finds nothing to do).
	rev := e.mustDial("frank", "device_id=g", nil)
	revSID, revID, _, _ := rev.ack()
	if err := e.m.Revoke(context.Background(), revSID, ""); err != nil {
		t.Fatal(err)
	}
	rev.closedWith()
	if ev := e.closeEvent(revID); cause(ev) != (sessiond.CloseCause{Reason: sessiond.ClosedSessionEnded}) || ev.Reason != sessiond.EndRevoked {
		t.Fatalf("a revoked session's socket: %+v (%s)", *ev.Conn, ev.Reason)
	}

	// Shutdown: going away.
	last := e.mustDial("grace", "device_id=g", nil)
	_, lastID, _, _ := last.ack()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.edge.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if ev := e.closeEvent(lastID); cause(ev) != (sessiond.CloseCause{Reason: sessiond.ClosedShutdown, Code: int(wire.CloseGoingAway)}) {
		t.Fatalf("a shutdown: %+v", *ev.Conn)
	}
}
