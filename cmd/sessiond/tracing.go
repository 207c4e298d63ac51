package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Tracing (docs/operations.md, "Tracing") is configured by the standard
// OTEL_* variables alone, read from the process's environment, where the
// OpenTelemetry SDK reads them: tracingFromEnv decides whether it is on
// and over which protocol; the exporter, the batching, the sampler and
// the resource's attributes read their own variables.

// Protocols of OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL that sessiond
// exports with.
const (
	protocolHTTP = "http/protobuf"
	protocolGRPC = "grpc"
)

// tracingFlushTimeout bounds the export of the spans still buffered when
// the server stops.
const tracingFlushTimeout = 5 * time.Second

// tracingSettings is what the OTEL_* variables ask of tracing.
type tracingSettings struct {
	on       bool
	protocol string // protocolHTTP or protocolGRPC
	endpoint string // where the spans go, for the log: without user or query
}

// tracingFromEnv reads the OTEL_* variables that turn tracing on: off
// unless OTEL_TRACES_EXPORTER is otlp or an OTLP endpoint is set; always
// off with OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none. A value
// sessiond cannot honour is an error, so that tracing asked for is never
// silently off.
func tracingFromEnv(getenv func(string) string) (tracingSettings, error) {
	env := func(k string) string { return strings.TrimSpace(getenv(k)) }
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") {
		return tracingSettings{}, nil
	}
	var set tracingSettings
	exporters := env("OTEL_TRACES_EXPORTER")
	endpointVar := "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	endpoint := env(endpointVar)
	if endpoint == "" {
		endpointVar = "OTEL_EXPORTER_OTLP_ENDPOINT"
		endpoint = env(endpointVar)
	}
	if exporters == "" {
		set.on = endpoint != ""
	}
	for e := range strings.SplitSeq(exporters, ",") {
		switch e = strings.ToLower(strings.TrimSpace(e)); e {
		case "otlp":
			set.on = true
		case "none", "":
		default:
			return tracingSettings{}, fmt.Errorf("OTEL_TRACES_EXPORTER=%s: sessiond exports traces with otlp, or none", exporters)
		}
	}
	if !set.on {
		return tracingSettings{}, nil
	}
	protocolVar := "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	set.protocol = env(protocolVar)
	if set.protocol == "" {
		protocolVar = "OTEL_EXPORTER_OTLP_PROTOCOL"
		set.protocol = env(protocolVar)
	}
	switch set.protocol {
	case "":
		set.protocol = protocolHTTP
	case protocolHTTP, protocolGRPC:
	default:
		return tracingSettings{}, fmt.Errorf("%s=%s: sessiond exports OTLP as %s or %s", protocolVar, set.protocol, protocolHTTP, protocolGRPC)
	}
	if endpoint == "" {
		// The exporters' default.
		set.endpoint = "https://localhost:4318"
		if set.protocol == protocolGRPC {
			set.endpoint = "https://localhost:4317"
		}
		return set, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return tracingSettings{}, fmt.Errorf("%s: want an http:// or https:// URL, such as http://collector:4318", endpointVar)
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	set.endpoint = u.String()
	return set, nil
}

// startTracing starts exporting spans if the OTEL_* variables ask for it
// (tracingFromEnv), and says so in the log; it returns nil, and starts
// nothing, if they do not. node is the server's node name, recorded as
// service.instance.id.
//
// The SDK reports what goes wrong later (an export that fails, a variable
// it cannot parse) through OpenTelemetry's global error handler and
// logger, which go to log from now on.
func startTracing(ctx context.Context, getenv func(string) string, node string, log *slog.Logger) (*sdktrace.TracerProvider, error) {
	set, err := tracingFromEnv(getenv)
	if err != nil {
		return nil, usageError{"tracing: " + err.Error()}
	}
	if !set.on {
		return nil, nil
	}
	otel.SetLogger(logr.FromSlogHandler(sdkLogHandler{log.With("component", "tracing").Handler()}))
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn("tracing: "+err.Error(), "component", "tracing")
	}))
	var exp sdktrace.SpanExporter
	if set.protocol == protocolGRPC {
		exp, err = otlptracegrpc.New(ctx)
	} else {
		exp, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("tracing: the OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(),
		resource.WithAttributes(semconv.ServiceName("sessiond"), semconv.ServiceVersion(serverVersion()), semconv.ServiceInstanceID(node)),
		resource.WithFromEnv()) // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
	if err != nil {
		log.Warn("tracing: some resource attributes are left out (OTEL_RESOURCE_ATTRIBUTES)", "err", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)) // OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*
	service, _ := res.Set().Value(semconv.ServiceNameKey)
	log.Info("tracing on: exporting spans over OTLP", "protocol", set.protocol, "endpoint", set.endpoint, "service", service.String())
	return tp, nil
}

// sdkLogHandler passes the OpenTelemetry SDK's log lines on with their
// message and error but without their other values: the SDK logs the text
// of a variable it cannot parse as it is, and an OTEL_EXPORTER_OTLP_HEADERS
// entry holds a credential.
type sdkLogHandler struct{ slog.Handler }

func (h sdkLogHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" {
			out.AddAttrs(a)
		}
		return true
	})
	return h.Handler.Handle(ctx, out)
}

// WithAttrs drops the SDK's values (logr's WithValues and WithName).
func (h sdkLogHandler) WithAttrs([]slog.Attr) slog.Handler { return h }

func (h sdkLogHandler) WithGroup(string) slog.Handler { return h }

// stopTracing exports the spans still buffered, within
// tracingFlushTimeout, and stops tp. A collector that does not take them
// costs the spans, not the shutdown: it is logged.
func stopTracing(tp *sdktrace.TracerProvider, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), tracingFlushTimeout)
	defer cancel()
	if err := tp.Shutdown(ctx); err != nil {
		log.Warn("tracing: the last spans were not exported", "err", err)
	}
}
