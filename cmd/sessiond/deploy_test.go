package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/sessiond/sessiond/httpapi"
)

// The deployment files in deploy/ are checked here, with what this
// machine has: no container runtime and no cluster, so the Dockerfile and
// the manifests are parsed, and their settings checked against the
// server's own (its environment variables, routes, commands); the systemd
// unit goes through systemd-analyze verify.

const deployDir = "../../deploy"

// knownEnv are the server's environment variables.
func knownEnv() map[string]bool {
	m := map[string]bool{}
	for _, f := range flagEnv {
		m[f.env] = true
	}
	return m
}

// dockerInstr is one instruction of a Dockerfile, continuation lines
// joined.
type dockerInstr struct{ op, args string }

func parseDockerfile(t *testing.T, path string) []dockerInstr {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []dockerInstr
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		op, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, dockerInstr{strings.ToUpper(op), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

func TestDockerfile(t *testing.T) {
	instrs := parseDockerfile(t, filepath.Join(deployDir, "Dockerfile"))
	// The final stage: what the image is.
	last := 0
	for i, in := range instrs {
		if in.op == "FROM" {
			last = i
		}
	}
	final := instrs[last:]
	env := map[string]string{}
	got := map[string]string{}
	for _, in := range final {
		got[in.op] = in.args
		if in.op == "ENV" {
			for _, kv := range strings.Fields(in.args) {
				k, v, _ := strings.Cut(kv, "=")
				env[k] = v
			}
		}
	}
	if !strings.Contains(instrs[last].args, "static") {
		t.Errorf("final stage FROM %s: want a minimal static base", instrs[last].args)
	}
	if build := instrs[:last]; !slices.ContainsFunc(build, func(in dockerInstr) bool {
		return in.op == "RUN" && strings.Contains(in.args, "CGO_ENABLED=0") && strings.Contains(in.args, "./cmd/sessiond")
	}) {
		t.Error("the build stage does not build a static ./cmd/sessiond (CGO_ENABLED=0)")
	}
	if u := got["USER"]; u == "" || strings.HasPrefix(u, "0") || strings.HasPrefix(u, "root") {
		t.Errorf("USER %q: the image must run as a non-root user", u)
	}
	known := knownEnv()
	for k := range env {
		if !known[k] {
			t.Errorf("ENV %s is not one of the server's variables", k)
		}
	}
	if vol := got["VOLUME"]; !strings.Contains(vol, env["SESSIOND_DATA_DIR"]) || env["SESSIOND_DATA_DIR"] == "" {
		t.Errorf("VOLUME %s is not the data directory %q", vol, env["SESSIOND_DATA_DIR"])
	}
	if _, port, _ := strings.Cut(env["SESSIOND_ADDR"], ":"); port == "" || got["EXPOSE"] != port {
		t.Errorf("EXPOSE %q, SESSIOND_ADDR %q: want the port the server listens on", got["EXPOSE"], env["SESSIOND_ADDR"])
	}
	hc := got["HEALTHCHECK"]
	if !strings.Contains(hc, `"healthcheck"`) {
		t.Errorf("HEALTHCHECK %q: want the server's healthcheck command", hc)
	}
	if !strings.Contains(got["ENTRYPOINT"], "/usr/local/bin/sessiond") || !strings.Contains(got["CMD"], `"serve"`) {
		t.Errorf("ENTRYPOINT %q CMD %q: want sessiond serve", got["ENTRYPOINT"], got["CMD"])
	}
}

// The health check command the image runs answers as it says: 0 when the
// server is ready, 1 when nothing listens.
func TestHealthcheckCommand(t *testing.T) {
	ts := startServer(t, testConfig(t))
	if code, out, errOut := cli(t, noEnv, "healthcheck", "--addr", ts.addr); code != 0 || strings.TrimSpace(out) != "ready" {
		t.Fatalf("healthcheck of a ready server: exit %d, %q %q", code, out, errOut)
	}
	if code, _, errOut := cli(t, noEnv, "healthcheck", "--addr", "127.0.0.1:1"); code != 1 || errOut == "" {
		t.Fatalf("healthcheck with no server: exit %d, stderr %q; want 1 and a message", code, errOut)
	}
}

// k8sDoc is what the check reads of a Kubernetes object.
type k8sDoc struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Replicas *int `yaml:"replicas"`
		Template struct {
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
				Volumes    []struct {
					Name string `yaml:"name"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
		VolumeClaimTemplates []struct {
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  k8sProbe `yaml:"livenessProbe"`
	VolumeMounts   []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
	} `yaml:"httpGet"`
}

func TestKubernetesManifests(t *testing.T) {
	routes := map[string]bool{}
	for _, r := range httpapi.Routes() {
		if !r.Admin {
			routes[r.Path] = true
		}
	}
	known := knownEnv()
	// The secret's keys the header comment tells the operator to create.
	secretKey := regexp.MustCompile(`--from-literal=([a-z-]+)=`)
	for _, tc := range []struct {
		file     string
		replicas int
		env      []string // must be set
	}{
		{"single-node.yaml", 1, []string{"SESSIOND_API_KEY", "SESSIOND_DATA_DIR", "SESSIOND_ADDR"}},
		{"cluster.yaml", 3, []string{"SESSIOND_API_KEY", "SESSIOND_STORE", "SESSIOND_NODE", "SESSIOND_HISTORY"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			created := map[string]bool{}
			for _, m := range secretKey.FindAllStringSubmatch(string(b), -1) {
				created[m[1]] = true
			}
			dec := yaml.NewDecoder(bytes.NewReader(b))
			kinds := map[string]bool{}
			for {
				var d k8sDoc
				if err := dec.Decode(&d); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatalf("not YAML: %v", err)
				}
				if d.APIVersion == "" || d.Kind == "" || d.Metadata.Name == "" {
					t.Fatalf("an object without apiVersion, kind or name: %+v", d)
				}
				kinds[d.Kind] = true
				if d.Kind != "StatefulSet" {
					continue
				}
				if d.Spec.Replicas == nil || *d.Spec.Replicas != tc.replicas {
					t.Errorf("replicas %v, want %d", d.Spec.Replicas, tc.replicas)
				}
				volumes := map[string]bool{}
				for _, v := range d.Spec.Template.Spec.Volumes {
					volumes[v.Name] = true
				}
				for _, v := range d.Spec.VolumeClaimTemplates {
					volumes[v.Metadata.Name] = true
				}
				for _, c := range d.Spec.Template.Spec.Containers {
					checkContainer(t, c, known, routes, created, volumes, tc.env)
				}
			}
			for _, k := range []string{"Service", "StatefulSet"} {
				if !kinds[k] {
					t.Errorf("no %s", k)
				}
			}
		})
	}
}

func checkContainer(t *testing.T, c k8sContainer, known, routes, secretKeys, volumes map[string]bool, must []string) {
	t.Helper()
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("args %v, want [serve]", c.Args)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if !known[e.Name] {
			t.Errorf("env %s is not one of the server's variables", e.Name)
		}
		env[e.Name] = e.Value
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && !secretKeys[e.ValueFrom.SecretKeyRef.Key] {
			t.Errorf("env %s reads the secret's key %q, which the file's instructions do not create", e.Name, e.ValueFrom.SecretKeyRef.Key)
		}
	}
	for _, name := range must {
		if _, ok := env[name]; !ok {
			t.Errorf("env %s is not set", name)
		}
	}
	if _, port, _ := strings.Cut(env["SESSIOND_ADDR"], ":"); len(c.Ports) != 1 || port != strconv.Itoa(c.Ports[0].ContainerPort) {
		t.Errorf("ports %+v, SESSIOND_ADDR %q: want the port the server listens on", c.Ports, env["SESSIOND_ADDR"])
	}
	for what, p := range map[string]k8sProbe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if !routes[p.HTTPGet.Path] {
			t.Errorf("%s probe GET %q is not a route of the server without a key", what, p.HTTPGet.Path)
		}
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %q, want /readyz", c.ReadinessProbe.HTTPGet.Path)
	}
	dataMounted := false
	for _, m := range c.VolumeMounts {
		if !volumes[m.Name] {
			t.Errorf("volume mount %s names no volume", m.Name)
		}
		dataMounted = dataMounted || m.MountPath == env["SESSIOND_DATA_DIR"]
	}
	if !dataMounted {
		t.Errorf("the data directory %q is not a mounted volume (the root filesystem is read-only)", env["SESSIOND_DATA_DIR"])
	}
	if !c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.AllowPrivilegeEscalation {
		t.Errorf("securityContext %+v: want a read-only root and no privilege escalation", c.SecurityContext)
	}
}

// The systemd unit passes systemd-analyze verify, its ExecStart pointed at
// a real executable (this test's own binary stands in for sessiond), and
// runs the server with flags it has.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile(filepath.Join(deployDir, "sessiond.service"))
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	start := regexp.MustCompile(`(?m)^ExecStart=(\S+) (.*)$`).FindSubmatch(unit)
	if start == nil {
		t.Fatal("no ExecStart")
	}
	args := strings.Fields(string(start[2]))
	if args[0] != "serve" {
		t.Fatalf("ExecStart runs %q, want serve", args[0])
	}
	flags := map[string]bool{}
	for _, f := range flagEnv {
		flags["--"+f.flag] = true
	}
	for _, a := range args[1:] {
		if strings.HasPrefix(a, "--") && !flags[a] {
			t.Errorf("ExecStart passes %s, which serve does not take", a)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("systemd-analyze is not installed (apt-get install systemd)")
		}
		t.Skip("systemd-analyze is not installed")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "sessiond.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, start[1], []byte(exe)), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.CommandContext(t.Context(), "systemd-analyze", "verify", path).CombinedOutput() //nolint:gosec // G204: the test's own paths
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// The Grafana dashboard and the Prometheus alert rules name only metrics a
// running server exports, and those metrics have series from the start
// (labelled counters initialised at 0), so that rate() and the alerts
// work before the first event. The rules also pass promtool.
func TestDashboardAndAlertsNameRealMetrics(t *testing.T) {
	cfg := testConfig(t)
	cfg.JWT.Secret = testSecret                                                                                                   // the WebSocket edge's metrics
	testHistory(t, &cfg)                                                                                                          // and the history's
	cfg.Webhooks = []WebhookConfig{{Name: "crm", URL: "http://127.0.0.1:1/hooks", Secret: hookSecret, Events: []string{"ended"}}} // and the notifier's
	ts := startServer(t, cfg)
	resp, err := ts.hc.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	scrape, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// Series by name: a histogram's come as _bucket, _sum and _count.
	series := map[string]bool{}
	for line := range strings.Lines(string(scrape)) {
		if name, _, ok := strings.Cut(line, " "); ok && !strings.HasPrefix(line, "#") {
			name, _, _ = strings.Cut(name, "{")
			series[name] = true
		}
	}
	// Open-ended label values: a series per value, from its first event.
	const openEnded = "sessiond_heartbeat_timeouts_total" // {kind}: any connection kind
	metric := regexp.MustCompile(`\bsessiond_[a-z_]+`)
	check := func(where, expr string) {
		names := metric.FindAllString(expr, -1)
		if len(names) == 0 && !strings.Contains(expr, "up{") {
			t.Errorf("%s: %q names no sessiond metric", where, expr)
		}
		for _, n := range names {
			if !series[n] && n != openEnded {
				t.Errorf("%s: %s is not among the series a fresh server exports", where, n)
			}
		}
	}

	rules, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(rules, &doc); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			check("alert "+r.Alert, r.Expr)
			n++
		}
	}
	if n == 0 {
		t.Fatal("no alert rules")
	}

	b, err := os.ReadFile(filepath.Join(deployDir, "grafana", "sessiond-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			check("panel "+p.Title, q.Expr)
		}
	}

	if _, err := exec.LookPath("promtool"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not installed (apt-get install prometheus)")
		}
		t.Skip("promtool is not installed")
	}
	out, err := exec.CommandContext(t.Context(), "promtool", "check", "rules", filepath.Join(deployDir, "prometheus", "alerts.yml")).CombinedOutput() //nolint:gosec // G204: the test's own path
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
