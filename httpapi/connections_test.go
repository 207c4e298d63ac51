package httpapi_test

// Tests of the connection routes (httpapi/connections.go) through real HTTP
// against a real engine on the in-memory store, reusing the ht helpers of
// helpers_test.go. Heartbeat timeouts and grace periods are reached by
// advancing the ManualClock, whose Advance fires the engine's timers in
// goroutines of their own; the tests then poll the store until the timer's
// work is visible, with a deadline, and never sleep a guessed time.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
)

// htConn is the wire form of a connection, as a client sees it.
type htConn struct {
	ID            string    `json:"id"`
	Kind          string    `json:"kind"`
	Node          string    `json:"node"`
	ClientIP      string    `json:"client_ip"`
	UserAgent     string    `json:"user_agent"`
	ConnectedAt   time.Time `json:"connected_at"`
	LastHeartbeat time.Time `json:"last_heartbeat_at"`
}

// htConnResp is the body of a registration or a heartbeat.
type htConnResp struct {
	Connection        htConn `json:"connection"`
	State             string `json:"state"`
	HeartbeatInterval string `json:"heartbeat_interval"`
	HeartbeatTimeout  string `json:"heartbeat_timeout"`
}

type htConnList struct {
	Connections []htConn `json:"connections"`
}

// htConnIDPattern is what the server issues: 16 lowercase base32
// characters, a dot, the session id.
var htConnIDPattern = regexp.MustCompile(`^[a-z2-7]{16}\.(.+)$`)

// addConnWith registers a connection with the body and wants a 201 whose
// Location names it.
func (e *htEnv) addConnWith(sessionID, body string) htConnResp {
	e.t.Helper()
	r := e.send("POST", "/v1/sessions/"+sessionID+"/connections", body)
	htWantStatus(e.t, r, http.StatusCreated)
	c := htDecode[htConnResp](e.t, r)
	if got, want := r.header.Get("Location"), "/v1/connections/"+c.Connection.ID; got != want {
		e.t.Errorf("got Location %q, want %q", got, want)
	}
	return c
}

// addConn registers a connection of the kind.
func (e *htEnv) addConn(sessionID, kind string) htConnResp {
	e.t.Helper()
	return e.addConnWith(sessionID, fmt.Sprintf(`{"kind":%q}`, kind))
}

// conns lists the session's connections.
func (e *htEnv) conns(sessionID string) []htConn {
	e.t.Helper()
	r := e.send("GET", "/v1/sessions/"+sessionID+"/connections", "")
	htWantStatus(e.t, r, http.StatusOK)
	list := htDecode[htConnList](e.t, r)
	if list.Connections == nil {
		e.t.Fatalf("connections is null, want an array: %s", r)
	}
	return list.Connections
}

func (e *htEnv) heartbeat(connID string) htResp {
	e.t.Helper()
	return e.send("POST", "/v1/connections/"+connID+"/heartbeat", "")
}

func (e *htEnv) deleteConn(connID string) htResp {
	e.t.Helper()
	return e.send("DELETE", "/v1/connections/"+connID, "")
}

// session reads the session through the Manager, not the API: tests wait
// on it for work that a clock advance started in another goroutine.
func (e *htEnv) session(id string) *sessiond.Session {
	e.t.Helper()
	s, err := e.m.Get(context.Background(), id)
	if err != nil {
		e.t.Fatalf("reading session %s: %v", id, err)
	}
	return s
}

func htConnIDs(cs []htConn) []string {
	ids := make([]string, len(cs))
	for i, c := range cs {
		ids[i] = c.ID
	}
	return ids
}

// TestConnectionLifecycle follows a VNC connection of a session whose
// policy allows two connections and has a disconnect grace: registration,
// listing, heartbeats, the limit, deletion, loss to a heartbeat timeout
// (the session becomes disconnected) and a new connection within the grace
// (the session resumes), with the events each step records.
func TestConnectionLifecycle(t *testing.T) {
	e := htStart(t, nil)
	st := e.openEvents("", nil)
	c := e.create(`{"subject":"alice","policy":"conns"}`)

	// Register.
	e.clock.Advance(time.Second)
	t1 := htEpoch.Add(time.Second)
	reg := e.addConnWith(c.ID, `{"kind":"vnc","client_ip":"203.0.113.7","user_agent":"TigerVNC/1.13.1"}`)
	vnc := reg.Connection
	if m := htConnIDPattern.FindStringSubmatch(vnc.ID); m == nil || m[1] != c.ID {
		t.Errorf("got connection id %q, want 16 base32 characters, a dot and the session id %s", vnc.ID, c.ID)
	}
	want := htConn{ID: vnc.ID, Kind: "vnc", ClientIP: "203.0.113.7", UserAgent: "TigerVNC/1.13.1", ConnectedAt: t1, LastHeartbeat: t1}
	if !htSameConn(vnc, want) {
		t.Errorf("registered: got %+v, want %+v", vnc, want)
	}
	if reg.HeartbeatInterval != "10s" || reg.HeartbeatTimeout != "30s" {
		t.Errorf("got heartbeat_interval %q, heartbeat_timeout %q; want the policy's 10s, 30s", reg.HeartbeatInterval, reg.HeartbeatTimeout)
	}
	if s := e.get(c.ID); s.State != "active" || s.Connections != 1 || !s.LastActive.Equal(t1) {
		t.Errorf("after registering: got state %q, connections %d, last_active_at %v; want active, 1, %v", s.State, s.Connections, s.LastActive, t1)
	}
	created := htWantEvents(t, st, 0, [2]string{"created", c.ID}, [2]string{"connected", c.ID})
	if ev := created[1].data; ev.Connection != vnc.ID || ev.State != sessiond.StateActive || ev.Conn == nil ||
		*ev.Conn != (sessiond.ConnDetail{Kind: "vnc", ClientIP: "203.0.113.7", UserAgent: "TigerVNC/1.13.1", OpenedAt: t1}) {
		t.Errorf("connected event: got connection %q, state %v, detail %+v; want %q, active, the connection as registered", ev.Connection, ev.State, ev.Conn, vnc.ID)
	}

	// List.
	if got := e.conns(c.ID); len(got) != 1 || !htSameConn(got[0], want) {
		t.Errorf("list: got %+v, want [%+v]", got, want)
	}

	// Heartbeat: last_heartbeat_at moves; within the touch interval (1m)
	// nothing is written, so the session's version stays.
	before := e.get(c.ID)
	e.clock.Advance(5 * time.Second)
	t2 := t1.Add(5 * time.Second)
	r := e.heartbeat(vnc.ID)
	htWantStatus(t, r, http.StatusOK)
	hb := htDecode[htConnResp](t, r)
	want.LastHeartbeat = t2
	if !htSameConn(hb.Connection, want) || hb.HeartbeatInterval != "10s" || hb.HeartbeatTimeout != "30s" {
		t.Errorf("heartbeat: got %+v, want %+v with 10s, 30s", hb, want)
	}
	if got := e.conns(c.ID); len(got) != 1 || !got[0].LastHeartbeat.Equal(t2) {
		t.Errorf("list after the heartbeat: got %+v, want last_heartbeat_at %v", got, t2)
	}
	if s := e.get(c.ID); s.Version != before.Version {
		t.Errorf("after the heartbeat: version %d, want %d (nothing written within the touch interval)", s.Version, before.Version)
	}

	// A second connection fits; a third is over max_connections.
	other := e.addConn(c.ID, "http").Connection
	htWantError(t, e.send("POST", "/v1/sessions/"+c.ID+"/connections", `{"kind":"vnc"}`), http.StatusConflict, sessiond.CodeTooManyConnections, "")
	if got := htConnIDs(e.conns(c.ID)); !slices.Equal(got, []string{vnc.ID, other.ID}) {
		t.Errorf("after the refused third: got connections %v, want [%s %s] (oldest first)", got, vnc.ID, other.ID)
	}
	htWantEvents(t, st, 2, [2]string{"connected", c.ID})

	// Deleting one is idempotent; the session keeps its other connection.
	htWantStatus(t, e.deleteConn(other.ID), http.StatusNoContent)
	htWantStatus(t, e.deleteConn(other.ID), http.StatusNoContent)
	if ev := htWantEvents(t, st, 3, [2]string{"connection_closed", c.ID})[0].data; ev.Connection != other.ID || ev.Conn == nil ||
		ev.Conn.CloseReason != sessiond.ClosedRemoved || ev.Conn.Kind != "http" || !ev.Conn.ClosedAt.Equal(t2) {
		t.Errorf("the deleted connection's connection_closed: %+v (%+v); want removed at %v", ev, ev.Conn, t2)
	}
	htWantError(t, e.heartbeat(other.ID), http.StatusNotFound, sessiond.CodeConnectionNotFound, "")
	if got := htConnIDs(e.conns(c.ID)); !slices.Equal(got, []string{vnc.ID}) {
		t.Errorf("after the delete: got connections %v, want [%s]", got, vnc.ID)
	}
	if s := e.get(c.ID); s.State != "active" || s.Connections != 1 {
		t.Errorf("after deleting one of two: got state %q, connections %d; want active, 1", s.State, s.Connections)
	}

	// No heartbeat: just before the timeout the connection is attached...
	e.clock.Advance(29 * time.Second)
	if got := htConnIDs(e.conns(c.ID)); !slices.Equal(got, []string{vnc.ID}) {
		t.Fatalf("1s before its heartbeat timeout: got connections %v, want [%s]", got, vnc.ID)
	}
	// ...and at the timeout it is lost: it was the session's last, so the
	// session is disconnected and waits out its grace.
	e.clock.Advance(time.Second)
	lost := t2.Add(30 * time.Second)
	sessiondtest.Eventually(e.t, "the session to be disconnected", func() bool { return e.session(c.ID).State == sessiond.StateDisconnected })
	htWantError(t, e.heartbeat(vnc.ID), http.StatusNotFound, sessiond.CodeConnectionNotFound, "")
	if got := e.conns(c.ID); len(got) != 0 {
		t.Errorf("after the heartbeat timeout: got connections %v, want none", got)
	}
	s := e.get(c.ID)
	if s.State != "disconnected" || s.Connections != 0 || s.DisconnectedAt == nil || !s.DisconnectedAt.Equal(lost) {
		t.Errorf("after the heartbeat timeout: got state %q, connections %d, disconnected_at %v; want disconnected, 0, %v", s.State, s.Connections, s.DisconnectedAt, lost)
	}
	lostEvs := htWantEvents(t, st, 4, [2]string{"connection_closed", c.ID}, [2]string{"disconnected", c.ID})
	if cl := lostEvs[0].data; cl.Connection != vnc.ID || cl.Conn == nil || cl.Conn.CloseReason != sessiond.ClosedHeartbeatTimeout ||
		!cl.Conn.ClosedAt.Equal(lost) || cl.Conn.Duration() != lost.Sub(t1) || cl.Conn.ClientIP != "203.0.113.7" {
		t.Errorf("the lost connection's connection_closed: %+v (%+v); want heartbeat_timeout at %v", cl, cl.Conn, lost)
	}
	disc := lostEvs[1].data
	if disc.Connection != vnc.ID || disc.State != sessiond.StateDisconnected || !disc.Time.Equal(lost) {
		t.Errorf("disconnected event: got connection %q, state %v, time %v; want %q, disconnected, %v", disc.Connection, disc.State, disc.Time, vnc.ID, lost)
	}

	// A new connection within the grace resumes the session.
	e.clock.Advance(time.Minute)
	back := e.addConn(c.ID, "vnc").Connection
	s = e.get(c.ID)
	if s.State != "active" || s.Connections != 1 || s.DisconnectedAt != nil {
		t.Errorf("after a connection within the grace: got state %q, connections %d, disconnected_at %v; want active, 1, none", s.State, s.Connections, s.DisconnectedAt)
	}
	res := htWantEvents(t, st, 6, [2]string{"resumed", c.ID})[0].data
	if res.Connection != back.ID || res.State != sessiond.StateActive {
		t.Errorf("resumed event: got connection %q, state %v; want %q, active", res.Connection, res.State, back.ID)
	}
	htWantStatus(t, e.heartbeat(back.ID), http.StatusOK)
	if got := htConnIDs(e.conns(c.ID)); !slices.Equal(got, []string{back.ID}) {
		t.Errorf("after resuming: got connections %v, want [%s]", got, back.ID)
	}
}

// htSameConn compares connections, times by instant.
func htSameConn(a, b htConn) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.Node == b.Node && a.ClientIP == b.ClientIP && a.UserAgent == b.UserAgent &&
		a.ConnectedAt.Equal(b.ConnectedAt) && a.LastHeartbeat.Equal(b.LastHeartbeat)
}

func TestHeartbeatTimeoutWithoutGraceKeepsSessionActive(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice") // policy web: no disconnect grace, default heartbeats
	reg := e.addConn(c.ID, "http")
	if reg.HeartbeatInterval != "25s" || reg.HeartbeatTimeout != "1m0s" {
		t.Errorf("got heartbeat_interval %q, heartbeat_timeout %q; want the defaults 25s, 1m0s", reg.HeartbeatInterval, reg.HeartbeatTimeout)
	}
	e.clock.Advance(time.Minute)
	sessiondtest.Eventually(e.t, "the connection to be lost", func() bool { return e.session(c.ID).ConnCount == 0 })
	htWantError(t, e.heartbeat(reg.Connection.ID), http.StatusNotFound, sessiond.CodeConnectionNotFound, "")
	if s := e.get(c.ID); s.State != "active" || s.Connections != 0 || s.DisconnectedAt != nil {
		t.Errorf("got state %q, connections %d, disconnected_at %v; want active, 0, none", s.State, s.Connections, s.DisconnectedAt)
	}
}

func TestHeartbeatsKeepConnectionPastItsTimeout(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"alice","policy":"conns"}`)
	id := e.addConn(c.ID, "vnc").Connection.ID
	for range 10 { // 100s of heartbeats every 10s, against a 30s timeout
		e.clock.Advance(10 * time.Second)
		htWantStatus(t, e.heartbeat(id), http.StatusOK)
	}
	if got := htConnIDs(e.conns(c.ID)); !slices.Equal(got, []string{id}) {
		t.Errorf("got connections %v, want [%s]", got, id)
	}
	if s := e.get(c.ID); s.State != "active" {
		t.Errorf("got state %q, want active", s.State)
	}
}

func TestDeleteConnection(t *testing.T) {
	t.Run("last connection with a disconnect grace disconnects the session", func(t *testing.T) {
		e := htStart(t, nil)
		c := e.create(`{"subject":"alice","policy":"conns"}`)
		id := e.addConn(c.ID, "vnc").Connection.ID
		e.clock.Advance(time.Second)
		htWantStatus(t, e.deleteConn(id), http.StatusNoContent)
		s := e.get(c.ID)
		if s.State != "disconnected" || s.DisconnectedAt == nil || !s.DisconnectedAt.Equal(htEpoch.Add(time.Second)) {
			t.Errorf("got state %q, disconnected_at %v; want disconnected, %v", s.State, s.DisconnectedAt, htEpoch.Add(time.Second))
		}
		// Again: nothing changes.
		htWantStatus(t, e.deleteConn(id), http.StatusNoContent)
		if again := e.get(c.ID); again.Version != s.Version {
			t.Errorf("a repeated delete changed the session: version %d, then %d", s.Version, again.Version)
		}
		// The grace ends the session.
		e.clock.Advance(2 * time.Minute)
		sessiondtest.Eventually(e.t, "the grace to end the session", func() bool { return e.session(c.ID).State == sessiond.StateEnded })
		if s := e.get(c.ID); s.EndReason != "grace_elapsed" {
			t.Errorf("got end_reason %q, want grace_elapsed", s.EndReason)
		}
	})
	t.Run("last connection without a disconnect grace leaves the session active", func(t *testing.T) {
		e := htStart(t, nil)
		c := e.createFor("alice")
		id := e.addConn(c.ID, "vnc").Connection.ID
		htWantStatus(t, e.deleteConn(id), http.StatusNoContent)
		if s := e.get(c.ID); s.State != "active" || s.Connections != 0 {
			t.Errorf("got state %q, connections %d; want active, 0", s.State, s.Connections)
		}
	})
	t.Run("unknown or gone connections are 204", func(t *testing.T) {
		e := htStart(t, nil)
		c := e.create(`{"subject":"alice","policy":"conns"}`)
		kept := e.addConn(c.ID, "vnc").Connection.ID
		ended := e.createFor("bob")
		endedConn := e.addConn(ended.ID, "vnc").Connection.ID
		e.revoke(ended.ID)
		for name, id := range map[string]string{
			"never registered, live session": "abcdefghijklmnop." + c.ID,
			"session that does not exist":    "abcdefghijklmnop.no-such-session",
			"connection of an ended session": endedConn,
			"unknown, ended session":         "abcdefghijklmnop." + ended.ID,
		} {
			t.Run(name, func(t *testing.T) {
				e := e.in(t)
				htWantStatus(t, e.deleteConn(id), http.StatusNoContent)
			})
		}
		// The live session's connection was not touched.
		if got := htConnIDs(e.conns(c.ID)); !slices.Equal(got, []string{kept}) {
			t.Errorf("got connections %v, want [%s]", got, kept)
		}
		if s := e.get(c.ID); s.State != "active" {
			t.Errorf("got state %q, want active", s.State)
		}
	})
}

func TestNewConnectionReplacesOthersUnderReplacePolicy(t *testing.T) {
	e := htStart(t, nil)
	st := e.openEvents("", nil)
	c := e.create(`{"subject":"alice","policy":"single"}`)
	first := e.addConn(c.ID, "vnc").Connection.ID
	second := e.addConn(c.ID, "vnc").Connection.ID
	if got := htConnIDs(e.conns(c.ID)); !slices.Equal(got, []string{second}) {
		t.Errorf("got connections %v, want only the newer [%s]", got, second)
	}
	htWantError(t, e.heartbeat(first), http.StatusNotFound, sessiond.CodeConnectionNotFound, "")
	htWantStatus(t, e.heartbeat(second), http.StatusOK)
	evs := htWantEvents(t, st, 0, [2]string{"created", c.ID}, [2]string{"connected", c.ID}, [2]string{"connected", c.ID}, [2]string{"connection_closed", c.ID})
	if ev := evs[2].data; ev.Connection != second || !slices.Equal(ev.Replaced, []string{first}) {
		t.Errorf("second connected event: got connection %q, replaced %v; want %q, [%s]", ev.Connection, ev.Replaced, second, first)
	}
	if ev := evs[3].data; ev.Connection != first || ev.Conn == nil || ev.Conn.CloseReason != sessiond.ClosedReplaced {
		t.Errorf("the replaced connection's connection_closed: %+v (%+v); want replaced", ev, ev.Conn)
	}
}

func TestAddConnectionRejectsBadRequests(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	path := "/v1/sessions/" + c.ID + "/connections"
	for _, tc := range []struct {
		name, path, body, field string
	}{
		{"kind websocket", path, `{"kind":"websocket"}`, "kind"},
		{"kind missing", path, `{"client_ip":"203.0.113.7"}`, "kind"},
		{"kind empty", path, `{"kind":""}`, "kind"},
		{"kind too long", path, `{"kind":"` + strings.Repeat("k", 65) + `"}`, "kind"},
		{"kind with control character", path, `{"kind":"v\u0007nc"}`, "kind"},
		{"kind not a string", path, `{"kind":7}`, "kind"},
		{"client_ip not an address", path, `{"kind":"vnc","client_ip":"not-an-ip"}`, "client_ip"},
		{"client_ip with port", path, `{"kind":"vnc","client_ip":"203.0.113.7:5900"}`, "client_ip"},
		{"user_agent too long", path, `{"kind":"vnc","user_agent":"` + strings.Repeat("u", 1025) + `"}`, "user_agent"},
		{"unknown field", path, `{"kind":"vnc","node":"n1"}`, "node"},
		{"malformed JSON", path, `{"kind":`, "body"},
		{"no body", path, "", "body"},
		{"malformed session id", "/v1/sessions/bad%20id/connections", `{"kind":"vnc"}`, "id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			htWantError(t, e.send("POST", tc.path, tc.body), http.StatusBadRequest, sessiond.CodeInvalidArgument, tc.field)
		})
	}
	if got := e.conns(c.ID); len(got) != 0 {
		t.Errorf("refused registrations attached %v", got)
	}
	// The longest kind and an IPv6 address are fine.
	e.addConnWith(c.ID, `{"kind":"`+strings.Repeat("k", 64)+`","client_ip":"2001:db8::1"}`)
}

func TestConnectionRoutesOnUnknownSession(t *testing.T) {
	e := htStart(t, nil)
	htWantError(t, e.send("POST", "/v1/sessions/no-such-session/connections", `{"kind":"vnc"}`), http.StatusNotFound, sessiond.CodeNotFound, "")
	htWantError(t, e.send("GET", "/v1/sessions/no-such-session/connections", ""), http.StatusNotFound, sessiond.CodeNotFound, "")
	htWantError(t, e.heartbeat("abcdefghijklmnop.no-such-session"), http.StatusNotFound, sessiond.CodeConnectionNotFound, "")
	htWantStatus(t, e.deleteConn("abcdefghijklmnop.no-such-session"), http.StatusNoContent)
}

func TestConnectionRoutesOnEndedSession(t *testing.T) {
	t.Run("revoked", func(t *testing.T) {
		e := htStart(t, nil)
		c := e.createFor("alice")
		id := e.addConn(c.ID, "vnc").Connection.ID
		e.revoke(c.ID)
		htWantError(t, e.send("POST", "/v1/sessions/"+c.ID+"/connections", `{"kind":"vnc"}`), http.StatusGone, sessiond.CodeEnded, "")
		htWantError(t, e.heartbeat(id), http.StatusGone, sessiond.CodeEnded, "")
		if got := e.conns(c.ID); len(got) != 0 {
			t.Errorf("an ended session lists connections %v, want none", got)
		}
		htWantStatus(t, e.deleteConn(id), http.StatusNoContent)
	})
	t.Run("past its ttl before its timer fired", func(t *testing.T) {
		e := htStart(t, nil)
		c := e.create(`{"subject":"alice","policy":"plain"}`)
		id := e.addConn(c.ID, "vnc").Connection.ID
		e.clock.Jump(time.Hour) // the ttl, without firing any timer
		htWantError(t, e.heartbeat(id), http.StatusGone, sessiond.CodeExpired, "")
		htWantError(t, e.send("POST", "/v1/sessions/"+c.ID+"/connections", `{"kind":"vnc"}`), http.StatusGone, sessiond.CodeExpired, "")
		if s := e.get(c.ID); s.State != "ended" || s.EndReason != "expired" {
			t.Errorf("got state %q, end_reason %q; want ended, expired", s.State, s.EndReason)
		}
	})
}

func TestMalformedConnectionIDIs400(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	for _, id := range []string{
		"nope",                      // no dot
		"short." + c.ID,             // not 16 characters before the dot
		"abcdefghijklmnopq." + c.ID, // 17
		"abcdefghijklmnop.",         // no session id
		"abcdefghijklmnop.bad%20id", // not a session id
	} {
		t.Run(id, func(t *testing.T) {
			e := e.in(t)
			htWantError(t, e.heartbeat(id), http.StatusBadRequest, sessiond.CodeInvalidArgument, "connection")
			htWantError(t, e.deleteConn(id), http.StatusBadRequest, sessiond.CodeInvalidArgument, "connection")
		})
	}
}

func TestStatsCountConnectionsByKind(t *testing.T) {
	edge := wire.WebSocketStats{Open: 2, Connects: 5, Resumed: 1, CloseCodes: map[string]int{"4002": 1}}
	e := htStart(t, func(c *httpapi.Config) { c.EdgeStats = func() wire.WebSocketStats { return edge } })
	a := e.createFor("alice")
	b := e.create(`{"subject":"bob","policy":"conns"}`)
	gone := e.createFor("carol")
	e.addConn(a.ID, "vnc")
	drop := e.addConn(a.ID, "http").Connection.ID
	e.addConn(b.ID, "vnc")
	e.addConn(b.ID, "http")
	e.addConn(gone.ID, "rdp")
	e.revoke(gone.ID)

	st := e.stats()
	if want := map[string]int{"vnc": 2, "http": 2}; st.Connections.Total != 4 || !htCountsEqual(st.Connections.ByKind, want) {
		t.Errorf("got connections %+v, want total 4, by_kind %v", st.Connections, want)
	}
	htWantStatus(t, e.deleteConn(drop), http.StatusNoContent)
	st = e.stats()
	if want := map[string]int{"vnc": 2, "http": 1}; st.Connections.Total != 3 || !htCountsEqual(st.Connections.ByKind, want) {
		t.Errorf("after a delete: got connections %+v, want total 3, by_kind %v", st.Connections, want)
	}

	// The node's WebSocket counts are passed through as the edge gives them.
	var got wire.WebSocketStats
	if err := json.Unmarshal(st.WebSocket, &got); err != nil {
		t.Fatalf("websocket: %v (%s)", err, st.WebSocket)
	}
	if got.Open != 2 || got.Connects != 5 || got.Resumed != 1 || !maps.Equal(got.CloseCodes, edge.CloseCodes) {
		t.Errorf("got websocket %s, want the edge's %+v", st.WebSocket, edge)
	}
}

// TestOpenAPIWebSocketStatsSchema checks docs/openapi.yaml's WebSocketStats
// against wire.WebSocketStats.
func TestOpenAPIWebSocketStatsSchema(t *testing.T) {
	b, err := os.ReadFile("../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Required   []string       `yaml:"required"`
				Properties map[string]any `yaml:"properties"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	schema, ok := doc.Components.Schemas["WebSocketStats"]
	if !ok {
		t.Fatal("docs/openapi.yaml has no components.schemas.WebSocketStats")
	}
	raw, err := json.Marshal(wire.WebSocketStats{})
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(maps.Keys(obj))
	if documented := slices.Sorted(maps.Keys(schema.Properties)); !slices.Equal(documented, keys) {
		t.Errorf("WebSocketStats properties are %v; wire.WebSocketStats writes %v", documented, keys)
	}
	// wire.WebSocketStats writes every key, even when zero: all are required.
	if required := slices.Sorted(slices.Values(schema.Required)); !slices.Equal(required, keys) {
		t.Errorf("WebSocketStats requires %v; wire.WebSocketStats always writes %v", required, keys)
	}
}

// TestHeartbeatsWriteOncePerWriteInterval: heartbeats keep a connection
// alive from this node's memory and write its session at most once per
// write interval: the policy's touch interval (1m here), but no more than
// three quarters of its heartbeat timeout less one interval (15s here), so
// that a node that did not hear them still finds the connection alive.
func TestHeartbeatsWriteOncePerWriteInterval(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"alice","policy":"conns"}`)
	vnc := e.addConn(c.ID, "vnc").Connection
	v0 := e.get(c.ID).Version
	for range 14 {
		e.clock.Advance(time.Second)
		htWantStatus(t, e.heartbeat(vnc.ID), http.StatusOK)
	}
	if v := e.get(c.ID).Version; v != v0 {
		t.Fatalf("14 heartbeats one second apart moved the version from %d to %d; want no write within 15s", v0, v)
	}
	e.clock.Advance(time.Second)
	htWantStatus(t, e.heartbeat(vnc.ID), http.StatusOK) // 15s: written
	htWantStatus(t, e.heartbeat(vnc.ID), http.StatusOK)
	if v := e.get(c.ID).Version; v != v0+1 {
		t.Fatalf("15s after the stored heartbeat: version %d, want %d (one write)", v, v0+1)
	}
	// The deadline lives in memory: 29s after the last heartbeat (44s past
	// the stored one, beyond its 30s timeout) the connection is still there.
	e.clock.Advance(14 * time.Second)
	htWantStatus(t, e.heartbeat(vnc.ID), http.StatusOK) // 29s: memory only
	e.clock.Advance(29 * time.Second)
	if got := e.conns(c.ID); len(got) != 1 {
		t.Fatalf("connection lost 29s after its last heartbeat (timeout 30s): %+v", got)
	}
	if v := e.get(c.ID).Version; v != v0+1 {
		t.Fatalf("version %d; the heartbeat within 15s of the stored one wrote", v)
	}
	// Silence for the heartbeat timeout loses the connection.
	e.clock.Advance(2 * time.Second)
	sessiondtest.Eventually(e.t, "the connection lost to its heartbeat timeout", func() bool { return e.session(c.ID).ConnCount == 0 })
}

// DELETE /v1/connections/{id} records why the connection closed when its
// caller says (close_reason, close_code), and refuses a reason only the
// server records, or a code that is not one, changing nothing.
func TestDeleteConnectionRecordsTheCallersCause(t *testing.T) {
	e := htStart(t, nil)
	st := e.openEvents("", nil)
	c := e.create(`{"subject":"alice","policy":"conns"}`)
	vnc := e.addConn(c.ID, "vnc").Connection
	htWantEvents(t, st, 0, [2]string{"created", c.ID}, [2]string{"connected", c.ID})

	for _, bad := range []struct{ query, field string }{
		{"close_reason=replaced", "close_reason"},
		{"close_reason=gone", "close_reason"},
		{"close_code=abc", "close_code"},
		{"close_code=999", "close_code"},
		{"close_reason=closed&close_code=5000", "close_code"},
	} {
		htWantError(t, e.send("DELETE", "/v1/connections/"+vnc.ID+"?"+bad.query, ""), http.StatusBadRequest, sessiond.CodeInvalidArgument, bad.field)
	}
	if s := e.get(c.ID); s.Connections != 1 {
		t.Fatalf("after refused deletes: %d connections; want 1", s.Connections)
	}
	htWantStatus(t, e.send("DELETE", "/v1/connections/"+vnc.ID+"?close_reason=closed&close_code=1000", ""), http.StatusNoContent)
	ev := htWantEvents(t, st, 2, [2]string{"connection_closed", c.ID})[0].data
	if ev.Conn == nil || ev.Conn.CloseReason != sessiond.ClosedByClient || ev.Conn.CloseCode != 1000 {
		t.Fatalf("connection_closed %+v; want closed with 1000", ev.Conn)
	}
}
