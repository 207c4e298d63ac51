package sessiondtest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
)

func testDeviceConnectCreatesThenResumes(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := connectEnv(t, h, sessiond.Config{})
		first := e.connectDevice("alice", "glasses-1")
		if !first.Created || first.Resumed || first.Token == "" || first.Session.Policy != "device" || first.Session.State != sessiond.StateActive {
			t.Fatalf("first connect: %+v", first)
		}
		if err := e.m.Disconnect(t.Context(), first.Conn.ID); err != nil {
			t.Fatal(err)
		}
		s := e.session(first.Session.ID)
		if s.State != sessiond.StateDisconnected || s.ConnCount != 0 {
			t.Fatalf("after the last connection closed: %v with %d connections", s.State, s.ConnCount)
		}
		time.Sleep(29 * time.Second)
		again := e.connectDevice("alice", "glasses-1")
		if again.Created || !again.Resumed || again.Session.ID != first.Session.ID || again.Token != "" {
			t.Fatalf("reconnect within grace: created %v resumed %v same %v", again.Created, again.Resumed, again.Session.ID == first.Session.ID)
		}
		got := e.eventsOf(first.Session.ID)
		if fmt.Sprint(got) != "[created connected connection_closed/closed disconnected resumed]" {
			t.Fatalf("events %v", got)
		}
		// Another device of the same subject gets its own session.
		other := e.connectDevice("alice", "glasses-2")
		if !other.Created || other.Session.ID == first.Session.ID {
			t.Fatal("a second device shared the first device's session")
		}
	})
}

// A client that names no device and carries no session token gets the
// subject's one session for the default device, found or created exactly
// as for any device id.
func testConnectWithoutDeviceUsesTheDefaultDevice(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := connectEnv(t, h, sessiond.Config{})
		first, err := e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if !first.Created || first.Session.Device.ID != sessiond.DefaultDeviceID || first.Session.Policy != "device" {
			t.Fatalf("first connect: created %v, device %q, policy %q", first.Created, first.Session.Device.ID, first.Session.Policy)
		}
		again, err := e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if again.Created || again.Session.ID != first.Session.ID || len(again.Replaced) != 1 {
			t.Fatalf("second connect: created %v, session %s (want %s), replaced %d", again.Created, again.Session.ID, first.Session.ID, len(again.Replaced))
		}
		// Naming the default device is the same thing; another device is another session.
		named := e.connectDevice("alice", sessiond.DefaultDeviceID)
		other := e.connectDevice("alice", "glasses-1")
		if named.Session.ID != first.Session.ID || other.Session.ID == first.Session.ID {
			t.Fatalf("device %q: %s, device glasses-1: %s; want %s and another", sessiond.DefaultDeviceID, named.Session.ID, other.Session.ID, first.Session.ID)
		}
		// Racing connects without a device make one session.
		var wg sync.WaitGroup
		ids := make([]string, 20)
		for i := range ids {
			wg.Go(func() {
				c, err := e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "bob"})
				if err != nil {
					t.Error(err)
					return
				}
				ids[i] = c.Session.ID
			})
		}
		wg.Wait()
		if distinct := slices.Compact(slices.Sorted(slices.Values(ids))); len(distinct) != 1 {
			t.Fatalf("20 racing connects without a device made sessions %v", distinct)
		}
	})
}

func testGraceElapsedEndsTheSession(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := connectEnv(t, h, sessiond.Config{})
		c := e.connectDevice("alice", "glasses-1")
		if err := e.m.Disconnect(t.Context(), c.Conn.ID); err != nil {
			t.Fatal(err)
		}
		disconnectedAt := time.Now()
		time.Sleep(31 * time.Second)
		synctest.Wait()
		s := e.session(c.Session.ID)
		if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndGraceElapsed || s.EndedAt.Sub(disconnectedAt) != 30*time.Second {
			t.Fatalf("after the grace: %v/%v at +%v", s.State, s.EndReason, s.EndedAt.Sub(disconnectedAt))
		}
		if got := e.eventsOf(c.Session.ID); fmt.Sprint(got) != "[created connected connection_closed/closed disconnected ending:grace_elapsed ended:grace_elapsed]" {
			t.Fatalf("events %v", got)
		}
		// The next connection of the device starts a new session.
		if again := e.connectDevice("alice", "glasses-1"); !again.Created || again.Session.ID == c.Session.ID {
			t.Fatal("a connection after the grace resumed an ended session")
		}
	})
}

func testLateCloseFromReplacedConnectionChangesNothing(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := connectEnv(t, h, sessiond.Config{})
		old := e.connectDevice("alice", "glasses-1")
		newer := e.connectDevice("alice", "glasses-1") // replaces old
		if len(newer.Replaced) != 1 || newer.Replaced[0].ID != old.Conn.ID {
			t.Fatalf("replaced %v, want the old connection", newer.Replaced)
		}
		before := e.session(old.Session.ID)
		updates := e.store.updates.Load()
		if err := e.m.Disconnect(t.Context(), old.Conn.ID); err != nil {
			t.Fatal(err)
		}
		after := e.session(old.Session.ID)
		if after.Version != before.Version || after.State != sessiond.StateActive || e.store.updates.Load() != updates {
			t.Fatalf("a late close of a replaced connection changed the session: %v v%d", after.State, after.Version)
		}
		time.Sleep(time.Minute) // no grace timer was started
		synctest.Wait()
		if s := e.session(old.Session.ID); s.State != sessiond.StateActive {
			t.Fatalf("session %v after a late close", s.State)
		}
		if got := e.eventsOf(old.Session.ID); fmt.Sprint(got) != "[created connected connected connection_closed/replaced]" {
			t.Fatalf("events %v", got)
		}
	})
}

func testSimultaneousReconnectsMakeOneSession(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		p := glasses()
		p.OnConnect, p.MaxConnections = sessiond.ConnectAllowMultiple, 0
		e := connectEnv(t, h, sessiond.Config{Policies: []sessiond.Policy{p}})
		var wg sync.WaitGroup
		var mu sync.Mutex
		ids := map[string]int{}
		created := 0
		for range 50 {
			wg.Go(func() {
				c, err := e.m.Connect(context.Background(), sessiond.ConnectRequest{Subject: "alice", Device: sessiond.Device{ID: "glasses-1"}})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				ids[c.Session.ID]++
				if c.Created {
					created++
				}
			})
		}
		wg.Wait()
		if len(ids) != 1 || created != 1 {
			t.Fatalf("50 simultaneous connects made %d sessions (%d created), want 1", len(ids), created)
		}
		for id := range ids {
			if n := e.session(id).ConnCount; n != 50 {
				t.Fatalf("%d connections attached, want 50", n)
			}
		}
	})
}

// A reconnect arriving just as the grace ends has one outcome: the session
// resumed, or it ended (and the reconnect made a new one); never both.
func testReconnectRacingGraceHasOneOutcome(t *testing.T, h Harness) {
	outcomes := map[string]int{}
	// One store for every race, each race its own subject, engine and clock:
	// opening a durable store per race would cost more than the race.
	shared := openStore(t, h)
	for i := range 200 {
		clock := NewManualClock(clockStart.Add(time.Duration(i) * time.Hour))
		e := connectEnv(t, h, sessiond.Config{Clock: clock, Store: shared})
		subject := fmt.Sprint("alice-", i)
		c := e.connectDevice(subject, "glasses-1")
		if err := e.m.Disconnect(t.Context(), c.Conn.ID); err != nil {
			t.Fatal(err)
		}
		clock.Jump(30*time.Second - time.Millisecond)
		var wg sync.WaitGroup
		var (
			again      *sessiond.Connected
			connectErr error
		)
		wg.Go(func() { clock.Advance(time.Millisecond) }) // the grace timer fires now
		wg.Go(func() {
			for range i % 4 { // vary who gets there first: both outcomes occur
				runtime.Gosched()
			}
			again, connectErr = e.m.Connect(context.Background(), sessiond.ConnectRequest{Subject: subject, Device: sessiond.Device{ID: "glasses-1"}})
		})
		wg.Wait()
		if connectErr != nil {
			t.Fatalf("race %d: the reconnect: %v", i, connectErr)
		}
		e.waitSettled(c.Session.ID)
		s := e.session(c.Session.ID)
		evs := e.eventsOf(c.Session.ID)
		switch {
		case again.Resumed && again.Session.ID == c.Session.ID && s.State == sessiond.StateActive:
			if slices.Contains(evs, "ended:grace_elapsed") {
				t.Fatalf("resumed and ended: %v", evs)
			}
			outcomes["resumed"]++
		case again.Created && again.Session.ID != c.Session.ID && s.State == sessiond.StateEnded && s.EndReason == sessiond.EndGraceElapsed:
			if slices.Contains(evs, "resumed") {
				t.Fatalf("ended and resumed: %v", evs)
			}
			outcomes["ended"]++
		default:
			t.Fatalf("unclear outcome: reconnect %+v, old session %v/%v, events %v", again, s.State, s.EndReason, evs)
		}
		e.stop()
	}
	t.Logf("outcomes over 200 races: %v", outcomes)
	if outcomes["resumed"] == 0 || outcomes["ended"] == 0 {
		t.Logf("only one outcome occurred; the race was not exercised both ways this run")
	}
}

// waitSettled waits until the session is active or ended: with a manual
// clock, timers run in their own goroutines.
func (e *env) waitSettled(id string) {
	e.t.Helper()
	Eventually(e.t, "session "+id+" to settle", func() bool {
		s := e.session(id)
		return s.State == sessiond.StateActive || s.State == sessiond.StateEnded
	})
}

func testConnectWithToken(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := connectEnv(t, h, sessiond.Config{})
		ws, err := e.m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice", Policy: "workspace"})
		if err != nil {
			t.Fatal(err)
		}
		var conns []*sessiond.Connected
		for _, kind := range []string{"websocket", "vnc", "http"} {
			c, err := e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice", Token: ws.Token, Kind: kind})
			if err != nil || c.Session.ID != ws.Session.ID || c.Created {
				t.Fatalf("attach %s: %+v, %v", kind, c, err)
			}
			conns = append(conns, c)
		}
		if s := e.session(ws.Session.ID); s.ConnCount != 3 {
			t.Fatalf("%d connections, want 3 (allow_multiple)", s.ConnCount)
		}
		_, err = e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice", Token: ws.Token})
		wantCode(t, err, sessiond.CodeTooManyConnections)
		_, err = e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "mallory", Token: ws.Token})
		wantCode(t, err, sessiond.CodeSubjectMismatch)
		_, err = e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice", Token: "sd_garbage"})
		wantCode(t, err, sessiond.CodeNotFound)
		// A websocket's record cannot be removed over the admin path: its
		// socket would stay open.
		wantCode(t, e.m.RemoveConnection(t.Context(), conns[0].Conn.ID), sessiond.CodeInvalidArgument)
		if err := e.m.RemoveConnection(t.Context(), conns[1].Conn.ID); err != nil {
			t.Fatalf("removing the vnc connection: %v", err)
		}
		conns = append(conns[:1], conns[2:]...)

		// Closing one of two leaves the session active; the last disconnects it.
		for _, c := range conns[:1] {
			if err := e.m.Disconnect(t.Context(), c.Conn.ID); err != nil {
				t.Fatal(err)
			}
		}
		if s := e.session(ws.Session.ID); s.State != sessiond.StateActive || s.ConnCount != 1 {
			t.Fatalf("after closing 1 of 2: %v with %d", s.State, s.ConnCount)
		}
		if err := e.m.Disconnect(t.Context(), conns[1].Conn.ID); err != nil {
			t.Fatal(err)
		}
		if s := e.session(ws.Session.ID); s.State != sessiond.StateDisconnected {
			t.Fatalf("after closing the last: %v", s.State)
		}
		// A web session (no disconnect grace) stays active without connections.
		webs := e.create("bob")
		c, err := e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "bob", Token: webs.Token})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.m.Disconnect(t.Context(), c.Conn.ID); err != nil {
			t.Fatal(err)
		}
		if s := e.session(webs.Session.ID); s.State != sessiond.StateActive {
			t.Fatalf("a session without disconnect grace went %v", s.State)
		}
	})
}

// A connect with a token that is due for rotation validates and attaches
// in one write: when the attach is refused, the token did not rotate (the
// client never learns a refused connect's new token, and its old one would
// count as stolen once the grace passed); when it succeeds, the client
// gets the new token and the events say rotated, then connected.
func testRefusedConnectRotatesNothing(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		one := web()
		one.Name, one.MaxConnections = "one", 1
		e := connectEnv(t, h, sessiond.Config{Policies: []sessiond.Policy{one}})
		c, err := e.m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		first, err := e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice", Token: c.Token})
		if err != nil || first.Token != "" {
			t.Fatalf("first connect: %+v, %v; want no rotation yet", first, err)
		}
		time.Sleep(6 * time.Minute) // past rotate_after (5m), within idle (10m)
		_, err = e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice", Token: c.Token})
		wantCode(t, err, sessiond.CodeTooManyConnections)
		_, err = e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "mallory", Token: c.Token})
		wantCode(t, err, sessiond.CodeSubjectMismatch)
		if s := e.session(c.Session.ID); s.Generation != c.Session.Generation || s.TokenHash != c.Session.TokenHash {
			t.Fatalf("refused connects rotated the token: generation %d, want %d", s.Generation, c.Session.Generation)
		}
		if err := e.m.Disconnect(t.Context(), first.Conn.ID); err != nil {
			t.Fatal(err)
		}
		again, err := e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice", Token: c.Token})
		if err != nil || again.Token == "" {
			t.Fatalf("connect past rotate_after: %+v, %v; want a new token", again, err)
		}
		if v, err := e.validate(again.Token); err != nil || v.Session.ID != c.Session.ID {
			t.Fatalf("the new token from the connect: %v", err)
		}
		evs := e.eventsOf(c.Session.ID)
		if n := len(evs); n < 2 || evs[n-2] != "rotated" || evs[n-1] != "connected" {
			t.Fatalf("events %v; want rotated then connected last", evs)
		}
	})
}

func testHeartbeatTimeoutLosesTheConnection(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		e := connectEnv(t, h, sessiond.Config{})
		ws, _ := e.m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice", Policy: "workspace"})
		vnc, err := e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice", Token: ws.Token, Kind: "vnc"})
		if err != nil {
			t.Fatal(err)
		}
		for range 5 { // heartbeats every 20s keep it (timeout 30s)
			time.Sleep(20 * time.Second)
			if _, err := e.m.Heartbeat(t.Context(), vnc.Conn.ID); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		if s := e.session(ws.Session.ID); s.ConnCount != 1 {
			t.Fatal("a connection sending heartbeats was dropped")
		}
		lastBeat := time.Now()
		time.Sleep(31 * time.Second)
		synctest.Wait()
		s := e.session(ws.Session.ID)
		if s.ConnCount != 0 || s.State != sessiond.StateDisconnected || s.DisconnectedAt.Sub(lastBeat) != 30*time.Second {
			t.Fatalf("after heartbeats stopped: %d connections, %v at +%v", s.ConnCount, s.State, s.DisconnectedAt.Sub(lastBeat))
		}
		closed := closeOf(t, e.events(), vnc.Conn.ID)
		if closed.Conn.CloseReason != sessiond.ClosedHeartbeatTimeout || !closed.Conn.ClosedAt.Equal(s.DisconnectedAt) ||
			closed.Conn.Duration() != s.DisconnectedAt.Sub(vnc.Conn.ConnectedAt) || closed.Conn.Kind != "vnc" {
			t.Fatalf("the lost connection's close: %+v; want heartbeat_timeout at %v", *closed.Conn, s.DisconnectedAt)
		}
		_, err = e.m.Heartbeat(t.Context(), vnc.Conn.ID)
		wantCode(t, err, sessiond.CodeConnectionNotFound)
		_, err = e.m.Heartbeat(t.Context(), "not-a-connection")
		wantCode(t, err, sessiond.CodeInvalidArgument)
	})
}

// Heartbeats are written often enough that a node which did not hear
// them (another node, or this one after a restart) finds the connection
// alive in the store: a connection that keeps its heartbeats is never lost
// for having sent them to a node that did not write them yet.
func testHeartbeatsHoldOnEveryNode(t *testing.T, h Harness) {
	beat := func(t *testing.T, e *env, connID string, n int) {
		t.Helper()
		for range n { // every 10s, the workspace policy's interval
			time.Sleep(10 * time.Second)
			if _, err := e.m.Heartbeat(t.Context(), connID); err != nil {
				t.Fatalf("heartbeat at %v: %v", time.Now(), err)
			}
		}
	}
	t.Run("AnotherNodeHearsThem", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			a := connectEnv(t, h, sessiond.Config{Node: "host-a"})
			b := connectEnv(t, h, sessiond.Config{Node: "host-b", Store: a.store.Store})
			ws, _ := a.m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice", Policy: "workspace"})
			vnc, err := a.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice", Token: ws.Token, Kind: "vnc"})
			if err != nil {
				t.Fatal(err)
			}
			beat(t, b, vnc.Conn.ID, 12) // two minutes, all to host-b
			synctest.Wait()
			if s := a.session(ws.Session.ID); s.ConnCount != 1 {
				t.Fatalf("a connection heartbeating through host-b was lost on host-a's deadline: %v, %d connections", s.State, s.ConnCount)
			}
		})
	})
	t.Run("ARestartedNodeFindsThem", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			first := connectEnv(t, h, sessiond.Config{})
			ws, _ := first.m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice", Policy: "workspace"})
			vnc, err := first.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice", Token: ws.Token, Kind: "vnc"})
			if err != nil {
				t.Fatal(err)
			}
			for restart := range 6 { // restarts at every phase of the write interval
				beat(t, first, vnc.Conn.ID, 1+restart)
				first.stop()
				first = connectEnv(t, h, sessiond.Config{Store: first.store.Store})
				if s := first.session(ws.Session.ID); s.ConnCount != 1 {
					t.Fatalf("restart %d, %v after the connect: the heartbeating connection was lost (%v)", restart, time.Since(ws.Session.CreatedAt), s.State)
				}
			}
		})
	})
}

func testRestartDropsThisNodesWebSockets(t *testing.T, h Harness) {
	clock := NewManualClock(clockStart)
	first := connectEnv(t, h, sessiond.Config{Clock: clock})
	mine := first.connectDevice("alice", "glasses-1")
	ws, _ := first.m.Create(t.Context(), sessiond.CreateRequest{Subject: "bob", Policy: "workspace"})
	vnc, err := first.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "bob", Token: ws.Token, Kind: "vnc"})
	if err != nil {
		t.Fatal(err)
	}
	first.stop() // the process dies; the records still show the connections

	clock.Jump(10 * time.Second)
	second := connectEnv(t, h, sessiond.Config{Clock: clock, Store: first.store.Store})
	s := second.session(mine.Session.ID)
	if s.State != sessiond.StateDisconnected || s.ConnCount != 0 || !s.DisconnectedAt.Equal(clock.Now()) {
		t.Fatalf("this node's websocket after restart: %v, %d connections, disconnected at %v", s.State, s.ConnCount, s.DisconnectedAt)
	}
	if s := second.session(ws.Session.ID); s.ConnCount != 1 || second.conns(ws.Session.ID)[0].ID != vnc.Conn.ID {
		t.Fatal("a heartbeat-tracked connection was dropped by the restart")
	}
	if got := second.eventsOf(mine.Session.ID); fmt.Sprint(got) != "[created connected connection_closed/node_restarted disconnected]" {
		t.Fatalf("events of the restarted node's websocket's session: %v", got)
	}
	// Another node's websockets are not this node's to drop.
	third := connectEnv(t, h, sessiond.Config{Clock: clock, Store: first.store.Store, Node: "node-b"})
	other := third.connectDevice("carol", "glasses-9")
	third.stop()
	fourth := connectEnv(t, h, sessiond.Config{Clock: clock, Store: first.store.Store, Node: "node-a"})
	if s := fourth.session(other.Session.ID); s.ConnCount != 1 {
		t.Fatal("node-a dropped node-b's connection")
	}
}

// A session with a connection attached is active: its idle timeout counts
// only from when its last connection left.
func testConnectedSessionsDoNotIdle(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		idler := sessiond.Policy{Name: "idler", TTL: 8 * time.Hour, IdleTimeout: 10 * time.Minute}
		e := connectEnv(t, h, sessiond.Config{Policies: []sessiond.Policy{idler}})
		c := e.create("alice")
		conn, err := e.m.Connect(t.Context(), sessiond.ConnectRequest{Subject: "alice", Token: c.Token})
		if err != nil {
			t.Fatal(err)
		}
		updates := e.store.updates.Load()
		time.Sleep(2 * time.Hour) // the edge pings the socket; the engine writes nothing
		synctest.Wait()
		if s := e.session(c.Session.ID); s.State != sessiond.StateActive || e.store.updates.Load() != updates {
			t.Fatalf("a connected session after 2h: %v, %d writes", s.State, e.store.updates.Load()-updates)
		}
		if err := e.m.Disconnect(t.Context(), conn.Conn.ID); err != nil {
			t.Fatal(err)
		}
		left := time.Now()
		time.Sleep(10*time.Minute - time.Second)
		synctest.Wait()
		if s := e.session(c.Session.ID); s.State != sessiond.StateActive {
			t.Fatalf("idle-ended %v after its connection left, before its idle timeout", time.Since(left))
		}
		time.Sleep(time.Second)
		synctest.Wait()
		s := e.session(c.Session.ID)
		if s.State != sessiond.StateEnded || s.EndReason != sessiond.EndIdle || s.EndedAt.Sub(left) != 10*time.Minute {
			t.Fatalf("after the idle timeout: %v/%v at +%v", s.State, s.EndReason, s.EndedAt.Sub(left))
		}
	})
}

// attachProbe records what each write and read of connections carries.
type attachProbe struct {
	sessiond.Store
	mu          sync.Mutex
	connsPut    []int // connections written by each Update
	connsListed int   // connections returned by Conns, in all
}

func (p *attachProbe) FindToken(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	return findToken(ctx, p.Store, h)
}

func (p *attachProbe) WaitEvents(ctx context.Context, after sessiond.Cursor) (sessiond.Cursor, error) {
	return waitEvents(ctx, p.Store, after)
}

func (p *attachProbe) Update(ctx context.Context, c sessiond.Change) error {
	p.mu.Lock()
	p.connsPut = append(p.connsPut, len(c.PutConns)+len(c.DropConns))
	p.mu.Unlock()
	return p.Store.Update(ctx, c)
}

func (p *attachProbe) Conns(ctx context.Context, id string) ([]sessiond.Connection, error) {
	cs, err := p.Store.Conns(ctx, id)
	p.mu.Lock()
	p.connsListed += len(cs)
	p.mu.Unlock()
	return cs, err
}

// Attaching or detaching a connection costs the same whatever the number
// of connections on the session: with 1,000 attached, each attach and each
// detach writes one connection record and reads no list of them. (Before,
// the session record held every connection and each attach rewrote them
// all: 1,500 sockets on one session grew the server to 1.5 GB.)
func testAttachCostsTheSameWithManyConnections(t *testing.T, h Harness) {
	synctest.Test(t, func(t *testing.T) {
		probe := &attachProbe{Store: openStore(t, h)}
		many := workspace()
		many.MaxConnections = -1
		e := start(t, h, sessiond.Config{Store: probe, Policies: []sessiond.Policy{web(), many}})
		c, err := e.m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice", Policy: "workspace"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for i := range 1000 {
			a, err := e.m.ConnectTo(t.Context(), c.Session.ID, sessiond.ConnectRequest{Kind: "vnc", ClientIP: "10.0.0.1"})
			if err != nil {
				t.Fatalf("attach %d: %v", i, err)
			}
			ids = append(ids, a.Conn.ID)
		}
		for _, id := range ids[:500] {
			if err := e.m.Disconnect(t.Context(), id); err != nil {
				t.Fatal(err)
			}
		}
		probe.mu.Lock()
		defer probe.mu.Unlock()
		if probe.connsListed != 0 {
			t.Fatalf("attaching and detaching read %d connection records; want none", probe.connsListed)
		}
		for i, n := range probe.connsPut {
			if n != 1 {
				t.Fatalf("write %d carried %d connection records; want 1 each", i, n)
			}
		}
		if len(probe.connsPut) != 1500 {
			t.Fatalf("%d writes for 1,000 attaches and 500 detaches", len(probe.connsPut))
		}
		if s := e.session(c.Session.ID); s.ConnCount != 500 {
			t.Fatalf("ConnCount %d, want 500", s.ConnCount)
		}
	})
}
