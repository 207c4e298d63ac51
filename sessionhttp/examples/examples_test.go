package examples

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/sessionhttp"
)

// Each router lets a request with a session through to its handler, and
// answers one without 401.
func TestRouters(t *testing.T) {
	m, err := sessiond.New(sessiond.Config{Store: inmem.New(inmem.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, err := m.Create(t.Context(), sessiond.CreateRequest{Subject: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	mw := sessionhttp.New(sessionhttp.Config{Validate: sessionhttp.Manager(m)})
	for name, tc := range map[string]struct {
		h    http.Handler
		path string
	}{
		"chi":  {Chi(mw), "/me"},
		"echo": {Echo(mw), "/app/me"},
		"gin":  {Gin(mw), "/app/me"},
	} {
		r := httptest.NewRequest("GET", tc.path, nil)
		r.Header.Set("Authorization", "Bearer "+c.Token)
		w := httptest.NewRecorder()
		tc.h.ServeHTTP(w, r)
		if body, _ := io.ReadAll(w.Body); w.Code != 200 || string(body) != "signed in as alice\n" {
			t.Errorf("%s with a session: %d %q", name, w.Code, body)
		}
		w = httptest.NewRecorder()
		tc.h.ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d, want 401", name, w.Code)
		}
	}
}
