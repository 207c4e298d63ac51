package main

import (
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/sessiond/sessiond/console"
)

// consoleGet makes a request without the API key and reads the answer.
func consoleGet(t *testing.T, ts *testServer, method, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := ts.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// serve runs the web console at /console by default, without the API key:
// index.html with the strict CSP for /console and for the app's own
// routes, the assets with their content types, HEAD as GET without a body.
func TestServeConsole(t *testing.T) {
	ts := startServer(t, testConfig(t))
	resp, index := consoleGet(t, ts, "GET", "/console")
	if resp.StatusCode != http.StatusOK || !strings.Contains(index, `<div id="app">`) {
		t.Fatalf("GET /console: %d\n%s", resp.StatusCode, index)
	}
	if got := resp.Header.Get("Content-Security-Policy"); got != console.CSP || !strings.Contains(got, "default-src 'self'") || !strings.Contains(got, "frame-ancestors 'none'") {
		t.Errorf("GET /console: CSP %q", got)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("GET /console: X-Content-Type-Options %q, want nosniff", got)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
		t.Errorf("GET /console: Cache-Control %q, want no-cache", got)
	}
	for _, path := range []string{"/console/", "/console/sessions/06h3ehckp4w6m4s399qhkpg9cm", "/console/subjects/alice"} {
		resp, b := consoleGet(t, ts, "GET", path)
		if resp.StatusCode != http.StatusOK || b != index || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("GET %s: %d %q, want index.html", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		head, hb := consoleGet(t, ts, "HEAD", path)
		if head.StatusCode != http.StatusOK || hb != "" || head.Header.Get("Content-Security-Policy") != console.CSP {
			t.Errorf("HEAD %s: %d, body %q, CSP %q", path, head.StatusCode, hb, head.Header.Get("Content-Security-Policy"))
		}
	}
	script := regexp.MustCompile(`src="(/console/assets/[^"]+\.js)"`).FindStringSubmatch(index)
	if script == nil {
		t.Fatalf("no script in index.html:\n%s", index)
	}
	resp, js := consoleGet(t, ts, "GET", script[1])
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || len(js) == 0 {
		t.Errorf("GET %s: %d %q, %d bytes", script[1], resp.StatusCode, resp.Header.Get("Content-Type"), len(js))
	}
	if got := resp.Header.Get("Cache-Control"); !strings.Contains(got, "immutable") {
		t.Errorf("GET %s: Cache-Control %q, want a long, immutable cache", script[1], got)
	}
	// The API around it is as it was: / and unknown paths are 404 not_found.
	for _, path := range []string{"/", "/nope"} {
		wantNotFound(t, ts, path)
	}
}

// wantNotFound checks that path answers 404 not_found, as unknown paths do.
func wantNotFound(t *testing.T, ts *testServer, path string) {
	t.Helper()
	resp, b := consoleGet(t, ts, "GET", path)
	var e struct{ Error struct{ Code string } }
	if err := json.Unmarshal([]byte(b), &e); err != nil || resp.StatusCode != http.StatusNotFound || e.Error.Code != "not_found" {
		t.Errorf("GET %s: %d %s, want 404 not_found", path, resp.StatusCode, b)
	}
}

// --console=false, SESSIOND_CONSOLE=false and console: false in the config
// file turn it off: /console is then an unknown path like any other.
func TestConsoleOff(t *testing.T) {
	file := writeFile(t, "sessiond.yaml", "console: false\n")
	for what, cfg := range map[string]Config{
		"flag": loadTestConfig(t, noEnv, "--console=false", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()),
		"env":  loadTestConfig(t, envOf(map[string]string{"SESSIOND_CONSOLE": "false"}), "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()),
		"file": loadTestConfig(t, noEnv, "--config", file, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()),
	} {
		if cfg.Console {
			t.Fatalf("%s: the console is still on", what)
		}
		if what != "flag" {
			continue // one server is enough to see it off
		}
		ts := startServer(t, cfg)
		for _, path := range []string{"/console", "/console/", "/console/sessions/x", "/nope"} {
			wantNotFound(t, ts, path)
		}
	}
	if on := loadTestConfig(t, noEnv, "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()); !on.Console {
		t.Error("the console is off by default")
	}
	if on := loadTestConfig(t, envOf(map[string]string{"SESSIOND_CONSOLE": "false"}), "--console", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()); !on.Console {
		t.Error("--console did not win over SESSIOND_CONSOLE=false")
	}
}
