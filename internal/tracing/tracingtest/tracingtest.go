// Package tracingtest records the spans of a test and reads them back:
// what the tests of the traced packages (httpapi, ws, storetrace) share.
package tracingtest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Recorder is a tracer provider that samples every span and keeps those
// that end, in the order they end.
type Recorder struct {
	*sdktrace.TracerProvider
	rec *tracetest.SpanRecorder
}

// New returns a Recorder, shut down when the test ends.
func New(t testing.TB) *Recorder {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &Recorder{TracerProvider: tp, rec: rec}
}

// Ended returns the spans ended so far.
func (r *Recorder) Ended() []sdktrace.ReadOnlySpan { return r.rec.Ended() }

// Named returns the ended spans of that name.
func (r *Recorder) Named(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range r.rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// ChildrenOf returns the names of the ended spans whose parent is span.
func (r *Recorder) ChildrenOf(span sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, s := range r.rec.Ended() {
		if s.Parent().SpanID() == span.SpanContext().SpanID() && s.SpanContext().TraceID() == span.SpanContext().TraceID() {
			names = append(names, s.Name())
		}
	}
	return names
}

// Attrs returns a span's attributes, each value as a string.
func Attrs(s sdktrace.ReadOnlySpan) map[attribute.Key]string {
	m := map[attribute.Key]string{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value.String()
	}
	return m
}

// Leaks returns the secrets that appear in the name, an attribute, an
// event or the status of an ended span, as "span name: secret".
func (r *Recorder) Leaks(secrets ...string) []string {
	var leaks []string
	for _, s := range r.rec.Ended() {
		texts := []string{s.Name(), s.Status().Description}
		for _, kv := range s.Attributes() {
			texts = append(texts, kv.Value.String())
		}
		for _, ev := range s.Events() {
			texts = append(texts, ev.Name)
			for _, kv := range ev.Attributes {
				texts = append(texts, kv.Value.String())
			}
		}
		for _, secret := range secrets {
			if secret != "" && slices.ContainsFunc(texts, func(t string) bool { return strings.Contains(t, secret) }) {
				leaks = append(leaks, s.Name()+": "+secret)
			}
		}
	}
	return leaks
}
