package sessiondtest

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
)

// Every connection's life is in the event log: the event that attached
// it describes it, and exactly one connection_closed says when and why it
// left, whatever detached it.

// closeOf returns the one connection_closed event of the connection
// among evs, failing the test if there is none or more than one.
func closeOf(t *testing.T, evs []sessiond.Event, connID string) sessiond.Event {
	t.Helper()
	var found []sessiond.Event
	for _, ev := range evs {
		if ev.Type == sessiond.EventConnectionClosed && ev.Connection == connID {
			found = append(found, ev)
		}
	}
	if len(found) != 1 || found[0].Conn == nil {
		t.Fatalf("connection %s: %d connection_closed events (%+v), want one with its detail", connID, len(found), found)
	}
	return found[0]
}

// everyConnectionClosedOnce checks that each connection attached in evs
// (connected, resumed) is closed by exactly one connection_closed event,
// which describes it as its attach did.
func everyConnectionClosedOnce(t *testing.T, evs []sessiond.Event) {
	t.Helper()
	opened := map[string]*sessiond.ConnDetail{}
	for _, ev := range evs {
		if ev.Type == sessiond.EventConnected || ev.Type == sessiond.EventResumed {
			if ev.Conn == nil || ev.Connection == "" {
				t.Fatalf("%s event without its connection's detail: %+v", ev.Type, ev)
			}
			opened[ev.Connection] = ev.Conn
		}
	}
	for id, o := range opened {
		c := closeOf(t, evs, id).Conn
		if c.Kind != o.Kind || c.Node != o.Node || c.ClientIP != o.ClientIP || c.UserAgent != o.UserAgent || !c.OpenedAt.Equal(o.OpenedAt) {
			t.Fatalf("connection %s closed as %+v, opened as %+v: the detail differs", id, *c, *o)
		}
		if c.ClosedAt.Before(c.OpenedAt) || !c.CloseReason.Valid() {
			t.Fatalf("connection %s closed as %+v", id, *c)
		}
	}
}

// Each way a connection leaves records its connection_closed, in the
// write that detaches it, with the reason and close code of whoever knew
// them, the time it closed and how long it was attached: a client close
// (with its WebSocket code), a removal over REST, a heartbeat timeout, the
// end of its session. Connected events describe the connection. A cause
// the engine does not know is refused.
func testEveryDetachRecordsItsClose(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := connectEnv(t, h, sessiond.Config{})
		ctx := t.Context()
		c, err := e.m.Create(ctx, sessiond.CreateRequest{Subject: "alice", Policy: "workspace"})
		if err != nil {
			t.Fatal(err)
		}
		id := c.Session.ID
		connect := func(kind, ip, ua string) *sessiond.Connected {
			t.Helper()
			a, err := e.m.ConnectTo(ctx, id, sessiond.ConnectRequest{Kind: kind, ClientIP: ip, UserAgent: ua})
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		opened := time.Now()
		vnc := connect("vnc", "203.0.113.7", "vncviewer/7.1")
		ws := connect(sessiond.KindWebSocket, "2001:db8::9", "Mozilla/5.0")
		evs := e.events()
		last := evs[len(evs)-1]
		if last.Type != sessiond.EventConnected || last.Connection != ws.Conn.ID || last.Conn == nil ||
			*last.Conn != (sessiond.ConnDetail{Kind: "websocket", Node: "node-a", ClientIP: "2001:db8::9", UserAgent: "Mozilla/5.0", OpenedAt: opened.UTC()}) {
			t.Fatalf("the websocket's connected event: %+v (%+v)", last, last.Conn)
		}

		// Its client closes the websocket with 1000, 5s on.
		time.Sleep(5 * time.Second)
		if _, err := e.m.Heartbeat(ctx, vnc.Conn.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.m.DisconnectWith(ctx, ws.Conn.ID, sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: 1000}); err != nil {
			t.Fatal(err)
		}
		closed := closeOf(t, e.events(), ws.Conn.ID)
		if d := closed.Conn; d.CloseReason != sessiond.ClosedByClient || d.CloseCode != 1000 || d.Duration() != 5*time.Second ||
			!d.ClosedAt.Equal(opened.Add(5*time.Second)) || d.Node != "node-a" || closed.State != sessiond.StateActive {
			t.Fatalf("the websocket's close: %+v in state %v", *d, closed.State)
		}
		// A late close of it records nothing more.
		if err := e.m.DisconnectWith(ctx, ws.Conn.ID, sessiond.CloseCause{Reason: sessiond.ClosedLost}); err != nil {
			t.Fatal(err)
		}
		closeOf(t, e.events(), ws.Conn.ID)

		// Removed over REST.
		rest := connect("http", "", "")
		if err := e.m.RemoveConnection(ctx, rest.Conn.ID); err != nil {
			t.Fatal(err)
		}
		if d := closeOf(t, e.events(), rest.Conn.ID).Conn; d.CloseReason != sessiond.ClosedRemoved || d.CloseCode != 0 {
			t.Fatalf("the removed connection's close: %+v", *d)
		}
		// Removed over REST by a proxy that saw its client close it.
		proxied := connect("http", "", "")
		for _, reserved := range []sessiond.CloseReason{sessiond.ClosedNodeLost, sessiond.ClosedReplaced, sessiond.ClosedSessionEnded} {
			err := e.m.RemoveConnectionWith(ctx, proxied.Conn.ID, sessiond.CloseCause{Reason: reserved})
			if se, _ := err.(*sessiond.Error); se == nil || se.Code != sessiond.CodeInvalidArgument || se.Field != "close_reason" {
				t.Fatalf("RemoveConnectionWith(%s), a reason only the engine records: %v; want invalid_argument on close_reason", reserved, err)
			}
		}
		if err := e.m.RemoveConnectionWith(ctx, proxied.Conn.ID, sessiond.CloseCause{Reason: sessiond.ClosedByClient, Code: 1001}); err != nil {
			t.Fatal(err)
		}
		if d := closeOf(t, e.events(), proxied.Conn.ID).Conn; d.CloseReason != sessiond.ClosedByClient || d.CloseCode != 1001 {
			t.Fatalf("the proxied connection's close: %+v; want closed, 1001", *d)
		}

		// Causes the engine does not know are refused, and change nothing.
		for _, bad := range []struct {
			why   sessiond.CloseCause
			field string
		}{
			{sessiond.CloseCause{Reason: "gone"}, "close_reason"},
			{sessiond.CloseCause{Code: 999}, "close_code"},
			{sessiond.CloseCause{Code: 5000}, "close_code"},
			{sessiond.CloseCause{Code: -1}, "close_code"},
		} {
			err := e.m.DisconnectWith(ctx, vnc.Conn.ID, bad.why)
			wantCode(t, err, sessiond.CodeInvalidArgument)
			if se, _ := err.(*sessiond.Error); se == nil || se.Field != bad.field {
				t.Fatalf("DisconnectWith(%+v): %v; want field %s", bad.why, err, bad.field)
			}
		}
		wantCode(t, e.m.DisconnectWith(ctx, "not-a-connection", sessiond.CloseCause{}), sessiond.CodeInvalidArgument)
		if s := e.session(id); s.ConnCount != 1 {
			t.Fatalf("after refused detaches: %d connections, want the vnc one", s.ConnCount)
		}

		// The vnc connection's heartbeats stop: lost 30s after the last.
		lastBeat := time.Now()
		time.Sleep(31 * time.Second)
		synctest.Wait()
		lost := closeOf(t, e.events(), vnc.Conn.ID)
		if d := lost.Conn; d.CloseReason != sessiond.ClosedHeartbeatTimeout || !d.ClosedAt.Equal(lastBeat.Add(30*time.Second)) ||
			d.Duration() != 35*time.Second || d.ClientIP != "203.0.113.7" || d.UserAgent != "vncviewer/7.1" || lost.State != sessiond.StateDisconnected {
			t.Fatalf("the vnc connection's close: %+v in state %v", *d, lost.State)
		}

		// The session ends with two connections: both closed in its
		// ending write, as session_ended.
		a, b := connect("vnc", "", ""), connect(sessiond.KindWebSocket, "", "")
		time.Sleep(time.Second)
		if err := e.m.Revoke(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
		for _, conn := range []*sessiond.Connected{a, b} {
			ev := closeOf(t, e.events(), conn.Conn.ID)
			if d := ev.Conn; d.CloseReason != sessiond.ClosedSessionEnded || d.Duration() != time.Second || ev.State != sessiond.StateEnding {
				t.Fatalf("a connection of the revoked session: %+v in state %v", *d, ev.State)
			}
		}
		want := "[created connected connected connection_closed/closed connected connection_closed/removed connected connection_closed/closed connection_closed/heartbeat_timeout " +
			"disconnected resumed connected ending:revoked connection_closed:revoked/session_ended connection_closed:revoked/session_ended ended:revoked]"
		if got := fmt.Sprint(e.eventsOf(id)); got != want {
			t.Fatalf("events %s\nwant   %s", got, want)
		}
		everyConnectionClosedOnce(t, e.events())
	})
}

// A session evicted by another's create (max_per_subject, evict_oldest)
// loses its connections in the store's write: each is recorded closed
// there, as session_ended.
func testEvictionClosesConnections(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		single := workspace()
		single.Name, single.MaxPerSubject, single.OnLimit = "single", 1, sessiond.LimitEvictOldest
		e := connectEnv(t, h, sessiond.Config{Policies: []sessiond.Policy{single}})
		ctx := t.Context()
		old, err := e.m.Create(ctx, sessiond.CreateRequest{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		var conns []*sessiond.Connected
		for _, kind := range []string{"vnc", sessiond.KindWebSocket} {
			c, err := e.m.ConnectTo(ctx, old.Session.ID, sessiond.ConnectRequest{Kind: kind, ClientIP: "198.51.100.4"})
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		time.Sleep(20 * time.Second) // within the vnc connection's heartbeat timeout
		if _, err := e.m.Create(ctx, sessiond.CreateRequest{Subject: "alice"}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for _, c := range conns {
			ev := closeOf(t, e.events(), c.Conn.ID)
			if d := ev.Conn; d.CloseReason != sessiond.ClosedSessionEnded || d.Duration() != 20*time.Second || d.ClientIP != "198.51.100.4" {
				t.Fatalf("a connection of the evicted session: %+v", *d)
			}
		}
		if got := fmt.Sprint(e.eventsOf(old.Session.ID)); got != "[created connected connected ending:evicted connection_closed:evicted/session_ended connection_closed:evicted/session_ended ended:evicted]" {
			t.Fatalf("events of the evicted session: %s", got)
		}
		everyConnectionClosedOnce(t, e.events())
	})
}

// A connection replaced by a newer one (on_connect: replace) is recorded
// closed as replaced, in the write that attaches the newer one; over many
// connects and a grace that ends the session, every connection is closed
// exactly once.
func testReplacedConnectionsAreClosedOnce(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := connectEnv(t, h, sessiond.Config{})
		first := e.connectDevice("alice", "glasses-1")
		var last *sessiond.Connected
		for range 5 {
			time.Sleep(time.Second)
			last = e.connectDevice("alice", "glasses-1")
		}
		ev := closeOf(t, e.events(), first.Conn.ID)
		if d := ev.Conn; d.CloseReason != sessiond.ClosedReplaced || d.Duration() != time.Second || ev.State != sessiond.StateActive {
			t.Fatalf("the first connection's close: %+v", *d)
		}
		if err := e.m.Disconnect(t.Context(), last.Conn.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(glasses().DisconnectGrace + time.Second)
		synctest.Wait()
		if s := e.session(first.Session.ID); s.State != sessiond.StateEnded {
			t.Fatalf("after the grace: %v", s.State)
		}
		everyConnectionClosedOnce(t, e.events())
	})
}
