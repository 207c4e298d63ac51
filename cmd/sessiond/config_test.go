package main

import (
	"flag"
	"testing"
	"time"
)

// The example shipped in docs/ must load as written.
func TestExampleConfigLoads(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cf := newConfigFlags(fs)
	if err := fs.Parse([]string{"--config", "../../docs/sessiond.example.yaml"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := cf.load(func(string) string { return "" })
	if err != nil {
		t.Fatalf("docs/sessiond.example.yaml: %v", err)
	}
	policies, def, err := cfg.policies()
	if err != nil || def != "web" || len(policies) != 4 {
		t.Fatalf("policies %v, default %q, %v", policies, def, err)
	}
	for _, p := range policies {
		if p.Name == "web" && (p.TTL != 720*time.Hour || p.RotateAfter != 15*time.Minute || p.OnLimit != "evict_oldest") {
			t.Fatalf("web policy read as %+v", p)
		}
		if p.Name == "device" && (p.DisconnectGrace != 30*time.Second || p.OnConnect != "replace" || p.MaxConnections != 1) {
			t.Fatalf("device policy read as %+v", p)
		}
	}
	if cfg.ConnectPolicy != "device" || cfg.JWT.Leeway != Duration(30*time.Second) || cfg.WebSocket.MessageRate != 20 {
		t.Fatalf("connect_policy %q, jwt %+v, websocket %+v", cfg.ConnectPolicy, cfg.JWT, cfg.WebSocket)
	}
}
