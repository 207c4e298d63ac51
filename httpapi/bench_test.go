package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/storetrace"
)

// BenchmarkValidateHandler is the server's own cost of one
// POST /v1/sessions/validate: routing, auth, decoding, the engine,
// encoding; no network. (Over loopback: bench/restload.)
//
//	go test -run=^$ -bench=ValidateHandler -benchmem ./httpapi/
func BenchmarkValidateHandler(b *testing.B) {
	benchValidate(b, nil)
}

// BenchmarkValidateHandlerTraced is BenchmarkValidateHandler traced
// (Config.TracerProvider, the store wrapped by storetrace), every span
// sampled or none, into a batch span processor whose exporter discards:
// the difference is what tracing costs the server, without the network.
//
//	go test -run=^$ -bench=ValidateHandler -benchmem ./httpapi/
func BenchmarkValidateHandlerTraced(b *testing.B) {
	for _, sampler := range []struct {
		name string
		s    sdktrace.Sampler
	}{{"always_on", sdktrace.AlwaysSample()}, {"always_off", sdktrace.NeverSample()}} {
		b.Run(sampler.name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler.s), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			benchValidate(b, tp)
		})
	}
}

// benchValidate validates the tokens of 1000 sessions, round robin, on
// the server benchServer makes with tp.
func benchValidate(b *testing.B, tp trace.TracerProvider) {
	m, h := benchServer(b, tp)
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

// BenchmarkHealthzHandler is GET /healthz through the same handler chain
// as BenchmarkValidateHandler: the difference of the two is what a
// validation costs the server beyond any request.
//
//	go test -run=^$ -bench='ValidateHandler|HealthzHandler' -benchmem ./httpapi/
func BenchmarkHealthzHandler(b *testing.B) {
	_, h := benchServer(b, nil)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("GET", "/healthz", nil)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	})
}

// benchServer is an engine on the memory store (validations write nothing:
// no rotation, activity at most once a minute) and its HTTP handler with
// the API key "k", both traced with tp if it is not nil.
func benchServer(b *testing.B, tp trace.TracerProvider) (*sessiond.Manager, http.Handler) {
	b.Helper()
	st := storetrace.Wrap(inmem.New(inmem.Options{}), tp, storetrace.Options{System: "memory"})
	m, err := sessiond.New(sessiond.Config{Store: st, Policies: []sessiond.Policy{{Name: "p", TTL: 24 * time.Hour, IdleTimeout: time.Hour}}})
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Close() })
	srv, err := httpapi.New(httpapi.Config{Manager: m, APIKey: "k", TracerProvider: tp})
	if err != nil {
		b.Fatal(err)
	}
	return m, srv.Handler()
}
