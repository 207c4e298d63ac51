package main

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/sessiond/sessiond/inmem"
	"github.com/sessiond/sessiond/pebble"
)

// clearOTELEnv unsets the OTEL_* variables of the process, which the
// tracing of every server the tests start reads (as the SDK does), so
// that a developer's own do not turn it on; the tests of tracing set
// theirs with t.Setenv.
func clearOTELEnv() {
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			_ = os.Unsetenv(k)
		}
	}
}

func TestTracingFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want tracingSettings
		err  string
	}{
		{name: "nothing set: off", env: map[string]string{}},
		{name: "an endpoint turns it on", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			want: tracingSettings{on: true, protocol: "http/protobuf", endpoint: "http://collector:4318"}},
		{name: "the traces endpoint wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://a:4318", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://b/v1/traces"},
			want: tracingSettings{on: true, protocol: "http/protobuf", endpoint: "https://b/v1/traces"}},
		{name: "the exporter otlp turns it on, to the default endpoint", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"},
			want: tracingSettings{on: true, protocol: "http/protobuf", endpoint: "https://localhost:4318"}},
		{name: "grpc", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			want: tracingSettings{on: true, protocol: "grpc", endpoint: "https://localhost:4317"}},
		{name: "the traces protocol wins", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
			want: tracingSettings{on: true, protocol: "grpc", endpoint: "http://c:4317"}},
		{name: "the exporter none: off", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}},
		{name: "the SDK disabled: off", env: map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}},
		{name: "no user or query in the log", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:secret@collector:4318/?key=secret"},
			want: tracingSettings{on: true, protocol: "http/protobuf", endpoint: "https://collector:4318/"}},
		{name: "another exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp,zipkin"}, err: "OTEL_TRACES_EXPORTER=otlp,zipkin"},
		{name: "http/json", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"}, err: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json"},
		{name: "an endpoint that is no URL", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, err: "OTEL_EXPORTER_OTLP_ENDPOINT: want an http:// or https:// URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tracingFromEnv(envOf(tc.env))
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error %v, want one saying %q", err, tc.err)
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case got != tc.want:
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// By default, and with OTEL_SDK_DISABLED=true whatever else is set, the
// server does not trace: no tracer provider, the store unwrapped.
func TestTracingIsOffUnlessAskedFor(t *testing.T) {
	s := startServer(t, testConfig(t)).s
	if _, ok := s.store.(*pebble.Store); !ok || s.traces != nil {
		t.Fatalf("with no OTEL_* variable: store %T, tracer provider %v; want the store itself, none", s.store, s.traces)
	}
	t.Setenv("OTEL_SDK_DISABLED", "true")
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	cfg := testConfig(t)
	cfg.Store = "memory"
	s = startServer(t, cfg).s
	if _, ok := s.store.(*inmem.Store); !ok || s.traces != nil {
		t.Fatalf("with OTEL_SDK_DISABLED=true: store %T, tracer provider %v; want the store itself, none", s.store, s.traces)
	}
}

// A value of the OTEL_* variables that sessiond cannot honour stops serve
// with a message naming it (exit 2, as a mistake in the configuration),
// rather than leaving the tracing asked for silently off; config check
// says the same, and where spans go when the variables are good.
func TestConfigCheckAndServeCheckTheTracingVariables(t *testing.T) {
	dir := t.TempDir()
	if _, out, _ := cli(t, noEnv, "config", "check", "--data-dir", dir); !strings.Contains(out, "tracing:") || !strings.Contains(out, "off (no OTEL_* variable asks for it)") {
		t.Errorf("config check without OTEL_* variables said:\n%s", out)
	}
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
	if _, out, _ := cli(t, noEnv, "config", "check", "--data-dir", dir); !strings.Contains(out, "OTLP http/protobuf to http://collector:4318 (not connected to)") {
		t.Errorf("config check with an OTLP endpoint said:\n%s", out)
	}
	t.Setenv("OTEL_TRACES_EXPORTER", "zipkin")
	for _, args := range [][]string{
		{"config", "check", "--data-dir", dir},
		{"serve", "--addr", "127.0.0.1:0", "--store", "memory", "--data-dir", dir},
	} {
		code, _, errOut := cli(t, noEnv, args...)
		if code != 2 || !strings.Contains(errOut, "OTEL_TRACES_EXPORTER=zipkin") {
			t.Errorf("%s: exit %d, stderr:\n%s\nwant 2 and a message naming OTEL_TRACES_EXPORTER=zipkin", args[0], code, errOut)
		}
	}
}

// What the SDK cannot parse in the variables it reads itself is logged as
// a warning, and tracing goes on with the SDK's default; the variable's
// text is not logged (a header holds a credential).
func TestTracingVariablesTheSDKRejectsAreLoggedWithoutTheirValues(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
	t.Setenv("OTEL_TRACES_SAMPLER", "bogus")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "Authorization Bearer s3cret-key")
	cfg := testConfig(t)
	cfg.Store = "memory"
	ts := startServer(t, cfg)
	logs := ts.logs.String()
	for _, want := range []string{"tracing: unsupported sampler: bogus", `"msg":"parse headers"`, "tracing on"} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs do not say %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "s3cret-key") {
		t.Errorf("the logs carry the header's credential:\n%s", logs)
	}
}

// otlpReceiver collects the spans exported to it.
type otlpReceiver struct {
	mu    sync.Mutex
	spans []*tracepb.Span
	res   map[string]string // the resource's attributes, as strings
}

func (r *otlpReceiver) add(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		r.res = attrMap(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
}

func (r *otlpReceiver) named(name string) []*tracepb.Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*tracepb.Span
	for _, s := range r.spans {
		if s.GetName() == name {
			out = append(out, s)
		}
	}
	return out
}

func attrMap(kvs []*commonpb.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.GetKey()] = kv.GetValue().GetStringValue()
	}
	return m
}

// serveOTLPHTTP answers POST /v1/traces as a collector does over
// OTLP/HTTP (protobuf), and returns its URL.
func serveOTLPHTTP(t *testing.T, r *otlpReceiver) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		var export coltracepb.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &export)
		}
		if req.Method != "POST" || req.URL.Path != "/v1/traces" || err != nil {
			t.Errorf("the receiver got %s %s: %v", req.Method, req.URL.Path, err)
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		r.add(&export)
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// grpcReceiver is the receiver as a gRPC TraceService.
type grpcReceiver struct {
	coltracepb.UnimplementedTraceServiceServer
	r *otlpReceiver
}

func (g grpcReceiver) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	g.r.add(req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// serveOTLPGRPC answers OTLP over gRPC, and returns its URL.
func serveOTLPGRPC(t *testing.T, r *otlpReceiver) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, grpcReceiver{r: r})
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return "http://" + ln.Addr().String()
}

// The server started with OTEL_EXPORTER_OTLP_ENDPOINT exports its spans
// there, over either protocol, at the latest when it stops: a request's
// server span with the store's spans under it, continuing the caller's
// traceparent; a WebSocket connect's span under its request's; all from a
// resource naming the service, its version and the node.
func TestTracingExportsToTheOTLPEndpoint(t *testing.T) {
	for _, protocol := range []string{protocolHTTP, protocolGRPC} {
		t.Run(protocol, func(t *testing.T) {
			r := &otlpReceiver{}
			endpoint := serveOTLPHTTP(t, r)
			if protocol == protocolGRPC {
				endpoint = serveOTLPGRPC(t, r)
			}
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
			t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
			cfg := testConfig(t)
			cfg.Store, cfg.Node, cfg.JWT.Secret = "memory", "node-a", testSecret
			ts := startServer(t, cfg)
			if !strings.Contains(ts.logs.String(), "tracing on: exporting spans over OTLP") || !strings.Contains(ts.logs.String(), endpoint) {
				t.Errorf("the start did not log where spans go:\n%s", ts.logs)
			}

			const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
			req, _ := http.NewRequest("POST", ts.url+"/v1/sessions", strings.NewReader(`{"subject":"alice"}`))
			req.Header.Set("Authorization", "Bearer "+ts.key)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Traceparent", "00-"+traceID+"-"+parentID+"-01")
			resp, err := ts.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("create: %s", resp.Status)
			}
			c, _, err := wsDial(t, "ws://"+ts.addr+"/v1/connect?device_id=d1", wsOpts{token: cliToken(t, "bob", "")})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := readAck(c); err != nil {
				t.Fatal(err)
			}
			if err := ts.stop(t); err != nil {
				t.Fatal(err)
			}

			creates := r.named("POST /v1/sessions")
			if len(creates) != 1 {
				t.Fatalf("%d spans named POST /v1/sessions arrived", len(creates))
			}
			create := creates[0]
			if got := hex.EncodeToString(create.GetTraceId()); got != traceID || hex.EncodeToString(create.GetParentSpanId()) != parentID {
				t.Errorf("the create's span is in trace %s under %x; want the caller's %s under %s", got, create.GetParentSpanId(), traceID, parentID)
			}
			if a := attrMap(create.GetAttributes()); a["http.route"] != "/v1/sessions" {
				t.Errorf("the create's span has http.route %q", a["http.route"])
			}
			var stores []*tracepb.Span // the create's
			for _, s := range r.named("sessiond.store/Create") {
				if string(s.GetParentSpanId()) == string(create.GetSpanId()) {
					stores = append(stores, s)
				}
			}
			if len(stores) != 1 {
				t.Errorf("%d store Create spans under the create's span, want one", len(stores))
			} else if a := attrMap(stores[0].GetAttributes()); a["db.system.name"] != "memory" {
				t.Errorf("the store's span has db.system.name %q, want memory", a["db.system.name"])
			}
			connects, upgrades := r.named("sessiond.ws/connect"), r.named("GET /v1/connect")
			if len(connects) != 1 || len(upgrades) != 1 || string(connects[0].GetParentSpanId()) != string(upgrades[0].GetSpanId()) {
				t.Errorf("%d connect spans, %d GET /v1/connect spans; want one of each, the first under the second", len(connects), len(upgrades))
			} else if a := attrMap(connects[0].GetAttributes()); a["sessiond.ws.outcome"] != "created" || connects[0].GetKind() != tracepb.Span_SPAN_KIND_INTERNAL {
				t.Errorf("the connect's span: %s, attributes %v; want an internal span, outcome created", connects[0].GetKind(), a)
			}
			r.mu.Lock()
			res := r.res
			r.mu.Unlock()
			if res["service.name"] != "sessiond" || res["service.version"] != serverVersion() || res["service.instance.id"] != "node-a" {
				t.Errorf("resource %v; want service sessiond, version %s, instance node-a", res, serverVersion())
			}
		})
	}
}
