package redistest

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
)

// Proxy is a TCP proxy in front of a server that a test owns: toxiproxy,
// run in-process as a library, on a free port of 127.0.0.1. Clients that
// reach the server through it can be made to wait (a latency toxic), be
// cut (Disable), or have their connections broken (a reset_peer or
// timeout toxic), while the server itself runs on. It stops when the test
// ends. Its methods must be called from the test's goroutine.
type Proxy struct {
	t testing.TB
	p *toxiproxy.Proxy
}

// StartProxy starts a proxy to upstream (host:port) and returns once it
// listens.
func StartProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	api := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(api, "redis", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("redistest: starting a proxy to %s: %v", upstream, err)
	}
	t.Cleanup(p.Stop)
	return &Proxy{t: t, p: p}
}

// Addr returns the host:port clients dial to reach the server through the
// proxy. It stays the same across Disable and Enable.
func (p *Proxy) Addr() string {
	p.p.Lock()
	defer p.p.Unlock()
	return p.p.Listen
}

// Disable cuts the way to the server: the proxy stops listening (a dial
// is refused) and closes every connection through it.
func (p *Proxy) Disable() { p.p.Stop() }

// Enable opens the way again after Disable, on the same address.
func (p *Proxy) Enable() {
	p.t.Helper()
	if err := p.p.Start(); err != nil {
		p.t.Fatalf("redistest: enabling the proxy again on %s: %v", p.Addr(), err)
	}
}

// AddToxic adds a toxic named name of type typ ("latency", "timeout",
// "reset_peer", ... as toxiproxy names them) on stream ("upstream":
// client to server, "downstream": server to client) with attrs (as
// toxiproxy's API takes them, e.g. {"latency": 500} in milliseconds).
// It applies to connections open through the proxy and to new ones.
func (p *Proxy) AddToxic(name, typ, stream string, attrs map[string]any) {
	p.t.Helper()
	body, err := json.Marshal(map[string]any{"name": name, "type": typ, "stream": stream, "toxicity": 1, "attributes": attrs})
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.p.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
		p.t.Fatalf("redistest: adding the %s toxic %q: %v", typ, name, err)
	}
}

// RemoveToxic removes the toxic named name.
func (p *Proxy) RemoveToxic(name string) {
	p.t.Helper()
	if err := p.p.Toxics.RemoveToxic(context.Background(), name); err != nil {
		p.t.Fatalf("redistest: removing the toxic %q: %v", name, err)
	}
}
