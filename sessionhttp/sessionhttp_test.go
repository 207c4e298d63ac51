package sessionhttp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/sessionhttp"
	"github.com/sessiond/sessiond/wire"
)

// web rotates its token after 5 minutes and ends after 10 idle.
func web() sessiond.Policy {
	return sessiond.Policy{Name: "web", TTL: time.Hour, IdleTimeout: 10 * time.Minute, TouchInterval: time.Minute,
		RotateAfter: 5 * time.Minute, RotationGrace: 30 * time.Second}
}

func newManager(t *testing.T) (*sessiond.Manager, *sessiondtest.ManualClock) {
	t.Helper()
	clock := sessiondtest.NewManualClock(time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC))
	m, err := sessiond.New(sessiond.Config{Store: inmem.New(inmem.Options{}), Policies: []sessiond.Policy{web()}, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, clock
}

// hello is the protected handler: it greets the session's subject.
var hello = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	s, ok := sessionhttp.FromContext(r.Context())
	if !ok {
		io.WriteString(w, "hello, stranger")
		return
	}
	io.WriteString(w, "hello, "+s.Subject)
})

type answer struct {
	status int
	body   string
	header http.Header
	cookie *http.Cookie // the session cookie set, if any
}

func call(t *testing.T, h http.Handler, mutate func(*http.Request)) answer {
	t.Helper()
	r := httptest.NewRequest("GET", "/app", nil)
	if mutate != nil {
		mutate(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	a := answer{status: w.Code, body: w.Body.String(), header: w.Header()}
	for _, c := range w.Result().Cookies() {
		if c.Name == sessionhttp.DefaultCookieName {
			a.cookie = c
		}
	}
	return a
}

func withCookie(token string) func(*http.Request) {
	return func(r *http.Request) { r.AddCookie(&http.Cookie{Name: sessionhttp.DefaultCookieName, Value: token}) }
}

func withBearer(token string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+token) }
}

func errorCode(t *testing.T, a answer) sessiond.Code {
	t.Helper()
	var body wire.ErrorBody
	if err := json.Unmarshal([]byte(a.body), &body); err != nil {
		t.Fatalf("answer %d %q is not an error body: %v", a.status, a.body, err)
	}
	return body.Error.Code
}

func TestAValidSessionReachesTheHandler(t *testing.T) {
	m, _ := newManager(t)
	mw := sessionhttp.New(sessionhttp.Config{Validate: sessionhttp.Manager(m)})
	h := mw.Handler(hello)
	c, err := m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	for name, how := range map[string]func(*http.Request){"cookie": withCookie(c.Token), "bearer": withBearer(c.Token)} {
		if a := call(t, h, how); a.status != 200 || a.body != "hello, alice" || a.cookie != nil {
			t.Errorf("%s: %d %q, cookie %v", name, a.status, a.body, a.cookie)
		}
	}
}

func TestRequestsWithoutAValidSessionGet401(t *testing.T) {
	m, clock := newManager(t)
	mw := sessionhttp.New(sessionhttp.Config{Validate: sessionhttp.Manager(m)})
	h := mw.Handler(hello)

	a := call(t, h, nil)
	if a.status != 401 || errorCode(t, a) != sessiond.CodeUnauthorized || a.header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d %q", a.status, a.body)
	}
	a = call(t, h, withCookie("sd_not-a-token"))
	if a.status != 401 || errorCode(t, a) != sessiond.CodeNotFound {
		t.Fatalf("unknown token: %d %q", a.status, a.body)
	}
	if a.cookie == nil || a.cookie.MaxAge >= 0 {
		t.Fatalf("an unknown cookie token is not cleared: %+v", a.cookie)
	}

	c, err := m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(11 * time.Minute) // past the idle timeout
	a = call(t, h, withCookie(c.Token))
	if a.status != 401 || errorCode(t, a) != sessiond.CodeExpired || a.cookie == nil || a.cookie.MaxAge >= 0 {
		t.Fatalf("expired session: %d %q cookie %+v", a.status, a.body, a.cookie)
	}

	c, err = m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Revoke(t.Context(), c.Session.ID, sessiond.EndRevoked); err != nil {
		t.Fatal(err)
	}
	if a := call(t, h, withBearer(c.Token)); a.status != 401 || errorCode(t, a) != sessiond.CodeEnded || a.cookie != nil {
		t.Fatalf("revoked session, bearer: %d %q cookie %+v", a.status, a.body, a.cookie)
	}
}

func TestOptionalLetsAnonymousRequestsThrough(t *testing.T) {
	m, _ := newManager(t)
	h := sessionhttp.New(sessionhttp.Config{Validate: sessionhttp.Manager(m), Optional: true}).Handler(hello)
	if a := call(t, h, nil); a.status != 200 || a.body != "hello, stranger" {
		t.Fatalf("anonymous: %d %q", a.status, a.body)
	}
	if a := call(t, h, withCookie("sd_forged")); a.status != 401 {
		t.Fatalf("a bad token with Optional: %d, want 401", a.status)
	}
}

// A rotation hands the new token back where the old one came from: a new
// cookie, HttpOnly, Secure and SameSite Lax; or the X-Session-Token
// header.
func TestARotatedTokenGoesBackToTheCaller(t *testing.T) {
	m, clock := newManager(t)
	h := sessionhttp.New(sessionhttp.Config{Validate: sessionhttp.Manager(m)}).Handler(hello)
	c, err := m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(6 * time.Minute) // past rotate_after
	a := call(t, h, withCookie(c.Token))
	if a.status != 200 || a.cookie == nil || a.cookie.Value == "" || a.cookie.Value == c.Token {
		t.Fatalf("rotation through a cookie: %d, cookie %+v", a.status, a.cookie)
	}
	if !a.cookie.HttpOnly || !a.cookie.Secure || a.cookie.SameSite != http.SameSiteLaxMode || a.cookie.Path != "/" {
		t.Fatalf("cookie attributes %+v", a.cookie)
	}
	if a := call(t, h, withCookie(a.cookie.Value)); a.status != 200 || a.cookie != nil {
		t.Fatalf("the rotated cookie: %d, cookie %+v", a.status, a.cookie)
	}

	c, err = m.Create(t.Context(), sessiond.CreateRequest{Subject: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(6 * time.Minute)
	a = call(t, h, withBearer(c.Token))
	if got := a.header.Get(sessionhttp.TokenHeader); a.status != 200 || got == "" || got == c.Token || a.cookie != nil {
		t.Fatalf("rotation through Authorization: %d, header %q, cookie %+v", a.status, got, a.cookie)
	}
}

// End to end over REST: the middleware validates with a client of a real
// sessiond server; when the server is gone it answers 503, not 401.
func TestOverRESTAgainstARealServer(t *testing.T) {
	m, _ := newManager(t)
	const key = "an-admin-key-of-at-least-32-bytes-long"
	api, err := httpapi.New(httpapi.Config{Manager: m, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	api.SetReady(true)
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(api.Close)
	c := client.New(srv.URL, key)
	created, err := c.Create(t.Context(), client.CreateRequest{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	mw := sessionhttp.New(sessionhttp.Config{Validate: sessionhttp.Client(c), Insecure: true})
	app := httptest.NewServer(mw.Handler(hello))
	t.Cleanup(app.Close)

	get := func(token string) (*http.Response, string) {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", app.URL+"/app", nil)
		req.AddCookie(&http.Cookie{Name: sessionhttp.DefaultCookieName, Value: token})
		resp, err := app.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := get(created.Token); resp.StatusCode != 200 || body != "hello, alice" {
		t.Fatalf("valid session over REST: %d %q", resp.StatusCode, body)
	}
	if err := c.Revoke(t.Context(), created.ID); err != nil {
		t.Fatal(err)
	}
	if resp, body := get(created.Token); resp.StatusCode != 401 || !strings.Contains(body, "session_ended") {
		t.Fatalf("revoked session over REST: %d %q", resp.StatusCode, body)
	}
	srv.Close()
	if resp, body := get(created.Token); resp.StatusCode != 503 || !strings.Contains(body, "unavailable") {
		t.Fatalf("session server down: %d %q, want 503 unavailable", resp.StatusCode, body)
	}
}
