package main

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// exampleConfig is the example configuration shipped in docs/.
const exampleConfig = "../../docs/sessiond.example.yaml"

// The example shipped in docs/ must load as written.
func TestExampleConfigLoads(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	cf := newConfigFlags(fs, configFlagNames())
	if err := fs.Parse([]string{"--config", exampleConfig}); err != nil {
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

// websocket.max_sockets defaults to what the open files limit leaves, as
// the flag's help says: the limit less the larger of 256 and a tenth of
// it, at least 1. config prints it, and refuses more.
func TestMaxSocketsDefault(t *testing.T) {
	for n, want := range map[int]int{200: 1, 257: 1, 512: 256, 2560: 2304, 4096: 3687, 65536: 58983} {
		if got := socketsWithin(n); got != want {
			t.Errorf("socketsWithin(%d) = %d, want %d", n, got, want)
		}
	}
	_, help, _ := cli(t, noEnv, "serve", "-h")
	if !strings.Contains(strings.Join(strings.Fields(help), " "), "the open files limit less the larger of 256 and a tenth of it, at least 1") {
		t.Errorf("serve -h does not state the default of --ws-max-sockets:\n%s", help)
	}
	var got Config
	if err := yaml.Unmarshal([]byte(mustCLI(t, "config")), &got); err != nil || got.WebSocket.MaxSockets != socketsWithin(openFilesLimit()) {
		t.Errorf("config: max_sockets %d, want %d for an open files limit of %d (%v)", got.WebSocket.MaxSockets, socketsWithin(openFilesLimit()), openFilesLimit(), err)
	}
	over := strconv.Itoa(socketBudget() + 1)
	if code, _, errOut := cli(t, noEnv, "config", "--ws-max-sockets", over); code != 2 || !strings.Contains(errOut, "websocket.max_sockets: "+over+" leaves too few file descriptors") {
		t.Errorf("config --ws-max-sockets %s: exit %d, %s", over, code, errOut)
	}
}

// Every key the config file accepts appears in the example: set, or,
// where setting it would change what the example does (a secret, a file,
// a URL), commented out as "# key: value" at its place. Every key the
// example shows, commented out or not, is one the file accepts.
func TestExampleConfigHasEveryKey(t *testing.T) {
	b, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	commented := regexp.MustCompile(`(?m)^(\s*)# ([a-z_]+:(\s.*)?)$`)
	all := commented.ReplaceAll(b, []byte("$1$2"))
	dec := yaml.NewDecoder(bytes.NewReader(all))
	dec.KnownFields(true)
	var cfg Config
	if err := dec.Decode(&cfg); err != nil {
		t.Fatalf("the example with its commented-out keys set: %v\n%s", err, all)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(all, &doc); err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{}
	yamlPaths(doc.Content[0], "", shown)
	for _, key := range configKeys(reflect.TypeFor[Config](), "") {
		if !shown[key] {
			t.Errorf("%s: the config file accepts %s, which the example does not show", exampleConfig, key)
		}
	}
}

// configKeys lists the keys of the config file that t (a struct) reads,
// as dotted paths; a policy's keys are under "policies.*".
func configKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		key := prefix + name
		keys = append(keys, key)
		switch ft := f.Type; {
		case ft.Kind() == reflect.Struct:
			keys = append(keys, configKeys(ft, key+".")...)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			keys = append(keys, configKeys(ft.Elem(), key+".*.")...)
		}
	}
	return keys
}

// yamlPaths adds the dotted paths of the keys under the mapping n to
// paths, a policy's name written as "*".
func yamlPaths(n *yaml.Node, prefix string, paths map[string]bool) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		name := n.Content[i].Value
		if prefix == "policies." {
			name = "*"
		}
		paths[prefix+name] = true
		yamlPaths(n.Content[i+1], prefix+name+".", paths)
	}
}
