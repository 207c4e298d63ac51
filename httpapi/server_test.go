package httpapi_test

// Tests of the server as a whole: stats, health and readiness, metrics,
// a successful call of every route, and what Config.Observe reports.

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/wire"
)

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
		c.History = testHistory()
	})
	alice := e.createFor("alice")
	victim := e.createFor("alice")
	beating := e.addConn(alice.ID, "vnc").Connection.ID
	leaving := e.addConn(alice.ID, "http").Connection.ID
	sleeper := e.create(`{"subject":"alice","policy":"workspace"}`) // hibernated, then woken: Routes lists hibernate first

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
		"POST /v1/sessions/{id}/hibernate":       {"/v1/sessions/" + sleeper.ID + "/hibernate", "", 200},
		"POST /v1/sessions/{id}/wake":            {"/v1/sessions/" + sleeper.ID + "/wake", "", 200},
		"GET /v1/subjects/{subject}/sessions":    {"/v1/subjects/alice/sessions", "", 200},
		"DELETE /v1/subjects/{subject}/sessions": {"/v1/subjects/zed/sessions", "", 200},
		"GET /v1/sessions/{id}/history":          {"/v1/sessions/" + alice.ID + "/history", "", 200},
		"GET /v1/subjects/{subject}/history":     {"/v1/subjects/alice/history?since=1h&limit=10", "", 200},
		"POST /v1/sessions/{id}/connections":     {"/v1/sessions/" + alice.ID + "/connections", `{"kind":"vnc"}`, 201},
		"GET /v1/sessions/{id}/connections":      {"/v1/sessions/" + alice.ID + "/connections", "", 200},
		"POST /v1/connections/{id}/heartbeat":    {"/v1/connections/" + beating + "/heartbeat", "", 200},
		"DELETE /v1/connections/{id}":            {"/v1/connections/" + leaving, "", 204},
		"GET /v1/stats":                          {"/v1/stats", "", 200},
		"GET /v1/nodes":                          {"/v1/nodes", "", 200},
		"GET /v1/events":                         {"/v1/events", "", 200},
		"GET /v1/openapi.yaml":                   {"/v1/openapi.yaml", "", 200},
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
