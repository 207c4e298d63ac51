// Package storetrace traces a sessiond.Store with OpenTelemetry: Wrap
// returns the store with a client span around each call, named
// "sessiond.store/<Method>" ("sessiond.store/Get"), under the span of the
// request the call is made for.
//
// Only calls made for a traced request are traced: a call whose context
// holds no span that records (the engine's deadlines, its lease renewals,
// the followers of the event log; a request the sampler left out) passes
// straight through, so that the background work of a node does not turn
// into a stream of traces of one span each; Options.Background traces
// those too.
//
// A span carries db.system.name (Options.System), db.operation.name (the
// method), sessiond.sid (the sessiond.LogID of the session the call
// names, for the calls that name one) and, for a call that fails,
// error.type (the error's sessiond.Code), with the status Error for a
// fault (internal, store_unavailable, store_full). Never a session id, a
// token hash, a subject or an error's message.
//
// The wrapped store has exactly the optional capabilities of the store it
// wraps (sessiond.TokenFinder, sessiond.EventWaiter, sessiond.Consumers),
// which the engine and the webhook notifier find by type assertion.
package storetrace

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/tracing"
)

// Options configure Wrap.
type Options struct {
	// System names the store in the spans' db.system.name: "pebble",
	// "redis", "memory". Empty leaves the attribute out.
	System string
	// Background traces the calls made for no traced request too, each
	// as the root of a trace of its own: the engine's deadlines, its
	// lease renewals, the followers of the event log (whose WaitEvents
	// spans last until the log grows). Many traces a second on a busy
	// node; for a look at that work, not for every day.
	Background bool
}

// Wrap returns st traced with tp's tracer, or st itself if tp is nil: no
// wrapper at all when tracing is off.
func Wrap(st sessiond.Store, tp trace.TracerProvider, o Options) sessiond.Store {
	if tp == nil {
		return st
	}
	s := &store{st: st, tracer: tracing.Tracer(tp, "github.com/sessiond/sessiond/storetrace"), background: o.Background}
	if o.System != "" {
		s.attrs = []attribute.KeyValue{semconv.DBSystemNameKey.String(o.System)}
	}
	tf, isTF := st.(sessiond.TokenFinder)
	ew, isEW := st.(sessiond.EventWaiter)
	co, isCo := st.(sessiond.Consumers)
	t, w, c := tokenFinder{s, tf}, eventWaiter{s, ew}, consumers{s, co}
	switch {
	case isTF && isEW && isCo:
		return struct {
			*store
			tokenFinder
			eventWaiter
			consumers
		}{s, t, w, c}
	case isTF && isEW:
		return struct {
			*store
			tokenFinder
			eventWaiter
		}{s, t, w}
	case isTF && isCo:
		return struct {
			*store
			tokenFinder
			consumers
		}{s, t, c}
	case isEW && isCo:
		return struct {
			*store
			eventWaiter
			consumers
		}{s, w, c}
	case isTF:
		return struct {
			*store
			tokenFinder
		}{s, t}
	case isEW:
		return struct {
			*store
			eventWaiter
		}{s, w}
	case isCo:
		return struct {
			*store
			consumers
		}{s, c}
	}
	return s
}

// store traces the methods every Store has.
type store struct {
	st         sessiond.Store
	tracer     trace.Tracer
	attrs      []attribute.KeyValue // of every span: db.system.name
	background bool                 // Options.Background
}

var _ sessiond.Store = (*store)(nil)

// prefix starts the name of every span: "sessiond.store/Get".
const prefix = "sessiond.store/"

// traced runs f, the call of a method, in the span named name (prefix and
// the method) of a call made for the session sid ("": none), if ctx
// holds a span that records (the request the call is made for is traced,
// and sampled) or Options.Background says so; else it runs f alone.
func traced[T any](s *store, ctx context.Context, name, sid string, f func(context.Context) (T, error)) (T, error) {
	if !s.background && !trace.SpanFromContext(ctx).IsRecording() {
		return f(ctx)
	}
	ctx, span := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(s.attrs...), trace.WithAttributes(semconv.DBOperationName(name[len(prefix):])))
	if sid != "" && span.IsRecording() {
		span.SetAttributes(tracing.SIDKey.String(sessiond.LogID(sid)))
	}
	v, err := f(ctx)
	tracing.SetCode(span, sessiond.ErrorCode(err))
	span.End()
	return v, err
}

// tracedErr is traced for a method that returns an error alone.
func tracedErr(s *store, ctx context.Context, name, sid string, f func(context.Context) error) error {
	_, err := traced(s, ctx, name, sid, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) })
	return err
}

// sessionOf is the id of c's session, if c has one.
func sessionOf(c sessiond.Change) string {
	if c.Session == nil {
		return ""
	}
	return c.Session.ID
}

func (s *store) Create(ctx context.Context, c sessiond.Change, lim sessiond.Limit) ([]*sessiond.Session, error) {
	return traced(s, ctx, prefix+"Create", sessionOf(c), func(ctx context.Context) ([]*sessiond.Session, error) {
		return s.st.Create(ctx, c, lim)
	})
}

func (s *store) Get(ctx context.Context, id string) (*sessiond.Session, error) {
	return traced(s, ctx, prefix+"Get", id, func(ctx context.Context) (*sessiond.Session, error) {
		return s.st.Get(ctx, id)
	})
}

func (s *store) FindDevice(ctx context.Context, subject, deviceID string) ([]*sessiond.Session, error) {
	return traced(s, ctx, prefix+"FindDevice", "", func(ctx context.Context) ([]*sessiond.Session, error) {
		return s.st.FindDevice(ctx, subject, deviceID)
	})
}

func (s *store) Update(ctx context.Context, c sessiond.Change) error {
	return tracedErr(s, ctx, prefix+"Update", sessionOf(c), func(ctx context.Context) error {
		return s.st.Update(ctx, c)
	})
}

func (s *store) Delete(ctx context.Context, id string, version uint64) error {
	return tracedErr(s, ctx, prefix+"Delete", id, func(ctx context.Context) error {
		return s.st.Delete(ctx, id, version)
	})
}

func (s *store) Live(ctx context.Context, subject string) ([]*sessiond.Session, error) {
	return traced(s, ctx, prefix+"Live", "", func(ctx context.Context) ([]*sessiond.Session, error) {
		return s.st.Live(ctx, subject)
	})
}

func (s *store) List(ctx context.Context, q sessiond.Query) (sessiond.Page, error) {
	return traced(s, ctx, prefix+"List", "", func(ctx context.Context) (sessiond.Page, error) {
		return s.st.List(ctx, q)
	})
}

func (s *store) Stats(ctx context.Context) (sessiond.StoreStats, error) {
	return traced(s, ctx, prefix+"Stats", "", s.st.Stats)
}

func (s *store) Conns(ctx context.Context, sessionID string) ([]sessiond.Connection, error) {
	return traced(s, ctx, prefix+"Conns", sessionID, func(ctx context.Context) ([]sessiond.Connection, error) {
		return s.st.Conns(ctx, sessionID)
	})
}

func (s *store) Conn(ctx context.Context, connID string) (*sessiond.Connection, error) {
	return traced(s, ctx, prefix+"Conn", "", func(ctx context.Context) (*sessiond.Connection, error) {
		return s.st.Conn(ctx, connID)
	})
}

func (s *store) NodeConns(ctx context.Context, node string, limit int) ([]sessiond.Connection, error) {
	return traced(s, ctx, prefix+"NodeConns", "", func(ctx context.Context) ([]sessiond.Connection, error) {
		return s.st.NodeConns(ctx, node, limit)
	})
}

func (s *store) ConnNodes(ctx context.Context) ([]string, error) {
	return traced(s, ctx, prefix+"ConnNodes", "", s.st.ConnNodes)
}

func (s *store) PutLease(ctx context.Context, l sessiond.NodeLease) error {
	return tracedErr(s, ctx, prefix+"PutLease", "", func(ctx context.Context) error {
		return s.st.PutLease(ctx, l)
	})
}

func (s *store) Leases(ctx context.Context) ([]sessiond.NodeLease, error) {
	return traced(s, ctx, prefix+"Leases", "", s.st.Leases)
}

func (s *store) DeleteLease(ctx context.Context, node string, version uint64) error {
	return tracedErr(s, ctx, prefix+"DeleteLease", "", func(ctx context.Context) error {
		return s.st.DeleteLease(ctx, node, version)
	})
}

func (s *store) Events(ctx context.Context, after sessiond.Cursor, limit int) ([]sessiond.Event, error) {
	return traced(s, ctx, prefix+"Events", "", func(ctx context.Context) ([]sessiond.Event, error) {
		return s.st.Events(ctx, after, limit)
	})
}

func (s *store) Head(ctx context.Context) (sessiond.Cursor, error) {
	return traced(s, ctx, prefix+"Head", "", s.st.Head)
}

func (s *store) ClaimDue(ctx context.Context, now time.Time, hold time.Duration, limit int) ([]sessiond.Due, time.Time, error) {
	var next time.Time
	due, err := traced(s, ctx, prefix+"ClaimDue", "", func(ctx context.Context) (due []sessiond.Due, err error) {
		due, next, err = s.st.ClaimDue(ctx, now, hold, limit)
		return due, err
	})
	return due, next, err
}

func (s *store) Reschedule(ctx context.Context, d sessiond.Due, version uint64) error {
	return tracedErr(s, ctx, prefix+"Reschedule", "", func(ctx context.Context) error {
		return s.st.Reschedule(ctx, d, version)
	})
}

// Close closes the wrapped store; it is not traced (it takes no context).
func (s *store) Close() error { return s.st.Close() }

// tokenFinder traces sessiond.TokenFinder.
type tokenFinder struct {
	s  *store
	tf sessiond.TokenFinder
}

func (t tokenFinder) FindToken(ctx context.Context, h sessiond.TokenHash) (*sessiond.Session, error) {
	return traced(t.s, ctx, prefix+"FindToken", "", func(ctx context.Context) (*sessiond.Session, error) {
		return t.tf.FindToken(ctx, h)
	})
}

// eventWaiter traces sessiond.EventWaiter.
type eventWaiter struct {
	s  *store
	ew sessiond.EventWaiter
}

func (w eventWaiter) WaitEvents(ctx context.Context, after sessiond.Cursor) (sessiond.Cursor, error) {
	return traced(w.s, ctx, prefix+"WaitEvents", "", func(ctx context.Context) (sessiond.Cursor, error) {
		return w.ew.WaitEvents(ctx, after)
	})
}

// consumers traces sessiond.Consumers.
type consumers struct {
	s  *store
	co sessiond.Consumers
}

func (c consumers) ClaimConsumer(ctx context.Context, name, owner string, start sessiond.Cursor, now time.Time, ttl time.Duration) (sessiond.Cursor, error) {
	return traced(c.s, ctx, prefix+"ClaimConsumer", "", func(ctx context.Context) (sessiond.Cursor, error) {
		return c.co.ClaimConsumer(ctx, name, owner, start, now, ttl)
	})
}

func (c consumers) CommitConsumer(ctx context.Context, name, owner string, cur sessiond.Cursor, now time.Time, ttl time.Duration) error {
	return tracedErr(c.s, ctx, prefix+"CommitConsumer", "", func(ctx context.Context) error {
		return c.co.CommitConsumer(ctx, name, owner, cur, now, ttl)
	})
}
