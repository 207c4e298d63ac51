package console

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, path string, header ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assetRefs are the files index.html loads: its script and stylesheet.
var assetRefs = regexp.MustCompile(`(?:src|href)="(/console/assets/[^"]+)"`)

// The embedded build is whole: an index that loads a script and a
// stylesheet, both embedded, and no inline script (the CSP forbids it).
func TestEmbeddedBuild(t *testing.T) {
	h := Handler()
	index := body(t, get(t, h, "GET", "/console/"))
	refs := assetRefs.FindAllStringSubmatch(index, -1)
	var js, css int
	for _, m := range refs {
		switch {
		case strings.HasSuffix(m[1], ".js"):
			js++
		case strings.HasSuffix(m[1], ".css"):
			css++
		}
		if r := get(t, h, "GET", m[1]); r.StatusCode != http.StatusOK {
			t.Errorf("index.html loads %s, which answers %d", m[1], r.StatusCode)
		}
	}
	if js != 1 || css != 1 {
		t.Errorf("index.html loads %d scripts and %d stylesheets from /console/assets/, want 1 and 1:\n%s", js, css, index)
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(index, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("index.html has an inline script, which the CSP refuses: %s", tag)
		}
	}
	if strings.Contains(index, "style=") || strings.Contains(index, "<style") {
		t.Errorf("index.html has inline style, which the CSP refuses:\n%s", index)
	}
}

// /console, /console/ and every client-side route answer index.html, not
// cached, with the strict CSP; HEAD answers the same without a body.
func TestIndexForEveryRoute(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/console", "/console/", "/console/sessions", "/console/sessions/06h3ehckp4w6m4s399qhkpg9cm",
		"/console/subjects/alice@example.com", "/console/nodes", "/console/index.html", "/console/no/such/page"} {
		r := get(t, h, "GET", path)
		b := body(t, r)
		if r.StatusCode != http.StatusOK || !strings.Contains(b, `<div id="app">`) {
			t.Errorf("GET %s: %d, want 200 and index.html; body:\n%s", path, r.StatusCode, b)
			continue
		}
		checkHeaders(t, path, r, "text/html; charset=utf-8", "no-cache")
		head := get(t, h, "HEAD", path)
		if hb := body(t, head); head.StatusCode != http.StatusOK || hb != "" || head.Header.Get("Content-Length") != r.Header.Get("Content-Length") {
			t.Errorf("HEAD %s: %d, body %q, length %q; want 200, no body, length %q", path, head.StatusCode, hb, head.Header.Get("Content-Length"), r.Header.Get("Content-Length"))
		}
		checkHeaders(t, "HEAD "+path, head, "text/html; charset=utf-8", "no-cache")
	}
}

func checkHeaders(t *testing.T, what string, r *http.Response, contentType, cache string) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Type":            contentType,
		"Cache-Control":           cache,
		"Content-Security-Policy": CSP,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	} {
		if got := r.Header.Get(k); got != want {
			t.Errorf("%s: %s is %q, want %q", what, k, got, want)
		}
	}
}

// The CSP allows nothing but the server itself: no inline script, no
// framing.
func TestCSP(t *testing.T) {
	for _, want := range []string{"default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "object-src 'none'"} {
		if !strings.Contains(CSP, want) {
			t.Errorf("CSP %q lacks %q", CSP, want)
		}
	}
	if strings.Contains(CSP, "unsafe") {
		t.Errorf("CSP %q allows something unsafe", CSP)
	}
}

// The hashed assets answer with their content type and a long cache; a
// missing one is a 404 not_found in the API's error form, not the index.
func TestAssets(t *testing.T) {
	h := Handler()
	index := body(t, get(t, h, "GET", "/console/"))
	for _, m := range assetRefs.FindAllStringSubmatch(index, -1) {
		want := "text/javascript; charset=utf-8"
		if strings.HasSuffix(m[1], ".css") {
			want = "text/css; charset=utf-8"
		}
		r := get(t, h, "GET", m[1])
		if b := body(t, r); r.StatusCode != http.StatusOK || len(b) == 0 {
			t.Errorf("GET %s: %d, %d bytes", m[1], r.StatusCode, len(b))
		}
		checkHeaders(t, m[1], r, want, "public, max-age=31536000, immutable")
	}
	r := get(t, h, "GET", "/console/favicon.svg")
	checkHeaders(t, "favicon", r, "image/svg+xml", "public, max-age=3600")

	r = get(t, h, "GET", "/console/assets/index-gone.js")
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal([]byte(body(t, r)), &e); err != nil || r.StatusCode != http.StatusNotFound || e.Error.Code != "not_found" {
		t.Errorf("a missing asset: %d %+v (%v), want 404 not_found", r.StatusCode, e, err)
	}
	if got := r.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("a missing asset's error is %q, want application/json", got)
	}
}

// The index carries an ETag: a browser revalidating gets 304.
func TestIndexRevalidates(t *testing.T) {
	h := Handler()
	r := get(t, h, "GET", "/console/sessions")
	etag := r.Header.Get("ETag")
	if etag == "" {
		t.Fatal("no ETag on the index")
	}
	if r2 := get(t, h, "GET", "/console/", "If-None-Match", etag); r2.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match with the index's ETag: %d, want 304", r2.StatusCode)
	}
}

// Only GET and HEAD; paths outside /console are not the console's.
func TestMethodsAndPrefix(t *testing.T) {
	h := Handler()
	if r := get(t, h, "POST", "/console/"); r.StatusCode != http.StatusMethodNotAllowed || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /console/: %d, Allow %q; want 405, GET, HEAD", r.StatusCode, r.Header.Get("Allow"))
	}
	for _, path := range []string{"/consoles", "/v1/console"} {
		if r := get(t, h, "GET", path); r.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.StatusCode)
		}
	}
}

// A build without index.html is refused.
func TestNewHandlerNeedsIndex(t *testing.T) {
	if _, err := newHandler(fstest.MapFS{"dist/assets/a.js": {Data: []byte("x")}}); err == nil {
		t.Error("a build without index.html was taken")
	}
}
