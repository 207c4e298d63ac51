package main

import (
	"net/http"
	"strings"
	"testing"
)

// --debug-addr serves Go's profiler on a loopback address of its own, and
// only on loopback.
func TestDebugAddr(t *testing.T) {
	cfg := testConfig(t)
	cfg.DebugAddr = "0.0.0.0:6060"
	if err := cfg.check(); err == nil || !strings.Contains(err.Error(), "debug_addr") {
		t.Fatalf("check with a debug address off loopback: %v; want a debug_addr error", err)
	}
	cfg.DebugAddr = freeAddr(t)
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg)
	defer ts.stop(t)
	resp, err := http.Get("http://" + cfg.DebugAddr + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("profiler index: %s", resp.Status)
	}
	// The API does not serve it.
	resp, err = ts.hc.Get(ts.url + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("the API's /debug/pprof/: %s, want 404", resp.Status)
	}
}
