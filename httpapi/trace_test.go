package httpapi_test

import (
	"maps"
	"net/http"
	"slices"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/internal/tracing/tracingtest"
	"github.com/sessiond/sessiond/storetrace"
)

// htTraced is a test server traced into a recorder, its store too.
func htTraced(t *testing.T) (*htEnv, *tracingtest.Recorder) {
	t.Helper()
	rec := tracingtest.New(t)
	e := htStartWith(t, func(c *sessiond.Config) {
		c.Store = storetrace.Wrap(inmem.New(inmem.Options{}), rec, storetrace.Options{System: "memory"})
	}, func(c *httpapi.Config) { c.TracerProvider = rec })
	return e, rec
}

// htOneSpan returns the one span of that name.
func htOneSpan(t *testing.T, rec *tracingtest.Recorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := rec.Named(name)
	if len(spans) != 1 {
		var names []string
		for _, s := range rec.Ended() {
			names = append(names, s.Name())
		}
		t.Fatalf("%d spans named %q; the spans: %q", len(spans), name, names)
	}
	return spans[0]
}

// A create and a validation are each a server span named by its route,
// with its method, route and status, whose children are the store's work
// for it; no span carries the session's id or its token.
func TestTracingNamesSpansByRouteWithStoreSpansUnder(t *testing.T) {
	e, rec := htTraced(t)
	c := e.createFor("alice")
	htWantStatus(t, e.validate(c.Token), http.StatusOK)
	htWantStatus(t, e.send("GET", "/v1/sessions/"+c.ID, ""), http.StatusOK)

	for _, tc := range []struct {
		name, method, route, status string
		store                       []string
	}{
		{"POST /v1/sessions", "POST", "/v1/sessions", "201", []string{"sessiond.store/Create"}},
		{"POST /v1/sessions/validate", "POST", "/v1/sessions/validate", "200", []string{"sessiond.store/Get"}},
		{"GET /v1/sessions/{id}", "GET", "/v1/sessions/{id}", "200", []string{"sessiond.store/Get"}},
	} {
		sp := htOneSpan(t, rec, tc.name)
		if sp.SpanKind() != trace.SpanKindServer || sp.Parent().IsValid() {
			t.Errorf("%s: a %s span with parent %v; want a server span, the root", tc.name, sp.SpanKind(), sp.Parent().SpanID())
		}
		want := map[attribute.Key]string{"http.request.method": tc.method, "http.route": tc.route,
			"http.response.status_code": tc.status, "url.scheme": "http"}
		if got := tracingtest.Attrs(sp); !maps.Equal(got, want) {
			t.Errorf("%s: attributes %v, want %v", tc.name, got, want)
		}
		if children := rec.ChildrenOf(sp); !slices.Equal(children, tc.store) {
			t.Errorf("%s: children %q, want %q", tc.name, children, tc.store)
		}
	}
	if leaks := rec.Leaks(c.ID, c.Token); len(leaks) > 0 {
		t.Fatalf("spans carry a session id or token: %q", leaks)
	}
}

// A refused request records the error's code as error.type: a status
// Error only for a fault of the server (5xx), not for an answer to the
// client (4xx). A path no route takes is named by its method alone, never
// by the path.
func TestTracingRecordsTheErrorCode(t *testing.T) {
	e, rec := htTraced(t)
	htWantStatus(t, e.sendWith("GET", "/v1/stats", "", http.Header{"Authorization": {"Bearer wrong"}}), http.StatusUnauthorized)
	htWantStatus(t, e.send("GET", "/v1/sessions/no-such-session", ""), http.StatusNotFound)
	htWantStatus(t, e.send("GET", "/v1/secret-token-in-path", ""), http.StatusNotFound)
	e.srv.SetReady(false)
	htWantStatus(t, e.send("GET", "/readyz", ""), http.StatusServiceUnavailable)

	for _, tc := range []struct {
		name, code, status string
		fault              bool
	}{
		{"GET /v1/stats", "unauthorized", "401", false},
		{"GET /v1/sessions/{id}", "session_not_found", "404", false},
		{"GET", "not_found", "404", false},
		{"GET /readyz", "unavailable", "503", true},
	} {
		sp := htOneSpan(t, rec, tc.name)
		a := tracingtest.Attrs(sp)
		if a["error.type"] != tc.code || a["http.response.status_code"] != tc.status {
			t.Errorf("%s: error.type %q, status %s; want %q, %s", tc.name, a["error.type"], a["http.response.status_code"], tc.code, tc.status)
		}
		if fault := sp.Status().Code == codes.Error; fault != tc.fault {
			t.Errorf("%s: span status %v; a fault: %v", tc.name, sp.Status(), tc.fault)
		}
	}
	if sp := rec.Named("GET")[0]; tracingtest.Attrs(sp)["http.route"] != "" {
		t.Errorf("a path no route takes has http.route %q", tracingtest.Attrs(sp)["http.route"])
	}
	if leaks := rec.Leaks("no-such-session", "secret-token-in-path", "wrong"); len(leaks) > 0 {
		t.Fatalf("spans carry what the path or the key held: %q", leaks)
	}
}

// A request carrying a W3C traceparent header continues that trace: its
// span is a child of the caller's.
func TestTracingContinuesTheCallersTrace(t *testing.T) {
	e, rec := htTraced(t)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	htWantStatus(t, e.sendWith("GET", "/healthz", "", http.Header{"Traceparent": {"00-" + traceID + "-" + parentID + "-01"}}), http.StatusOK)
	sp := htOneSpan(t, rec, "GET /healthz")
	if sp.SpanContext().TraceID().String() != traceID || sp.Parent().SpanID().String() != parentID || !sp.Parent().IsRemote() {
		t.Fatalf("span in trace %s under %s (remote %v); want trace %s under the caller's %s",
			sp.SpanContext().TraceID(), sp.Parent().SpanID(), sp.Parent().IsRemote(), traceID, parentID)
	}
}

// Without a TracerProvider nothing is traced, not even into the global
// provider of the process, and a traceparent header changes nothing.
func TestTracingOffTracesNothing(t *testing.T) {
	global := tracingtest.New(t)
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(global)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })

	var inHandler trace.SpanContext
	e := htStart(t, func(c *httpapi.Config) {
		c.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			inHandler = trace.SpanContextFromContext(r.Context())
		})
	})
	c := e.createFor("alice")
	htWantStatus(t, e.validate(c.Token), http.StatusOK)
	htWantStatus(t, e.sendWith("GET", "/metrics", "", http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}), http.StatusOK)
	if n := len(global.Ended()); n != 0 {
		t.Fatalf("%d spans with tracing off", n)
	}
	if inHandler.IsValid() {
		t.Fatalf("with tracing off, a handler's context holds the span %v", inHandler)
	}
}
