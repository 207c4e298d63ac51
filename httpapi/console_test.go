package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/wire"
)

// Config.Console is mounted at /console and under /console/, for GET and
// HEAD, without the API key; other methods get 405 as elsewhere, and
// without it /console is an unknown path like any other.
func TestConsoleMount(t *testing.T) {
	console := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Console", r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
	})
	e := htStart(t, func(c *httpapi.Config) { c.Console = console })
	for _, path := range []string{"/console", "/console/", "/console/sessions/s1", "/console/assets/index-x.js"} {
		for _, method := range []string{"GET", "HEAD"} {
			r := e.sendWith(method, path, "", nil) // no API key
			if r.status != http.StatusTeapot || r.header.Get("X-Console") != method+" "+path {
				t.Errorf("%s %s without a key: %d, X-Console %q; want the console's answer", method, path, r.status, r.header.Get("X-Console"))
			}
		}
	}
	r := e.sendWith("POST", "/console/", "", nil)
	htWantError(t, r, http.StatusMethodNotAllowed, wire.CodeMethodNotAllowed, "")
	if got := r.header.Get("Allow"); got != "GET" {
		t.Errorf("POST /console/: Allow %q, want GET", got)
	}
	// Paths that only start like it are not the console's.
	htWantError(t, e.sendWith("GET", "/consoles", "", nil), http.StatusNotFound, wire.CodeRouteNotFound, "")

	off := htStart(t, nil)
	for _, path := range []string{"/console", "/console/", "/console/sessions/s1"} {
		htWantError(t, off.sendWith("GET", path, "", nil), http.StatusNotFound, wire.CodeRouteNotFound, "")
	}
}
