package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/jwt"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
	"github.com/sessiond/sessiond/ws"
)

// The tests run the real edge (ws.New) on a real engine with the memory
// store and the real JWT verifier. The server's time is a manual clock:
// heartbeat timeouts and credential expiry happen when a test moves it.

var testSecret = []byte("0123456789abcdef0123456789abcdef-client-test")

func testPolicies() []sessiond.Policy {
	return []sessiond.Policy{
		sessiond.DefaultPolicy(),
		{
			Name: "device", TTL: 24 * time.Hour, IdleTimeout: time.Hour, TouchInterval: time.Minute,
			DisconnectGrace: 30 * time.Second, OnConnect: sessiond.ConnectReplace, MaxConnections: 1,
			HeartbeatInterval: 10 * time.Second, HeartbeatTimeout: 25 * time.Second,
		},
		{
			Name: "single", TTL: 8 * time.Hour, IdleTimeout: time.Hour, TouchInterval: time.Minute,
			DisconnectGrace: 5 * time.Minute, MaxConnections: 1,
		},
		{
			Name: "rotating", TTL: 24 * time.Hour, IdleTimeout: time.Hour, TouchInterval: time.Minute,
			DisconnectGrace: 5 * time.Minute, RotateAfter: time.Minute, RotationGrace: 5 * time.Second,
			HeartbeatInterval: 10 * time.Second, HeartbeatTimeout: 25 * time.Second,
		},
		{
			// The server's timers never fire unless a test moves its clock;
			// the client watches this heartbeat timeout on the real clock.
			Name: "quiet", TTL: 24 * time.Hour, IdleTimeout: time.Hour, TouchInterval: time.Minute,
			DisconnectGrace: 30 * time.Second, OnConnect: sessiond.ConnectReplace,
			HeartbeatInterval: 50 * time.Millisecond, HeartbeatTimeout: 100 * time.Millisecond,
		},
		{
			// Hibernates; no runtime is configured, so a wake completes
			// as soon as it begins.
			Name: "sleepy", TTL: 8 * time.Hour, IdleTimeout: time.Hour, HibernateAfter: 5 * time.Minute,
			HeartbeatInterval: 10 * time.Second, HeartbeatTimeout: 25 * time.Second,
		},
	}
}

type testServer struct {
	t     *testing.T
	clock *sessiondtest.ManualClock
	store sessiond.Store
	m     *sessiond.Manager
	cfg   ws.Config
	srv   *httptest.Server

	mu    sync.Mutex
	edges []*ws.Edge
	edge  atomic.Pointer[ws.Edge]
	down  atomic.Bool // answer 503, as a node that is not up
}

// newTestServer starts an engine and an HTTP server serving an edge on it.
// connectPolicy is the policy of device sessions ("" for "device").
func newTestServer(t *testing.T, edgeCfg ws.Config, connectPolicy string) *testServer {
	t.Helper()
	clock := sessiondtest.NewManualClock(time.Now().Truncate(time.Second))
	st := inmem.New(inmem.Options{})
	m, err := sessiond.New(sessiond.Config{
		Store: st, Clock: clock, Node: "node-1", Policies: testPolicies(), ConnectPolicy: connectPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := jwt.New(context.Background(), jwt.Config{Secret: testSecret, Now: clock.Now})
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
	s := &testServer{t: t, clock: clock, store: st, m: m, cfg: edgeCfg}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.down.Load() {
			wire.WriteError(w, &sessiond.Error{Code: sessiond.CodeUnavailable, Message: "starting"})
			return
		}
		s.edge.Load().ServeHTTP(w, r)
	}))
	s.startEdge()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.mu.Lock()
		for _, e := range s.edges {
			_ = e.Shutdown(ctx)
		}
		s.mu.Unlock()
		s.srv.Close()
		m.Close()
		v.Close()
	})
	return s
}

// startEdge serves a new edge on the same engine, as a restarted node.
func (s *testServer) startEdge() *ws.Edge {
	s.t.Helper()
	e, err := ws.New(s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.edges = append(s.edges, e)
	s.mu.Unlock()
	s.edge.Store(e)
	return e
}

func (s *testServer) session(id string) *sessiond.Session {
	s.t.Helper()
	got, err := s.store.Get(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return got
}

// conns returns the session's connections as stored.
func (s *testServer) conns(id string) []sessiond.Connection {
	s.t.Helper()
	got, err := s.store.Conns(context.Background(), id)
	if err != nil {
		s.t.Fatal(err)
	}
	return got
}

// tokens is a credential source signing with the server's clock.
type tokens struct {
	s         *testServer
	subject   string
	ttl       time.Duration
	calls     atomic.Int64
	failCall  atomic.Int64 // this call fails; 0: none
	blockCall atomic.Int64 // this call waits for its context to end
	wrongKey  atomic.Bool  // sign with a key the server does not know
}

func (s *testServer) tokens(subject string, ttl time.Duration) *tokens {
	return &tokens{s: s, subject: subject, ttl: ttl}
}

func (k *tokens) source(ctx context.Context) (string, error) {
	n := k.calls.Add(1)
	if n == k.failCall.Load() {
		return "", errors.New("identity provider unavailable")
	}
	if n == k.blockCall.Load() {
		<-ctx.Done()
		return "", ctx.Err()
	}
	secret := testSecret
	if k.wrongKey.Load() {
		secret = []byte("another-secret-another-secret-0123456789")
	}
	return jwt.Sign(secret, k.subject, k.ttl, k.s.clock.Now())
}

// recorder keeps the state changes a WSConn reports.
type recorder struct {
	mu   sync.Mutex
	evs  []WSEvent
	next int // await looks from here
}

func (r *recorder) on(ev WSEvent) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) all() []WSEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.evs)
}

func (r *recorder) states() []WSState {
	var out []WSState
	for _, ev := range r.all() {
		out = append(out, ev.State)
	}
	return out
}

// await returns the first event in state want after those returned
// before, waiting for it.
func (r *recorder) await(t *testing.T, want WSState) WSEvent {
	t.Helper()
	var ev WSEvent
	found := false
	defer func() {
		if !found { // Eventually failed the test: show what came instead
			t.Logf("events: %v", r.states())
		}
	}()
	sessiondtest.Eventually(t, fmt.Sprintf("a %v event", want), func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i := r.next; i < len(r.evs); i++ {
			if r.evs[i].State == want {
				r.next = i + 1
				ev, found = r.evs[i], true
				return true
			}
		}
		return false
	})
	return ev
}

// dial connects with short backoffs and records the states; the connection
// is closed when the test ends.
func (s *testServer) dial(cfg WSConfig) (*WSConn, *recorder, error) {
	s.t.Helper()
	rec := &recorder{}
	if cfg.URL == "" {
		cfg.URL = s.srv.URL
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 10*time.Millisecond
	}
	cfg.OnState = rec.on
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := DialWS(ctx, cfg)
	if c != nil {
		s.t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Close(ctx); err != nil {
				s.t.Error(err)
			}
		})
	}
	return c, rec, err
}

func (s *testServer) mustDial(cfg WSConfig) (*WSConn, *recorder) {
	s.t.Helper()
	c, rec, err := s.dial(cfg)
	if err != nil {
		s.t.Fatalf("DialWS: %v", err)
	}
	return c, rec
}

func ctx5s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestWSBackoff(t *testing.T) {
	const lo, hi = 250 * time.Millisecond, 30 * time.Second
	almostOne := math.Nextafter(1, 0)
	for _, tc := range []struct {
		n      int
		factor float64
		r      float64
		want   time.Duration
	}{
		{1, 2, 0, lo},                       // the floor
		{1, 2, 0.5, 375 * time.Millisecond}, // between 250ms and 500ms
		{2, 2, 0.5, 625 * time.Millisecond}, // between 250ms and 1s
		{3, 2, 0.5, 1125 * time.Millisecond},
		{2, 3, 0.5, 1250 * time.Millisecond}, // ceiling 2.25s
		{7, 2, 0, lo},                        // the floor stays
		{7, 2, 0.5, lo + (hi-lo)/2},          // 250ms*2^7 = 32s: capped at 30s
		{1 << 20, 2, 0.5, lo + (hi-lo)/2},    // no overflow
	} {
		if got := backoff(tc.n, lo, hi, tc.factor, tc.r); got != tc.want {
			t.Errorf("backoff(%d, factor %v, r %v) = %v, want %v", tc.n, tc.factor, tc.r, got, tc.want)
		}
	}
	// The ceilings grow by the factor up to the cap; a seeded random
	// source gives delays spread between the floor and the ceiling.
	rng := rand.New(rand.NewPCG(1, 2))
	prev := time.Duration(0)
	for n := 1; n <= 12; n++ {
		ceiling := min(hi, lo<<n)
		if top := backoff(n, lo, hi, 2, almostOne); top < ceiling-time.Microsecond || top > ceiling {
			t.Errorf("retry %d: the longest wait is %v, want %v", n, top, ceiling)
		}
		if ceiling < prev {
			t.Errorf("retry %d: ceiling %v below the previous %v", n, ceiling, prev)
		}
		prev = ceiling
		seen := map[time.Duration]bool{}
		for range 50 {
			d := backoff(n, lo, hi, 2, rng.Float64())
			if d < lo || d > ceiling {
				t.Fatalf("retry %d: wait %v outside [%v, %v]", n, d, lo, ceiling)
			}
			seen[d] = true
		}
		if len(seen) < 40 {
			t.Errorf("retry %d: %d distinct waits of 50; want jitter", n, len(seen))
		}
	}
}

func TestWSConfig(t *testing.T) {
	src := func(context.Context) (string, error) { return "t", nil }
	for _, tc := range []struct {
		name string
		cfg  WSConfig
		want string // in the error, or the URL if valid
	}{
		{"no url", WSConfig{Token: src, DeviceID: "d"}, "URL"},
		{"no token source", WSConfig{URL: "ws://h", DeviceID: "d"}, "Token"},
		{"no device and no session token: the default device", WSConfig{URL: "ws://h", Token: src}, "ws://h/v1/connect"},
		{"a device and a session token", WSConfig{URL: "ws://h", Token: src, DeviceID: "d", SessionToken: "sd_x"}, "not both"},
		{"bad scheme", WSConfig{URL: "ftp://h", Token: src, DeviceID: "d"}, "scheme"},
		{"backoffs reversed", WSConfig{URL: "ws://h", Token: src, DeviceID: "d", MinBackoff: time.Second, MaxBackoff: time.Millisecond}, "MaxBackoff"},
		{"base url", WSConfig{URL: "http://h:7600", Token: src, DeviceID: "g 1", DeviceType: "glasses"}, "http://h:7600/v1/connect?device_id=g+1&device_type=glasses"},
		{"no scheme", WSConfig{URL: "h:7600/", Token: src, SessionToken: "sd_x"}, "ws://h:7600/v1/connect"},
		{"full url", WSConfig{URL: "wss://h/edge/connect?x=1", Token: src, DeviceID: "d"}, "wss://h/edge/connect?device_id=d&x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := newWSConn(tc.cfg)
			switch {
			case err != nil && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %v, want one about %s", err, tc.want)
			case err == nil && c.url != tc.want:
				t.Fatalf("url %s, want %s", c.url, tc.want)
			}
		})
	}
}

func TestWSStateString(t *testing.T) {
	want := []string{"connecting", "connected", "disconnected", "reconnecting", "stopped", "ready", "WSState(9)"}
	for i, s := range []WSState{WSConnecting, WSConnected, WSDisconnected, WSReconnecting, WSStopped, WSReady, 9} {
		if s.String() != want[i] {
			t.Errorf("%d: %q, want %q", i, s.String(), want[i])
		}
	}
}

func TestWSFirstConnectCreatesSession(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "")
	src := s.tokens("alice", time.Hour)
	c, rec := s.mustDial(WSConfig{Token: src.source, DeviceID: "glasses-1", DeviceType: "glasses", DeviceName: "Lab pair"})

	ack := c.Ack()
	if c.Resumed() || c.SessionID() == "" || ack.SessionToken == "" || c.SessionToken() != ack.SessionToken || ack.State != "active" {
		t.Fatalf("first connect: %+v", ack)
	}
	if ack.HeartbeatInterval != 10*time.Second || ack.HeartbeatTimeout != 25*time.Second {
		t.Fatalf("heartbeat %v/%v, want the device policy's 10s/25s", ack.HeartbeatInterval, ack.HeartbeatTimeout)
	}
	if want := s.clock.Now().Add(time.Hour); !ack.CredentialExpires.Equal(want) || !c.CredentialExpires().Equal(want) {
		t.Fatalf("credential expires %v, want %v", ack.CredentialExpires, want)
	}
	sess := s.session(c.SessionID())
	if sess.State != sessiond.StateActive || sess.Subject != "alice" || sess.Device.ID != "glasses-1" || sess.Device.Type != "glasses" ||
		sess.Device.Name != "Lab pair" || sess.ConnCount != 1 || s.conns(sess.ID)[0].ID != ack.ConnectionID {
		t.Fatalf("session %+v", sess)
	}
	if got := rec.states(); !slices.Equal(got, []WSState{WSConnecting, WSConnected}) {
		t.Fatalf("states %v", got)
	}
	evs := rec.all()
	if evs[0].Attempt != 0 || evs[1].SessionID != ack.SessionID || evs[1].ConnectionID != ack.ConnectionID || evs[1].Resumed {
		t.Fatalf("events %+v", evs)
	}
	if c.State() != WSConnected || c.Err() != nil || src.calls.Load() != 1 {
		t.Fatalf("state %v, err %v, %d credentials", c.State(), c.Err(), src.calls.Load())
	}
}

// A close with a reconnect code (heartbeat timeout) brings the client back
// to the same session, and the retry count starts again after each ack.
func TestWSResumeAfterHeartbeatTimeout(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "")
	src := s.tokens("alice", time.Hour)
	c, rec := s.mustDial(WSConfig{Token: src.source, DeviceID: "glasses-1"})
	sid, conn1 := c.SessionID(), c.Ack().ConnectionID

	for round := 1; round <= 2; round++ {
		// One jump over the heartbeat timeout: the server hears nothing
		// in it and closes with 4002.
		s.clock.Advance(25 * time.Second)
		if d := rec.await(t, WSDisconnected); d.Code != wire.CloseHeartbeatTimeout || d.Reason != "heartbeat timeout" {
			t.Fatalf("round %d: disconnected %+v, want code 4002", round, d)
		}
		r := rec.await(t, WSReconnecting)
		if r.Attempt != 1 || r.Wait < time.Millisecond || r.Wait > 10*time.Millisecond || r.Err != nil {
			t.Fatalf("round %d: reconnecting %+v; want the first retry after a wait in [1ms, 10ms]", round, r)
		}
		if cn := rec.await(t, WSConnecting); cn.Attempt != 1 {
			t.Fatalf("round %d: connecting %+v", round, cn)
		}
		ev := rec.await(t, WSConnected)
		if ev.SessionID != sid || !ev.Resumed || ev.ConnectionID == conn1 {
			t.Fatalf("round %d: reconnected %+v; want session %s resumed on a new connection", round, ev, sid)
		}
		conn1 = ev.ConnectionID
		if c.SessionID() != sid || !c.Resumed() {
			t.Fatalf("round %d: SessionID %s Resumed %v", round, c.SessionID(), c.Resumed())
		}
	}
	if n := src.calls.Load(); n != 3 {
		t.Fatalf("%d credentials, want one per connect (3)", n)
	}
	sessiondtest.Eventually(t, "the session to hold the new connection only", func() bool {
		sess := s.session(sid)
		return sess.State == sessiond.StateActive && sess.ConnCount == 1 && s.conns(sid)[0].ID == conn1
	})
}

// A server shutting down says 1001; while no edge serves, dials get 503
// and are retried with growing, bounded waits; a new edge on the same
// engine gives the session back.
func TestWSResumeAcrossEdgeRestart(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "")
	src := s.tokens("alice", time.Hour)
	c, rec := s.mustDial(WSConfig{Token: src.source, DeviceID: "glasses-1", MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	sid := c.SessionID()

	if err := s.edge.Load().Shutdown(ctx5s(t)); err != nil {
		t.Fatal(err)
	}
	if d := rec.await(t, WSDisconnected); d.Code != wire.CloseGoingAway {
		t.Fatalf("disconnected %+v, want 1001", d)
	}
	for attempt := 1; attempt <= 4; attempt++ {
		r := rec.await(t, WSReconnecting)
		if r.Attempt != attempt || r.Wait < time.Millisecond || r.Wait > 4*time.Millisecond {
			t.Fatalf("reconnecting %+v; want attempt %d within [1ms, 4ms]", r, attempt)
		}
		if attempt > 1 && !errors.Is(r.Err, sessiond.ErrUnavailable) {
			t.Fatalf("retry %d after %v; want the 503 of the edge shutting down", attempt, r.Err)
		}
	}
	if c.State() == WSConnected {
		t.Fatal("connected while no edge serves")
	}
	if err := c.Send(ctx5s(t), map[string]string{"type": "ping"}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Send between sockets: %v, want ErrNotConnected", err)
	}
	s.startEdge()
	ev := rec.await(t, WSConnected)
	if ev.SessionID != sid || !ev.Resumed {
		t.Fatalf("after the restart: %+v; want session %s resumed", ev, sid)
	}
}

// The server noticing nothing is one thing; the client noticing a silent
// server (a network that swallowed the socket) is another: after the
// heartbeat timeout of the ack, it drops the socket and reconnects.
func TestWSClientNoticesSilence(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "quiet")
	src := s.tokens("alice", time.Hour)
	c, rec := s.mustDial(WSConfig{Token: src.source, DeviceID: "glasses-1"})
	sid := c.SessionID()
	if c.Ack().HeartbeatTimeout != 100*time.Millisecond {
		t.Fatalf("heartbeat timeout %v", c.Ack().HeartbeatTimeout)
	}
	// The server's clock does not move, so it never pings.
	d := rec.await(t, WSDisconnected)
	if d.Code != wire.CloseAbnormal || !errors.Is(d.Err, errSilent) {
		t.Fatalf("disconnected %+v; want 1006 for silence", d)
	}
	if ev := rec.await(t, WSConnected); ev.SessionID != sid || !ev.Resumed {
		t.Fatalf("reconnected %+v", ev)
	}
}

func TestWSRevokeStops(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "")
	src := s.tokens("alice", time.Hour)
	c, rec := s.mustDial(WSConfig{Token: src.source, DeviceID: "glasses-1"})
	if err := s.m.Revoke(context.Background(), c.SessionID(), ""); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-ctx5s(t).Done():
		t.Fatalf("still running after the revoke: %v", rec.states())
	}
	var code wire.CloseCode
	if !errors.As(c.Err(), &code) || code != wire.CloseSessionRevoked {
		t.Fatalf("Err %v, want the close code 4500", c.Err())
	}
	if got := rec.states(); !slices.Equal(got, []WSState{WSConnecting, WSConnected, WSDisconnected, WSStopped}) {
		t.Fatalf("states %v; want no reconnect", got)
	}
	if evs := rec.all(); evs[2].Code != wire.CloseSessionRevoked || evs[3].Err != c.Err() {
		t.Fatalf("events %+v", evs)
	}
	if c.State() != WSStopped || src.calls.Load() != 1 {
		t.Fatalf("state %v, %d credentials", c.State(), src.calls.Load())
	}
	if err := c.Send(context.Background(), map[string]string{"type": "ping"}); err != c.Err() {
		t.Fatalf("Send after the stop: %v", err)
	}
	if _, open := <-c.Messages(); open {
		t.Fatal("Messages open after the stop")
	}
	if err := c.Close(ctx5s(t)); err != nil || c.Err() != code {
		t.Fatalf("Close after the stop: %v; Err %v", err, c.Err())
	}
}

// Refusals before the upgrade stop the client at once, with the server's
// error code, and no retry.
func TestWSRefusalsStop(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "")
	ctx := context.Background()
	bobs, err := s.m.Create(ctx, sessiond.CreateRequest{Subject: "bob", Policy: "single"})
	if err != nil {
		t.Fatal(err)
	}
	ended, _ := s.m.Create(ctx, sessiond.CreateRequest{Subject: "alice", Policy: "single"})
	if err := s.m.Revoke(ctx, ended.Session.ID, ""); err != nil {
		t.Fatal(err)
	}
	unknown, _ := sessiond.NewToken("no-such-session")

	for _, tc := range []struct {
		name     string
		wrongKey bool
		cfg      WSConfig
		want     *sessiond.Error
	}{
		{"credential with a wrong key", true, WSConfig{DeviceID: "g"}, sessiond.ErrUnauthorized},              // 401
		{"another subject's session", false, WSConfig{SessionToken: bobs.Token}, sessiond.ErrSubjectMismatch}, // 403
		{"unknown session token", false, WSConfig{SessionToken: unknown}, sessiond.ErrNotFound},               // 404
		{"ended session", false, WSConfig{SessionToken: ended.Token}, sessiond.ErrEnded},                      // 410
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := s.tokens("alice", time.Hour)
			src.wrongKey.Store(tc.wrongKey)
			tc.cfg.Token = src.source
			c, rec, err := s.dial(tc.cfg)
			if c != nil || !errors.Is(err, tc.want) {
				t.Fatalf("DialWS: %v; want %v", err, tc.want.Code)
			}
			var se *sessiond.Error
			if !errors.As(err, &se) || se.Message == "" {
				t.Fatalf("error %#v; want a *sessiond.Error with the server's message", err)
			}
			if got := rec.states(); !slices.Equal(got, []WSState{WSConnecting, WSStopped}) || rec.all()[1].Err != err {
				t.Fatalf("states %v; want no retry", got)
			}
			if src.calls.Load() != 1 {
				t.Fatalf("%d credentials; want one attempt", src.calls.Load())
			}
		})
	}
}

// A refusal on a reconnect stops the client too.
func TestWSRefusedOnReconnectStops(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "")
	src := s.tokens("alice", time.Hour)
	c, rec := s.mustDial(WSConfig{Token: src.source, DeviceID: "glasses-1"})
	src.wrongKey.Store(true)
	s.clock.Advance(25 * time.Second) // 4002: reconnect
	select {
	case <-c.Done():
	case <-ctx5s(t).Done():
		t.Fatalf("still running: %v", rec.states())
	}
	if !errors.Is(c.Err(), sessiond.ErrUnauthorized) {
		t.Fatalf("Err %v, want unauthorized", c.Err())
	}
	want := []WSState{WSConnecting, WSConnected, WSDisconnected, WSReconnecting, WSConnecting, WSStopped}
	if got := rec.states(); !slices.Equal(got, want) {
		t.Fatalf("states %v, want %v", got, want)
	}
}

// Dial failures that may pass are retried until the server is up, and
// leave nothing behind.
func TestWSDialRetriesUntilServerUp(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "")
	s.down.Store(true)
	src := s.tokens("alice", time.Hour)
	type result struct {
		c   *WSConn
		rec *recorder
		err error
	}
	done := make(chan result, 1)
	rec := &recorder{}
	before := runtime.NumGoroutine()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, err := DialWS(ctx, WSConfig{URL: s.srv.URL, Token: src.source, DeviceID: "g",
			MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond, OnState: rec.on})
		done <- result{c, rec, err}
	}()
	for attempt := 1; attempt <= 3; attempt++ {
		if r := rec.await(t, WSReconnecting); r.Attempt != attempt || !errors.Is(r.Err, sessiond.ErrUnavailable) {
			t.Fatalf("reconnecting %+v, want retry %d after a 503", r, attempt)
		}
	}
	s.down.Store(false)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.c.Resumed() || r.c.State() != WSConnected {
		t.Fatalf("resumed %v, state %v", r.c.Resumed(), r.c.State())
	}
	// The refused dials' kept-alive HTTP connections go with the client.
	if err := r.c.Close(ctx5s(t)); err != nil {
		t.Fatal(err)
	}
	noMoreGoroutines(t, before)
}

// DialWS gives up when its context ends, and leaves nothing running.
func TestWSDialGivesUpWithItsContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: connection refused
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var states []WSState
	c, err := DialWS(ctx, WSConfig{
		URL: addr, DeviceID: "g", MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		Token: func(context.Context) (string, error) { return "a.b.c", nil },
		OnState: func(ev WSEvent) {
			states = append(states, ev.State)
			if ev.State == WSReconnecting && ev.Attempt == 3 {
				cancel()
			}
		},
	})
	if c != nil || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "last attempt") {
		t.Fatalf("DialWS: %v", err)
	}
	if states[len(states)-1] != WSStopped {
		t.Fatalf("states %v", states)
	}
	noMoreGoroutines(t, before)
}

func TestWSRefreshAnswered(t *testing.T) {
	s := newTestServer(t, ws.Config{RefreshBefore: time.Minute}, "")
	src := s.tokens("alice", 3*time.Minute)
	c, rec := s.mustDial(WSConfig{Token: src.source, DeviceID: "glasses-1"})
	ctx := ctx5s(t)
	firstExp, conn := c.CredentialExpires(), c.Ack().ConnectionID
	// Alive every 20s (the heartbeat timeout is 25s); at 2m42s, 18s (a
	// tenth of 3m, less than a minute) before the credential expires, the
	// server asks for a refresh.
	for _, step := range []time.Duration{20, 20, 20, 20, 20, 20, 20, 20, 2} {
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		s.clock.Advance(step * time.Second)
	}
	wantExp := s.clock.Now().Add(3 * time.Minute)
	sessiondtest.Eventually(t, "the refreshed message", func() bool { return c.CredentialExpires().Equal(wantExp) })
	if src.calls.Load() != 2 {
		t.Fatalf("%d credentials, want 2", src.calls.Load())
	}
	// Past the first credential's expiry the connection stays.
	for range 4 {
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		s.clock.Advance(20 * time.Second)
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.clock.Now().After(firstExp) || c.Ack().ConnectionID != conn || slices.Contains(rec.states(), WSDisconnected) {
		t.Fatalf("at %v (first credential expired %v): states %v", s.clock.Now(), firstExp, rec.states())
	}
}

// A credential source that fails the refresh: the server closes with 4001
// at expiry, and the client reconnects with a fresh credential.
func TestWSRefreshFailureReconnects(t *testing.T) {
	s := newTestServer(t, ws.Config{RefreshBefore: time.Minute}, "")
	src := s.tokens("alice", 90*time.Second)
	src.failCall.Store(2)
	c, rec := s.mustDial(WSConfig{Token: src.source, DeviceID: "glasses-1"})
	sid := c.SessionID()
	ctx := ctx5s(t)
	// To 81s: the refresh comes 9s (a tenth of 90s) before expiry, and fails.
	for _, step := range []time.Duration{20, 20, 20, 20, 1} {
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		s.clock.Advance(step * time.Second)
	}
	sessiondtest.Eventually(t, "the refresh to call the source", func() bool { return src.calls.Load() == 2 })
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(9 * time.Second) // 90s: the credential expires
	if d := rec.await(t, WSDisconnected); d.Code != wire.CloseCredentialExpired {
		t.Fatalf("disconnected %+v, want 4001", d)
	}
	if ev := rec.await(t, WSConnected); ev.SessionID != sid || !ev.Resumed {
		t.Fatalf("reconnected %+v", ev)
	}
	if src.calls.Load() != 3 || !c.CredentialExpires().Equal(s.clock.Now().Add(90*time.Second)) {
		t.Fatalf("%d credentials, expiry %v", src.calls.Load(), c.CredentialExpires())
	}
}

// In session-token mode the client follows the server's rotation: a
// reconnect after the old token's grace would otherwise count as token
// reuse and end the session.
func TestWSSessionTokenFollowsRotation(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "")
	created, err := s.m.Create(context.Background(), sessiond.CreateRequest{Subject: "alice", Policy: "rotating"})
	if err != nil {
		t.Fatal(err)
	}
	s.clock.Advance(2 * time.Minute) // past rotate_after: connecting rotates
	src := s.tokens("alice", time.Hour)
	c, rec := s.mustDial(WSConfig{Token: src.source, SessionToken: created.Token})
	rotated := c.Ack().SessionToken
	if c.SessionID() != created.Session.ID || !c.Resumed() || rotated == "" || rotated == created.Token || c.SessionToken() != rotated {
		t.Fatalf("ack %+v", c.Ack())
	}
	s.clock.Advance(25 * time.Second) // heartbeat timeout; the old token's 5s grace is over
	if d := rec.await(t, WSDisconnected); d.Code != wire.CloseHeartbeatTimeout {
		t.Fatalf("disconnected %+v", d)
	}
	if ev := rec.await(t, WSConnected); ev.SessionID != created.Session.ID || !ev.Resumed {
		t.Fatalf("reconnected %+v", ev)
	}
	if sess := s.session(created.Session.ID); sess.State != sessiond.StateActive {
		t.Fatalf("session %v (%v); want it active", sess.State, sess.EndReason)
	}
}

// A connection to a hibernated session is connected "waking", then ready
// once the server woke the session; the ready message is the client's
// own, not passed on to Messages.
func TestWSWakesAHibernatedSession(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "")
	created, err := s.m.Create(context.Background(), sessiond.CreateRequest{Subject: "alice", Policy: "sleepy"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.Hibernate(context.Background(), created.Session.ID); err != nil {
		t.Fatal(err)
	}
	c, rec := s.mustDial(WSConfig{Token: s.tokens("alice", time.Hour).source, SessionToken: created.Token})
	if ev := rec.await(t, WSConnected); !ev.Waking || ev.SessionID != created.Session.ID {
		t.Fatalf("connected %+v, want waking", ev)
	}
	if ev := rec.await(t, WSReady); ev.SessionID != created.Session.ID {
		t.Fatalf("ready %+v", ev)
	}
	if c.State() != WSReady || c.Ack().State != "active" {
		t.Fatalf("state %v, ack state %q; want ready, active", c.State(), c.Ack().State)
	}
	select {
	case m := <-c.Messages():
		t.Fatalf("the protocol's ready reached Messages: %s", m)
	default:
	}
}

func TestWSSendAndMessages(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "")
	c, _ := s.mustDial(WSConfig{Token: s.tokens("alice", time.Hour).source, DeviceID: "glasses-1"})
	ctx := ctx5s(t)
	if err := c.Send(ctx, map[string]string{"type": "hello"}); err != nil {
		t.Fatal(err)
	}
	select {
	case raw := <-c.Messages():
		var m map[string]string
		if err := json.Unmarshal(raw, &m); err != nil || m["type"] != "error" || m["code"] != "unknown_type" {
			t.Fatalf("message %s", raw)
		}
	case <-ctx.Done():
		t.Fatal("no answer to an unknown message type")
	}
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Send(ctx, func() {}); err == nil {
		t.Fatal("Send of a value JSON cannot encode")
	}
	select {
	case raw := <-c.Messages():
		t.Fatalf("the pong went to Messages: %s", raw)
	default:
	}
}

// Close sends 1000, stops everything, a credential fetch in flight
// included, and leaves no goroutine behind.
func TestWSCloseLeavesNoGoroutines(t *testing.T) {
	s := newTestServer(t, ws.Config{RefreshBefore: time.Minute}, "")
	src := s.tokens("alice", 90*time.Second)
	src.blockCall.Store(3) // the refresh on the second connection
	before := runtime.NumGoroutine()

	rec := &recorder{}
	c, err := DialWS(ctx5s(t), WSConfig{URL: s.srv.URL, Token: src.source, DeviceID: "glasses-1",
		MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, OnState: rec.on})
	if err != nil {
		t.Fatal(err)
	}
	sid := c.SessionID()
	rec.await(t, WSConnected)
	s.clock.Advance(25 * time.Second) // 4002: a reconnect
	rec.await(t, WSConnected)
	ctx := ctx5s(t)
	for _, step := range []time.Duration{20 * time.Second, 20 * time.Second, 20 * time.Second, 20 * time.Second, time.Second} { // 81s into the new credential: a refresh
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		s.clock.Advance(step)
	}
	sessiondtest.Eventually(t, "the refresh to call the source", func() bool { return src.calls.Load() == 3 })

	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	evs := rec.all()
	last, disc := evs[len(evs)-1], evs[len(evs)-2]
	if last.State != WSStopped || last.Err != ErrClosed || disc.State != WSDisconnected || disc.Code != wire.CloseNormal {
		t.Fatalf("last events %+v %+v", disc, last)
	}
	if c.Err() != ErrClosed || c.State() != WSStopped {
		t.Fatalf("Err %v, state %v", c.Err(), c.State())
	}
	if err := c.Send(context.Background(), map[string]string{"type": "ping"}); err != ErrClosed {
		t.Fatalf("Send after Close: %v", err)
	}
	if _, open := <-c.Messages(); open {
		t.Fatal("Messages open after Close")
	}
	sessiondtest.Eventually(t, "the server to see the client close", func() bool {
		return s.session(sid).State == sessiond.StateDisconnected && s.edge.Load().Stats().ClientClosed >= 1
	})
	noMoreGoroutines(t, before)
}

func noMoreGoroutines(t *testing.T, before int) {
	t.Helper()
	sessiondtest.Eventually(t, fmt.Sprintf("the goroutines to go back to %d", before), func() bool { return runtime.NumGoroutine() <= before })
}

// 409 too_many_connections is retried: a reconnect can come before the
// server notices that the client's previous socket died. Once the old
// connection is gone, the retry attaches.
func TestWSTooManyConnectionsIsRetried(t *testing.T) {
	s := newTestServer(t, ws.Config{}, "")
	busy, err := s.m.Create(context.Background(), sessiond.CreateRequest{Subject: "alice", Policy: "single"})
	if err != nil {
		t.Fatal(err)
	}
	first, _ := s.mustDial(WSConfig{Token: s.tokens("alice", time.Hour).source, SessionToken: busy.Token})

	rec := &recorder{}
	done := make(chan error, 1)
	go func() {
		c, err := DialWS(ctx5s(t), WSConfig{URL: s.srv.URL, Token: s.tokens("alice", time.Hour).source,
			SessionToken: busy.Token, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, OnState: rec.on})
		if err == nil {
			defer c.Close(context.Background())
			if c.SessionID() != busy.Session.ID {
				err = fmt.Errorf("attached to %s", c.SessionID())
			}
		}
		done <- err
	}()
	// Refused at least twice while the first connection holds the session.
	sessiondtest.Eventually(t, "retries of the refused connect", func() bool {
		n := 0
		for _, ev := range rec.all() {
			if ev.State == WSReconnecting {
				n++
			}
		}
		return n >= 2
	})
	if err := first.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the retried connect: %v", err)
	}
}
