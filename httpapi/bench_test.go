package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/inmem"
)

// BenchmarkValidateHandler is the server's own cost of one
// POST /v1/sessions/validate: routing, auth, decoding, the engine,
// encoding; no network. (Over loopback: bench/restload.)
//
//	go test -run=^$ -bench=ValidateHandler -benchmem ./httpapi/
func BenchmarkValidateHandler(b *testing.B) {
	st := inmem.New(inmem.Options{})
	m, err := sessiond.New(sessiond.Config{Store: st, Policies: []sessiond.Policy{{Name: "p", TTL: 24 * time.Hour, IdleTimeout: time.Hour}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	srv, err := httpapi.New(httpapi.Config{Manager: m, APIKey: "k"})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	const n = 1000
	bodies := make([]string, n)
	for i := range bodies {
		c, err := m.Create(context.Background(), sessiond.CreateRequest{Subject: fmt.Sprint("u", i),
			Device: sessiond.Device{ID: "laptop", Type: "browser"}, Metadata: []byte(`{"plan":"pro"}`)})
		if err != nil {
			b.Fatal(err)
		}
		bodies[i] = `{"token":"` + c.Token + `"}`
	}
	var next atomic.Uint64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", "/v1/sessions/validate", strings.NewReader(bodies[next.Add(1)%n]))
			req.Header.Set("Authorization", "Bearer k")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d: %s", w.Code, w.Body)
			}
		}
	})
}

// The direct encoding of responses is what encoding/json writes.
func TestValidateResponseEncoding(t *testing.T) {
	tok, _ := sessiond.NewToken()
	s := &sessiond.Session{ID: "s1", Subject: "a<b", Policy: "p", State: sessiond.StateActive,
		CreatedAt: time.Unix(1, 0), LastActive: time.Unix(2, 0), Metadata: []byte(`{"x":1}`)}
	for _, r := range []httpapi.ValidateResponse{{Session: s}, {Session: s, Token: tok}} {
		type plain httpapi.ValidateResponse // without the AppendJSON method
		want, _ := json.Marshal(plain(r))
		if got := r.AppendJSON(nil); string(got) != string(want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	}
}
