// Package examples shows sessionhttp with the routers Go web apps use.
// It is a module of its own, so that sessiond does not depend on them;
// `go vet ./...` here checks that each compiles against them.
package examples

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/sessiond/sessiond/sessionhttp"
)

// Chi protects a group of chi routes: chi takes net/http middleware as
// it is.
func Chi(mw *sessionhttp.Middleware) http.Handler {
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	r.Group(func(r chi.Router) {
		r.Use(mw.Handler)
		r.Get("/me", func(w http.ResponseWriter, r *http.Request) {
			s, _ := sessionhttp.FromContext(r.Context())
			fmt.Fprintf(w, "signed in as %s\n", s.Subject)
		})
	})
	return r
}
