package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gojwt "github.com/golang-jwt/jwt/v5"
	"go.yaml.in/yaml/v3"

	"github.com/sessiond/sessiond/docs"
	"github.com/sessiond/sessiond/jwt"
	"github.com/sessiond/sessiond/wire"
)

// The CLI's own behaviour: help, version, config check and init, token
// check, the words for a server that does not answer, and completion.

// helpFlagRE finds the flags a help text lists, at the start of a line.
var helpFlagRE = regexp.MustCompile(`(?m)^  --([a-z-]+)`)

// runnable are the commands of the table that run something, by name.
func runnable(t *testing.T) []*command {
	t.Helper()
	var out []*command
	walk(commandTable(), func(c *command) {
		if c.flags != nil {
			out = append(out, c)
		}
	})
	return out
}

// Each command's help, however asked for, lists exactly its own flags and
// the configuration flags it takes, in the double-dash form, with their
// defaults and, for configuration flags, their environment variables.
func TestHelpShowsOnlyTheCommandsFlags(t *testing.T) {
	for _, c := range runnable(t) {
		t.Run(c.name, func(t *testing.T) {
			name := strings.Fields(c.name)
			code, help, errOut := cli(t, noEnv, append([]string{"help"}, name...)...)
			if code != 0 || errOut != "" || !strings.Contains(help, "Usage:\n  "+c.synopsis()) {
				t.Fatalf("help %s: exit %d, stderr %q:\n%s", c.name, code, errOut, help)
			}
			for _, h := range []string{"--help", "-h"} {
				if code, out, _ := cli(t, noEnv, append(name, h)...); code != 0 || out != help {
					t.Errorf("%s %s: exit %d, and not what help %s prints:\n%s", c.name, h, code, c.name, out)
				}
			}
			fs, _, _ := c.flagSet()
			var want []string
			fs.VisitAll(func(f *flag.Flag) { want = append(want, f.Name) })
			var got []string
			for _, m := range helpFlagRE.FindAllStringSubmatch(help, -1) {
				got = append(got, m[1])
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("help %s lists the flags %v, want %v:\n%s", c.name, got, want, help)
			}
			if m := regexp.MustCompile(`(?m)^\s+-[a-z]`).FindString(help); m != "" {
				t.Errorf("help %s shows a flag with one dash (%q):\n%s", c.name, m, help)
			}
			for _, name := range c.config {
				if !strings.Contains(help, "env "+envOfFlag()[name]) {
					t.Errorf("help %s does not name the environment variable of --%s:\n%s", c.name, name, help)
				}
			}
		})
	}

	for _, tc := range []struct {
		args      []string
		has, lack []string
	}{
		{[]string{"status", "--help"},
			[]string{"--addr HOST:PORT", "(default 127.0.0.1:7600)", "env SESSIOND_ADDR", "--data-dir DIR", "(default sessiond-data)",
				"--api-key-file FILE", "--tls-cert FILE", "--json"},
			[]string{"--store", "--jwt-secret", "--log-level", "--history"}},
		{[]string{"help", "sessions", "ls"}, []string{"--limit N", "at most N sessions a page (default 100)", "--state STATE", "--all"},
			[]string{"--store", "--ttl"}},
		{[]string{"token", "-h"}, []string{"--subject SUBJECT", "--ttl DURATION", "(default 1h)", "--jwt-secret SECRET", "--jwt-secret-file FILE"},
			[]string{"--addr", "--data-dir", "--jwt-audience"}},
		{[]string{"help", "token", "check"}, []string{"--jwt-audience AUDIENCE", "--jwt-leeway DURATION", "(default 30s)", "--jwt-jwks-url URL"},
			[]string{"--addr", "--subject"}},
		{[]string{"store", "check", "--help"}, []string{"--data-dir DIR", "--config FILE"}, []string{"--addr", "--api-key"}},
		{[]string{"healthcheck", "--help"}, []string{"--addr HOST:PORT", "--tls-cert"}, []string{"--api-key", "--data-dir"}},
		{[]string{"config", "init", "--help"}, []string{"--out FILE", "(default sessiond.yaml)", "--force"}, []string{"--addr", "--config"}},
		{[]string{"serve", "--help"}, []string{"--min-free-space SIZE", "(default 256MiB)", "--access-log ", "(default true)",
			"config file: websocket.max_sockets", "--max-subscribers N", "(default 1024)"}, []string{"--json"}},
		{[]string{"help", "sessions"}, []string{"sessiond sessions revoke ID | --subject S", "Subcommands:", "sessions wake"}, []string{"--addr"}},
	} {
		code, out, _ := cli(t, noEnv, tc.args...)
		if code != 0 {
			t.Errorf("%v: exit %d", tc.args, code)
		}
		for _, s := range tc.has {
			if !strings.Contains(out, s) {
				t.Errorf("%v does not say %q:\n%s", tc.args, s, out)
			}
		}
		var listed []string
		for _, m := range helpFlagRE.FindAllStringSubmatch(out, -1) {
			listed = append(listed, "--"+m[1])
		}
		for _, s := range tc.lack {
			if slices.Contains(listed, s) {
				t.Errorf("%v lists %s, a flag the command does not take:\n%s", tc.args, s, out)
			}
		}
	}
	if code, _, errOut := cli(t, noEnv, "help", "sessions", "frob"); code != 2 || !strings.Contains(errOut, `"frob"`) {
		t.Errorf("help of an unknown subcommand: exit %d, %q", code, errOut)
	}
}

// A flag of another command is refused by name; the environment
// variables of every setting still apply to every command, as before.
func TestCommandsTakeOnlyTheirFlags(t *testing.T) {
	cfg := testConfig(t)
	cfg.JWT.Secret = testSecret
	ts := startServer(t, cfg)
	for _, args := range [][]string{
		{"status", "--jwt-secret", testSecret},
		{"token", "--subject", "a", "--addr", ts.addr},
		{"store", "check", "--api-key", ts.key},
		{"healthcheck", "--api-key", ts.key},
	} {
		code, _, errOut := cli(t, noEnv, args...)
		if code != 2 || !strings.Contains(errOut, "unknown flag "+args[len(args)-2]) || !strings.Contains(errOut, "sessiond help") {
			t.Errorf("%v: exit %d, %q; want 2 and the flag named", args, code, errOut)
		}
	}
	env := envOf(map[string]string{"SESSIOND_ADDR": ts.addr, "SESSIOND_API_KEY": ts.key, "SESSIOND_JWT_SECRET": testSecret,
		"SESSIOND_LOG_LEVEL": "debug"})
	if code, out, errOut := cli(t, env, "status"); code != 0 || !strings.Contains(out, "ready") {
		t.Errorf("status from the environment: exit %d\n%s%s", code, out, errOut)
	}
	code, tok, errOut := cli(t, env, "token", "--subject", "alice")
	if code != 0 {
		t.Fatalf("token from the environment: exit %d: %s", code, errOut)
	}
	if code, out, errOut := cli(t, env, "token", "check", strings.TrimSpace(tok)); code != 0 || !strings.Contains(out, "valid") {
		t.Errorf("token check from the environment: exit %d\n%s%s", code, out, errOut)
	}
	// An environment variable a command has no flag for is still checked.
	bad := envOf(map[string]string{"SESSIOND_ADDR": ts.addr, "SESSIOND_API_KEY": ts.key, "SESSIOND_LOG_LEVEL": "loud"})
	if code, _, errOut := cli(t, bad, "status"); code != 2 || !strings.Contains(errOut, "log_level") {
		t.Errorf("status with SESSIOND_LOG_LEVEL=loud: exit %d, %q; want 2, as before", code, errOut)
	}
}

// The table is consistent: every configuration flag is documented with
// a config file key the file has, every command names only flags it
// takes, the usage text lists every command, and help's defaults are
// what `sessiond config` prints.
func TestCommandTable(t *testing.T) {
	keys := configKeys(reflect.TypeFor[Config](), "")
	for _, f := range flagEnv {
		d, ok := flagDocs[f.flag]
		if !ok {
			t.Errorf("--%s has no entry in flagDocs", f.flag)
			continue
		}
		if d.key != "" && !slices.Contains(keys, d.key) {
			t.Errorf("flagDocs: --%s sets %q, which the config file does not have", f.flag, d.key)
		}
		if strings.Contains(f.help, "(default") {
			t.Errorf("--%s: its help states a default, which help adds from the configuration: %q", f.flag, f.help)
		}
	}
	if len(flagDocs) != len(flagEnv) {
		t.Errorf("flagDocs has %d entries, flagEnv %d flags", len(flagDocs), len(flagEnv))
	}
	usage := usageText()
	flagInArgs := regexp.MustCompile(`--([a-z-]+)`)
	walk(commandTable(), func(c *command) {
		if c.summary == "" {
			t.Errorf("%s has no summary", c.name)
		}
		if c.flags != nil && !strings.Contains(usage, c.synopsis()) {
			t.Errorf("the usage text does not list %q:\n%s", c.synopsis(), usage)
		}
		fs, _, _ := c.flagSet()
		for _, m := range flagInArgs.FindAllStringSubmatch(c.args, -1) {
			if fs.Lookup(m[1]) == nil {
				t.Errorf("%s: its arguments name --%s, which it does not take", c.name, m[1])
			}
		}
	})

	var printed map[string]any
	if err := yaml.Unmarshal([]byte(mustCLI(t, "config")), &printed); err != nil {
		t.Fatal(err)
	}
	for name, def := range configDefaults() {
		v := printed
		path := strings.Split(flagDocs[name].key, ".")
		for _, k := range path[:len(path)-1] {
			v, _ = v[k].(map[string]any)
		}
		if got := yamlText(v[path[len(path)-1]]); got != def {
			t.Errorf("help says --%s defaults to %q; sessiond config prints %q", name, def, got)
		}
	}
}

// `sessiond version` and `--version` print the module version and the
// VCS revision from the build information, or main.version without one.
func TestVersion(t *testing.T) {
	out := mustCLI(t, "version")
	if !strings.HasPrefix(out, "sessiond dev\n") || !strings.Contains(out, "go1.") {
		t.Errorf("version in a test binary (no module version, no VCS): %q", out)
	}
	if got := mustCLI(t, "--version"); got != out {
		t.Errorf("--version prints %q, version %q", got, out)
	}
	info := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/sessiond/sessiond", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	got := versionText(info, "dev")
	for _, want := range []string{"sessiond v1.4.0\n", "revision 0123456789abcdef0123456789abcdef01234567 (2026-12-01T10:00:00Z), modified", "go1.26.0 "} {
		if !strings.Contains(got, want) {
			t.Errorf("versionText with a module version and VCS: %q, want %q in it", got, want)
		}
	}
	info.Main.Version, info.Settings[3].Value = "(devel)", "false"
	got = versionText(info, "1.4.0-rc1")
	if !strings.HasPrefix(got, "sessiond 1.4.0-rc1\n") || strings.Contains(got, "modified") {
		t.Errorf("versionText without a module version, with -ldflags main.version: %q", got)
	}
	if got := versionText(nil, "dev"); !strings.HasPrefix(got, "sessiond dev\n") || strings.Contains(got, "revision") {
		t.Errorf("versionText without build information: %q", got)
	}
}

// config check passes what serve starts with and says what it checked;
// what serve refuses it refuses with serve's message and exit 2 (the
// cases of TestConfigErrors and TestConfigChecksJWTAndTLSMaterialAsServeDoes
// run it too).
func TestConfigCheck(t *testing.T) {
	code, out, errOut := cli(t, noEnv, "config", "check")
	if code != 0 || errOut != "" {
		t.Fatalf("config check of the defaults: exit %d, %s", code, errOut)
	}
	for _, want := range []string{"listen:", "127.0.0.1:7600, plain HTTP on loopback", "policies:", "default, device; default default",
		"jwt:", "no key: the WebSocket edge is off", "history:", "off", "ok: serve accepts this configuration"} {
		if !strings.Contains(out, want) {
			t.Errorf("config check does not say %q:\n%s", want, out)
		}
	}

	cert := newTestCert(t)
	pub := writeFile(t, "ec.pem", testPublicKeyPEM(t))
	code, out, errOut = cli(t, noEnv, "config", "check", "--jwt-secret", testSecret, "--jwt-public-key", pub,
		"--jwt-jwks-url", "https://keys.invalid/jwks.json", "--jwt-audience", "sessiond",
		"--tls-cert", cert.certFile, "--tls-key", cert.keyFile, "--history", "postgres://sessiond:hunter2@db.invalid:5432/sessiond",
		"--runtime-hook-url", "https://app.invalid/hooks/runtime")
	if code != 0 {
		t.Fatalf("config check with every kind of material: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"HTTPS: " + cert.certFile, "localhost", "the HS256 secret", "1 public key file(s): " + pub,
		"the JWKS at https://keys.invalid/jwks.json (the URL checked; not fetched)", "audience sessiond",
		"postgres://sessiond:xxxxx@db.invalid:5432/sessiond (the URL parsed; not connected to)", "runtime hook:", "ok:"} {
		if !strings.Contains(out, want) {
			t.Errorf("config check does not say %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, testSecret) || strings.Contains(out, "hunter2") {
		t.Errorf("config check shows a secret:\n%s", out)
	}

	// A history URL that cannot parse would never connect: refused, by
	// serve too, without its password.
	bad := "postgres://sessiond:hunter2@db.invalid/sessiond?sslmode=sometimes"
	for _, cmd := range [][]string{{"config", "check"}, {"serve"}} {
		code, out, errOut := cli(t, noEnv, append(cmd, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--history", bad)...)
		if code != 2 || out != "" || !strings.Contains(errOut, "history: postgres: cannot parse") || strings.Contains(errOut, "hunter2") {
			t.Errorf("%v with --history %s: exit %d, stdout %q, stderr %q", cmd, bad, code, out, errOut)
		}
	}
	// A policy that hibernates without a runtime is allowed, and noted.
	hib := writeFile(t, "hib.yaml", "policies:\n  ws:\n    ttl: 1h\n    hibernate_after: 10m\n")
	if out := mustCLI(t, "config", "check", "--config", hib); !strings.Contains(out, "policy ws hibernates sessions, but no runtime hook is configured") {
		t.Errorf("config check of a policy hibernating without a runtime:\n%s", out)
	}
}

// config init writes the example from docs/, which config check accepts;
// it does not overwrite a file unless --force.
func TestConfigInit(t *testing.T) {
	onDisk, err := os.ReadFile(exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if docs.ExampleConfig != string(onDisk) {
		t.Fatal("docs.ExampleConfig is not docs/sessiond.example.yaml")
	}
	path := filepath.Join(t.TempDir(), "sessiond.yaml")
	out := mustCLI(t, "config", "init", "--out", path)
	if !strings.Contains(out, "sessiond config check --config "+path) {
		t.Errorf("config init says %q; want the next step", out)
	}
	b, err := os.ReadFile(path)
	if err != nil || string(b) != docs.ExampleConfig {
		t.Fatalf("config init wrote %d bytes (%v), not the example", len(b), err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config init: mode %v (%v), want 0600: the file will hold secrets", fi.Mode().Perm(), err)
	}
	if code, out, errOut := cli(t, noEnv, "config", "check", "--config", path); code != 0 || !strings.Contains(out, "ok:") {
		t.Errorf("config check of the file config init wrote: exit %d\n%s%s", code, out, errOut)
	}

	mine := "# my own\nlog_level: debug\n"
	if err := os.WriteFile(path, []byte(mine), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, noEnv, "config", "init", "--out", path)
	if code != 1 || out != "" || !strings.Contains(errOut, path+" exists: --force overwrites it") {
		t.Errorf("config init over a file: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(path); string(b) != mine {
		t.Errorf("config init changed the file it refused to overwrite: %q", b)
	}
	mustCLI(t, "config", "init", "--out", path, "--force")
	if b, _ := os.ReadFile(path); string(b) != docs.ExampleConfig {
		t.Error("config init --force did not overwrite the file")
	}
	if out := mustCLI(t, "config", "init", "--out", "-"); out != docs.ExampleConfig {
		t.Error("config init --out - does not print the example")
	}
	// Without --out, sessiond.yaml in the working directory.
	t.Chdir(t.TempDir())
	mustCLI(t, "config", "init")
	if _, err := os.Stat("sessiond.yaml"); err != nil {
		t.Errorf("config init without --out: %v", err)
	}
}

// token check accepts what the WebSocket edge accepts and refuses what
// it refuses, for the same reason, printing the claims either way.
func TestTokenCheck(t *testing.T) {
	cfg := testConfig(t)
	cfg.JWT.Secret = testSecret
	cfg.JWT.Audience = "sessiond"
	ts := startServer(t, cfg)
	withAud := func(secret string, aud string, exp time.Time) string {
		claims := gojwt.MapClaims{"sub": "alice", "iat": time.Now().Add(-2 * time.Hour).Unix(), "exp": exp.Unix()}
		if aud != "" {
			claims["aud"] = aud
		}
		tok, err := gojwt.NewWithClaims(gojwt.SigningMethodHS256, claims).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	expired, err := jwt.Sign([]byte(testSecret), "alice", time.Hour, time.Now().Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{"--jwt-secret", testSecret, "--jwt-audience", "sessiond"}
	for _, tc := range []struct {
		name, token, refused string
	}{
		{"valid", withAud(testSecret, "sessiond", time.Now().Add(time.Hour)), ""},
		{"expired", withAud(testSecret, "sessiond", time.Now().Add(-time.Hour)), "token expired"},
		{"expired, no audience", expired, "token expired"},
		{"bad signature", withAud("another-secret-of-at-least-32-bytes!!", "sessiond", time.Now().Add(time.Hour)), "bad signature"},
		{"wrong audience", withAud(testSecret, "billing", time.Now().Add(time.Hour)), "wrong audience"},
		{"malformed", "not.a.token", "malformed token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cli(t, noEnv, append([]string{"token", "check", tc.token}, keys...)...)
			if tc.refused == "" {
				if code != 0 || !strings.HasPrefix(out, "valid: the WebSocket edge accepts it\n") || !hasField(out, "subject (sub)", "alice") ||
					!hasField(out, "audience", "sessiond") || !regexp.MustCompile(`(?m)^\s+expires:\s+\d{4}-\d\d-\d\dT.* \(in `).MatchString(out) ||
					!strings.Contains(out, "verified with the secret") {
					t.Errorf("token check of a valid token: exit %d\n%s%s", code, out, errOut)
				}
			} else {
				if code != 1 || errOut != "sessiond: token refused: "+tc.refused+"\n" {
					t.Errorf("token check: exit %d, stderr %q; want 1 and %q", code, errOut, tc.refused)
				}
				if tc.name != "malformed" && (!strings.HasPrefix(out, "refused; its claims, unverified:\n") || !hasField(out, "subject (sub)", "alice")) {
					t.Errorf("token check of a refused token does not show its claims:\n%s", out)
				}
			}
			// The edge says the same.
			_, resp, err := wsDial(t, "ws://"+ts.addr+"/v1/connect", wsOpts{token: tc.token})
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("the edge refuses a token token check accepts: %v", err)
				}
				return
			}
			if resp == nil {
				t.Fatalf("the edge accepts a token token check refuses (%v)", err)
			}
			var eb wire.ErrorBody
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal(b, &eb) != nil || eb.Error.Message != tc.refused {
				t.Errorf("the edge answers %s %s; token check says %q", resp.Status, b, tc.refused)
			}
		})
	}

	// Public keys, verified as the edge does: ES256 with the audience.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pub := writeFile(t, "es256.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	es, err := gojwt.NewWithClaims(gojwt.SigningMethodES256, gojwt.MapClaims{"email": "bob@example.com", "aud": []string{"sessiond", "other"},
		"iss": "https://idp.example", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := cli(t, noEnv, "token", "check", es, "--jwt-public-key", pub, "--jwt-audience", "sessiond",
		"--jwt-issuer", "https://idp.example", "--jwt-subject-claim", "email")
	if code != 0 || !hasField(out, "subject (email)", "bob@example.com") || !hasField(out, "audience", "sessiond, other") ||
		!hasField(out, "issuer", "https://idp.example") || !strings.Contains(out, "ES256, verified with a configured public key") {
		t.Errorf("token check with a public key: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := cli(t, noEnv, "token", "check", es, "--jwt-public-key", pub, "--jwt-audience", "sessiond",
		"--jwt-issuer", "https://other.example", "--jwt-subject-claim", "email"); code != 1 || !strings.Contains(errOut, "wrong issuer") {
		t.Errorf("token check with another issuer: exit %d, %q", code, errOut)
	}

	// A JWKS: the key named by kid, fetched as the edge fetches it; while
	// the set cannot be fetched, the token is not verified, and not
	// refused for a reason of its own.
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var idpUp atomic.Bool
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !idpUp.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, `{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","use":"sig","alg":"EdDSA","x":%q}]}`,
			base64.RawURLEncoding.EncodeToString(edPub))
	}))
	defer idp.Close()
	ed := gojwt.NewWithClaims(gojwt.SigningMethodEdDSA, gojwt.MapClaims{"sub": "carol", "aud": "sessiond",
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	ed.Header["kid"] = "k1"
	edTok, err := ed.SignedString(edPriv)
	if err != nil {
		t.Fatal(err)
	}
	jwks := []string{"token", "check", edTok, "--jwt-jwks-url", idp.URL + "/jwks.json", "--jwt-audience", "sessiond"}
	if code, _, errOut := cli(t, noEnv, jwks...); code != 1 || !strings.Contains(errOut, "token not verified: signing keys not loaded yet") {
		t.Errorf("token check with the JWKS down: exit %d, %q", code, errOut)
	}
	idpUp.Store(true)
	if code, out, errOut := cli(t, noEnv, jwks...); code != 0 || !hasField(out, "subject (sub)", "carol") ||
		!strings.Contains(out, "EdDSA, kid k1, verified with that key of the JWKS") {
		t.Errorf("token check with a JWKS: exit %d\n%s%s", code, out, errOut)
	}

	// Without keys, or with keys serve refuses: a usage error.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"token", "check", es}, "token check needs the keys"},
		{[]string{"token", "check", es, "--jwt-public-key", pub}, "jwt.audience: is required"},
		{[]string{"token", "check", "--jwt-secret", testSecret}, "token check takes one token"},
	} {
		if code, _, errOut := cli(t, noEnv, tc.args...); code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// A server that is not running, or speaks HTTPS to a client of plain HTTP
// or the other way round, is said so in words.
func TestServerNotAnsweringIsSaidInWords(t *testing.T) {
	c := testConfig(t)
	c.Store = "memory"
	dead := startServer(t, c)
	if err := dead.stop(t); err != nil {
		t.Fatal(err)
	}
	want := "sessiond: no sessiond server answers at http://" + dead.addr + ": is it running? (--addr, SESSIOND_ADDR)\n"
	for _, args := range [][]string{
		{"status", "--addr", dead.addr, "--api-key", "k"},
		{"sessions", "ls", "--addr", dead.addr, "--api-key", "k"},
		{"healthcheck", "--addr", dead.addr},
	} {
		if code, _, errOut := cli(t, noEnv, args...); code != 1 || errOut != want {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", args, code, errOut, want)
		}
	}
	if code, _, errOut := cli(t, envOf(map[string]string{"SESSIOND_ADDR": dead.addr}), "healthcheck"); code != 1 || errOut != want {
		t.Errorf("healthcheck with SESSIOND_ADDR: exit %d, stderr %q", code, errOut)
	}

	cert := newTestCert(t)
	https := startServer(t, tlsConfig(t, cert))
	code, _, errOut := cli(t, noEnv, "status", "--addr", https.addr, "--api-key", https.key)
	if code != 1 || !strings.Contains(errOut, "the server at "+https.addr+" speaks HTTPS, not plain HTTP") || !strings.Contains(errOut, "--tls-cert") {
		t.Errorf("status in plain HTTP to an HTTPS server: exit %d, %q", code, errOut)
	}
	plain := startServer(t, testConfig(t))
	code, _, errOut = cli(t, noEnv, "status", "--addr", plain.addr, "--api-key", plain.key, "--tls-cert", cert.certFile, "--tls-key", cert.keyFile)
	if code != 1 || !strings.Contains(errOut, "the server at "+plain.addr+" speaks plain HTTP, not HTTPS") {
		t.Errorf("status over HTTPS to a plain HTTP server: exit %d, %q", code, errOut)
	}
	// And other answers go through untouched.
	if code, _, errOut := cli(t, noEnv, "status", "--addr", plain.addr, "--api-key", "sdk_wrong"); code != 1 || !strings.Contains(errOut, "unauthorized") {
		t.Errorf("status with a wrong key: exit %d, %q", code, errOut)
	}
}

// The completion scripts parse, and bash's completes commands,
// subcommands, each command's flags and some flags' values.
func TestCompletionScripts(t *testing.T) {
	dir := t.TempDir()
	scripts := map[string]string{}
	for _, shell := range []string{"bash", "zsh"} {
		scripts[shell] = filepath.Join(dir, shell)
		if err := os.WriteFile(scripts[shell], []byte(mustCLI(t, "completion", shell)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, errOut := cli(t, noEnv, "completion", "fish"); code != 2 || !strings.Contains(errOut, "bash or zsh") {
		t.Errorf("completion fish: exit %d, %q", code, errOut)
	}

	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("no bash: %v", err) // every system this builds on has it
	}
	if out, err := exec.Command(bash, "-n", scripts["bash"]).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	complete := func(line string) []string {
		t.Helper()
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, shq(w))
		}
		script := "source " + shq(scripts["bash"]) + "\ncd " + shq(dir) + "\nCOMP_WORDS=(" + strings.Join(quoted, " ") + ")\n" +
			"COMP_CWORD=" + strconv.Itoa(len(words)-1) + "\n_sessiond\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n"
		out, err := exec.Command(bash, "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("completing %q: %v\n%s", line, err, out)
		}
		return strings.FieldsFunc(string(out), func(r rune) bool { return r == '\n' })
	}
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "my config.yaml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line      string
		has, lack []string
	}{
		{"sessiond ", []string{"serve", "config", "sessions", "token", "completion", "help"}, nil},
		{"sessiond se", []string{"serve", "sessions"}, []string{"status"}},
		{"sessiond sessions ", []string{"ls", "show", "revoke", "hibernate", "wake"}, []string{"--addr"}},
		{"sessiond sessions ls --", []string{"--subject", "--state", "--limit", "--addr", "--api-key", "--tls-cert", "--help"},
			[]string{"--store", "--jwt-secret", "--ttl"}},
		{"sessiond sessions list --li", []string{"--limit"}, nil},
		{"sessiond status --", []string{"--addr", "--json"}, []string{"--store"}},
		{"sessiond token --", []string{"--subject", "--ttl", "--jwt-secret"}, []string{"--addr"}},
		{"sessiond token ", []string{"check"}, nil},
		{"sessiond token check --jwt-", []string{"--jwt-audience", "--jwt-jwks-url"}, []string{"--subject"}},
		{"sessiond config ", []string{"check", "init"}, nil},
		{"sessiond config init --", []string{"--out", "--force"}, []string{"--addr"}},
		{"sessiond serve --log-level ", []string{"debug", "info", "warn", "error"}, []string{"--addr"}},
		{"sessiond sessions ls --state e", []string{"ended", "ending"}, []string{"active"}},
		{"sessiond serve --data-dir ", []string{"data"}, []string{"bash"}},
		{"sessiond serve --config ", []string{"bash", "zsh", "data", "my config.yaml"}, nil},
		{"sessiond config check --config my", []string{"my config.yaml"}, []string{"my"}},
		{"sessiond serve --addr ", nil, []string{"--addr", "serve"}},
		{"sessiond sessions show ID ", nil, []string{"ls"}},
		{"sessiond completion ", []string{"bash", "zsh"}, nil},
		{"sessiond help ", []string{"serve", "sessions"}, nil},
		{"sessiond help sessions ", []string{"ls", "wake"}, nil},
		{"sessiond help sessions --", nil, []string{"--addr"}},
	} {
		got := complete(tc.line)
		for _, w := range tc.has {
			if !slices.Contains(got, w) {
				t.Errorf("completing %q: %v, want %q among them", tc.line, got, w)
			}
		}
		for _, w := range tc.lack {
			if slices.Contains(got, w) {
				t.Errorf("completing %q: %v, want no %q", tc.line, got, w)
			}
		}
	}

	zsh, err := exec.LookPath("zsh")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no zsh under CI (.ci/run installs it): %v", err)
		}
		t.Skipf("no zsh here to parse its script: %v", err)
	}
	if out, err := exec.Command(zsh, "-n", scripts["zsh"]).CombinedOutput(); err != nil {
		t.Fatalf("zsh -n: %v\n%s", err, out)
	}
	// Loaded as compinit loads it: defines _sessiond and registers it.
	probe := "autoload -U compinit && compinit -u -D && source " + shq(scripts["zsh"]) + " && print -r -- ${_comps[sessiond]}"
	out, err := exec.Command(zsh, "-f", "-c", probe).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "_sessiond" {
		t.Errorf("zsh: sourcing the script after compinit: %v\n%s", err, out)
	}
}

// yamlText is a value as decoded from YAML, written as help writes a
// default: a list comma-separated.
func yamlText(v any) string {
	if list, ok := v.([]any); ok {
		items := make([]string, len(list))
		for i, x := range list {
			items[i] = fmt.Sprint(x)
		}
		return strings.Join(items, ",")
	}
	return fmt.Sprint(v)
}
