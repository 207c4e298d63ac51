package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"flag"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.yaml.in/yaml/v3"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sessiondtest"
)

// Tests of "Transport and credentials": TLS, plain HTTP only on loopback,
// trusted proxies, secrets from files, the limit on failed API keys,
// allowed WebSocket origins, the access log, and `sessiond config` as a
// check.

// testCert is a self-signed certificate for 127.0.0.1, ::1 and localhost,
// written to files.
type testCert struct {
	certFile, keyFile string
	serial            *big.Int
}

// writeTestCert makes a new self-signed certificate and key and puts them
// at certFile and keyFile, each replaced at once (written aside, renamed),
// as certificate tools do.
func writeTestCert(t *testing.T, certFile, keyFile string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "sessiond test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:     []string{"localhost"},

		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	replaceFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return testCert{certFile: certFile, keyFile: keyFile, serial: serial}
}

func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newTestCert(t *testing.T) testCert {
	t.Helper()
	dir := t.TempDir()
	return writeTestCert(t, filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
}

// tlsConfig is a server configuration on a free port serving c.
func tlsConfig(t *testing.T, c testCert) Config {
	cfg := testConfig(t)
	cfg.TLS = TLSConfig{Cert: c.certFile, Key: c.keyFile}
	return cfg
}

// servedSerial opens a new TLS connection to addr and returns the serial
// number of the certificate the server presents.
func servedSerial(t *testing.T, addr string) *big.Int {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) // which certificate is served is the question
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// setReloaderClock makes the server's certificate reloader read now.
func setReloaderClock(s *server, now func() time.Time) {
	s.certs.mu.Lock()
	defer s.certs.mu.Unlock()
	s.certs.now = now
}

// fakeNow is a clock that moves only when told.
type fakeNow struct{ t time.Time }

func (f *fakeNow) now() time.Time { return f.t }

func TestTLSServesRESTAndWebSocketOverHTTPS(t *testing.T) {
	cert := newTestCert(t)
	cfg := tlsConfig(t, cert)
	cfg.JWT.Secret = testSecret
	ts := startServer(t, cfg)
	if !strings.HasPrefix(ts.url, "https://") {
		t.Fatalf("server URL %s, want https", ts.url)
	}

	// REST over HTTPS, the certificate verified against the test's own.
	created := create(t, ts.client(), "alice")
	if _, err := ts.client().Validate(context.Background(), created.Token, nil); err != nil {
		t.Fatalf("validate over https: %v", err)
	}
	// The admin commands find the server over HTTPS when TLS is configured.
	out := mustCLI(t, "sessions", "show", created.ID, "--addr", ts.addr, "--data-dir", cfg.DataDir,
		"--tls-cert", cert.certFile, "--tls-key", cert.keyFile)
	if !hasField(out, "state", "active") {
		t.Errorf("sessions show over https:\n%s", out)
	}

	// Plain HTTP to the TLS port is not served.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + ts.addr + "/readyz")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("plain HTTP on the TLS port answered 200: %s", body)
		}
	}

	// TLS 1.1 is refused; 1.2 is enough.
	old := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}
	if c, err := tls.Dial("tcp", ts.addr, old); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded; the minimum is 1.2")
	}
	c12, err := tls.Dial("tcp", ts.addr, &tls.Config{RootCAs: ts.hc.Transport.(*http.Transport).TLSClientConfig.RootCAs,
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("a TLS 1.2 handshake failed: %v", err)
	}
	c12.Close()

	// A WebSocket over wss.
	wsConnect(t, "wss://"+ts.addr+"/v1/connect?device_id=glasses", wsOpts{token: cliToken(t, "alice", ""), client: ts.hc})
}

func TestTLSCertificateReloadsWhenItsFilesChange(t *testing.T) {
	cert := newTestCert(t)
	ts := startServer(t, tlsConfig(t, cert))
	clock := &fakeNow{t: time.Now()}
	setReloaderClock(ts.s, clock.now)
	if got := servedSerial(t, ts.addr); got.Cmp(cert.serial) != 0 {
		t.Fatalf("served serial %v, want the first certificate's %v", got, cert.serial)
	}

	next := writeTestCert(t, cert.certFile, cert.keyFile)
	// The files are looked at no more than every few seconds...
	if got := servedSerial(t, ts.addr); got.Cmp(cert.serial) != 0 {
		t.Fatalf("served serial %v right after the change, want the old %v until the next look", got, cert.serial)
	}
	// ... and a handshake after that sees the new certificate.
	clock.t = clock.t.Add(certCheckInterval)
	if got := servedSerial(t, ts.addr); got.Cmp(next.serial) != 0 {
		t.Fatalf("served serial %v after the files changed, want the new %v", got, next.serial)
	}
	if !strings.Contains(ts.logs.String(), "TLS certificate loaded") {
		t.Errorf("no log line for the reload:\n%s", ts.logs)
	}

	// A broken replacement is logged and the certificate in use stays.
	replaceFile(t, cert.keyFile, []byte("not a key\n"))
	clock.t = clock.t.Add(certCheckInterval)
	if got := servedSerial(t, ts.addr); got.Cmp(next.serial) != 0 {
		t.Fatalf("served serial %v after a broken key was written, want the one in use %v", got, next.serial)
	}
	if !strings.Contains(ts.logs.String(), "TLS certificate reload failed; keeping the certificate in use") {
		t.Errorf("no log line for the failed reload:\n%s", ts.logs)
	}
	// The reload the signal calls fails the same way.
	if err := ts.s.certs.reload("test"); err == nil {
		t.Error("reload of a broken key: no error")
	}
	if got := servedSerial(t, ts.addr); got.Cmp(next.serial) != 0 {
		t.Fatalf("served serial %v after a failed forced reload, want %v", got, next.serial)
	}
	// Fixed files are picked up.
	third := writeTestCert(t, cert.certFile, cert.keyFile)
	if err := ts.s.certs.reload("test"); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := servedSerial(t, ts.addr); got.Cmp(third.serial) != 0 {
		t.Fatalf("served serial %v after reload, want %v", got, third.serial)
	}
}

func TestPlainHTTPOnlyOnLoopbackUnlessInsecureHTTP(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:7600", "[::]:0", "example.com:7600"} {
		for _, cmd := range [][]string{{"serve"}, {"config"}, {"config", "check"}} {
			code, out, errOut := cli(t, noEnv, append(cmd, "--addr", addr, "--data-dir", t.TempDir())...)
			if code != 2 || out != "" {
				t.Errorf("%s --addr %s: exit %d, stdout %q; want exit 2 and nothing printed", strings.Join(cmd, " "), addr, code, out)
			}
			for _, want := range []string{"refusing plain HTTP on " + addr, "not a loopback address", "--tls-cert", "--insecure-http"} {
				if !strings.Contains(errOut, want) {
					t.Errorf("%s --addr %s: stderr %q lacks %q", strings.Join(cmd, " "), addr, errOut, want)
				}
			}
		}
	}
	// Loopback addresses stay plain HTTP by default.
	for _, addr := range []string{"127.0.0.1:7600", "127.0.0.2:7600", "localhost:7600", "[::1]:7600"} {
		if code, _, errOut := cli(t, noEnv, "config", "--addr", addr); code != 0 {
			t.Errorf("config --addr %s: exit %d: %s", addr, code, errOut)
		}
	}
	// Saying a proxy terminates TLS allows it: flag, environment, file.
	if code, out, errOut := cli(t, noEnv, "config", "--addr", "0.0.0.0:7600", "--insecure-http"); code != 0 || !strings.Contains(out, "insecure_http: true") {
		t.Errorf("config --insecure-http: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, errOut := cli(t, envOf(map[string]string{"SESSIOND_ADDR": "0.0.0.0:7600", "SESSIOND_INSECURE_HTTP": "true"}), "config"); code != 0 {
		t.Errorf("SESSIOND_INSECURE_HTTP=true: exit %d: %s", code, errOut)
	}
	file := writeFile(t, "proxy.yaml", "addr: 0.0.0.0:7600\ninsecure_http: true\n")
	if code, _, errOut := cli(t, noEnv, "config", "--config", file); code != 0 {
		t.Errorf("insecure_http: true in the file: exit %d: %s", code, errOut)
	}
	if code, _, errOut := cli(t, envOf(map[string]string{"SESSIOND_INSECURE_HTTP": "maybe"}), "config"); code != 2 || !strings.Contains(errOut, `insecure-http: "maybe" is not true or false`) {
		t.Errorf("SESSIOND_INSECURE_HTTP=maybe: exit %d: %s", code, errOut)
	}
	// And the server then listens on every interface, plain HTTP, warning.
	cfg := testConfig(t)
	cfg.Addr, cfg.InsecureHTTP = "0.0.0.0:0", true
	ts := startServerAt(t, cfg, func(s *server) string { return "http://127.0.0.1:" + portOf(t, s.Addr()) })
	if !strings.Contains(ts.logs.String(), "plain HTTP on a non-loopback address") {
		t.Errorf("no warning about plain HTTP on every interface:\n%s", ts.logs)
	}
	// Without the opt-in, openServer refuses too.
	cfg.InsecureHTTP = false
	if _, err := openServer(context.Background(), cfg, io.Discard); err == nil || !strings.Contains(err.Error(), "refusing plain HTTP") {
		t.Errorf("openServer on 0.0.0.0 without TLS or insecure_http: %v", err)
	}
}

func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// accessLines returns the server's access log lines (JSON logs).
func accessLines(t *testing.T, logs string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" {
			out = append(out, m)
		}
	}
	return out
}

// waitAccessLine waits for an access line matching match: a line is
// written once its handler returns.
func waitAccessLine(t *testing.T, ts *testServer, what string, match func(map[string]any) bool) map[string]any {
	t.Helper()
	var found map[string]any
	sessiondtest.Eventually(t, "an access log line for "+what, func() bool {
		for _, l := range accessLines(t, ts.logs.String()) {
			if match(l) {
				found = l
				return true
			}
		}
		return false
	})
	return found
}

func TestForwardedForIsBelievedOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted []string
		want    string
	}{
		{"no trusted proxy", nil, "127.0.0.1"},
		{"another proxy trusted", []string{"10.0.0.0/8"}, "127.0.0.1"},
		{"the peer is a trusted proxy", []string{"127.0.0.1/32"}, "203.0.113.50"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.LogFormat = "json"
			cfg.JWT.Secret = testSecret
			cfg.TrustedProxies = tc.trusted
			ts := startServer(t, cfg)
			fwd := http.Header{"X-Forwarded-For": {"198.51.100.1, 203.0.113.50"}}

			// REST: the access log's client address.
			req, _ := http.NewRequest("GET", ts.url+"/healthz", nil)
			req.Header = fwd.Clone()
			resp, err := ts.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			l := waitAccessLine(t, ts, "GET /healthz", func(l map[string]any) bool { return l["path"] == "/healthz" })
			if l["client_ip"] != tc.want {
				t.Errorf("access log client_ip %v, want %s", l["client_ip"], tc.want)
			}

			// WebSocket: the address recorded on the connection and device.
			_, ack := wsConnect(t, "ws://"+ts.addr+"/v1/connect?device_id=d1", wsOpts{token: cliToken(t, "alice", ""), header: fwd})
			s, err := ts.client().Get(context.Background(), ack.SessionID)
			if err != nil {
				t.Fatal(err)
			}
			if s.Device.IP != tc.want {
				t.Errorf("device IP %q, want %s", s.Device.IP, tc.want)
			}
		})
	}
	if code, _, errOut := cli(t, noEnv, "config", "--trusted-proxies", "10.0.0.0/8,10.0.0.0/33"); code != 2 || !strings.Contains(errOut, `trusted_proxies: "10.0.0.0/33" is not a CIDR`) {
		t.Errorf("a bad CIDR: exit %d: %s", code, errOut)
	}
	code, out, _ := cli(t, envOf(map[string]string{"SESSIOND_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7"}), "config")
	var got Config
	if err := yaml.Unmarshal([]byte(out), &got); code != 0 || err != nil || strings.Join(got.TrustedProxies, " ") != "10.0.0.0/8 192.0.2.7" {
		t.Errorf("SESSIOND_TRUSTED_PROXIES: exit %d, trusted_proxies %q\n%s", code, got.TrustedProxies, out)
	}
}

func TestRepeatedWrongAPIKeysAre429(t *testing.T) {
	cfg := testConfig(t)
	cfg.TrustedProxies = []string{"127.0.0.1/32"}
	ts := startServer(t, cfg)
	status := func(key string) (int, string) {
		t.Helper()
		code, _, errOut := cli(t, envOf(map[string]string{"SESSIOND_API_KEY": key}), "status", "--addr", ts.addr)
		return code, errOut
	}
	for i := range 10 {
		if code, errOut := status("sdk_wrong"); code != 1 || !strings.Contains(errOut, "unauthorized") {
			t.Fatalf("wrong key #%d: exit %d: %s", i+1, code, errOut)
		}
	}
	// The eleventh attempt is refused even with the right key.
	if code, errOut := status(ts.key); code != 1 || !strings.Contains(errOut, "sessiond: rate_limited: too many failed API key attempts") {
		t.Fatalf("the right key after 10 wrong ones: exit %d: %s; want rate_limited", code, errOut)
	}
	get := func(from string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", ts.url+"/v1/stats", nil)
		req.Header.Set("Authorization", "Bearer "+ts.key)
		if from != "" {
			req.Header.Set("X-Forwarded-For", from)
		}
		resp, err := ts.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := get(""); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("from the limited address: %s, Retry-After %q; want 429 with Retry-After", resp.Status, resp.Header.Get("Retry-After"))
	}
	// A client behind the trusted proxy is another address.
	if resp := get("203.0.113.2"); resp.StatusCode != http.StatusOK {
		t.Errorf("another client: %s, want 200", resp.Status)
	}
	// Counted in the metrics.
	mresp, err := ts.hc.Get(ts.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(mresp.Body)
	mresp.Body.Close()
	for _, want := range []string{`sessiond_admin_auth_failures_total{result="wrong_key"} 10`, `sessiond_admin_auth_failures_total{result="rate_limited"} 2`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestSecretsFromFiles(t *testing.T) {
	dir := t.TempDir()
	key := "sdk_from_a_file_0123456789abcdefghijklmnop"
	keyFile := filepath.Join(dir, "api_key")
	secretFile := filepath.Join(dir, "jwt_secret")
	if err := os.WriteFile(keyFile, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secretFile, []byte(testSecret+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// `config` hides both, names the files.
	code, out, errOut := cli(t, noEnv, "config", "--api-key-file", keyFile, "--jwt-secret-file", secretFile)
	if code != 0 {
		t.Fatalf("config with secret files: exit %d: %s", code, errOut)
	}
	var got Config
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.APIKey != "(set; hidden)" || got.APIKeyFile != keyFile || got.JWT.Secret != "(set; hidden)" || got.JWT.SecretFile != secretFile ||
		strings.Contains(out, key) || strings.Contains(out, testSecret) {
		t.Errorf("config with secret files:\n%s", out)
	}

	// The server uses them, newline trimmed: the key authenticates, and a
	// credential signed with the secret (read from the file by `token`)
	// connects.
	cfg := loadTestConfig(t, noEnv, "--api-key-file", keyFile, "--jwt-secret-file", secretFile,
		"--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
	ts := startServer(t, cfg)
	if ts.key != key {
		t.Fatalf("server key %q, want the file's without its newline", ts.key)
	}
	if _, err := ts.client().Stats(context.Background()); err != nil {
		t.Fatalf("stats with the key from the file: %v", err)
	}
	env := envOf(map[string]string{"SESSIOND_API_KEY_FILE": keyFile, "SESSIOND_JWT_SECRET_FILE": secretFile})
	if code, out, errOut := cli(t, env, "status", "--addr", ts.addr); code != 0 || !strings.Contains(out, "ready") {
		t.Errorf("status with SESSIOND_API_KEY_FILE: exit %d\n%s%s", code, out, errOut)
	}
	code, tok, errOut := cli(t, env, "token", "--subject", "alice")
	if code != 0 {
		t.Fatalf("token with SESSIOND_JWT_SECRET_FILE: exit %d: %s", code, errOut)
	}
	dialDevice(t, ts.addr, "alice", "d1") // signs with testSecret: the same key
	if st, err := wsStatus(t, "ws://"+ts.addr+"/v1/connect?device_id=d2", wsOpts{token: strings.TrimSpace(tok)}); st != http.StatusSwitchingProtocols {
		t.Fatalf("a credential from `token --jwt-secret-file`: %d, %v", st, err)
	}

	// Both a value and a file, at the same level, is an error; across
	// levels the higher one wins.
	empty := writeFile(t, "empty", "\n")
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"both flags", nil, []string{"--api-key", key, "--api-key-file", keyFile}, "--api-key and --api-key-file: give the secret or the file holding it, not both"},
		{"both env", map[string]string{"SESSIOND_JWT_SECRET": testSecret, "SESSIOND_JWT_SECRET_FILE": secretFile}, nil,
			"SESSIOND_JWT_SECRET and SESSIOND_JWT_SECRET_FILE: give the secret or the file holding it, not both"},
		{"both in the file", nil, []string{"--config", writeFile(t, "both.yaml", "api_key: "+key+"\napi_key_file: "+keyFile+"\n")},
			"api_key and api_key_file: give the secret or the file holding it, not both"},
		{"missing file", nil, []string{"--api-key-file", filepath.Join(dir, "nope")}, "api_key_file: open " + filepath.Join(dir, "nope")},
		{"empty file", nil, []string{"--jwt-secret-file", empty}, "jwt.secret_file: " + empty + " is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, cmd := range []string{"config", "serve"} {
				code, _, errOut := cli(t, envOf(tc.env), append([]string{cmd, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...)...)
				if code != 2 || !strings.Contains(errOut, tc.want) {
					t.Errorf("%s: exit %d, stderr %q; want 2 and %q", cmd, code, errOut, tc.want)
				}
			}
		})
	}
	code, out, errOut = cli(t, envOf(map[string]string{"SESSIOND_API_KEY_FILE": keyFile}), "config", "--api-key", "flag-key-0123456789abcdefghijklmnopq")
	if code != 0 || !strings.Contains(out, "api_key: (set; hidden)") || !strings.Contains(out, `api_key_file: ""`) {
		t.Errorf("--api-key over SESSIOND_API_KEY_FILE: exit %d, %s\n%s", code, errOut, out)
	}
}

// loadTestConfig loads the configuration as the commands do, from args
// and env.
func loadTestConfig(t *testing.T, getenv func(string) string, args ...string) Config {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cf := newConfigFlags(fs, configFlagNames())
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	cfg, err := cf.load(getenv)
	if err != nil {
		t.Fatalf("load %v: %v", args, err)
	}
	return cfg
}

func TestShortAPIKeyIsRefused(t *testing.T) {
	short := writeFile(t, "short", "0123456789\n")
	for _, args := range [][]string{{"--api-key", "too-short"}, {"--api-key-file", short}} {
		for _, cmd := range []string{"serve", "config"} {
			code, _, errOut := cli(t, noEnv, append([]string{cmd, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, args...)...)
			if code != 2 || !strings.Contains(errOut, "api_key: is ") || !strings.Contains(errOut, "at least 32 are needed") {
				t.Errorf("%s %v: exit %d, stderr %q; want 2 and the length rule", cmd, args, code, errOut)
			}
		}
	}
	// The admin commands may still send any key: the server judges it.
	code, _, errOut := cli(t, noEnv, "status", "--api-key", "short", "--addr", "127.0.0.1:1")
	if code != 1 || strings.Contains(errOut, "at least 32") {
		t.Errorf("status with a short key: exit %d: %s; want the connection error, not the length rule", code, errOut)
	}
}

func TestWebSocketOriginAllowList(t *testing.T) {
	cfg := testConfig(t)
	cfg.JWT.Secret = testSecret
	cfg.WebSocket.AllowedOrigins = []string{"https://app.example.com"}
	ts := startServer(t, cfg)
	tok := cliToken(t, "alice", "")
	dial := func(origin string) (*websocket.Conn, *http.Response, error) {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return wsDial(t, "ws://"+ts.addr+"/v1/connect?device_id=d", wsOpts{token: tok, header: h})
	}
	_, resp, err := dial("https://evil.example")
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("dial from another origin: %v, %v; want 403", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"code":"unauthorized"`) {
		t.Errorf("403 body %s, want a JSON error", body)
	}
	if st, _ := ts.client().Stats(context.Background()); st.Total != 0 {
		t.Errorf("%d sessions after a refused origin, want 0", st.Total)
	}
	for _, origin := range []string{"https://app.example.com", ""} {
		if _, _, err := dial(origin); err != nil {
			t.Fatalf("dial with Origin %q: %v", origin, err)
		}
	}

	// From the flag, checked.
	code, out, errOut := cli(t, noEnv, "config", "--ws-allowed-origins", "https://a.example, http://localhost:3000")
	if code != 0 || !strings.Contains(out, "allowed_origins:\n    - https://a.example\n    - http://localhost:3000") {
		t.Errorf("config --ws-allowed-origins: exit %d %s\n%s", code, errOut, out)
	}
	if code, _, errOut := cli(t, noEnv, "config", "--ws-allowed-origins", "https://a.example/app"); code != 2 || !strings.Contains(errOut, "websocket.allowed_origins") {
		t.Errorf("a bad origin: exit %d: %s", code, errOut)
	}
}

func TestAccessLogThroughTheServer(t *testing.T) {
	cfg := testConfig(t)
	cfg.LogFormat = "json"
	cfg.JWT.Secret = testSecret
	ts := startServer(t, cfg)
	c := ts.client()
	created := create(t, c, "alice")
	ctx := context.Background()
	req, _ := http.NewRequest("GET", ts.url+"/v1/sessions/"+created.ID+"?debug=query-secret", nil)
	req.Header.Set("Authorization", "Bearer "+ts.key)
	resp, err := ts.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := c.Validate(ctx, created.Token, nil); err != nil {
		t.Fatal(err)
	}
	// A browser-style WebSocket with its credential in the query.
	tok := cliToken(t, "bob", "")
	if _, _, err := wsDial(t, "ws://"+ts.addr+"/v1/connect?device_id=d&token="+tok, wsOpts{}); err != nil {
		t.Fatal(err)
	}

	get := waitAccessLine(t, ts, "GET /v1/sessions/{id}", func(l map[string]any) bool { return l["route"] == "GET /v1/sessions/{id}" })
	if get["path"] != "/v1/sessions/{id}" || get["status"] != float64(200) || get["sid"] != sessiond.LogID(created.ID) ||
		get["method"] != "GET" || get["client_ip"] != "127.0.0.1" || get["bytes"].(float64) <= 0 || get["level"] != "INFO" {
		t.Errorf("access line for GET /v1/sessions/{id}: %v", get)
	}
	up := waitAccessLine(t, ts, "the WebSocket upgrade", func(l map[string]any) bool { return l["route"] == "GET /v1/connect" })
	if up["status"] != float64(http.StatusSwitchingProtocols) || up["path"] != "/v1/connect" {
		t.Errorf("access line for the upgrade: %v", up)
	}
	waitAccessLine(t, ts, "validate", func(l map[string]any) bool { return l["route"] == "POST /v1/sessions/validate" })
	if n := len(accessLines(t, ts.logs.String())); n < 4 {
		t.Errorf("%d access lines, want one per request", n)
	}
	upgrades := 0
	for _, l := range accessLines(t, ts.logs.String()) {
		if l["route"] == "GET /v1/connect" {
			upgrades++
		}
	}
	if upgrades != 1 {
		t.Errorf("%d access lines for one WebSocket, want 1", upgrades)
	}
	logs := ts.logs.String()
	for _, secret := range []string{created.ID, created.Token, tok, ts.key, "query-secret", "token="} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain %q", secret)
		}
	}

	// --access-log=false turns it off.
	off := loadTestConfig(t, noEnv, "--access-log=false", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--log-format", "json")
	if off.AccessLog {
		t.Fatal("--access-log=false did not turn it off")
	}
	ts2 := startServer(t, off)
	create(t, ts2.client(), "carol")
	if lines := accessLines(t, ts2.logs.String()); len(lines) != 0 {
		t.Errorf("access lines with --access-log=false: %v", lines)
	}
}

func TestConfigPrintsTheValuesServeUses(t *testing.T) {
	out := mustCLI(t, "config")
	var got Config
	if err := yaml.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.JWT.SubjectClaim != "sub" || got.JWT.JWKSRefresh != Duration(5*time.Minute) {
		t.Errorf("jwt: subject_claim %q, jwks_refresh %v; want sub, 5m", got.JWT.SubjectClaim, time.Duration(got.JWT.JWKSRefresh))
	}
	if w := got.WebSocket; w.MaxMessageSize != 4096 || w.MessageRate != 20 || w.MessageBurst != 40 || w.RefreshBefore != Duration(time.Minute) {
		t.Errorf("websocket: %+v; want 4096, 20, 40, 1m", w)
	}
	if got.ConnectPolicy != "device" || !got.AccessLog || got.InsecureHTTP {
		t.Errorf("connect_policy %q access_log %v insecure_http %v; want device, true, false", got.ConnectPolicy, got.AccessLog, got.InsecureHTTP)
	}
	// With one policy of its own, that is where connections go.
	one := writeFile(t, "one.yaml", "policies:\n  web:\n    ttl: 1h\n")
	if err := yaml.Unmarshal([]byte(mustCLI(t, "config", "--config", one)), &got); err != nil || got.ConnectPolicy != "web" {
		t.Errorf("connect_policy %q with only a web policy, want web (%v)", got.ConnectPolicy, err)
	}
	// Explicit values are kept.
	set := writeFile(t, "set.yaml", "jwt:\n  subject_claim: email\nwebsocket:\n  message_rate: 5\n")
	got = Config{}
	if err := yaml.Unmarshal([]byte(mustCLI(t, "config", "--config", set)), &got); err != nil || got.JWT.SubjectClaim != "email" || got.WebSocket.MessageRate != 5 || got.WebSocket.MessageBurst != 40 {
		t.Errorf("explicit values: %+v %+v, %v", got.JWT, got.WebSocket, err)
	}
}

func TestConfigChecksJWTAndTLSMaterialAsServeDoes(t *testing.T) {
	dir := t.TempDir()
	garbage := writeFile(t, "garbage.pem", "not a key\n")
	cert, other := newTestCert(t), newTestCert(t)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"short secret", []string{"--jwt-secret", "short"}, "jwt.secret: is 5 bytes; HS256 needs at least 32"},
		{"missing public key", []string{"--jwt-public-key", filepath.Join(dir, "nope.pem")}, "jwt.public_keys: open " + filepath.Join(dir, "nope.pem")},
		{"garbage public key", []string{"--jwt-public-key", garbage}, "jwt.public_keys: " + garbage + ": no PEM block found"},
		{"JWKS URL not http", []string{"--jwt-jwks-url", "ftp://keys.example/jwks.json", "--jwt-audience", "sessiond"}, "jwt.jwks_url: must be an https URL"},
		{"JWKS URL plain http off loopback", []string{"--jwt-jwks-url", "http://keys.example/jwks.json", "--jwt-audience", "sessiond"},
			`jwt.jwks_url: must be https: http is allowed only on loopback (localhost, 127.0.0.0/8, ::1), and "keys.example" is not`},
		{"JWKS URL without audience", []string{"--jwt-jwks-url", "https://keys.invalid/jwks.json"}, "jwt.audience: is required with PublicKeys or JWKSURL"},
		{"public key without audience", []string{"--jwt-public-key", writeFile(t, "ec.pem", testPublicKeyPEM(t))}, "jwt.audience: is required with PublicKeys or JWKSURL"},
		{"audience and any audience", []string{"--jwt-jwks-url", "https://keys.invalid/jwks.json", "--jwt-audience", "sessiond", "--jwt-allow-any-audience"},
			`jwt.allow_any_audience: contradicts Audience "sessiond"`},
		{"negative leeway", []string{"--jwt-secret", testSecret, "--jwt-leeway", "-1s"}, "jwt.leeway (--jwt-leeway): must not be negative (got -1s); 0 means the default"},
		{"cert without key", []string{"--tls-cert", cert.certFile}, "tls: the certificate and its key go together"},
		{"missing cert", []string{"--tls-cert", filepath.Join(dir, "nope.pem"), "--tls-key", cert.keyFile}, "tls: certificate " + filepath.Join(dir, "nope.pem")},
		{"key of another cert", []string{"--tls-cert", cert.certFile, "--tls-key", other.keyFile}, "private key does not match public key"},
		{"garbage key", []string{"--tls-cert", cert.certFile, "--tls-key", garbage}, "tls: certificate " + cert.certFile + " and key " + garbage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderrs []string
			for _, cmd := range [][]string{{"config"}, {"serve"}, {"config", "check"}} {
				code, out, errOut := cli(t, noEnv, append(append(cmd, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()), tc.args...)...)
				if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
					t.Errorf("%s %v: exit %d, stdout %q, stderr %q; want exit 2 and %q", cmd, tc.args, code, out, errOut, tc.want)
				}
				stderrs = append(stderrs, errOut)
			}
			if stderrs[0] != stderrs[1] || stderrs[2] != stderrs[1] {
				t.Errorf("config says %q, config check %q, serve %q: want serve's message", stderrs[0], stderrs[2], stderrs[1])
			}
		})
	}
	// Good material passes, and the JWKS is not fetched by config (its
	// host does not exist). A JWKS URL needs an audience, or the waiver.
	for _, aud := range [][]string{{"--jwt-audience", "sessiond"}, {"--jwt-allow-any-audience"}} {
		code, _, errOut := cli(t, noEnv, append([]string{"config", "--jwt-secret", testSecret, "--jwt-jwks-url", "https://keys.invalid/jwks.json",
			"--jwt-public-key", writeFile(t, "ec.pem", testPublicKeyPEM(t)), "--tls-cert", cert.certFile, "--tls-key", cert.keyFile}, aud...)...)
		if code != 0 {
			t.Errorf("config with good material and %v: exit %d: %s", aud, code, errOut)
		}
	}
}

// testPublicKeyPEM is a new ECDSA P-256 public key, PEM-encoded.
func testPublicKeyPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestServeCommandOverTLS(t *testing.T) {
	cert := newTestCert(t)
	dir := t.TempDir()
	addr, scheme, _, stop := serveInProcess(t, "--data-dir", dir, "--tls-cert", cert.certFile, "--tls-key", cert.keyFile)
	if scheme != "https" {
		t.Fatalf("listening on %s://%s, want https", scheme, addr)
	}
	out := mustCLI(t, "status", "--addr", addr, "--data-dir", dir, "--tls-cert", cert.certFile, "--tls-key", cert.keyFile)
	if !strings.Contains(out, "server:     ready") {
		t.Errorf("status over https:\n%s", out)
	}
	if code := stop(); code != 0 {
		t.Errorf("serve exited with %d", code)
	}
}
