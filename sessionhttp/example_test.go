package sessionhttp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/sessionhttp"
)

// A handler behind the middleware sees the session; a request without one
// never reaches it. Here the engine runs in the same process; with a
// sessiond server, Validate is sessionhttp.Client(client.New(url, apiKey)).
func Example() {
	m, _ := sessiond.New(sessiond.Config{Store: inmem.New(inmem.Options{})})
	_ = m.Start(context.Background())
	defer m.Close()

	mw := sessionhttp.New(sessionhttp.Config{Validate: sessionhttp.Manager(m)})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		// After checking the user's credentials:
		c, err := m.Create(r.Context(), sessiond.CreateRequest{Subject: "alice"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		mw.SetToken(w, c.Token)
	})
	mux.Handle("GET /me", mw.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, _ := sessionhttp.FromContext(r.Context())
		fmt.Fprintf(w, "signed in as %s", s.Subject)
	})))

	login := httptest.NewRecorder()
	mux.ServeHTTP(login, httptest.NewRequest("POST", "/login", nil))

	me := httptest.NewRequest("GET", "/me", nil)
	for _, c := range login.Result().Cookies() {
		me.AddCookie(c)
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, me)
	body, _ := io.ReadAll(w.Body)
	fmt.Println(w.Code, string(body))

	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/me", nil))
	fmt.Println(w.Code)
	// Output:
	// 200 signed in as alice
	// 401
}
