package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/jwt"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
	"github.com/sessiond/sessiond/ws"
)

var secret = []byte("0123456789abcdef0123456789abcdef-test-secret")

func device() sessiond.Policy {
	return sessiond.Policy{
		Name: "device", TTL: 24 * time.Hour, IdleTimeout: time.Hour, TouchInterval: time.Minute,
		DisconnectGrace: 30 * time.Second, OnConnect: sessiond.ConnectReplace, MaxConnections: 1,
		HeartbeatInterval: 10 * time.Second, HeartbeatTimeout: 25 * time.Second,
	}
}

func workspace() sessiond.Policy {
	return sessiond.Policy{
		Name: "workspace", TTL: 8 * time.Hour, IdleTimeout: time.Hour, TouchInterval: time.Minute,
		DisconnectGrace: 5 * time.Minute, MaxConnections: 2,
	}
}

// unlimited lifts the connect rate limits, for tests that connect much
// faster than the manual clock moves.
var unlimited = ws.Config{ConnectsPerSubject: 1 << 30, ConnectsPerAddress: 1 << 30}

type wsEnv struct {
	t     testing.TB
	clock *sessiondtest.ManualClock
	store sessiond.Store
	m     *sessiond.Manager
	edge  *ws.Edge
	srv   *httptest.Server
}

func newEnv(t testing.TB, edgeCfg ws.Config) *wsEnv {
	return newEnvWith(t, edgeCfg, sessiond.Config{})
}

func newEnvWith(t testing.TB, edgeCfg ws.Config, mcfg sessiond.Config) *wsEnv {
	t.Helper()
	clock := sessiondtest.NewManualClock(time.Now().Truncate(time.Second))
	var st sessiond.Store = inmem.New(inmem.Options{})
	if mcfg.Store != nil {
		st = mcfg.Store // a test's wrapper of a memory store
	}
	mcfg.Store, mcfg.Clock, mcfg.Node = st, clock, "node-1"
	mcfg.Policies = []sessiond.Policy{sessiond.DefaultPolicy(), device(), workspace(), sleepy()}
	m, err := sessiond.New(mcfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := jwt.New(context.Background(), jwt.Config{Secret: secret, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	edgeCfg.Manager, edgeCfg.Clock = m, clock
	edgeCfg.Verify = func(ctx context.Context, tok string) (string, time.Time, error) {
		c, err := v.Verify(ctx, tok)
		if err != nil {
			return "", time.Time{}, err
		}
		return c.Subject, c.ExpiresAt, nil
	}
	edge, err := ws.New(edgeCfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(edge)
	e := &wsEnv{t: t, clock: clock, store: st, m: m, edge: edge, srv: srv}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = edge.Shutdown(ctx)
		srv.Close()
		m.Close()
		v.Close()
	})
	return e
}

// token signs a credential for subject that expires after ttl.
func (e *wsEnv) token(subject string, ttl time.Duration) string {
	e.t.Helper()
	tok, err := jwt.Sign(secret, subject, ttl, e.clock.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

type client struct {
	t testing.TB
	c *websocket.Conn
}

// dial connects with a bearer credential; query and headers are extra.
func (e *wsEnv) dial(cred, query string, h http.Header) (*client, *http.Response, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if h == nil {
		h = http.Header{}
	}
	if cred != "" {
		h.Set("Authorization", "Bearer "+cred)
	}
	url := "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/v1/connect"
	if query != "" {
		url += "?" + query
	}
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(1 << 20)
	cl := &client{t: e.t, c: c}
	e.t.Cleanup(func() { _ = c.CloseNow() })
	return cl, resp, nil
}

func (e *wsEnv) mustDial(subject, query string, h http.Header) *client {
	e.t.Helper()
	c, _, err := e.dial(e.token(subject, time.Hour), query, h)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	return c
}

// read returns the next message as a JSON object.
func (c *client) read() map[string]any {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, b, err := c.c.Read(ctx)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("message %s: %v", b, err)
	}
	return m
}

func (c *client) send(v any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, _ := json.Marshal(v)
	if err := c.c.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// closedWith reads until the server closes and returns the close code.
func (c *client) closedWith() wire.CloseCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := c.c.Read(ctx)
		if err != nil {
			code := websocket.CloseStatus(err)
			if code == -1 {
				c.t.Fatalf("connection ended without a close frame: %v", err)
			}
			return wire.CloseCode(code)
		}
	}
}

// pingPong sends an application ping and waits for its pong, so that the
// server has seen the client alive before the test moves the clock. Other
// messages arriving first are returned.
func (c *client) pingPong() (others []map[string]any) {
	c.t.Helper()
	c.send(map[string]string{"type": "ping"})
	for {
		m := c.read()
		if m["type"] == "pong" {
			return others
		}
		others = append(others, m)
	}
}

func (c *client) ack() (sessionID, connID string, resumed bool, ack map[string]any) {
	c.t.Helper()
	m := c.read()
	if m["type"] != "connected" {
		c.t.Fatalf("first message %v, want the connected ack", m)
	}
	return m["session_id"].(string), m["connection_id"].(string), m["resumed"].(bool), m
}

func (e *wsEnv) session(id string) *sessiond.Session {
	e.t.Helper()
	s, err := e.store.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// conns returns the session's connections as stored.
func (e *wsEnv) conns(id string) []sessiond.Connection {
	e.t.Helper()
	got, err := e.store.Conns(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

func TestRefusedBeforeUpgrade(t *testing.T) {
	e := newEnv(t, ws.Config{})
	expired, _ := jwt.Sign(secret, "alice", time.Minute, e.clock.Now().Add(-time.Hour))
	otherKey, _ := jwt.Sign([]byte("another-secret-another-secret-1234567"), "alice", time.Hour, e.clock.Now())
	for _, tc := range []struct {
		name, cred, query string
		status            int
		code, message     string
	}{
		{"no credential", "", "device_id=g", 401, "unauthorized", "missing credential"},
		{"malformed", "not.a.jwt", "device_id=g", 401, "unauthorized", "malformed token"},
		{"expired", expired, "device_id=g", 401, "unauthorized", "token expired"},
		{"wrong key", otherKey, "device_id=g", 401, "unauthorized", "bad signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, resp, err := e.dial(tc.cred, tc.query, nil)
			if err == nil || resp == nil || resp.StatusCode != tc.status {
				t.Fatalf("dial: %v, response %v; want HTTP %d before the upgrade", err, resp, tc.status)
			}
			var body wire.ErrorBody
			b, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(b, &body); err != nil || string(body.Error.Code) != tc.code || !strings.Contains(body.Error.Message+body.Error.Field, tc.message) {
				t.Fatalf("body %s; want code %s mentioning %q", b, tc.code, tc.message)
			}
		})
	}
	// ?token= works for browsers.
	if _, _, err := e.dial("", "device_id=g&token="+e.token("alice", time.Hour), nil); err != nil {
		t.Fatalf("?token=: %v", err)
	}
	st, _ := e.m.Stats(context.Background())
	if st.Total != 1 {
		t.Fatalf("%d sessions exist; refused connections must create none", st.Total)
	}
}

func TestDeviceConnectAckResumeAndGrace(t *testing.T) {
	e := newEnv(t, ws.Config{})
	c := e.mustDial("alice", "device_id=glasses-1&device_type=glasses", nil)
	sid, _, resumed, ack := c.ack()
	if resumed || ack["session_token"] == nil || ack["state"] != "active" || ack["heartbeat_interval_ms"] != float64(10000) || ack["expires_at"] == nil {
		t.Fatalf("first ack %v", ack)
	}
	if s := e.session(sid); s.Device.Type != "glasses" || s.Policy != "device" || s.ConnCount != 1 || e.conns(sid)[0].Kind != "websocket" {
		t.Fatalf("session %+v", s)
	}
	_ = c.c.Close(websocket.StatusNormalClosure, "bye")
	sessiondtest.Eventually(e.t, "the session to be disconnected", func() bool { return e.session(sid).State == sessiond.StateDisconnected })

	e.clock.Jump(20 * time.Second)
	again := e.mustDial("alice", "device_id=glasses-1", nil)
	sid2, _, resumed, ack := again.ack()
	if sid2 != sid || !resumed || ack["session_token"] != nil {
		t.Fatalf("reconnect within grace: %v", ack)
	}
	if s := e.session(sid); s.State != sessiond.StateActive {
		t.Fatalf("after resume: %v", s.State)
	}
	_ = again.c.Close(websocket.StatusNormalClosure, "")
	sessiondtest.Eventually(e.t, "disconnected again", func() bool { return e.session(sid).State == sessiond.StateDisconnected })
	e.clock.Advance(31 * time.Second)
	sessiondtest.Eventually(e.t, "the grace to end the session", func() bool { return e.session(sid).State == sessiond.StateEnded })
	if s := e.session(sid); s.EndReason != sessiond.EndGraceElapsed {
		t.Fatalf("ended with %v", s.EndReason)
	}
	third := e.mustDial("alice", "device_id=glasses-1", nil)
	if sid3, _, resumed, _ := third.ack(); sid3 == sid || resumed {
		t.Fatal("a connection after the grace resumed the ended session")
	}
}

func TestSessionTokenAttach(t *testing.T) {
	e := newEnv(t, ws.Config{})
	ctx := context.Background()
	created, err := e.m.Create(ctx, sessiond.CreateRequest{Subject: "alice", Policy: "workspace"})
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"X-Session-Token": {created.Token}}
	a := e.mustDial("alice", "", h)
	b := e.mustDial("alice", "", h.Clone())
	for _, c := range []*client{a, b} {
		if sid, _, resumed, _ := c.ack(); sid != created.Session.ID || !resumed {
			t.Fatalf("attach: session %s resumed %v", sid, resumed)
		}
	}
	if n := e.session(created.Session.ID).ConnCount; n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
	for _, tc := range []struct {
		subject string
		status  int
		code    string
	}{{"alice", 409, "too_many_connections"}, {"mallory", 403, "subject_mismatch"}} {
		_, resp, err := e.dial(e.token(tc.subject, time.Hour), "", h.Clone())
		if err == nil || resp == nil || resp.StatusCode != tc.status {
			t.Fatalf("%s: %v %v; want %d", tc.subject, err, resp, tc.status)
		}
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), tc.code) {
			t.Fatalf("%s: body %s, want %s", tc.subject, b, tc.code)
		}
	}
}

func TestAttachByFirstMessage(t *testing.T) {
	e := newEnv(t, ws.Config{AttachTimeout: 10 * time.Second})
	created, _ := e.m.Create(context.Background(), sessiond.CreateRequest{Subject: "alice", Policy: "workspace"})
	c := e.mustDial("alice", "attach=message", nil)
	c.send(map[string]string{"type": "attach", "session_token": created.Token})
	if sid, _, _, _ := c.ack(); sid != created.Session.ID {
		t.Fatalf("attached to %s", sid)
	}
	// Someone else's token: refused with a terminal code.
	bob, _ := e.m.Create(context.Background(), sessiond.CreateRequest{Subject: "bob", Policy: "workspace"})
	wrong := e.mustDial("alice", "attach=message", nil)
	wrong.send(map[string]string{"type": "attach", "session_token": bob.Token})
	if code := wrong.closedWith(); code != wire.CloseUnauthorized {
		t.Fatalf("closed with %d, want %d", code, wire.CloseUnauthorized)
	}
	// Silence: closed after the attach timeout.
	silent := e.mustDial("alice", "attach=message", nil)
	sessiondtest.Eventually(e.t, "the attach timer", func() bool { return e.edge.Open() >= 2 })
	e.clock.Advance(10 * time.Second)
	if code := silent.closedWith(); code != wire.CloseBadRequest {
		t.Fatalf("closed with %d, want %d", code, wire.CloseBadRequest)
	}
}

func TestRevokeClosesTheSocket(t *testing.T) {
	e := newEnv(t, ws.Config{})
	c := e.mustDial("alice", "device_id=g", nil)
	sid, _, _, _ := c.ack()
	if err := e.m.Revoke(context.Background(), sid, ""); err != nil {
		t.Fatal(err)
	}
	if code := c.closedWith(); code != wire.CloseSessionRevoked {
		t.Fatalf("closed with %d, want %d (session revoked)", code, wire.CloseSessionRevoked)
	}
	if wire.CloseSessionRevoked.Reconnect() {
		t.Fatal("a revoked session's close code must be terminal")
	}
}

func TestReplaceClosesTheOlderConnection(t *testing.T) {
	e := newEnv(t, ws.Config{})
	old := e.mustDial("alice", "device_id=g", nil)
	sid, oldConn, _, _ := old.ack()
	newer := e.mustDial("alice", "device_id=g", nil)
	if sid2, _, resumed, _ := newer.ack(); sid2 != sid || !resumed {
		t.Fatal("the newer connection did not take the session over")
	}
	if code := old.closedWith(); code != wire.CloseReplaced {
		t.Fatalf("old connection closed with %d, want %d", code, wire.CloseReplaced)
	}
	// The old socket's close changed nothing: the session stays active
	// with the newer connection.
	sessiondtest.Eventually(e.t, "the old connection to be gone", func() bool { return e.edge.Open() == 1 })
	s := e.session(sid)
	if conns := e.conns(s.ID); s.State != sessiond.StateActive || s.ConnCount != 1 || conns[0].ID == oldConn {
		t.Fatalf("after the replaced close: %v with %+v", s.State, conns)
	}
}

func TestHeartbeatTimeout(t *testing.T) {
	e := newEnv(t, ws.Config{})
	c := e.mustDial("alice", "device_id=g", nil)
	sid, _, _, _ := c.ack()
	// The client does not read, so it answers no pings: silence.
	e.clock.Advance(24 * time.Second)
	if e.edge.Open() != 1 {
		t.Fatal("closed before the heartbeat timeout")
	}
	e.clock.Advance(time.Second)
	if code := c.closedWith(); code != wire.CloseHeartbeatTimeout {
		t.Fatalf("closed with %d, want %d", code, wire.CloseHeartbeatTimeout)
	}
	sessiondtest.Eventually(e.t, "the session to be disconnected", func() bool { return e.session(sid).State == sessiond.StateDisconnected })
	if st := e.edge.Stats(); st.HeartbeatTimeouts != 1 || st.CloseCodes["4002"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestPingsKeepAnAnsweringClient(t *testing.T) {
	e := newEnv(t, ws.Config{})
	c := e.mustDial("alice", "device_id=g", nil)
	c.ack()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // reading answers the server's pings
		for {
			if _, _, err := c.c.Read(ctx); err != nil {
				return
			}
		}
	}()
	// Two minutes in 10s steps. Each step that sends a ping waits for its
	// pong to arrive before time moves on.
	for range 12 {
		before := e.edge.Stats().Pongs
		e.clock.Advance(10 * time.Second)
		if e.edge.Open() != 1 {
			t.Fatal("a client answering pings was dropped")
		}
		sessiondtest.Eventually(e.t, "a pong", func() bool { return e.edge.Stats().Pongs > before })
	}
	if st := e.edge.Stats(); st.Pongs < 11 || st.HeartbeatTimeouts != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCredentialRefresh(t *testing.T) {
	e := newEnv(t, ws.Config{RefreshBefore: time.Minute})
	c, _, err := e.dial(e.token("alice", 3*time.Minute), "device_id=g", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.ack()
	// Keep the heartbeat alive with application pings as time moves. The
	// refresh comes 18s (a tenth of 3m, shorter than a minute) before expiry.
	for range 8 {
		c.pingPong()
		e.clock.Advance(20 * time.Second)
	}
	c.pingPong()
	e.clock.Advance(2 * time.Second) // 2m42s
	m := c.read()
	if m["type"] != "refresh" {
		t.Fatalf("want a refresh message 18s before expiry, got %v", m)
	}
	c.send(map[string]string{"type": "refresh", "token": e.token("alice", time.Hour)})
	if m = c.read(); m["type"] != "refreshed" {
		t.Fatalf("want refreshed, got %v", m)
	}
	c.send(map[string]string{"type": "refresh", "token": e.token("mallory", time.Hour)})
	if m = c.read(); m["type"] != "error" || m["code"] != "unauthorized" {
		t.Fatalf("refresh with another subject: %v", m)
	}

	// Without a refresh, the connection closes at expiry with 4001.
	d, _, err := e.dial(e.token("bob", 90*time.Second), "device_id=h", nil)
	if err != nil {
		t.Fatal(err)
	}
	d.ack()
	for range 4 { // alive every 20s (the heartbeat timeout is 25s) until 80s
		d.pingPong()
		e.clock.Advance(20 * time.Second)
	}
	d.pingPong()
	e.clock.Advance(10 * time.Second) // 90s: the credential expires
	if code := d.closedWith(); code != wire.CloseCredentialExpired || !code.Reconnect() {
		t.Fatalf("closed with %d, want %d (reconnectable)", code, wire.CloseCredentialExpired)
	}
}

func TestMessages(t *testing.T) {
	e := newEnv(t, ws.Config{MessageRate: 5, MessageBurst: 5})
	c := e.mustDial("alice", "device_id=g", nil)
	c.ack()
	c.send(map[string]string{"type": "ping"})
	if m := c.read(); m["type"] != "pong" {
		t.Fatalf("ping: %v", m)
	}
	c.send(map[string]string{"type": "hello"})
	if m := c.read(); m["type"] != "error" || m["code"] != "unknown_type" {
		t.Fatalf("unknown type: %v", m)
	}
	ctx := context.Background()
	_ = c.c.Write(ctx, websocket.MessageText, []byte("not json"))
	if m := c.read(); m["type"] != "error" || m["code"] != "invalid_message" {
		t.Fatalf("malformed: %v", m)
	}
	// Three messages so far, a burst of five, and time does not move: the
	// sixth is one too many.
	c.send(map[string]string{"type": "ping"})
	c.send(map[string]string{"type": "ping"})
	c.send(map[string]string{"type": "ping"})
	if code := c.closedWith(); code != wire.ClosePolicyViolation || code.Reconnect() {
		t.Fatalf("over the rate: closed with %d, want 1008 (terminal)", code)
	}

	big := e.mustDial("bob", "device_id=g", nil)
	big.ack()
	_ = big.c.Write(ctx, websocket.MessageText, []byte(`{"type":"ping","pad":"`+strings.Repeat("x", 5000)+`"}`))
	if code := big.closedWith(); code != wire.CloseMessageTooBig {
		t.Fatalf("oversized: closed with %d, want 1009", code)
	}
	bin := e.mustDial("carol", "device_id=g", nil)
	bin.ack()
	_ = bin.c.Write(ctx, websocket.MessageBinary, []byte{1, 2, 3})
	if code := bin.closedWith(); code != wire.CloseUnsupportedData {
		t.Fatalf("binary: closed with %d, want 1003", code)
	}
}

func TestShutdownSaysGoingAwayAndKeepsSessions(t *testing.T) {
	e := newEnv(t, ws.Config{})
	c := e.mustDial("alice", "device_id=g", nil)
	sid, _, _, _ := c.ack()
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- e.edge.Shutdown(ctx)
	}()
	if code := c.closedWith(); code != wire.CloseGoingAway || !code.Reconnect() {
		t.Fatalf("closed with %d, want 1001 (reconnect)", code)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := e.session(sid); s.State != sessiond.StateDisconnected {
		t.Fatalf("after shutdown the session is %v, want disconnected (it resumes within its grace)", s.State)
	}
	if _, resp, err := e.dial(e.token("bob", time.Hour), "device_id=g", nil); err == nil || resp.StatusCode != 503 {
		t.Fatalf("a connection during shutdown: %v", err)
	}
}

func TestPlainHTTPIsRefusedWithoutTouchingSessions(t *testing.T) {
	e := newEnv(t, ws.Config{})
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/connect?device_id=g", nil)
	req.Header.Set("Authorization", "Bearer "+e.token("alice", time.Hour))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 400 || !strings.Contains(string(b), "invalid_argument") {
		t.Fatalf("%d %s; want 400 invalid_argument", resp.StatusCode, b)
	}
	if st, _ := e.m.Stats(context.Background()); st.Total != 0 {
		t.Fatal("a refused request created a session")
	}
}

// A credential shorter-lived than RefreshBefore is asked to refresh once,
// a tenth of its life before it expires: not at once, and not in a loop.
func TestShortCredentialRefreshesOnce(t *testing.T) {
	e := newEnv(t, ws.Config{RefreshBefore: time.Minute})
	c, _, err := e.dial(e.token("alice", 30*time.Second), "device_id=g", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.ack()
	if others := c.pingPong(); len(others) != 0 {
		t.Fatalf("messages before any time passed: %v", others)
	}
	e.clock.Advance(20 * time.Second) // within the 25s heartbeat timeout
	if others := c.pingPong(); len(others) != 0 {
		t.Fatalf("refresh asked too early: %v", others)
	}
	e.clock.Advance(6 * time.Second) // 26s
	if others := c.pingPong(); len(others) != 0 {
		t.Fatalf("refresh asked too early: %v", others)
	}
	e.clock.Advance(time.Second) // 27s: a tenth of 30s before expiry
	if m := c.read(); m["type"] != "refresh" {
		t.Fatalf("want one refresh at 27s, got %v", m)
	}
	if others := c.pingPong(); len(others) != 0 {
		t.Fatalf("more messages after the refresh: %v", others)
	}
}

// The first ping of each connection comes after a random part of the
// heartbeat interval, so connections made together are not pinged together.
func TestFirstPingsAreSpread(t *testing.T) {
	e := newEnv(t, ws.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 20 {
		c := e.mustDial(fmt.Sprint("user-", i), "device_id=g", nil)
		c.ack()
		go func() { // reading answers pings
			for {
				if _, _, err := c.c.Read(ctx); err != nil {
					return
				}
			}
		}()
	}
	// Ten 1s steps cover the 10s interval: every connection gets its first
	// ping in one of them.
	stepsWithPings, last := 0, int64(0)
	for range 10 {
		e.clock.Advance(time.Second)
		time.Sleep(20 * time.Millisecond) // attribute this step's pongs to it (best effort; not a timeout)
		if p := e.edge.Stats().Pongs; p > last {
			stepsWithPings++
			last = p
		}
	}
	sessiondtest.Eventually(e.t, "all 20 first pings answered", func() bool { return e.edge.Stats().Pongs == 20 })
	// 20 random first pings over ten steps land in at least four of them
	// but with a probability below one in a billion.
	if stepsWithPings < 4 {
		t.Fatalf("the first pings came in %d of 10 one-second steps; want them spread over several", stepsWithPings)
	}
}
