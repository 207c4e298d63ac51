package httpapi_test

// Tests of the REST edge through real HTTP over loopback, against a real
// engine on the in-memory store. Time-dependent tests move a ManualClock
// (or run in a synctest bubble); nothing waits on real time for a timeout.
//
// Helpers carry an "ht" prefix so that they cannot collide with those of
// other test files of package httpapi_test.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/wire"
)

const htKey = "test-key"

// htRequestTimeout bounds every request and every event stream a test
// makes, so that a hang fails the test with a message instead.
const htRequestTimeout = 10 * time.Second

// htEpoch is where every test's manual clock starts.
var htEpoch = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// htPolicies are the policies every test server runs; "web" is the default.
func htPolicies() []sessiond.Policy {
	return []sessiond.Policy{
		{
			Name: "web", TTL: time.Hour, IdleTimeout: 10 * time.Minute, TouchInterval: time.Minute,
			RotateAfter: 5 * time.Minute, RotationGrace: 30 * time.Second,
		},
		{Name: "plain", TTL: time.Hour},
		{Name: "bound", TTL: time.Hour, BindDevice: true},
		{Name: "capped", TTL: time.Hour, MaxPerSubject: 1, OnLimit: sessiond.LimitReject},
		{Name: "evict", TTL: time.Hour, MaxPerSubject: 2, OnLimit: sessiond.LimitEvictOldest},
		// Connections (connections_test.go): at most two, heartbeats every
		// 10s or lost after 30s, and 2m to come back after the last is lost.
		{
			Name: "conns", TTL: time.Hour, IdleTimeout: 10 * time.Minute, TouchInterval: time.Minute,
			DisconnectGrace: 2 * time.Minute, HeartbeatInterval: 10 * time.Second, HeartbeatTimeout: 30 * time.Second,
			MaxConnections: 2,
		},
		// One connection at a time: a new one replaces the others.
		{Name: "single", TTL: time.Hour, OnConnect: sessiond.ConnectReplace},
	}
}

// htObservation is one call of httpapi.Config.Observe.
type htObservation struct {
	route  string
	status int
}

// htEnv is a running engine and server.
type htEnv struct {
	t     *testing.T
	m     *sessiond.Manager
	srv   *httpapi.Server
	ts    *httptest.Server
	clock *sessiondtest.ManualClock
	obs   *htObserved
}

// htObserved records the calls of httpapi.Config.Observe.
type htObserved struct {
	mu   sync.Mutex
	list []htObservation
}

// in returns e reporting to t: subtests use it so that a failure stops the
// subtest, not its parent.
func (e *htEnv) in(t *testing.T) *htEnv {
	c := *e
	c.t = t
	return &c
}

// htStart runs a Manager on a fresh memory store with a manual clock, and
// its Server behind httptest.NewServer. edit, if set, may change the server
// config. Everything is closed when the test ends.
func htStart(t *testing.T, edit func(*httpapi.Config)) *htEnv {
	t.Helper()
	e := &htEnv{t: t, clock: sessiondtest.NewManualClock(htEpoch), obs: &htObserved{}}
	m, err := sessiond.New(sessiond.Config{Store: inmem.New(inmem.Options{}), Policies: htPolicies(), Clock: e.clock})
	if err != nil {
		t.Fatalf("sessiond.New: %v", err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatalf("Manager.Start: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	e.m = m
	cfg := httpapi.Config{
		Manager: m, APIKey: htKey, Version: "test-version", Clock: e.clock,
		Observe: func(route string, status int, _ time.Duration) {
			e.obs.mu.Lock()
			defer e.obs.mu.Unlock()
			e.obs.list = append(e.obs.list, htObservation{route, status})
		},
	}
	if edit != nil {
		edit(&cfg)
	}
	srv, err := httpapi.New(cfg)
	if err != nil {
		t.Fatalf("httpapi.New: %v", err)
	}
	srv.SetReady(true)
	e.srv = srv
	e.ts = httptest.NewServer(srv.Handler())
	t.Cleanup(e.ts.Close)
	t.Cleanup(srv.Close) // runs first: ends event streams so ts.Close can finish
	return e
}

// htResp is a response read in full.
type htResp struct {
	status int
	header http.Header
	body   []byte
}

func (r htResp) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

// send makes a request with the API key. body is sent as is ("" sends none).
func (e *htEnv) send(method, path, body string) htResp {
	e.t.Helper()
	return e.sendWith(method, path, body, http.Header{"Authorization": {"Bearer " + htKey}})
}

// sendWith makes a request with exactly the given headers.
func (e *htEnv) sendWith(method, path, body string, h http.Header) htResp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	// A response that never ends (an event stream where an error was
	// expected) fails the test instead of hanging it.
	ctx, cancel := context.WithTimeout(context.Background(), htRequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatalf("NewRequest %s %s: %v", method, path, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.ts.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("%s %s: got status %d, then reading the body failed (did not end within %v?): %v", method, path, resp.StatusCode, htRequestTimeout, err)
	}
	return htResp{status: resp.StatusCode, header: resp.Header, body: b}
}

// htDecode decodes a JSON body strictly: a field the test does not know
// about (a token hash, say) fails the test.
func htDecode[T any](t *testing.T, r htResp) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decoding %T from %s: %v", v, r, err)
	}
	return v
}

func htWantStatus(t *testing.T, r htResp, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("got status %d, want %d; body: %s", r.status, want, bytes.TrimSpace(r.body))
	}
}

// htWantError checks an error response: status, JSON content type, code and
// field ("" means the body must name no field).
func htWantError(t *testing.T, r htResp, status int, code sessiond.Code, field string) {
	t.Helper()
	if r.status != status {
		t.Errorf("got status %d, want %d; body: %s", r.status, status, bytes.TrimSpace(r.body))
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", ct)
	}
	body := htDecode[wire.ErrorBody](t, r)
	if body.Error.Code != code {
		t.Errorf("got error code %q, want %q (message %q)", body.Error.Code, code, body.Error.Message)
	}
	if body.Error.Field != field {
		t.Errorf("got error field %q, want %q (message %q)", body.Error.Field, field, body.Error.Message)
	}
	if body.Error.Message == "" {
		t.Errorf("error has no message: %s", r)
	}
}

// htSession is the wire form of a session, as a client sees it.
type htSession struct {
	ID          string           `json:"id"`
	Subject     string           `json:"subject"`
	Device      *sessiond.Device `json:"device"`
	Metadata    json.RawMessage  `json:"metadata"`
	Policy      string           `json:"policy"`
	State       string           `json:"state"`
	EndReason   string           `json:"end_reason"`
	CreatedAt   time.Time        `json:"created_at"`
	LastActive  time.Time        `json:"last_active_at"`
	ExpiresAt   *time.Time       `json:"expires_at"`
	IdleTimeout string           `json:"idle_timeout"`
	RotatedAt   *time.Time       `json:"rotated_at"`
	EndedAt     *time.Time       `json:"ended_at"`
	// DisconnectedAt and Connections are set while connections are
	// attached or awaited (connections_test.go).
	DisconnectedAt *time.Time `json:"disconnected_at"`
	Connections    int        `json:"connections"`
	Version        uint64     `json:"version"`
	Generation     uint64     `json:"generation"`
}

type htCreated struct {
	ID      string    `json:"id"`
	Token   string    `json:"token"`
	Session htSession `json:"session"`
	Evicted []string  `json:"evicted"`
}

type htValidated struct {
	Session htSession `json:"session"`
	Token   string    `json:"token"`
}

type htList struct {
	Sessions   []htSession `json:"sessions"`
	NextCursor string      `json:"next_cursor"`
}

type htStats struct {
	Sessions    map[string]int `json:"sessions"`
	Total       int            `json:"total"`
	Subjects    int            `json:"subjects"`
	Connections struct {
		Total  int            `json:"total"`
		ByKind map[string]int `json:"by_kind"`
	} `json:"connections"`
	Scheduled int    `json:"scheduled"`
	Uptime    string `json:"uptime"`
	Version   string `json:"version"`
	// WebSocket is set when the server has Config.EdgeStats.
	WebSocket json.RawMessage `json:"websocket"`
}

// create POSTs body to /v1/sessions and wants a 201.
func (e *htEnv) create(body string) htCreated {
	e.t.Helper()
	r := e.send("POST", "/v1/sessions", body)
	htWantStatus(e.t, r, http.StatusCreated)
	return htDecode[htCreated](e.t, r)
}

func (e *htEnv) createFor(subject string) htCreated {
	e.t.Helper()
	return e.create(fmt.Sprintf(`{"subject":%q}`, subject))
}

func (e *htEnv) validate(token string) htResp {
	e.t.Helper()
	return e.send("POST", "/v1/sessions/validate", fmt.Sprintf(`{"token":%q}`, token))
}

func (e *htEnv) get(id string) htSession {
	e.t.Helper()
	r := e.send("GET", "/v1/sessions/"+id, "")
	htWantStatus(e.t, r, http.StatusOK)
	return htDecode[htSession](e.t, r)
}

func (e *htEnv) revoke(id string) {
	e.t.Helper()
	htWantStatus(e.t, e.send("DELETE", "/v1/sessions/"+id, ""), http.StatusNoContent)
}

// listAll follows next_cursor from the first page to the last and returns
// every session in order, and how many pages it took.
func (e *htEnv) listAll(q url.Values) ([]htSession, int) {
	e.t.Helper()
	var all []htSession
	pages := 0
	for cursor := ""; ; {
		qq := url.Values{}
		for k, v := range q {
			qq[k] = v
		}
		if cursor != "" {
			qq.Set("cursor", cursor)
		}
		r := e.send("GET", "/v1/sessions?"+qq.Encode(), "")
		htWantStatus(e.t, r, http.StatusOK)
		page := htDecode[htList](e.t, r)
		pages++
		if page.Sessions == nil {
			e.t.Fatalf("page %d: sessions is null, want an array: %s", pages, r)
		}
		if n, err := strconv.Atoi(q.Get("limit")); err == nil && len(page.Sessions) > n {
			e.t.Fatalf("page %d holds %d sessions, more than limit %d", pages, len(page.Sessions), n)
		}
		all = append(all, page.Sessions...)
		if page.NextCursor == "" {
			return all, pages
		}
		if pages > 1000 {
			e.t.Fatalf("pagination does not end; last cursor %q", page.NextCursor)
		}
		cursor = page.NextCursor
	}
}

func (e *htEnv) stats() htStats {
	e.t.Helper()
	r := e.send("GET", "/v1/stats", "")
	htWantStatus(e.t, r, http.StatusOK)
	return htDecode[htStats](e.t, r)
}

func htIDs(ss []htSession) []string {
	ids := make([]string, len(ss))
	for i, s := range ss {
		ids[i] = s.ID
	}
	return ids
}

// htSameSet fails unless got holds each of want exactly once and nothing else.
func htSameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	seen := map[string]int{}
	for _, id := range got {
		seen[id]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("%s: %s appears %d times, want once", what, id, n)
		}
	}
	for _, id := range want {
		if seen[id] == 0 {
			t.Errorf("%s: %s is missing", what, id)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s: got %d sessions, want %d", what, len(got), len(want))
	}
}

// ---------------------------------------------------------------------------
// Happy paths

func TestCreateReturns201WithIDTokenSessionLocationAndNoStore(t *testing.T) {
	e := htStart(t, nil)
	r := e.send("POST", "/v1/sessions", `{"subject":"alice"}`)
	htWantStatus(t, r, http.StatusCreated)
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", got)
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", got)
	}
	c := htDecode[htCreated](t, r)
	if c.ID == "" || c.ID != c.Session.ID {
		t.Errorf("got id %q and session.id %q, want the same non-empty id", c.ID, c.Session.ID)
	}
	if got, want := r.header.Get("Location"), "/v1/sessions/"+c.ID; got != want {
		t.Errorf("got Location %q, want %q", got, want)
	}
	if !strings.HasPrefix(c.Token, "sd_") || len(c.Token) != sessiond.TokenLen {
		t.Errorf("got token %q, want sd_ and %d characters", c.Token, sessiond.TokenLen)
	}
	if _, err := sessiond.ParseToken(c.Token); err != nil {
		t.Errorf("token does not parse: %v", err)
	}
	s := c.Session
	if s.Subject != "alice" || s.Policy != "web" || s.State != "active" || s.Version != 1 || s.Generation != 0 {
		t.Errorf("got session %+v, want subject alice, policy web, state active, version 1, generation 0", s)
	}
	if !s.CreatedAt.Equal(htEpoch) || !s.LastActive.Equal(htEpoch) {
		t.Errorf("got created_at %v, last_active_at %v, want both %v", s.CreatedAt, s.LastActive, htEpoch)
	}
	if s.ExpiresAt == nil || !s.ExpiresAt.Equal(htEpoch.Add(time.Hour)) {
		t.Errorf("got expires_at %v, want %v (policy ttl)", s.ExpiresAt, htEpoch.Add(time.Hour))
	}
	if s.IdleTimeout != "10m0s" {
		t.Errorf("got idle_timeout %q, want 10m0s", s.IdleTimeout)
	}
	if s.EndReason != "" || s.EndedAt != nil || s.RotatedAt != nil {
		t.Errorf("new session has end_reason %q, ended_at %v, rotated_at %v; want none", s.EndReason, s.EndedAt, s.RotatedAt)
	}

	// The Location header names the session.
	if got := e.get(c.ID); got.ID != c.ID {
		t.Errorf("GET Location: got id %q, want %q", got.ID, c.ID)
	}
}

func TestCreateKeepsDeviceMetadataPolicyAndNarrowedTimeouts(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{
		"id": "sdk-session:42",
		"subject": "bob@example.com",
		"device": {"id": "phone-1", "type": "ios", "name": "Bob's phone", "ip": "2001:db8::1", "user_agent": "App/1.0"},
		"metadata": { "plan" : "pro", "seats": [1, 2] },
		"policy": "web",
		"ttl": "30m",
		"idle_timeout": "5m"
	}`)
	if c.ID != "sdk-session:42" {
		t.Errorf("got id %q, want the caller's sdk-session:42", c.ID)
	}
	s := c.Session
	wantDev := sessiond.Device{ID: "phone-1", Type: "ios", Name: "Bob's phone", IP: "2001:db8::1", UserAgent: "App/1.0"}
	if s.Device == nil || *s.Device != wantDev {
		t.Errorf("got device %+v, want %+v", s.Device, wantDev)
	}
	if got, want := string(s.Metadata), `{"plan":"pro","seats":[1,2]}`; got != want {
		t.Errorf("got metadata %s, want %s (compacted)", got, want)
	}
	if s.ExpiresAt == nil || !s.ExpiresAt.Equal(htEpoch.Add(30*time.Minute)) {
		t.Errorf("got expires_at %v, want %v (ttl override)", s.ExpiresAt, htEpoch.Add(30*time.Minute))
	}
	if s.IdleTimeout != "5m0s" {
		t.Errorf("got idle_timeout %q, want 5m0s (override)", s.IdleTimeout)
	}
	// And a GET shows the same.
	got := e.get(c.ID)
	if got.Device == nil || *got.Device != wantDev || string(got.Metadata) != string(s.Metadata) || got.Subject != "bob@example.com" {
		t.Errorf("GET: got %+v, want the created session %+v", got, s)
	}
}

func TestCreateUnderNamedPolicy(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"carol","policy":"plain"}`)
	if c.Session.Policy != "plain" {
		t.Errorf("got policy %q, want plain", c.Session.Policy)
	}
	if c.Session.IdleTimeout != "" {
		t.Errorf("got idle_timeout %q, want none (plain has no idle timeout)", c.Session.IdleTimeout)
	}
}

func TestValidateReturnsSessionAndNoTokenBeforeRotateAfter(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.clock.Advance(2 * time.Minute) // past touch_interval, before rotate_after
	r := e.validate(c.Token)
	htWantStatus(t, r, http.StatusOK)
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", got)
	}
	v := htDecode[htValidated](t, r)
	if v.Token != "" {
		t.Errorf("got a token %q before rotate_after, want none", v.Token)
	}
	if strings.Contains(string(r.body), `"token"`) {
		t.Errorf("validate response has a token field without a rotation: %s", r)
	}
	if v.Session.ID != c.ID || v.Session.State != "active" || v.Session.Generation != 0 {
		t.Errorf("got session %+v, want %s active generation 0", v.Session, c.ID)
	}
	if want := htEpoch.Add(2 * time.Minute); !v.Session.LastActive.Equal(want) {
		t.Errorf("got last_active_at %v, want %v (validation is activity)", v.Session.LastActive, want)
	}
}

func TestValidateAfterRotateAfterReturnsNewToken(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.clock.Advance(6 * time.Minute) // rotate_after is 5m

	r := e.validate(c.Token)
	htWantStatus(t, r, http.StatusOK)
	v := htDecode[htValidated](t, r)
	if v.Token == "" || v.Token == c.Token {
		t.Fatalf("got token %q, want a new token past rotate_after", v.Token)
	}
	if v.Session.Generation != 1 || v.Session.RotatedAt == nil || !v.Session.RotatedAt.Equal(htEpoch.Add(6*time.Minute)) {
		t.Errorf("got generation %d, rotated_at %v; want 1 and %v", v.Session.Generation, v.Session.RotatedAt, htEpoch.Add(6*time.Minute))
	}
	// The new token works and is not rotated again.
	r = e.validate(v.Token)
	htWantStatus(t, r, http.StatusOK)
	if again := htDecode[htValidated](t, r); again.Token != "" || again.Session.ID != c.ID {
		t.Errorf("validating the new token: got token %q, session %q; want no token, session %s", again.Token, again.Session.ID, c.ID)
	}
	// The old token still works within the rotation grace, without a new token.
	r = e.validate(c.Token)
	htWantStatus(t, r, http.StatusOK)
	if old := htDecode[htValidated](t, r); old.Token != "" {
		t.Errorf("old token within grace got a new token %q, want none", old.Token)
	}
}

func TestGetSessionByID(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"alice","metadata":{"a":1}}`)
	r := e.send("GET", "/v1/sessions/"+c.ID, "")
	htWantStatus(t, r, http.StatusOK)
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("got Content-Type %q, want application/json", got)
	}
	s := htDecode[htSession](t, r)
	if s.ID != c.ID || s.Subject != "alice" || s.State != "active" || string(s.Metadata) != `{"a":1}` || s.Version != 1 {
		t.Errorf("got %+v, want the created session %+v", s, c.Session)
	}
}

func TestRotateIssuesNewTokenAndIncrementsGeneration(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.clock.Advance(time.Second)

	r := e.send("POST", "/v1/sessions/"+c.ID+"/rotate", "")
	htWantStatus(t, r, http.StatusOK)
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("got Cache-Control %q, want no-store", got)
	}
	v := htDecode[htValidated](t, r)
	if v.Token == "" || v.Token == c.Token {
		t.Fatalf("got token %q, want a new one", v.Token)
	}
	if v.Session.Generation != c.Session.Generation+1 {
		t.Errorf("got generation %d, want %d", v.Session.Generation, c.Session.Generation+1)
	}
	if v.Session.Version <= c.Session.Version {
		t.Errorf("got version %d, want more than %d", v.Session.Version, c.Session.Version)
	}
	if v.Session.RotatedAt == nil || !v.Session.RotatedAt.Equal(htEpoch.Add(time.Second)) {
		t.Errorf("got rotated_at %v, want %v", v.Session.RotatedAt, htEpoch.Add(time.Second))
	}

	// Rotating again moves on one more generation.
	r = e.send("POST", "/v1/sessions/"+c.ID+"/rotate", "")
	htWantStatus(t, r, http.StatusOK)
	if v2 := htDecode[htValidated](t, r); v2.Session.Generation != 2 || v2.Token == v.Token {
		t.Errorf("second rotate: got generation %d, token reused %v; want 2 and a fresh token", v2.Session.Generation, v2.Token == v.Token)
	}
}

func TestRevokeEndsSessionAndIsIdempotent(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.clock.Advance(time.Second)

	r := e.send("DELETE", "/v1/sessions/"+c.ID, "")
	htWantStatus(t, r, http.StatusNoContent)
	if len(r.body) != 0 {
		t.Errorf("204 has a body: %q", r.body)
	}

	s := e.get(c.ID)
	if s.State != "ended" || s.EndReason != "revoked" {
		t.Errorf("after revoke: got state %q, end_reason %q; want ended, revoked", s.State, s.EndReason)
	}
	if s.EndedAt == nil || !s.EndedAt.Equal(htEpoch.Add(time.Second)) {
		t.Errorf("got ended_at %v, want %v", s.EndedAt, htEpoch.Add(time.Second))
	}

	// Revoking again changes nothing and still answers 204.
	r = e.send("DELETE", "/v1/sessions/"+c.ID, "")
	htWantStatus(t, r, http.StatusNoContent)
	if again := e.get(c.ID); again.Version != s.Version || again.EndReason != "revoked" {
		t.Errorf("second revoke changed the session: version %d -> %d, end_reason %q", s.Version, again.Version, again.EndReason)
	}
}

func TestListFiltersBySubjectAndState(t *testing.T) {
	e := htStart(t, nil)
	a1, a2, a3 := e.createFor("alice"), e.createFor("alice"), e.createFor("alice")
	b1 := e.createFor("bob")
	e.revoke(a2.ID)

	for _, tc := range []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"all", url.Values{}, []string{a1.ID, a2.ID, a3.ID, b1.ID}},
		{"subject", url.Values{"subject": {"alice"}}, []string{a1.ID, a2.ID, a3.ID}},
		{"state active", url.Values{"state": {"active"}}, []string{a1.ID, a3.ID, b1.ID}},
		{"state ended", url.Values{"state": {"ended"}}, []string{a2.ID}},
		{"subject and state", url.Values{"subject": {"alice"}, "state": {"active"}}, []string{a1.ID, a3.ID}},
		{"subject with no sessions", url.Values{"subject": {"nobody"}}, nil},
		{"state with no sessions", url.Values{"state": {"hibernated"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			got, _ := e.listAll(tc.query)
			htSameSet(t, "list "+tc.query.Encode(), htIDs(got), tc.want)
			for _, s := range got {
				if sub := tc.query.Get("subject"); sub != "" && s.Subject != sub {
					t.Errorf("session %s has subject %q, want %q", s.ID, s.Subject, sub)
				}
				if st := tc.query.Get("state"); st != "" && s.State != st {
					t.Errorf("session %s has state %q, want %q", s.ID, s.State, st)
				}
			}
		})
	}
}

func TestListEmptyIsArrayNotNull(t *testing.T) {
	e := htStart(t, nil)
	r := e.send("GET", "/v1/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got, want := string(bytes.TrimSpace(r.body)), `{"sessions":[]}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

func TestListPaginatesEverySessionExactlyOnce(t *testing.T) {
	e := htStart(t, nil)
	var alice, bob, all, active []string
	for i := range 23 {
		c := e.createFor("alice")
		alice = append(alice, c.ID)
		all = append(all, c.ID)
		if i%4 == 0 {
			e.revoke(c.ID)
		} else {
			active = append(active, c.ID)
		}
	}
	for range 9 {
		c := e.createFor("bob")
		bob = append(bob, c.ID)
		all = append(all, c.ID)
		active = append(active, c.ID)
	}

	for _, tc := range []struct {
		name      string
		query     url.Values
		want      []string
		wantPages int // at least
	}{
		{"all sessions, 5 a page", url.Values{"limit": {"5"}}, all, 7},
		{"one subject, 4 a page", url.Values{"subject": {"alice"}, "limit": {"4"}}, alice, 6},
		{"other subject, 2 a page", url.Values{"subject": {"bob"}, "limit": {"2"}}, bob, 5},
		{"active, 3 a page", url.Values{"state": {"active"}, "limit": {"3"}}, active, 9},
		{"one a page", url.Values{"limit": {"1"}}, all, len(all)},
		{"all on one page", url.Values{"limit": {"1000"}}, all, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			got, pages := e.listAll(tc.query)
			htSameSet(t, tc.name, htIDs(got), tc.want)
			if pages < tc.wantPages {
				t.Errorf("got %d pages, want at least %d", pages, tc.wantPages)
			}
			if !slices.IsSorted(htIDs(got)) {
				t.Errorf("pages are not in id order: %v", htIDs(got))
			}
		})
	}
}

func TestSubjectSessionsListsOnlyLiveOldestFirst(t *testing.T) {
	e := htStart(t, nil)
	var ids []string
	for range 4 {
		ids = append(ids, e.createFor("alice").ID)
		e.clock.Advance(time.Second)
	}
	e.createFor("bob")
	e.revoke(ids[1])

	r := e.send("GET", "/v1/subjects/alice/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	got := htDecode[htList](t, r)
	want := []string{ids[0], ids[2], ids[3]}
	if !slices.Equal(htIDs(got.Sessions), want) {
		t.Errorf("got %v, want %v (live only, oldest first)", htIDs(got.Sessions), want)
	}
	if got.NextCursor != "" {
		t.Errorf("got next_cursor %q, want none", got.NextCursor)
	}

	r = e.send("GET", "/v1/subjects/nobody/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got, want := string(bytes.TrimSpace(r.body)), `{"sessions":[]}`; got != want {
		t.Errorf("subject with no sessions: got %s, want %s", got, want)
	}
}

func TestSubjectInPathIsUnescaped(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("team/alice smith")
	r := e.send("GET", "/v1/subjects/"+url.PathEscape("team/alice smith")+"/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got := htIDs(htDecode[htList](t, r).Sessions); !slices.Equal(got, []string{c.ID}) {
		t.Errorf("got %v, want [%s]", got, c.ID)
	}
}

func TestRevokeSubjectSessionsReturnsCount(t *testing.T) {
	e := htStart(t, nil)
	a := []string{e.createFor("alice").ID, e.createFor("alice").ID, e.createFor("alice").ID}
	b := e.createFor("bob")
	e.revoke(a[0]) // already ended: not counted

	r := e.send("DELETE", "/v1/subjects/alice/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got := string(bytes.TrimSpace(r.body)); got != `{"revoked":2}` {
		t.Errorf("got %s, want {\"revoked\":2}", got)
	}
	for _, id := range a {
		if s := e.get(id); s.State != "ended" || s.EndReason != "revoked" {
			t.Errorf("session %s: got state %q, end_reason %q; want ended, revoked", id, s.State, s.EndReason)
		}
	}
	if s := e.get(b.ID); s.State != "active" {
		t.Errorf("another subject's session: got state %q, want active", s.State)
	}

	// Again: nothing left to revoke.
	r = e.send("DELETE", "/v1/subjects/alice/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got := htDecode[wire.RevokeSubjectResponse](t, r); got.Revoked != 0 {
		t.Errorf("second revoke: got revoked %d, want 0", got.Revoked)
	}
}

func TestStatsCountsSessionsByState(t *testing.T) {
	e := htStart(t, nil)
	alice := e.createFor("alice")
	e.createFor("alice")
	bob := e.createFor("bob")
	e.addConn(alice.ID, "vnc")
	e.addConn(bob.ID, "http")
	e.revoke(bob.ID) // its connection goes with it
	e.createFor("carol")

	st := e.stats()
	if want := map[string]int{"active": 3, "ended": 1}; !htCountsEqual(st.Sessions, want) {
		t.Errorf("got sessions %v, want %v", st.Sessions, want)
	}
	if st.Total != 4 || st.Subjects != 2 {
		t.Errorf("got total %d, subjects %d; want 4, 2 (bob has no live session)", st.Total, st.Subjects)
	}
	if st.Version != "test-version" {
		t.Errorf("got version %q, want test-version", st.Version)
	}
	if _, err := time.ParseDuration(st.Uptime); err != nil {
		t.Errorf("got uptime %q, want a duration: %v", st.Uptime, err)
	}
	if st.Scheduled < 3 {
		t.Errorf("got scheduled %d, want at least the 3 live sessions' deadlines", st.Scheduled)
	}
	if want := map[string]int{"vnc": 1}; st.Connections.Total != 1 || !htCountsEqual(st.Connections.ByKind, want) {
		t.Errorf("got connections %+v, want total 1, by_kind %v (an ended session's connections do not count)", st.Connections, want)
	}
	if st.WebSocket != nil {
		t.Errorf("got websocket %s, want none without Config.EdgeStats", st.WebSocket)
	}
}

// htCountsEqual compares counts, treating a missing key as zero.
func htCountsEqual(got, want map[string]int) bool {
	for k, v := range got {
		if want[k] != v {
			return false
		}
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func TestHealthzAnswersWithoutKey(t *testing.T) {
	e := htStart(t, nil)
	r := e.sendWith("GET", "/healthz", "", nil)
	htWantStatus(t, r, http.StatusOK)
	if got := string(bytes.TrimSpace(r.body)); got != `{"status":"ok"}` {
		t.Errorf("got %s, want {\"status\":\"ok\"}", got)
	}
}

func TestReadyzFollowsSetReadyAndClose(t *testing.T) {
	e := htStart(t, nil)
	e.srv.SetReady(false)

	r := e.sendWith("GET", "/readyz", "", nil)
	htWantError(t, r, http.StatusServiceUnavailable, sessiond.CodeUnavailable, "")

	e.srv.SetReady(true)
	r = e.sendWith("GET", "/readyz", "", nil)
	htWantStatus(t, r, http.StatusOK)
	if got := string(bytes.TrimSpace(r.body)); got != `{"status":"ready"}` {
		t.Errorf("got %s, want {\"status\":\"ready\"}", got)
	}

	e.srv.Close()
	r = e.sendWith("GET", "/readyz", "", nil)
	htWantError(t, r, http.StatusServiceUnavailable, sessiond.CodeUnavailable, "")
	// Health is about the process, not readiness: still ok.
	htWantStatus(t, e.sendWith("GET", "/healthz", "", nil), http.StatusOK)
}

func TestNewServerIsNotReadyUntilSetReady(t *testing.T) {
	e := htStart(t, nil)
	srv, err := httpapi.New(httpapi.Config{Manager: e.m, APIKey: htKey})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("fresh server: got /readyz %d, want 503", rec.Code)
	}
	srv.SetReady(true)
	rec = httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("after SetReady(true): got /readyz %d, want 200", rec.Code)
	}
}

func TestMetricsServedWithoutKeyWhenConfigured(t *testing.T) {
	e := htStart(t, func(c *httpapi.Config) {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4")
			io.WriteString(w, "sessiond_up 1\n")
		})
	})
	r := e.sendWith("GET", "/metrics", "", nil)
	htWantStatus(t, r, http.StatusOK)
	if got := string(r.body); got != "sessiond_up 1\n" {
		t.Errorf("got %q, want the metrics handler's output", got)
	}
}

func TestMetricsIs404WhenNotConfigured(t *testing.T) {
	e := htStart(t, nil)
	htWantError(t, e.sendWith("GET", "/metrics", "", nil), http.StatusNotFound, wire.CodeRouteNotFound, "")
}

// TestEveryRouteSucceeds sends one well-formed request to every route that
// httpapi.Routes lists; a route added without a case here fails the test.
func TestEveryRouteSucceeds(t *testing.T) {
	e := htStart(t, func(c *httpapi.Config) {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	})
	alice := e.createFor("alice")
	victim := e.createFor("alice")
	beating := e.addConn(alice.ID, "vnc").Connection.ID
	leaving := e.addConn(alice.ID, "http").Connection.ID

	type call struct {
		path, body string
		status     int
	}
	cases := map[string]call{
		"POST /v1/sessions":                      {"/v1/sessions", `{"subject":"zed"}`, 201},
		"GET /v1/sessions":                       {"/v1/sessions?subject=alice&state=active&limit=10", "", 200},
		"POST /v1/sessions/validate":             {"/v1/sessions/validate", `{"token":"` + alice.Token + `"}`, 200},
		"GET /v1/sessions/{id}":                  {"/v1/sessions/" + alice.ID, "", 200},
		"DELETE /v1/sessions/{id}":               {"/v1/sessions/" + victim.ID, "", 204},
		"POST /v1/sessions/{id}/rotate":          {"/v1/sessions/" + alice.ID + "/rotate", "", 200},
		"GET /v1/subjects/{subject}/sessions":    {"/v1/subjects/alice/sessions", "", 200},
		"DELETE /v1/subjects/{subject}/sessions": {"/v1/subjects/zed/sessions", "", 200},
		"POST /v1/sessions/{id}/connections":     {"/v1/sessions/" + alice.ID + "/connections", `{"kind":"vnc"}`, 201},
		"GET /v1/sessions/{id}/connections":      {"/v1/sessions/" + alice.ID + "/connections", "", 200},
		"POST /v1/connections/{id}/heartbeat":    {"/v1/connections/" + beating + "/heartbeat", "", 200},
		"DELETE /v1/connections/{id}":            {"/v1/connections/" + leaving, "", 204},
		"GET /v1/stats":                          {"/v1/stats", "", 200},
		"GET /v1/events":                         {"/v1/events", "", 200},
		"GET /healthz":                           {"/healthz", "", 200},
		"GET /readyz":                            {"/readyz", "", 200},
		"GET /metrics":                           {"/metrics", "", 200},
	}
	for _, rt := range httpapi.Routes() {
		name := rt.Method + " " + rt.Path
		t.Run(name, func(t *testing.T) {
			e := e.in(t)
			c, ok := cases[name]
			if !ok {
				t.Fatalf("route %s has no happy-path case in this test", name)
			}
			if rt.Path == "/v1/events" {
				st := e.openEvents("", nil)
				st.close()
				return
			}
			r := e.send(rt.Method, c.path, c.body)
			htWantStatus(t, r, c.status)
		})
	}
	if n := len(httpapi.Routes()); n != len(cases) {
		t.Errorf("Routes() lists %d routes; this test has %d cases", n, len(cases))
	}
}

func TestObserveReportsRoutePatternAndStatus(t *testing.T) {
	e := htStart(t, nil)
	h := e.srv.Handler()
	serve := func(method, target, body string, auth bool) {
		t.Helper()
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		if auth {
			req.Header.Set("Authorization", "Bearer "+htKey)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	serve("POST", "/v1/sessions", `{"subject":"alice"}`, true)
	serve("GET", "/v1/sessions/nope", "", true)
	serve("GET", "/v1/stats", "", false)
	serve("GET", "/nowhere", "", false)
	serve("PUT", "/v1/sessions", "", true)

	want := []htObservation{
		{"POST /v1/sessions", 201},
		{"GET /v1/sessions/{id}", 404},
		{"GET /v1/stats", 401},
		{"unmatched", 404},
		{"unmatched", 405},
	}
	e.obs.mu.Lock()
	got := slices.Clone(e.obs.list)
	e.obs.mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("got observations %v, want %v", got, want)
	}
}

// ---------------------------------------------------------------------------
// Authentication

func TestAdminRoutesRequireAPIKey(t *testing.T) {
	// So many failures from one address would be rate limited (see
	// authlimit_test.go): here every one must be answered 401.
	e := htStart(t, func(c *httpapi.Config) { c.AuthFailureLimit = -1 })
	c := e.createFor("alice")
	for _, rt := range httpapi.Routes() {
		if !rt.Admin {
			continue
		}
		path := strings.NewReplacer("{id}", c.ID, "{subject}", "alice").Replace(rt.Path)
		body := ""
		switch path {
		case "/v1/sessions":
			if rt.Method == "POST" {
				body = `{"subject":"mallory"}`
			}
		case "/v1/sessions/validate":
			body = `{"token":"` + c.Token + `"}`
		}
		for _, auth := range []struct {
			name  string
			value []string
		}{
			{"no Authorization", nil},
			{"empty Authorization", []string{""}},
			{"wrong key", []string{"Bearer wrong-key"}},
			{"key with trailing junk", []string{"Bearer " + htKey + "x"}},
			{"key prefix", []string{"Bearer test"}},
			{"Basic scheme", []string{"Basic " + htKey}},
			{"no scheme", []string{htKey}},
			{"Bearer without key", []string{"Bearer"}},
			{"session token instead of key", []string{"Bearer " + c.Token}},
		} {
			t.Run(rt.Method+" "+rt.Path+"/"+auth.name, func(t *testing.T) {
				e := e.in(t)
				h := http.Header{}
				if auth.value != nil {
					h["Authorization"] = auth.value
				}
				r := e.sendWith(rt.Method, path, body, h)
				htWantError(t, r, http.StatusUnauthorized, sessiond.CodeUnauthorized, "")
				if got := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("got WWW-Authenticate %q, want a Bearer challenge", got)
				}
			})
		}
	}

	// None of those requests changed anything.
	s := e.get(c.ID)
	if s.State != "active" || s.Version != 1 || s.Generation != 0 {
		t.Errorf("after unauthorized calls: got state %q, version %d, generation %d; want active, 1, 0", s.State, s.Version, s.Generation)
	}
	if st := e.stats(); st.Total != 1 {
		t.Errorf("after unauthorized creates: got %d sessions, want 1", st.Total)
	}
}

func TestPublicRoutesNeedNoKey(t *testing.T) {
	e := htStart(t, nil)
	for _, rt := range httpapi.Routes() {
		if rt.Admin {
			continue
		}
		t.Run(rt.Method+" "+rt.Path, func(t *testing.T) {
			e := e.in(t)
			r := e.sendWith(rt.Method, rt.Path, "", http.Header{"Authorization": {"Bearer wrong"}})
			if r.status == http.StatusUnauthorized {
				t.Errorf("got 401 for a public route: %s", r)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Domain errors

func TestUnknownSessionIs404SessionNotFound(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct{ name, method, path, body string }{
		{"get", "GET", "/v1/sessions/no-such-session", ""},
		{"revoke", "DELETE", "/v1/sessions/no-such-session", ""},
		{"rotate", "POST", "/v1/sessions/no-such-session/rotate", ""},
		{"validate well-formed unknown token", "POST", "/v1/sessions/validate", `{"token":"` + htUnknownToken() + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			htWantError(t, e.send(tc.method, tc.path, tc.body), http.StatusNotFound, sessiond.CodeNotFound, "")
		})
	}
}

// htUnknownToken is a well-formed token (right prefix, length, checksum)
// that no server issued.
func htUnknownToken() string {
	tok, _ := sessiond.NewToken()
	return tok
}

func TestValidateAfterTTLIs410SessionExpired(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"alice","policy":"plain"}`)
	e.clock.Advance(time.Hour) // exactly the ttl

	htWantError(t, e.validate(c.Token), http.StatusGone, sessiond.CodeExpired, "")
	if s := e.get(c.ID); s.State != "ended" || s.EndReason != "expired" {
		t.Errorf("got state %q, end_reason %q; want ended, expired", s.State, s.EndReason)
	}
}

func TestReadsDoNotShowExpiredSessionAsLiveBeforeItsTimerFires(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"alice","policy":"plain"}`)
	e.clock.Jump(time.Hour + time.Second) // past the ttl, timers have not run

	if s := e.get(c.ID); s.State != "ended" || s.EndReason != "expired" {
		t.Errorf("GET: got state %q, end_reason %q; want ended, expired", s.State, s.EndReason)
	}
	r := e.send("GET", "/v1/subjects/alice/sessions", "")
	htWantStatus(t, r, http.StatusOK)
	if got := htDecode[htList](t, r).Sessions; len(got) != 0 {
		t.Errorf("subject list shows %d sessions past their ttl, want none", len(got))
	}
	htWantError(t, e.validate(c.Token), http.StatusGone, sessiond.CodeExpired, "")
}

func TestValidateAfterIdleTimeoutIs410SessionExpired(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.clock.Advance(10 * time.Minute) // the web policy's idle timeout

	htWantError(t, e.validate(c.Token), http.StatusGone, sessiond.CodeExpired, "")
	if s := e.get(c.ID); s.EndReason != "idle" {
		t.Errorf("got end_reason %q, want idle", s.EndReason)
	}
}

func TestValidateAfterRevokeIs410SessionEnded(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	e.revoke(c.ID)
	htWantError(t, e.validate(c.Token), http.StatusGone, sessiond.CodeEnded, "")
	// Rotating an ended session fails the same way.
	htWantError(t, e.send("POST", "/v1/sessions/"+c.ID+"/rotate", ""), http.StatusGone, sessiond.CodeEnded, "")
}

func TestValidateFromOtherDeviceIs403DeviceMismatch(t *testing.T) {
	e := htStart(t, nil)
	c := e.create(`{"subject":"alice","policy":"bound","device":{"id":"phone-1"}}`)

	for _, tc := range []struct{ name, body string }{
		{"other device", `{"token":"` + c.Token + `","device":{"id":"laptop-9"}}`},
		{"no device", `{"token":"` + c.Token + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			htWantError(t, e.send("POST", "/v1/sessions/validate", tc.body), http.StatusForbidden, sessiond.CodeDeviceMismatch, "")
		})
	}
	// The mismatch does not touch the session, and the right device works.
	if s := e.get(c.ID); s.State != "active" || s.Version != 1 {
		t.Errorf("after mismatches: got state %q, version %d; want active, 1", s.State, s.Version)
	}
	r := e.send("POST", "/v1/sessions/validate", `{"token":"`+c.Token+`","device":{"id":"phone-1","type":"ios"}}`)
	htWantStatus(t, r, http.StatusOK)
}

func TestOldTokenAfterRotationGraceIs403TokenReusedAndEndsSession(t *testing.T) {
	e := htStart(t, nil)
	c := e.createFor("alice")
	r := e.send("POST", "/v1/sessions/"+c.ID+"/rotate", "")
	htWantStatus(t, r, http.StatusOK)
	fresh := htDecode[htValidated](t, r).Token

	e.clock.Advance(30 * time.Second) // the rotation grace
	htWantError(t, e.validate(c.Token), http.StatusForbidden, sessiond.CodeTokenReused, "")

	if s := e.get(c.ID); s.State != "ended" || s.EndReason != "rotated_reuse" {
		t.Errorf("got state %q, end_reason %q; want ended, rotated_reuse", s.State, s.EndReason)
	}
	// Theft ends the session for the new token's holder too.
	htWantError(t, e.validate(fresh), http.StatusGone, sessiond.CodeEnded, "")
}

func TestCreateOverRejectingLimitIs409LimitReached(t *testing.T) {
	e := htStart(t, nil)
	first := e.create(`{"subject":"alice","policy":"capped"}`)
	htWantError(t, e.send("POST", "/v1/sessions", `{"subject":"alice","policy":"capped"}`), http.StatusConflict, sessiond.CodeLimitReached, "")
	// Other subjects are not affected, and ending the first frees the place.
	e.create(`{"subject":"bob","policy":"capped"}`)
	e.revoke(first.ID)
	e.create(`{"subject":"alice","policy":"capped"}`)
}

func TestCreateOverEvictingLimitEndsOldest(t *testing.T) {
	e := htStart(t, nil)
	oldest := e.create(`{"subject":"alice","policy":"evict"}`)
	e.clock.Advance(time.Second)
	second := e.create(`{"subject":"alice","policy":"evict"}`)
	e.clock.Advance(time.Second)
	third := e.create(`{"subject":"alice","policy":"evict"}`)

	if !slices.Equal(third.Evicted, []string{oldest.ID}) {
		t.Errorf("got evicted %v, want [%s]", third.Evicted, oldest.ID)
	}
	if second.Evicted != nil {
		t.Errorf("create under the limit reported evicted %v", second.Evicted)
	}
	if s := e.get(oldest.ID); s.State != "ended" || s.EndReason != "evicted" {
		t.Errorf("oldest: got state %q, end_reason %q; want ended, evicted", s.State, s.EndReason)
	}
	htWantError(t, e.validate(oldest.Token), http.StatusGone, sessiond.CodeEnded, "")
}

func TestCreateWithTakenIDIs409SessionExists(t *testing.T) {
	e := htStart(t, nil)
	first := e.create(`{"id":"chosen-1","subject":"alice"}`)
	htWantError(t, e.send("POST", "/v1/sessions", `{"id":"chosen-1","subject":"bob"}`), http.StatusConflict, sessiond.CodeExists, "")
	// Also once the first has ended: ids are not reused while readable.
	e.revoke(first.ID)
	htWantError(t, e.send("POST", "/v1/sessions", `{"id":"chosen-1","subject":"alice"}`), http.StatusConflict, sessiond.CodeExists, "")
	if s := e.get("chosen-1"); s.Subject != "alice" {
		t.Errorf("the failed create changed the session: subject %q, want alice", s.Subject)
	}
}

func TestUnknownRouteIs404NotFound(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct{ method, path string }{
		{"GET", "/"},
		{"GET", "/v2/sessions"},
		{"GET", "/v1/nothing"},
		{"GET", "/v1/sessions/abc/def"},
		{"POST", "/v1/sessions/abc/revive"},
		{"GET", "/v1/subjects/alice"},
		{"DELETE", "/v1"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			e := e.in(t)
			r := e.send(tc.method, tc.path, "")
			htWantError(t, r, http.StatusNotFound, wire.CodeRouteNotFound, "")
			if a := r.header.Get("Allow"); a != "" {
				t.Errorf("404 has an Allow header %q", a)
			}
		})
	}
}

func TestWrongMethodIs405WithAllow(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct{ method, path, allow string }{
		{"PUT", "/v1/sessions", "GET, POST"},
		{"DELETE", "/v1/sessions", "GET, POST"},
		{"PATCH", "/v1/sessions/abc", "GET, DELETE"},
		{"GET", "/v1/sessions/abc/rotate", "POST"},
		{"PUT", "/v1/subjects/alice/sessions", "GET, DELETE"},
		{"POST", "/v1/stats", "GET"},
		{"POST", "/v1/events", "GET"},
		{"DELETE", "/healthz", "GET"},
		{"POST", "/readyz", "GET"},
		// {id} also matches "validate": GET and DELETE name a session.
		{"OPTIONS", "/v1/sessions/validate", "GET, POST, DELETE"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			e := e.in(t)
			r := e.send(tc.method, tc.path, "")
			htWantError(t, r, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed, "")
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("got Allow %q, want %q", got, tc.allow)
			}
		})
	}
}

// ---------------------------------------------------------------------------
// Bad input: always 400 invalid_argument naming the field, never a 500.

func TestCreateRejectsBadBodies(t *testing.T) {
	e := htStart(t, nil)
	tooBig := `{"subject":"` + strings.Repeat("a", httpapi.MaxBody) + `"}`
	tooBig = tooBig[:httpapi.MaxBody+1]
	paddedTooBig := `{"subject":"alice"}` + strings.Repeat(" ", httpapi.MaxBody)
	paddedTooBig = paddedTooBig[:httpapi.MaxBody+1]

	for _, tc := range []struct {
		name, body, field string
	}{
		{"empty body", "", "body"},
		{"whitespace only", "  \n", "body"},
		{"malformed JSON", `{"subject": alice}`, "body"},
		{"truncated JSON", `{"subject":"alice"`, "body"},
		{"single quotes", `{'subject':'alice'}`, "body"},
		{"array instead of object", `[{"subject":"alice"}]`, "body"},
		{"string instead of object", `"alice"`, "body"},
		{"number instead of object", `42`, "body"},
		{"trailing garbage", `{"subject":"alice"} x`, "body"},
		{"second object", `{"subject":"alice"}{"subject":"bob"}`, "body"},
		{"trailing bracket", `{"subject":"alice"}]`, "body"},
		{"unknown top-level field", `{"subject":"alice","color":"red"}`, "color"},
		{"unknown field in device", `{"subject":"alice","device":{"id":"d","colour":"red"}}`, "device.colour"},
		{"unknown field with a quote in its name", `{"subject":"alice","a\"b":1}`, `a"b`},
		{"unknown empty key", `{"subject":"alice","":1}`, "body"},
		{"metadata not UTF-8", "{\"subject\":\"alice\",\"metadata\":{\"k\":\"\xff\xfe\"}}", "metadata.k"},
		{"subject is a number", `{"subject":5}`, "subject"},
		{"subject is an object", `{"subject":{}}`, "subject"},
		{"device is a string", `{"subject":"alice","device":"phone"}`, "device"},
		{"device id is a number", `{"subject":"alice","device":{"id":7}}`, "device.id"},
		{"ttl is a number", `{"subject":"alice","ttl":60}`, "ttl"},
		{"body over MaxBody", tooBig, "body"},
		{"object then padding over MaxBody", paddedTooBig, "body"},
		{"missing subject", `{}`, "subject"},
		{"null body", `null`, "subject"},
		{"empty subject", `{"subject":""}`, "subject"},
		{"subject with control character", `{"subject":"al\u0000ice"}`, "subject"},
		{"subject too long", `{"subject":"` + strings.Repeat("s", sessiond.MaxSubjectLen+1) + `"}`, "subject"},
		{"ttl not a duration", `{"subject":"alice","ttl":"soon"}`, "ttl"},
		{"ttl negative", `{"subject":"alice","ttl":"-5m"}`, "ttl"},
		{"ttl above the policy's", `{"subject":"alice","ttl":"2h"}`, "ttl"},
		{"idle_timeout not a duration", `{"subject":"alice","idle_timeout":"a while"}`, "idle_timeout"},
		{"idle_timeout negative", `{"subject":"alice","idle_timeout":"-1s"}`, "idle_timeout"},
		{"idle_timeout above the policy's", `{"subject":"alice","idle_timeout":"1h"}`, "idle_timeout"},
		{"idle_timeout on a policy without one", `{"subject":"alice","policy":"plain","idle_timeout":"5m"}`, "idle_timeout"},
		{"unknown policy", `{"subject":"alice","policy":"gold"}`, "policy"},
		{"id with a space", `{"id":"a b","subject":"alice"}`, "id"},
		{"id with a slash", `{"id":"a/b","subject":"alice"}`, "id"},
		{"id too long", `{"id":"` + strings.Repeat("i", sessiond.MaxIDLen+1) + `","subject":"alice"}`, "id"},
		{"metadata is an array", `{"subject":"alice","metadata":[1,2]}`, "metadata"},
		{"metadata is a string", `{"subject":"alice","metadata":"x"}`, "metadata"},
		{"metadata too large", `{"subject":"alice","metadata":{"k":"` + strings.Repeat("m", sessiond.DefaultMaxMetadata) + `"}}`, "metadata"},
		{"device ip not an address", `{"subject":"alice","device":{"ip":"300.1.1.1"}}`, "device.ip"},
		{"device name too long", `{"subject":"alice","device":{"name":"` + strings.Repeat("n", 257) + `"}}`, "device.name"},
		{"bound policy without device id", `{"subject":"alice","policy":"bound"}`, "device.id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			r := e.send("POST", "/v1/sessions", tc.body)
			htWantError(t, r, http.StatusBadRequest, sessiond.CodeInvalidArgument, tc.field)
		})
	}
	if st := e.stats(); st.Total != 0 {
		t.Errorf("bad creates stored %d sessions, want 0", st.Total)
	}
}

func TestValidateRejectsBadBodies(t *testing.T) {
	e := htStart(t, nil)
	good := e.createFor("alice").Token
	flipped := []byte(good)
	if flipped[10] == 'A' {
		flipped[10] = 'B'
	} else {
		flipped[10] = 'A'
	}
	for _, tc := range []struct {
		name, body, field string
	}{
		{"empty body", "", "body"},
		{"malformed JSON", `{"token":`, "body"},
		{"array instead of object", `["` + good + `"]`, "body"},
		{"trailing garbage", `{"token":"` + good + `"}garbage`, "body"},
		{"unknown field", `{"token":"` + good + `","subject":"alice"}`, "subject"},
		{"unknown field in device", `{"token":"` + good + `","device":{"id":"d","serial":"x"}}`, "device.serial"},
		{"token is a number", `{"token":12345}`, "token"},
		{"device id is a boolean", `{"token":"` + good + `","device":{"id":true}}`, "device.id"},
		{"missing token", `{}`, "token"},
		{"empty token", `{"token":""}`, "token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			r := e.send("POST", "/v1/sessions/validate", tc.body)
			htWantError(t, r, http.StatusBadRequest, sessiond.CodeInvalidArgument, tc.field)
		})
	}
	// A malformed token (a cookie a client tampered with) gets the answer
	// of an unknown token; the checksum rejects it before any lookup.
	unknown, _ := sessiond.NewToken()
	for _, tc := range []struct{ name, token string }{
		{"unknown token", unknown},
		{"malformed token", "not-a-token"},
		{"token without prefix", "xx_" + good[3:]},
		{"truncated token", good[:len(good)-1]},
		{"token with bad checksum", string(flipped)},
		{"token with bad base64", "sd_" + strings.Repeat("!", sessiond.TokenLen-3)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			r := e.send("POST", "/v1/sessions/validate", `{"token":"`+tc.token+`"}`)
			htWantError(t, r, http.StatusNotFound, sessiond.CodeNotFound, "")
		})
	}
}

func TestBadSessionIDInPathIs400(t *testing.T) {
	e := htStart(t, nil)
	for _, id := range []struct{ name, escaped string }{
		{"space", "a%20b"},
		{"encoded slash", "a%2Fb"},
		{"non-ASCII", "caf%C3%A9"},
		{"percent sign", "100%25"},
		{"too long", strings.Repeat("x", sessiond.MaxIDLen+1)},
	} {
		for _, call := range []struct{ method, path string }{
			{"GET", "/v1/sessions/" + id.escaped},
			{"DELETE", "/v1/sessions/" + id.escaped},
			{"POST", "/v1/sessions/" + id.escaped + "/rotate"},
		} {
			t.Run(id.name+"/"+call.method+" "+call.path, func(t *testing.T) {
				e := e.in(t)
				htWantError(t, e.send(call.method, call.path, ""), http.StatusBadRequest, sessiond.CodeInvalidArgument, "id")
			})
		}
	}
}

func TestBadSubjectInPathIs400(t *testing.T) {
	e := htStart(t, nil)
	long := strings.Repeat("s", sessiond.MaxSubjectLen+1)
	for _, tc := range []struct{ name, method, path string }{
		{"control character", "GET", "/v1/subjects/a%01b/sessions"},
		{"control character revoke", "DELETE", "/v1/subjects/a%7Fb/sessions"},
		{"too long", "GET", "/v1/subjects/" + long + "/sessions"},
		{"too long revoke", "DELETE", "/v1/subjects/" + long + "/sessions"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			htWantError(t, e.send(tc.method, tc.path, ""), http.StatusBadRequest, sessiond.CodeInvalidArgument, "subject")
		})
	}
}

func TestListRejectsBadQuery(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct{ name, query, field string }{
		{"unknown state", "state=sleeping", "state"},
		{"state in capitals", "state=ACTIVE", "state"},
		{"limit zero", "limit=0", "limit"},
		{"limit negative", "limit=-3", "limit"},
		{"limit too large", "limit=1001", "limit"},
		{"limit not a number", "limit=ten", "limit"},
		{"limit fractional", "limit=2.5", "limit"},
		{"cursor not issued", "cursor=abc", "cursor"},
		{"cursor with bad base64", "cursor=c1.%21%21", "cursor"},
		{"cursor naming a bad id", "cursor=c1." + "YSBi", "cursor"}, // base64url("a b")
		{"subject with control character", "subject=a%00b", "subject"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			htWantError(t, e.send("GET", "/v1/sessions?"+tc.query, ""), http.StatusBadRequest, sessiond.CodeInvalidArgument, tc.field)
		})
	}
}

func TestEventsRejectsBadLastEventID(t *testing.T) {
	e := htStart(t, nil)
	for _, tc := range []struct {
		name, query, header, field string
	}{
		{"Last-Event-ID not a number", "", "seven", "Last-Event-ID"},
		{"Last-Event-ID negative", "", "-1", "Last-Event-ID"},
		{"Last-Event-ID too large", "", "18446744073709551616", "Last-Event-ID"},
		{"after not a number", "?after=x", "", "after"},
		{"after negative", "?after=-2", "", "after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.in(t)
			h := http.Header{"Authorization": {"Bearer " + htKey}}
			if tc.header != "" {
				h.Set("Last-Event-ID", tc.header)
			}
			htWantError(t, e.sendWith("GET", "/v1/events"+tc.query, "", h), http.StatusBadRequest, sessiond.CodeInvalidArgument, tc.field)
		})
	}
}

// ---------------------------------------------------------------------------
// Server-sent events

// htStream is an open event stream.
type htStream struct {
	t      *testing.T
	resp   *http.Response
	rd     *bufio.Reader
	cancel context.CancelFunc
}

// htEvent is one server-sent event as read off the wire.
type htEvent struct {
	id    uint64
	event string
	data  sessiond.Event
}

func (ev htEvent) String() string {
	return fmt.Sprintf("%d %s %s", ev.id, ev.event, ev.data.SessionID)
}

// openEvents connects to /v1/events with the query ("" for none) and
// headers, checks the response head and reads the stream's preamble. Reads
// fail the test after htRequestTimeout rather than hang.
func (e *htEnv) openEvents(query string, h http.Header) *htStream {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), htRequestTimeout)
	req, err := http.NewRequestWithContext(ctx, "GET", e.ts.URL+"/v1/events"+query, nil)
	if err != nil {
		cancel()
		e.t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+htKey)
	resp, err := e.ts.Client().Do(req) //nolint:bodyclose // st.close closes it at cleanup
	if err != nil {
		cancel()
		e.t.Fatalf("GET /v1/events: %v", err)
	}
	st := &htStream{t: e.t, resp: resp, rd: bufio.NewReader(resp.Body), cancel: cancel}
	e.t.Cleanup(st.close)
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("GET /v1/events: got status %d, want 200; body %s", resp.StatusCode, b)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/event-stream" {
		e.t.Errorf("got Content-Type %q, want text/event-stream", got)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		e.t.Errorf("got Cache-Control %q, want no-store", got)
	}
	// The preamble names the stream and sets the reconnect delay.
	if block := st.block(); !slices.Equal(block, []string{": sessiond events", "retry: 1000"}) {
		e.t.Fatalf("got preamble %q, want [\": sessiond events\" \"retry: 1000\"]", block)
	}
	return st
}

func (st *htStream) close() {
	st.cancel()
	st.resp.Body.Close()
}

// block reads lines up to the next blank line.
func (st *htStream) block() []string {
	st.t.Helper()
	var lines []string
	for {
		line, err := st.rd.ReadString('\n')
		if err != nil {
			st.t.Fatalf("reading event stream after %q: %v", lines, err)
		}
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			if len(lines) > 0 {
				return lines
			}
			continue
		}
		lines = append(lines, line)
	}
}

// next reads the next event, skipping keep-alive comments, and checks its
// lines: "id:", "event:", "data:" in that order and agreeing with each other.
func (st *htStream) next() htEvent {
	st.t.Helper()
	for {
		lines := st.block()
		if strings.HasPrefix(lines[0], ":") && len(lines) == 1 {
			continue // a comment, such as a keep-alive
		}
		if len(lines) != 3 {
			st.t.Fatalf("got event block %q, want id, event and data lines", lines)
		}
		idText, ok1 := strings.CutPrefix(lines[0], "id: ")
		typ, ok2 := strings.CutPrefix(lines[1], "event: ")
		data, ok3 := strings.CutPrefix(lines[2], "data: ")
		if !ok1 || !ok2 || !ok3 {
			st.t.Fatalf("got event block %q, want lines \"id: \", \"event: \", \"data: \" in that order", lines)
		}
		var ev htEvent
		var err error
		if ev.id, err = strconv.ParseUint(idText, 10, 64); err != nil {
			st.t.Fatalf("event id %q is not a number", idText)
		}
		ev.event = typ
		dec := json.NewDecoder(strings.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ev.data); err != nil {
			st.t.Fatalf("event data %s: %v", data, err)
		}
		if ev.data.Seq != ev.id || string(ev.data.Type) != ev.event {
			st.t.Fatalf("event block %q: data has seq %d, type %q; want %d, %q", lines, ev.data.Seq, ev.data.Type, ev.id, ev.event)
		}
		return ev
	}
}

// htWantEvents reads len(want) events and checks their types and sessions,
// and that their ids follow on from after without a gap.
func htWantEvents(t *testing.T, st *htStream, after uint64, want ...[2]string) []htEvent {
	t.Helper()
	var got []htEvent
	for i, w := range want {
		ev := st.next()
		got = append(got, ev)
		if ev.event != w[0] || ev.data.SessionID != w[1] {
			t.Fatalf("event %d: got %s %s, want %s %s (events so far %v)", i, ev.event, ev.data.SessionID, w[0], w[1], got)
		}
		if wantID := after + uint64(i) + 1; ev.id != wantID {
			t.Fatalf("event %d: got id %d, want %d (events so far %v)", i, ev.id, wantID, got)
		}
	}
	return got
}

func TestEventsStreamCreatedThenEndingAndEndedOnRevoke(t *testing.T) {
	e := htStart(t, nil)
	st := e.openEvents("", nil)

	c := e.createFor("alice")
	e.clock.Advance(time.Second)
	e.revoke(c.ID)

	evs := htWantEvents(t, st, 0,
		[2]string{"created", c.ID},
		[2]string{"ending", c.ID},
		[2]string{"ended", c.ID},
	)
	created, ending, ended := evs[0].data, evs[1].data, evs[2].data
	if created.Subject != "alice" || created.State != sessiond.StateActive || created.Version != 1 || !created.Time.Equal(htEpoch) {
		t.Errorf("created: got %+v, want subject alice, state active, version 1, time %v", created, htEpoch)
	}
	for _, ev := range []sessiond.Event{ending, ended} {
		if ev.Reason != sessiond.EndRevoked || !ev.Time.Equal(htEpoch.Add(time.Second)) {
			t.Errorf("%s: got reason %q, time %v; want revoked, %v", ev.Type, ev.Reason, ev.Time, htEpoch.Add(time.Second))
		}
	}
	if ending.State != sessiond.StateEnding || ended.State != sessiond.StateEnded {
		t.Errorf("got states %v then %v, want ending then ended", ending.State, ended.State)
	}

	// A rotation is an event too.
	c2 := e.createFor("bob")
	htWantStatus(t, e.send("POST", "/v1/sessions/"+c2.ID+"/rotate", ""), http.StatusOK)
	evs = htWantEvents(t, st, 3, [2]string{"created", c2.ID}, [2]string{"rotated", c2.ID})
	if evs[1].data.Generation != 1 {
		t.Errorf("rotated: got generation %d, want 1", evs[1].data.Generation)
	}
}

func TestEventsReplayMissedEventsAfterReconnect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resume func(e *htEnv, last uint64) *htStream
	}{
		{"Last-Event-ID header", func(e *htEnv, last uint64) *htStream {
			return e.openEvents("", http.Header{"Last-Event-ID": {strconv.FormatUint(last, 10)}})
		}},
		{"after query parameter", func(e *htEnv, last uint64) *htStream {
			return e.openEvents("?after="+strconv.FormatUint(last, 10), nil)
		}},
		{"header wins over query", func(e *htEnv, last uint64) *htStream {
			return e.openEvents("?after=0", http.Header{"Last-Event-ID": {strconv.FormatUint(last, 10)}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := htStart(t, nil)
			first := e.openEvents("", nil)
			a := e.createFor("alice")
			b := e.createFor("bob")
			seen := htWantEvents(t, first, 0, [2]string{"created", a.ID}, [2]string{"created", b.ID})
			last := seen[len(seen)-1].id
			first.close()

			// Missed while disconnected.
			c := e.createFor("carol")
			e.revoke(a.ID)

			resumed := tc.resume(e, last)
			htWantEvents(t, resumed, last,
				[2]string{"created", c.ID},
				[2]string{"ending", a.ID},
				[2]string{"ended", a.ID},
			)
			// Then live events follow, with nothing repeated or skipped.
			e.revoke(b.ID)
			htWantEvents(t, resumed, last+3, [2]string{"ending", b.ID}, [2]string{"ended", b.ID})
		})
	}
}

func TestEventsReplayFromTheStart(t *testing.T) {
	e := htStart(t, nil)
	a := e.createFor("alice")
	b := e.createFor("bob")
	e.revoke(a.ID)
	// Event ids start at 1 and 0 means "from now", so Last-Event-ID 1 is
	// the earliest resume point: it replays everything after the first event.
	st := e.openEvents("", http.Header{"Last-Event-ID": {"1"}})
	htWantEvents(t, st, 1, [2]string{"created", b.ID}, [2]string{"ending", a.ID}, [2]string{"ended", a.ID})
}

func TestEventsWithoutLastEventIDStartFromNow(t *testing.T) {
	e := htStart(t, nil)
	old := e.createFor("alice")
	e.revoke(old.ID) // events 1 to 3, recorded before anyone listens

	st := e.openEvents("", nil)
	c := e.createFor("bob")
	// The first event is the new one: nothing recorded before the connect.
	htWantEvents(t, st, 3, [2]string{"created", c.ID})
}

func TestEventsStreamEndsWhenServerCloses(t *testing.T) {
	e := htStart(t, nil)
	st := e.openEvents("", nil)
	c := e.createFor("alice")
	htWantEvents(t, st, 0, [2]string{"created", c.ID})

	e.srv.Close()
	rest, err := io.ReadAll(st.rd) // returns at EOF; the stream's context bounds it
	if err != nil {
		t.Fatalf("reading after Close: got %v, want the stream to end (EOF)", err)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		t.Errorf("got %q after Close, want nothing more", rest)
	}

	// A client reconnecting to a closing server is told to go elsewhere.
	htWantError(t, e.send("GET", "/v1/events", ""), http.StatusServiceUnavailable, sessiond.CodeUnavailable, "")
}

func TestEventsStreamEndsWhenManagerCloses(t *testing.T) {
	e := htStart(t, nil)
	st := e.openEvents("", nil)
	e.m.Close()
	if _, err := io.ReadAll(st.rd); err != nil {
		t.Fatalf("reading after Manager.Close: got %v, want the stream to end (EOF)", err)
	}
}

func TestEventsStreamSendsKeepAlive(t *testing.T) {
	e := htStart(t, func(c *httpapi.Config) { c.SSEKeepAlive = 5 * time.Millisecond })
	st := e.openEvents("", nil)
	if block := st.block(); !slices.Equal(block, []string{": keep-alive"}) {
		t.Fatalf("got %q, want a keep-alive comment", block)
	}
	// Events still come through between keep-alives.
	c := e.createFor("alice")
	htWantEvents(t, st, 0, [2]string{"created", c.ID})
}

// ---------------------------------------------------------------------------
// Nothing acknowledged is lost; secrets do not leak.

func TestTokensAndHashesNeverAppearInReads(t *testing.T) {
	e := htStart(t, nil)
	st := e.openEvents("", nil)
	c := e.create(`{"subject":"alice","device":{"id":"d1"},"metadata":{"k":"v"}}`)
	r := e.send("POST", "/v1/sessions/"+c.ID+"/rotate", "")
	htWantStatus(t, r, http.StatusOK)
	rotated := htDecode[htValidated](t, r).Token
	other := e.createFor("alice")
	htWantEvents(t, st, 0, [2]string{"created", c.ID}, [2]string{"rotated", c.ID}, [2]string{"created", other.ID})

	var secrets []string
	for _, tok := range []string{c.Token, rotated, other.Token} {
		h, err := sessiond.ParseToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, tok, tok[3:], h.String(), strings.ToUpper(h.String()))
	}
	reads := map[string]htResp{
		"get":            e.send("GET", "/v1/sessions/"+c.ID, ""),
		"list":           e.send("GET", "/v1/sessions", ""),
		"list by filter": e.send("GET", "/v1/sessions?subject=alice&state=active&limit=1", ""),
		"subject list":   e.send("GET", "/v1/subjects/alice/sessions", ""),
		"stats":          e.send("GET", "/v1/stats", ""),
		// A validation's response carries no token unless it rotated.
		"validate": e.validate(rotated),
	}
	for name, r := range reads {
		htWantStatus(t, r, http.StatusOK)
		for _, s := range secrets {
			if bytes.Contains(r.body, []byte(s)) {
				t.Errorf("%s: response contains a token or token hash %q: %s", name, s, r)
			}
		}
		for _, key := range []string{"token", "hash", "Hash", "prev"} {
			if bytes.Contains(r.body, []byte(`"`+key)) || bytes.Contains(r.body, []byte(key+`"`)) {
				t.Errorf("%s: response has a %q field: %s", name, key, r)
			}
		}
	}
	// The session JSON has exactly the documented keys, in every response
	// that carries one (htDecode also rejects unknown fields).
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(reads["get"].body, &raw); err != nil {
		t.Fatal(err)
	}
	allowed := []string{"id", "subject", "device", "metadata", "policy", "state", "end_reason", "created_at",
		"last_active_at", "expires_at", "idle_timeout", "rotated_at", "ended_at", "version", "generation"}
	for k := range raw {
		if !slices.Contains(allowed, k) {
			t.Errorf("session JSON has key %q, which is not a documented session field", k)
		}
	}
	// Nothing token-like in a session read: every token starts with sd_.
	if body := e.send("GET", "/v1/sessions/"+other.ID, "").body; bytes.Contains(body, []byte("sd_")) {
		t.Errorf("GET of a session shows something token-like: %s", body)
	}
}

func TestConcurrentCreatesAreAllAcknowledgedAndReadable(t *testing.T) {
	e := htStart(t, nil)
	const n, subjects = 48, 6
	results := make(chan htResp, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			body := fmt.Sprintf(`{"subject":"user-%d"}`, i%subjects)
			ctx, cancel := context.WithTimeout(context.Background(), htRequestTimeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, "POST", e.ts.URL+"/v1/sessions", strings.NewReader(body))
			if err != nil {
				results <- htResp{status: -1, body: []byte(err.Error())}
				return
			}
			req.Header.Set("Authorization", "Bearer "+htKey)
			resp, err := e.ts.Client().Do(req)
			if err != nil {
				results <- htResp{status: -1, body: []byte(err.Error())}
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				results <- htResp{status: -1, body: []byte(err.Error())}
				return
			}
			results <- htResp{status: resp.StatusCode, header: resp.Header, body: b}
		})
	}
	wg.Wait()
	close(results)
	var ids, tokens []string
	for r := range results {
		htWantStatus(t, r, http.StatusCreated)
		c := htDecode[htCreated](t, r)
		ids = append(ids, c.ID)
		tokens = append(tokens, c.Token)
	}

	// Every acknowledged create is listed exactly once, in its subject's
	// list, and its token validates.
	all, _ := e.listAll(url.Values{"limit": {"7"}})
	htSameSet(t, "list after concurrent creates", htIDs(all), ids)
	var bySubject []string
	for s := range subjects {
		r := e.send("GET", fmt.Sprintf("/v1/subjects/user-%d/sessions", s), "")
		htWantStatus(t, r, http.StatusOK)
		bySubject = append(bySubject, htIDs(htDecode[htList](t, r).Sessions)...)
	}
	htSameSet(t, "subject lists after concurrent creates", bySubject, ids)
	for _, tok := range tokens {
		htWantStatus(t, e.validate(tok), http.StatusOK)
	}
	if st := e.stats(); st.Total != n || st.Sessions["active"] != n || st.Subjects != subjects {
		t.Errorf("got stats total %d, active %d, subjects %d; want %d, %d, %d", st.Total, st.Sessions["active"], st.Subjects, n, n, subjects)
	}
}

// ---------------------------------------------------------------------------
// Time in a synctest bubble: the engine's own timers end idle sessions.

func TestIdleSessionIsEndedByItsTimerInSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, err := sessiond.New(sessiond.Config{Store: inmem.New(inmem.Options{}), Policies: htPolicies()})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		srv, err := httpapi.New(httpapi.Config{Manager: m, APIKey: htKey})
		if err != nil {
			t.Fatal(err)
		}
		h := srv.Handler()
		serve := func(method, target, body string) htResp {
			t.Helper()
			req := httptest.NewRequest(method, target, strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+htKey)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return htResp{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
		}

		r := serve("POST", "/v1/sessions", `{"subject":"alice"}`)
		htWantStatus(t, r, http.StatusCreated)
		c := htDecode[htCreated](t, r)
		start := time.Now()

		// Activity before the idle timeout keeps the session.
		time.Sleep(9 * time.Minute)
		htWantStatus(t, serve("POST", "/v1/sessions/validate", `{"token":"`+c.Token+`"}`), http.StatusOK)

		// Then ten quiet minutes: the timer ends it, without any read.
		time.Sleep(10*time.Minute + time.Second)
		synctest.Wait()
		r = serve("GET", "/v1/stats", "")
		htWantStatus(t, r, http.StatusOK)
		if st := htDecode[htStats](t, r); st.Sessions["ended"] != 1 || st.Sessions["active"] != 0 {
			t.Fatalf("after the idle timeout: got sessions %v, want 1 ended by its timer", st.Sessions)
		}
		r = serve("GET", "/v1/sessions/"+c.ID, "")
		htWantStatus(t, r, http.StatusOK)
		s := htDecode[htSession](t, r)
		if s.State != "ended" || s.EndReason != "idle" {
			t.Errorf("got state %q, end_reason %q; want ended, idle", s.State, s.EndReason)
		}
		if want := start.Add(19 * time.Minute).UTC(); s.EndedAt == nil || !s.EndedAt.Equal(want) {
			t.Errorf("got ended_at %v, want %v (last activity + idle timeout)", s.EndedAt, want)
		}
		htWantError(t, serve("POST", "/v1/sessions/validate", `{"token":"`+c.Token+`"}`), http.StatusGone, sessiond.CodeExpired, "")
	})
}
