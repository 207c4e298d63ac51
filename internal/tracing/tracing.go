// Package tracing holds what the edges (httpapi, ws) and the store wrapper
// (storetrace) share to trace with OpenTelemetry: how a span of an
// incoming request starts, how an error code is recorded on a span, and
// the names of sessiond's own attributes. Each of them takes a
// trace.TracerProvider; nil means no tracing at all, and none of this
// runs.
//
// What a span never carries: a session id (only its sessiond.LogID, as
// the logs have it), a token, a credential, a subject, a device, a
// request's path or query (a route's pattern instead), an error's
// message (only its stable code).
package tracing

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/wire"
)

// SIDKey is the attribute naming the session an operation is about, by its
// sessiond.LogID: the "sid" of the logs.
const SIDKey = attribute.Key("sessiond.sid")

// Tracer returns tp's tracer for the package named scope (its import
// path), or nil if tp is nil: tracing off.
func Tracer(tp trace.TracerProvider, scope string) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(scope)
}

// traceContext reads and writes the W3C traceparent and tracestate
// headers.
var traceContext propagation.TraceContext

// StartRequest starts the span of an incoming request r: a server span,
// child of the trace its traceparent header continues if it has one; or,
// if r's context holds a span of this process already (a handler served
// under another traced one: the WebSocket edge under httpapi), an internal
// span under it.
func StartRequest(t trace.Tracer, r *http.Request, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx := r.Context()
	kind := trace.SpanKindInternal
	if sc := trace.SpanContextFromContext(ctx); !sc.IsValid() || sc.IsRemote() {
		ctx = traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
		kind = trace.SpanKindServer
	}
	return t.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// SetCode records on span that its operation ended with the error code:
// error.type is the code, and the span's status is Error if the code is a
// fault of the server or its store (one the API answers with a 5xx), not
// an answer to the caller (session_not_found, unauthorized, conflict...).
// An empty code records nothing.
func SetCode(span trace.Span, code sessiond.Code) {
	if code == "" {
		return
	}
	span.SetAttributes(semconv.ErrorTypeKey.String(string(code)))
	if wire.Status(code) >= http.StatusInternalServerError {
		span.SetStatus(codes.Error, string(code))
	}
}
