package main

import (
	"flag"
	"strings"
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

// A flag holding a duration or a count that is neither is refused, by
// config and serve alike, naming the flag.
func TestFlagValueErrors(t *testing.T) {
	for _, tc := range []struct{ flag, value, want string }{
		{"--jwt-leeway", "soon", `jwt-leeway: "soon" is not a duration like "90s" or "1h30m"`},
		{"--jwt-max-lifetime", "1 day", `jwt-max-lifetime: "1 day" is not a duration like "90s" or "1h30m"`},
		{"--ws-max-sockets", "many", `ws-max-sockets: "many" is not a whole number`},
		{"--ws-connects-per-subject", "1.5", `ws-connects-per-subject: "1.5" is not a whole number`},
	} {
		for _, cmd := range []string{"config", "serve"} {
			code, out, errOut := cli(t, noEnv, cmd, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), tc.flag, tc.value)
			if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
				t.Errorf("%s %s %q: exit %d, stdout %q, stderr %q; want exit 2 and %q", cmd, tc.flag, tc.value, code, out, errOut, tc.want)
			}
		}
	}
}
