package httpapi_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
)

// htLogBuffer is a log destination safe for the server's goroutines.
type htLogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *htLogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines decodes the JSON lines written so far.
func (b *htLogBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func (b *htLogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestAccessLogOneLinePerRequestWithoutSecrets(t *testing.T) {
	logs := &htLogBuffer{}
	e := htStart(t, func(c *httpapi.Config) {
		htBehindProxy(c)
		c.AccessLog = slog.New(slog.NewJSONHandler(logs, nil))
	})
	created := e.createFor("alice")
	h := http.Header{"Authorization": {"Bearer " + htKey}, "X-Forwarded-For": {"198.51.100.23"}}
	get := e.sendWith("GET", "/v1/sessions/"+created.ID+"?note=secret-query-value", "", h)
	htWantStatus(t, get, http.StatusOK)
	htWantStatus(t, e.sendWith("POST", "/v1/sessions/validate", `{"token":"`+created.Token+`"}`, h), http.StatusOK)
	htWantStatus(t, e.sendWith("PUT", "/v1/sessions/"+created.ID, "", h), http.StatusMethodNotAllowed)
	htWantStatus(t, e.sendWith("GET", "/nowhere/else?x=1", "", h), http.StatusNotFound)
	htWantStatus(t, e.sendWith("GET", "/v1/stats", "", http.Header{"Authorization": {"Bearer wrong"}}), http.StatusUnauthorized)
	// Paths no route takes may carry an id or a token where a route has none.
	htWantStatus(t, e.sendWith("GET", "/v1/sessions/"+created.ID+"/conections", "", h), http.StatusNotFound)
	htWantStatus(t, e.sendWith("GET", "/v1/sessions/"+created.ID+"//rotate", "", h), http.StatusBadRequest)
	htWantStatus(t, e.sendWith("GET", "/v1/connect/"+created.Token, "", h), http.StatusNotFound)
	htWantStatus(t, e.sendWith("GET", "/v1/stats", "", h), http.StatusOK)

	lines := htAccessLines(t, logs, 10)
	type want struct {
		method, path, route string
		status              float64
		clientIP            string
		sid                 bool
	}
	for i, w := range []want{
		{"POST", "/v1/sessions", "POST /v1/sessions", 201, "127.0.0.1", false},
		{"GET", "/v1/sessions/{id}", "GET /v1/sessions/{id}", 200, "198.51.100.23", true},
		{"POST", "/v1/sessions/validate", "POST /v1/sessions/validate", 200, "198.51.100.23", false},
		{"PUT", "/v1/sessions/{id}", "unmatched", 405, "198.51.100.23", false},
		{"GET", "/…", "unmatched", 404, "198.51.100.23", false},
		{"GET", "/v1/stats", "GET /v1/stats", 401, "127.0.0.1", false},
		{"GET", "/v1/sessions/…", "unmatched", 404, "198.51.100.23", false},
		{"GET", "/v1/sessions/…", "unmatched", 400, "198.51.100.23", false},
		{"GET", "/v1/connect/…", "unmatched", 404, "198.51.100.23", false},
		{"GET", "/v1/stats", "GET /v1/stats", 200, "198.51.100.23", false},
	} {
		l := lines[i]
		if l["msg"] != "request" || l["level"] != "INFO" || l["method"] != w.method || l["path"] != w.path ||
			l["route"] != w.route || l["status"] != w.status || l["client_ip"] != w.clientIP {
			t.Errorf("line %d: %v\nwant method %s path %s route %s status %v client_ip %s", i, l, w.method, w.path, w.route, w.status, w.clientIP)
		}
		if _, ok := l["duration_ms"].(float64); !ok {
			t.Errorf("line %d has no duration_ms: %v", i, l)
		}
		if sid, ok := l["sid"]; ok != w.sid || (ok && sid != sessiond.LogID(created.ID)) {
			t.Errorf("line %d: sid %v, want it %v and equal to LogID(id) %s", i, sid, w.sid, sessiond.LogID(created.ID))
		}
	}
	if got := lines[1]["bytes"]; got != float64(len(get.body)) {
		t.Errorf("bytes %v, want the body's %d", got, len(get.body))
	}
	all := logs.String()
	for _, secret := range []string{created.ID, created.Token, htKey, "secret-query-value", "x=1", "?"} {
		if strings.Contains(all, secret) {
			t.Errorf("the access log contains %q:\n%s", secret, all)
		}
	}
}

func TestNoAccessLogUnlessConfigured(t *testing.T) {
	logs := &htLogBuffer{}
	e := htStart(t, func(c *httpapi.Config) { c.Logger = slog.New(slog.NewJSONHandler(logs, nil)) })
	e.createFor("alice")
	if s := logs.String(); strings.Contains(s, `"msg":"request"`) {
		t.Errorf("an access line without Config.AccessLog:\n%s", s)
	}
}

// htAccessLines waits (at most 5s) for n access log lines: a line is
// written once its handler returns, which may be after the client has read
// the response.
func htAccessLines(t *testing.T, logs *htLogBuffer, n int) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if lines = logs.lines(t); len(lines) >= n {
			break
		}
	}
	if len(lines) != n {
		t.Fatalf("%d access log lines, want %d:\n%s", len(lines), n, logs)
	}
	return lines
}

// deadlineRecorder is a ResponseWriter that records the write deadlines
// set on it (http.ResponseController finds SetWriteDeadline).
type deadlineRecorder struct {
	*httptest.ResponseRecorder
	deadlines []time.Time
}

func (d *deadlineRecorder) SetWriteDeadline(t time.Time) error {
	d.deadlines = append(d.deadlines, t)
	return nil
}

// Every answer is written under the write deadline, refusals and /metrics
// included: a client that stops reading never holds a connection.
func TestEveryAnswerHasAWriteDeadline(t *testing.T) {
	e := htStart(t, func(c *httpapi.Config) {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "# metrics\n") })
	})
	for _, tc := range []struct {
		method, path, key string
		status            int
	}{
		{"GET", "/v1/stats", htKey, http.StatusOK},
		{"GET", "/v1/stats", "wrong", http.StatusUnauthorized},
		{"GET", "/metrics", "", http.StatusOK},
		{"GET", "/nowhere", htKey, http.StatusNotFound},
		{"PUT", "/v1/stats", htKey, http.StatusMethodNotAllowed},
		{"GET", "/v1//stats", htKey, http.StatusBadRequest},
		{"GET", "/healthz", "", http.StatusOK},
	} {
		r := httptest.NewRequest(tc.method, tc.path, nil)
		if tc.key != "" {
			r.Header.Set("Authorization", "Bearer "+tc.key)
		}
		w := &deadlineRecorder{ResponseRecorder: httptest.NewRecorder()}
		before := time.Now()
		e.srv.Handler().ServeHTTP(w, r)
		if w.Code != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, w.Code, tc.status)
		}
		if len(w.deadlines) == 0 || w.deadlines[0].Before(before) {
			t.Errorf("%s %s (%d): write deadlines %v, want one ahead", tc.method, tc.path, w.Code, w.deadlines)
		}
	}
}
