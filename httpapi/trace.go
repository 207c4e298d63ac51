package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/sessiond/sessiond/internal/tracing"
)

// startSpan starts the server span of a request (Config.TracerProvider),
// named by its method until the router has found its route.
func (s *Server) startSpan(r *http.Request) (context.Context, trace.Span) {
	method := spanMethod(r.Method)
	name := method
	if method == semconv.HTTPRequestMethodOther.Value.AsString() {
		name = "HTTP"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return tracing.StartRequest(s.tracer, r, name,
		semconv.HTTPRequestMethodKey.String(method), semconv.URLScheme(scheme))
}

// endSpan names a request's span by its route's pattern ("GET
// /v1/sessions/{id}"; a request no route took keeps its method alone),
// records its status and error code, and ends it.
func endSpan(span trace.Span, r *http.Request, sw *statusWriter) {
	if _, path, ok := strings.Cut(r.Pattern, " "); ok && path != "/" {
		// The pattern's method is GET for a HEAD request: the request's
		// is named.
		span.SetName(spanMethod(r.Method) + " " + path)
		span.SetAttributes(semconv.HTTPRoute(path))
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(sw.status))
	switch {
	case sw.code != "":
		tracing.SetCode(span, sw.code)
	case sw.status >= http.StatusInternalServerError:
		span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(sw.status)))
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

// spanMethod is a request's method as spans name it: one of HTTP's, or
// "_OTHER", so that a client cannot make up span names.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return semconv.HTTPRequestMethodOther.Value.AsString()
}
