package httpapi_test

// Shared helpers and wire types for the tests of the REST edge in package
// httpapi_test. Those tests run through real HTTP over loopback, against a
// real engine on the in-memory store. Time-dependent tests move a
// ManualClock (or run in a synctest bubble); nothing waits on real time for
// a timeout.
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
		// Workspaces hibernate 5m after the last activity with no
		// connection (hibernate_test.go).
		{
			Name: "workspace", TTL: time.Hour, IdleTimeout: 30 * time.Minute, HibernateAfter: 5 * time.Minute,
			HeartbeatInterval: 10 * time.Second, HeartbeatTimeout: 30 * time.Second, WakeTimeout: time.Minute,
		},
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
	return htStartWith(t, nil, edit)
}

// htStartWith is htStart with the Manager's config edited too.
func htStartWith(t *testing.T, editManager func(*sessiond.Config), edit func(*httpapi.Config)) *htEnv {
	t.Helper()
	e := &htEnv{t: t, clock: sessiondtest.NewManualClock(htEpoch), obs: &htObserved{}}
	mcfg := sessiond.Config{Store: inmem.New(inmem.Options{}), Policies: htPolicies(), Clock: e.clock}
	if editManager != nil {
		editManager(&mcfg)
	}
	m, err := sessiond.New(mcfg)
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
	StateSince     time.Time  `json:"state_since"`
	Connections    int        `json:"connections"`
	Hibernations   uint64     `json:"hibernations"`
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

// Server-sent events: reading a stream off the wire.

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
