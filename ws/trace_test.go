package ws_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/internal/tracing/tracingtest"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/storetrace"
	"github.com/sessiond/sessiond/wire"
	"github.com/sessiond/sessiond/ws"
)

// tracedEnv is an edge traced into a recorder, its store too.
func tracedEnv(t *testing.T, cfg ws.Config) (*wsEnv, *tracingtest.Recorder) {
	t.Helper()
	rec := tracingtest.New(t)
	cfg.TracerProvider = rec
	e := newEnvWith(t, cfg, sessiond.Config{
		Store: storetrace.Wrap(inmem.New(inmem.Options{}), rec, storetrace.Options{System: "memory"}),
	})
	return e, rec
}

// connectSpans waits until n connects have ended their spans, and returns
// them in the order they ended. A connect's span ends once its ack is out,
// so it may end just after the client reads the ack.
func connectSpans(t *testing.T, rec *tracingtest.Recorder, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	sessiondtest.Eventually(t, fmt.Sprintf("%d connect spans", n), func() bool {
		return len(rec.Named("sessiond.ws/connect")) >= n
	})
	spans := rec.Named("sessiond.ws/connect")
	if len(spans) != n {
		t.Fatalf("%d connect spans, want %d", len(spans), n)
	}
	return spans
}

// A connect is one server span from the handshake to the attach, which
// says whether it created or resumed its session (by its log id, never
// its id), with the store's work for it under it; a refused connect says
// why. No span carries a credential or a session token.
func TestConnectSpanSaysWhatBecameOfTheConnect(t *testing.T) {
	e, rec := tracedEnv(t, ws.Config{})
	cred := e.token("alice", time.Hour)
	c, _, err := e.dial(cred, "device_id=glasses-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	sid, _, _, ack := c.ack()
	connectSpans(t, rec, 1) // the spans end in the order of the connects
	_ = c.c.Close(websocket.StatusNormalClosure, "")
	sessiondtest.Eventually(t, "the session to be disconnected", func() bool { return e.session(sid).State == sessiond.StateDisconnected })
	again := e.mustDial("alice", "device_id=glasses-1", nil)
	again.ack()
	connectSpans(t, rec, 2)
	if _, resp, err := e.dial("", "", nil); err == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial without a credential: %v, %v", err, resp)
	}

	spans := connectSpans(t, rec, 3)
	for i, want := range []map[attribute.Key]string{
		{"sessiond.ws.attach": "header", "sessiond.ws.outcome": "created", "sessiond.sid": sessiond.LogID(sid)},
		{"sessiond.ws.attach": "header", "sessiond.ws.outcome": "resumed", "sessiond.sid": sessiond.LogID(sid)},
		{"sessiond.ws.attach": "header", "sessiond.ws.outcome": "refused", "error.type": "unauthorized"},
	} {
		sp := spans[i]
		if got := tracingtest.Attrs(sp); !maps.Equal(got, want) {
			t.Errorf("connect %d: attributes %v, want %v", i, got, want)
		}
		if sp.SpanKind() != trace.SpanKindServer {
			t.Errorf("connect %d: a %s span, want a server span", i, sp.SpanKind())
		}
	}
	if got := rec.ChildrenOf(spans[0]); !slices.Contains(got, "sessiond.store/Create") {
		t.Errorf("the creating connect's children are %q, want its store Create among them", got)
	}
	if got := rec.ChildrenOf(spans[2]); len(got) != 0 {
		t.Errorf("a connect refused before the engine has children %q", got)
	}
	if leaks := rec.Leaks(sid, cred, ack["session_token"].(string), "alice", "glasses-1"); len(leaks) > 0 {
		t.Fatalf("spans carry a secret or an identity: %q", leaks)
	}
}

// A connect that names its session in its first message is traced until
// that message is handled (or the socket closes), and carries the trace
// of its handshake's traceparent header.
func TestConnectSpanOfAnAttachByMessage(t *testing.T) {
	e, rec := tracedEnv(t, ws.Config{AttachTimeout: 10 * time.Second})
	created, err := e.m.Create(context.Background(), sessiond.CreateRequest{Subject: "alice", Policy: "workspace"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := e.m.Create(context.Background(), sessiond.CreateRequest{Subject: "bob", Policy: "workspace"})
	if err != nil {
		t.Fatal(err)
	}
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	c := e.mustDial("alice", "attach=message", http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}})
	c.send(map[string]string{"type": "attach", "session_token": created.Token})
	c.ack()
	connectSpans(t, rec, 1) // the spans end in the order of the connects
	wrong := e.mustDial("alice", "attach=message", nil)
	wrong.send(map[string]string{"type": "attach", "session_token": bob.Token})
	if code := wrong.closedWith(); code != wire.CloseUnauthorized {
		t.Fatalf("closed with %d, want %d", code, wire.CloseUnauthorized)
	}
	connectSpans(t, rec, 2)
	silent := e.mustDial("alice", "attach=message", nil)
	sessiondtest.Eventually(t, "the attach timer", func() bool { return e.edge.Open() >= 2 })
	e.clock.Advance(10 * time.Second)
	if code := silent.closedWith(); code != wire.CloseBadRequest {
		t.Fatalf("closed with %d, want %d", code, wire.CloseBadRequest)
	}

	spans := connectSpans(t, rec, 3)
	for i, want := range []map[attribute.Key]string{
		{"sessiond.ws.attach": "message", "sessiond.ws.outcome": "resumed", "sessiond.sid": sessiond.LogID(created.Session.ID)},
		{"sessiond.ws.attach": "message", "sessiond.ws.outcome": "refused", "error.type": "subject_mismatch",
			"sessiond.ws.close_code": fmt.Sprint(int(wire.CloseUnauthorized))},
		{"sessiond.ws.attach": "message", "sessiond.ws.outcome": "refused", "sessiond.ws.close_code": fmt.Sprint(int(wire.CloseBadRequest))},
	} {
		if got := tracingtest.Attrs(spans[i]); !maps.Equal(got, want) {
			t.Errorf("connect %d: attributes %v, want %v", i, got, want)
		}
	}
	if got := spans[0].SpanContext().TraceID().String(); got != traceID {
		t.Errorf("the connect is in trace %s, want the handshake's %s", got, traceID)
	}
	if got := rec.ChildrenOf(spans[0]); !slices.Contains(got, "sessiond.store/Update") {
		t.Errorf("the attach's children are %q, want its store Update among them", got)
	}
	if leaks := rec.Leaks(created.Session.ID, created.Token, bob.Token); len(leaks) > 0 {
		t.Fatalf("spans carry a session id or token: %q", leaks)
	}
}
