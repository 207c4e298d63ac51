package storetrace_test

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/internal/redistest"
	"github.com/sessiond/sessiond/internal/tracing/tracingtest"
	"github.com/sessiond/sessiond/pebble"
	"github.com/sessiond/sessiond/redis"
	"github.com/sessiond/sessiond/sessiondtest"
	"github.com/sessiond/sessiond/storetrace"
)

// capabilities are the optional interfaces of a store that the engine,
// the webhook notifier and the conformance suite find by type assertion.
type capabilities struct{ tokenFinder, eventWaiter, consumers bool }

func capabilitiesOf(st sessiond.Store) capabilities {
	_, tf := st.(sessiond.TokenFinder)
	_, ew := st.(sessiond.EventWaiter)
	_, co := st.(sessiond.Consumers)
	return capabilities{tf, ew, co}
}

// Each real store, wrapped, has the optional interfaces it has unwrapped:
// no fewer (the engine would stop following a shared store's log, the
// notifier would refuse to start), no more (the engine would call what
// the store cannot do).
func TestWrapKeepsTheCapabilitiesOfEachStore(t *testing.T) {
	tp := tracingtest.New(t)
	stores := map[string]func(t *testing.T) sessiond.Store{
		"memory": func(*testing.T) sessiond.Store { return inmem.New(inmem.Options{}) },
		"pebble": func(t *testing.T) sessiond.Store {
			st, err := pebble.Open(pebble.Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"redis": func(t *testing.T) sessiond.Store {
			st, err := redis.OpenStore(t.Context(), redistest.Standalone(t), redis.StoreOptions{})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			wrapped := storetrace.Wrap(st, tp, storetrace.Options{System: name})
			t.Cleanup(func() {
				if err := wrapped.Close(); err != nil {
					t.Error(err)
				}
			})
			if got, want := capabilitiesOf(wrapped), capabilitiesOf(st); got != want {
				t.Errorf("wrapped %T has %+v; unwrapped, %+v", st, got, want)
			}
		})
	}
}

// The same for every combination of the optional interfaces, real stores
// or not: 8 kinds of store.
func TestWrapKeepsEveryCombinationOfCapabilities(t *testing.T) {
	tp := tracingtest.New(t)
	for _, st := range fakeStores() {
		want := capabilitiesOf(st)
		if got := capabilitiesOf(storetrace.Wrap(st, tp, storetrace.Options{})); got != want {
			t.Errorf("wrapped, a store with %+v has %+v", want, got)
		}
	}
}

// fakeStores returns a store with each combination of the optional
// interfaces; their methods are not called.
func fakeStores() []sessiond.Store {
	var base sessiond.Store = inmem.New(inmem.Options{})
	var tf tokenFinderFunc
	var ew eventWaiterFunc
	var co consumersFuncs
	return []sessiond.Store{
		struct{ sessiond.Store }{base},
		struct {
			sessiond.Store
			tokenFinderFunc
		}{base, tf},
		struct {
			sessiond.Store
			eventWaiterFunc
		}{base, ew},
		struct {
			sessiond.Store
			consumersFuncs
		}{base, co},
		struct {
			sessiond.Store
			tokenFinderFunc
			eventWaiterFunc
		}{base, tf, ew},
		struct {
			sessiond.Store
			tokenFinderFunc
			consumersFuncs
		}{base, tf, co},
		struct {
			sessiond.Store
			eventWaiterFunc
			consumersFuncs
		}{base, ew, co},
		struct {
			sessiond.Store
			tokenFinderFunc
			eventWaiterFunc
			consumersFuncs
		}{base, tf, ew, co},
	}
}

type tokenFinderFunc struct{}

func (tokenFinderFunc) FindToken(context.Context, sessiond.TokenHash) (*sessiond.Session, error) {
	return nil, sessiond.ErrNotFound
}

type eventWaiterFunc struct{}

func (eventWaiterFunc) WaitEvents(ctx context.Context, _ sessiond.Cursor) (sessiond.Cursor, error) {
	return sessiond.Cursor{}, ctx.Err()
}

type consumersFuncs struct{}

func (consumersFuncs) ClaimConsumer(context.Context, string, string, sessiond.Cursor, time.Time, time.Duration) (sessiond.Cursor, error) {
	return sessiond.Cursor{}, nil
}

func (consumersFuncs) CommitConsumer(context.Context, string, string, sessiond.Cursor, time.Time, time.Duration) error {
	return nil
}

// With tracing off there is no wrapper: the store itself.
func TestWrapWithoutATracerProviderIsTheStore(t *testing.T) {
	st := inmem.New(inmem.Options{})
	if got := storetrace.Wrap(st, nil, storetrace.Options{System: "memory"}); got != sessiond.Store(st) {
		t.Fatalf("Wrap(st, nil) = %T, want the store itself", got)
	}
}

// The wrapped memory store passes the store conformance suite, every call
// traced (Background: the suite's calls belong to no traced request).
func TestConformance(t *testing.T) {
	tp := tracingtest.New(t)
	sessiondtest.TestStore(t, sessiondtest.Harness{
		Open: func(testing.TB) sessiond.Store {
			return storetrace.Wrap(inmem.New(inmem.Options{}), tp, storetrace.Options{System: "memory", Background: true})
		},
	})
	if len(tp.Ended()) == 0 {
		t.Fatal("the suite's calls made no spans")
	}
}

// The engine conformance suite passes on the wrapped memory store, every
// call traced: the engine finds through the wrapper what it finds on the
// store (its log's waiter, its consumers).
func TestEngine(t *testing.T) {
	tp := tracingtest.New(t)
	sessiondtest.TestEngine(t, sessiondtest.Harness{
		Open: func(testing.TB) sessiond.Store {
			return storetrace.Wrap(inmem.New(inmem.Options{}), tp, storetrace.Options{System: "memory", Background: true})
		},
	})
}

// A call made for a traced request is a client span under the request's,
// named by the method, with the store's system and the session's log id;
// one made for no traced request is not traced.
func TestCallsOfATracedRequestAreItsChildren(t *testing.T) {
	tp := tracingtest.New(t)
	st := storetrace.Wrap(inmem.New(inmem.Options{}), tp, storetrace.Options{System: "memory"})
	defer st.Close()
	s, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)

	if _, err := st.Create(context.Background(), sessiond.Change{Session: s}, sessiond.Limit{}); err != nil {
		t.Fatal(err)
	}
	if n := len(tp.Ended()); n != 0 {
		t.Fatalf("a call of no traced request made %d spans", n)
	}

	ctx, parent := tp.Tracer("test").Start(context.Background(), "GET /v1/sessions/{id}")
	if _, err := st.Get(ctx, s.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, "missing"); !errors.Is(err, sessiond.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
	parent.End()

	spans := tp.Ended()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 2 Gets and their parent", len(spans))
	}
	for i, want := range []map[attribute.Key]string{
		{"db.system.name": "memory", "db.operation.name": "Get", "sessiond.sid": sessiond.LogID(s.ID)},
		{"db.system.name": "memory", "db.operation.name": "Get", "sessiond.sid": sessiond.LogID("missing"), "error.type": "session_not_found"},
	} {
		sp := spans[i]
		if sp.Name() != "sessiond.store/Get" || sp.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %d: %s (%s), want sessiond.store/Get (client)", i, sp.Name(), sp.SpanKind())
		}
		if sp.Parent().SpanID() != parent.SpanContext().SpanID() {
			t.Errorf("span %d: not a child of the request's", i)
		}
		if got := tracingtest.Attrs(sp); !maps.Equal(got, want) {
			t.Errorf("span %d: attributes %v, want %v", i, got, want)
		}
		if sp.Status().Code != codes.Unset {
			t.Errorf("span %d: status %v: an answer is no fault", i, sp.Status())
		}
	}
}

// A fault of the store (any error that is not one of the store's
// answers) sets the span's status to Error, with the code internal; its
// message, which may name what it was about, is not recorded.
func TestAFaultIsAnErrorSpan(t *testing.T) {
	tp := tracingtest.New(t)
	faulty := &sessiondtest.FaultyStore{Store: inmem.New(inmem.Options{})}
	faulty.UpdatesDown.Store(true)
	st := storetrace.Wrap(faulty, tp, storetrace.Options{})
	defer st.Close()
	s, _ := sessiondtest.NewSession("alice", sessiondtest.Epoch)
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	if err := st.Update(ctx, sessiond.Change{Session: s}); !errors.Is(err, sessiondtest.ErrFault) {
		t.Fatalf("Update = %v, want the injected fault", err)
	}
	parent.End()
	sp := tp.Ended()[0]
	if sp.Status().Code != codes.Error || tracingtest.Attrs(sp)["error.type"] != "internal" {
		t.Fatalf("span %s: status %v, attributes %v; want Error and error.type internal", sp.Name(), sp.Status(), tracingtest.Attrs(sp))
	}
	if len(sp.Events()) != 0 || sp.Status().Description != "internal" {
		t.Fatalf("span %s records the error's text: %v, %q", sp.Name(), sp.Events(), sp.Status().Description)
	}
}
