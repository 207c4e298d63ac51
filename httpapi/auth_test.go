package httpapi_test

// Tests of authentication: admin routes want the API key, public routes
// need none.

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
)

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
